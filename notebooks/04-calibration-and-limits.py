# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 Calibration, master scale and credit limits (校准、主标尺与授信额度)
#
# Reads the `calibrate` stage (`models/<ds>/grade_cutoffs.json`, `reports/<ds>/calibrate/calibrate_reliability.csv`)
# and the `publish` stage (`exports/<ds>/scorecard.json`, `exports/<ds>/limit_table.csv`). The limit
# sensitivity reruns the publish stage's own limit function with other parameters; nothing is re-derived.

# %% tags=["parameters"]
DATASET = "synthetic"

# %%
import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pipeline.config import Paths
from pipeline.io import read_json
from pipeline.params import load, to_dict
from pipeline.params.base import BaseParams
from pipeline.params.publish import PublishParams

# %matplotlib inline
pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)
paths = Paths(DATASET)
cutoffs = read_json(paths.models / "grade_cutoffs.json")
print(
    "calibration:",
    cutoffs["calibration"]["method"],
    "| scale:",
    cutoffs["scale"]["type"],
    cutoffs["scale"]["n_grades"],
    "grades",
)

# %% [markdown]
# ## Master scale
# Score interval `[score_min, score_max)` → grade → PD, best grade first; `letter_grade` keys the limit policy.

# %%
scale = pd.DataFrame(cutoffs["grades"])
scale

# %% [markdown]
# ## Reliability: published PD vs observed bad rate per grade
# On the calibration sample (where the calibrator was fitted) and the out-of-time sample (the test).

# %%
reliability = pd.read_csv(paths.stage_dir("calibrate") / "calibrate_reliability.csv")
fig, ax = plt.subplots(figsize=(6, 6))
for sample, part in reliability.groupby("sample", sort=True):
    ax.scatter(
        100 * part["pd"],
        100 * part["observed_bad_rate"],
        s=12 + part["count"] / part["count"].max() * 150,
        alpha=0.7,
        label=f"{sample} sample",
    )
top = 100 * max(reliability["pd"].max(), reliability["observed_bad_rate"].max()) * 1.05
ax.plot([0, top], [0, top], color="grey", ls="--", label="perfect calibration")
ax.set(
    title="Reliability per grade (marker size = customers)",
    xlabel="Published grade PD (%)",
    ylabel="Observed bad rate (%)",
    xlim=(0, top),
    ylim=(0, top),
)
ax.legend()
fig.tight_layout()

# %%
fig, ax = plt.subplots(figsize=(6, 6))
for sample, part in reliability.groupby("sample", sort=True):
    ok = (part["pd"] > 0) & (part["observed_bad_rate"] > 0)
    ax.loglog(
        100 * part.loc[ok, "pd"],
        100 * part.loc[ok, "observed_bad_rate"],
        "o",
        label=f"{sample} sample",
    )
lo = 100 * reliability.loc[reliability["pd"] > 0, "pd"].min() / 2
ax.plot([lo, 100], [lo, 100], color="grey", ls="--", label="perfect calibration")
ax.set(
    title="Reliability per grade, log scale",
    xlabel="Published grade PD (%, log)",
    ylabel="Observed bad rate (%, log)",
)
ax.legend()
fig.tight_layout()

# %% [markdown]
# ## Grade tests with traffic lights
# Binomial and Jeffreys (ECB) one-sided tests per grade, H0: the PD is not underestimated. Green below
# 95% significance, yellow 95–99.9% ("may need correction"), red above 99.9% ("should be corrected").

# %%
LIGHT = {"green": "🟢 green", "yellow": "🟡 yellow", "red": "🔴 red", None: "–"}
tables = []
for sample, tests in cutoffs["tests"].items():
    t = pd.DataFrame(tests["per_grade"])
    t.insert(0, "sample", sample)
    tables.append(t)
grade_tests = pd.concat(tables, ignore_index=True)
cols = [
    c
    for c in (
        "sample",
        "grade",
        "count",
        "bads",
        "pd",
        "observed_bad_rate",
        "binomial_p",
        "binomial_light",
        "jeffreys_p",
        "jeffreys_light",
    )
    if c in grade_tests
]
view = grade_tests[cols].copy()
for c in ("binomial_light", "jeffreys_light"):
    if c in view:
        view[c] = view[c].map(lambda v: LIGHT.get(v, v))
view

# %%
summary = pd.DataFrame(
    {
        sample: {
            "Hosmer-Lemeshow p": t["hosmer_lemeshow"]["p"],
            "HL df": t["hosmer_lemeshow"]["df"],
            "Spiegelhalter p": t["spiegelhalter"]["p_two_sided"],
            "portfolio PD": t["portfolio"].get("pd"),
            "portfolio bad rate": t["portfolio"].get("observed_bad_rate"),
            "portfolio Jeffreys p": t["portfolio"].get("jeffreys_p"),
        }
        for sample, t in cutoffs["tests"].items()
    }
)
summary

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
x = np.arange(len(scale))
ax.bar(
    x,
    100 * scale["share"] if "share" in scale else scale["count"] / scale["count"].sum() * 100,
    color="slategray",
)
ax.set_xticks(x, scale["grade"])
ax.set(
    title="Calibration-sample customers per grade",
    xlabel="Grade (best first)",
    ylabel="Share of customers (%)",
)
fig.tight_layout()

# %% [markdown]
# ## Limit table
# The published limit per grade and size band (`exports/<ds>/limit_table.csv`, params.yaml `publish`).

# %%
limit_table = pd.read_csv(paths.exports / "limit_table.csv")
publish_params = load(PublishParams, "publish", DATASET)  # typed, checked once
print(
    {
        k: to_dict(getattr(publish_params, k))
        for k in ("lgd", "el_budget", "grade_factor", "net_worth_share", "turnover_share")
    }
)
limit_table

# %% [markdown]
# ## Sensitivity of the limits to the policy parameters
# The publish stage's `policy.limit_table` rerun with one parameter changed at a time (LGD, expected-loss
# budget, grade factors), on the published size bands and letter-grade PDs. Use it to see which
# constraint binds (need = monthly sales × credit period × grade factor, or the EL cap = budget / (PD × LGD)).

# %%
from pipeline import policy

letter_pd = policy.letter_pds(cutoffs["grades"])
bands = limit_table[
    ["size_band", "size_min", "size_max", "typical_monthly_sales"]
].drop_duplicates("size_band")
band = bands.iloc[len(bands) // 2]
print("letter-grade PDs:", {k: round(v, 4) for k, v in letter_pd.items()})
print(
    "size band shown:",
    band["size_band"],
    "typical monthly sales",
    round(band["typical_monthly_sales"]),
)


def limits_with(**changes) -> pd.Series:
    params = dataclasses.replace(publish_params.limit_policy, **changes)  # re-checks the rules
    table = policy.limit_table(letter_pd, bands, params)
    return table[table["size_band"] == band["size_band"]].set_index("letter_grade")["limit"]


variants = {
    "lgd": [0.30, 0.45, 0.60],
    "el_budget": [
        0.5 * publish_params.el_budget,
        publish_params.el_budget,
        2 * publish_params.el_budget,
    ],
    "grade_factor ×": [0.75, 1.0, 1.25],
}
rows = []
for name, values in variants.items():
    for v in values:
        if name == "grade_factor ×":
            change = {"grade_factor": {g: f * v for g, f in publish_params.grade_factor.items()}}
        else:
            change = {name: v}
        for letter, limit in limits_with(**change).items():
            rows.append({"parameter": name, "value": v, "letter_grade": letter, "limit": limit})
sensitivity = pd.DataFrame(rows)
sensitivity.pivot_table(index=["parameter", "value"], columns="letter_grade", values="limit")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
for ax, (name, part) in zip(axes, sensitivity.groupby("parameter", sort=False), strict=True):
    for letter, grp in part.groupby("letter_grade"):
        ax.plot(grp["value"], grp["limit"] / 1000, marker="o", label=f"grade {letter}")
    ax.set(title=f"Limit vs {name}", xlabel=f"{name} (parameter value)")
axes[0].set_ylabel(
    f"Limit, size band {band['size_band']} (thousand {load(BaseParams, 'base', DATASET).currency})"
)
axes[0].legend()
fig.suptitle("Sensitivity of the credit limit to the policy parameters")
fig.tight_layout()

# %% [markdown]
# ## Limit review (额度复核): proposals by action and approver
# `exports/<ds>/limit_review.csv` (publish stage, `pipeline.limit_review`): at each review date, customers
# due for review (scheduled, behaviour trigger, in default with a limit open) with the proposed action,
# the trigger, the proposed limit within the policy and the role that must approve it
# (`approval_authority.csv`: grade × exposure band × size of change).

# %%
review = pd.read_csv(paths.exports / "limit_review.csv", parse_dates=["review_date"])
last_review = review[review["review_date"] == review["review_date"].max()]
print("review month:", last_review["review_date"].max().date(), "| proposals:", len(last_review))
pd.crosstab(last_review["action"], last_review["approver_role"], margins=True)

# %%
last_review.groupby(["action", "trigger"]).agg(
    customers=("customer_id", "size"),
    limit_on_file=("limit_on_file", "sum"),
    proposed=("proposed_limit", "sum"),
)

# %%
monthly = review.pivot_table(
    index="review_date", columns="action", values="customer_id", aggfunc="count"
)
ax = monthly.fillna(0).plot(kind="bar", stacked=True, figsize=(11, 3.5))
ax.set(title="Limit-review proposals per review month", xlabel="", ylabel="customers")
ax.set_xticklabels([d.strftime("%Y-%m") for d in monthly.index], rotation=45)
plt.tight_layout()

# %% [markdown]
# ## Customer value and the value–loyalty grid (价值–忠诚矩阵)
# `exports/<ds>/customer_value.csv`: annual value = gross margin − cost of carrying receivables − collection
# cost − expected loss, lifetime value over the stated horizon with retention from the ledger, loyalty from
# tenure, purchase regularity and share of wallet (1 − competitor share). The six cells carry a strategy;
# the value tier × credit grade table says grow / keep / secure / exit.

# %%
grid = pd.read_csv(paths.exports / "value_loyalty_grid.csv")
grid

# %%
counts = grid.pivot(index="value", columns="loyalty", values="customers").loc[
    ["high", "low"], ["low", "medium", "high"]
]
fig, ax = plt.subplots(figsize=(6, 3.2))
im = ax.imshow(counts.to_numpy(), cmap="Blues")
for (i, j), n in np.ndenumerate(counts.to_numpy()):
    ax.text(j, i, f"{n}", ha="center", va="center")
ax.set_xticks(range(3), [f"{c} loyalty" for c in counts.columns])
ax.set_yticks(range(2), [f"{v} value" for v in counts.index])
ax.set_title("Customers per value–loyalty cell")
plt.tight_layout()

# %%
strategy = pd.read_csv(paths.exports / "value_grade_strategy.csv")
strategy.pivot(index="value_tier", columns="letter_grade", values="strategy").loc[
    ["high", "medium", "low"]
]

# %%
strategy.pivot(index="value_tier", columns="letter_grade", values="customers").loc[
    ["high", "medium", "low"]
]

# %% [markdown]
# ## The credit file of one customer (客户信用档案)
# `pipeline.credit_file.credit_file_view`: identity, attribute history (each version with approver and
# reason), Delphi panels, grade history, limit history, payment behaviour, open items, overrides, limit
# reviews and value. The customer shown is one whose limit was cut by a behaviour review, if any.

# %%
from pipeline.credit_file import credit_file_view

history_all = pd.read_parquet(paths.interim / "customer_history.parquet")
cut = history_all[history_all["change_reason"].astype(str).str.contains("cut")]
customer = (cut if len(cut) else history_all)["customer_id"].iloc[0]
view = credit_file_view(customer, paths)
print(view["identity"])
view["attribute_history"][
    [
        "valid_from",
        "valid_to",
        "credit_limit",
        "competitor_share",
        "net_worth",
        "expert_character",
        "approver",
        "change_reason",
    ]
]

# %%
view["limit_history"]

# %%
view["grade_history"].tail(12)

# %%
behaviour = view["payment_behaviour"]
if len(behaviour):
    ax = behaviour.plot(
        x="as_of_date",
        y=["days_beyond_terms_wavg_12m", "worst_days_past_due"],
        figsize=(9, 3),
        title=f"{customer}: payment behaviour",
    )
    ax.set_ylabel("days")
view["open_items"]

# %%
view["limit_reviews"]
