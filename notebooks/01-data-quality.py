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
# # 01 Data quality and payment behaviour (数据质量与付款行为)
#
# What came in and what was rejected (`ingest`), how the receivables age, how customers pay over time
# (vintage curves, roll rates) and what the bad definition does to the sample (`features`). Everything is
# read from the stage outputs; change `params.yaml` and `dvc repro` to change them.

# %% tags=["parameters"]
DATASET = "synthetic"

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image

from pipeline.config import Paths
from pipeline.io import read_json
from pipeline.params import load, to_dict
from pipeline.params.base import BaseParams
from pipeline.params.features import FeaturesParams

# %matplotlib inline
pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 30)
paths = Paths(DATASET)
ingest = read_json(paths.stage_dir("ingest") / "ingest.json")
features_params = load(FeaturesParams, "features", DATASET)
currency = load(BaseParams, "base", DATASET).currency
snapshots = pd.read_parquet(paths.processed / "snapshots.parquet")
print(
    f"source {ingest['source']}, data cut-off {ingest['data_cutoff']}, reconciled: {ingest['reconciled']}"
)

# %% [markdown]
# ## Ingest: rows and amounts read = accepted + quarantined

# %%
tables = pd.DataFrame(ingest["tables"]).T
cols = [
    c
    for c in (
        "rows_read",
        "rows_accepted",
        "rows_quarantined",
        "amount_read",
        "amount_accepted",
        "amount_quarantined",
        "reconciled",
    )
    if c in tables
]
tables[cols]

# %% [markdown]
# ## Quarantine reasons
# Every rejected row is kept in `data/quarantine/<ds>/<table>.parquet` with the rule, column and reason.

# %%
parts = []
for table in ingest["tables"]:
    path = paths.quarantine / f"{table}.parquet"
    if path.is_file():
        q = pd.read_parquet(path)
        if len(q):
            parts.append(q[["_rule", "_column", "_reason"]].assign(table=table))
quarantine = (
    pd.concat(parts, ignore_index=True)
    if parts
    else pd.DataFrame(columns=["_rule", "_column", "_reason", "table"])
)
reasons = (
    quarantine.groupby(["table", "_rule", "_column"])
    .size()
    .rename("rows")
    .reset_index()
    .sort_values("rows", ascending=False)
)
reasons.head(20)

# %%
fig, ax = plt.subplots(figsize=(8, 0.35 * max(len(reasons.head(15)), 1) + 1.5))
top = reasons.head(15).iloc[::-1]
ax.barh(
    top["table"] + ": " + top["_rule"] + " (" + top["_column"].astype(str) + ")",
    top["rows"],
    color="indianred",
)
ax.set(
    title="Quarantined rows by table, rule and column",
    xlabel="Rows (count)",
    ylabel="Table: rule (column)",
)
fig.tight_layout()

# %% [markdown]
# ## Aging profile of the open receivables
# Open balance at each as-of date by days past due (ageing by due date).

# %%
buckets = [
    c
    for c in (
        "open_balance_current",
        "open_balance_1_30",
        "open_balance_31_60",
        "open_balance_61_90",
        "open_balance_90p",
    )
    if c in snapshots
]
aging = snapshots.groupby("as_of_date")[buckets].sum()
aging_share = aging.div(aging.sum(axis=1), axis=0)
fig, ax = plt.subplots(figsize=(9, 4))
ax.stackplot(
    aging.index,
    (aging / 1e6).T.to_numpy(),
    labels=[b.replace("open_balance_", "") for b in buckets],
)
ax.set(
    title="Open receivables by days past due",
    xlabel="As-of date (month end)",
    ylabel=f"Open balance (million {currency})",
)
ax.legend(title="days past due", loc="upper left", fontsize=8)
fig.tight_layout()
aging_share.tail(6).round(3)

# %% [markdown]
# ## Vintage curves
# Cumulative share of customers gone bad (material invoice at the bad DBT threshold, or a write-off) by
# months since their first invoice, per onboarding quarter (`reports/<ds>/features/vintage.csv`). Where the curves
# flatten is how long a performance window must be to see most bads.

# %%
vintage = pd.read_csv(paths.stage_dir("features") / "vintage.csv")
Image(
    filename=str(paths.stage_dir("features") / "features_vintage.png")
)  # the features stage's own chart

# %%
vintage[vintage["cohort"] == "all"].set_index("months_on_book")["cumulative_bad_rate"].round(
    4
).to_frame().T

# %% [markdown]
# ## Roll rates
# Month-to-month transitions between the worst ageing bucket of each customer's open balance
# (`reports/<ds>/features/roll_rates.csv`, % of the row). A high roll from 61–90 into 90+ and little cure out of
# 90+ is the usual evidence for a 90-day bad definition.

# %%
roll_rates = pd.read_csv(paths.stage_dir("features") / "roll_rates.csv")
order = ["no_balance", "current", "1_30", "31_60", "61_90", "90p"]
matrix = roll_rates.pivot(index="from_bucket", columns="to_bucket", values="rate").reindex(
    index=order, columns=order
)
fig, ax = plt.subplots(figsize=(7, 5.5))
im = ax.imshow(100 * matrix.fillna(0).to_numpy(), cmap="Blues", vmin=0, vmax=100)
for i in range(len(order)):
    for j in range(len(order)):
        v = matrix.iat[i, j]
        ax.text(
            j, i, "–" if pd.isna(v) else f"{100 * v:.0f}", ha="center", va="center", fontsize=8
        )
ax.set_xticks(range(len(order)), order, rotation=30)
ax.set_yticks(range(len(order)), order)
ax.set(
    title="Roll rates between ageing buckets (% of row)",
    xlabel="Bucket next month (days past due)",
    ylabel="Bucket this month (days past due)",
)
fig.colorbar(im, ax=ax, label="Transition rate (%)")
fig.tight_layout()
worse = {"current": "1_30", "1_30": "31_60", "31_60": "61_90", "61_90": "90p"}
pd.DataFrame(
    {
        "roll_forward": {b: matrix.loc[b, nxt] for b, nxt in worse.items()},
        "stay": {b: matrix.loc[b, b] for b in worse},
    }
).round(3)

# %% [markdown]
# ## The bad definition
# Bad = a material invoice reaching `features.label.bad_days_beyond_terms` days beyond terms (or written off)
# within `performance_window_months` after the as-of date; indeterminate = worse than
# `good_max_days_beyond_terms` but not bad; immature = the window runs past the data cut-off;
# in_default = already meeting the bad definition at the as-of date (a material invoice open at the bad
# threshold, or a write-off on or before it): outside the scoring population, like immature.

# %%
print(to_dict(features_params.label))
mix = snapshots.groupby(["as_of_date", "label"]).size().unstack(fill_value=0)
label_colours = {
    "good": "seagreen",
    "indeterminate": "khaki",
    "bad": "firebrick",
    "immature": "lightgrey",
    "in_default": "dimgrey",
}
mix = mix.reindex(columns=[c for c in label_colours if c in mix])
fig, ax = plt.subplots(figsize=(9, 4))
(mix.div(mix.sum(axis=1), axis=0) * 100).plot.area(
    ax=ax, color=[label_colours[c] for c in mix.columns]
)
ax.set(
    title="Label mix by as-of date",
    xlabel="As-of date (month end)",
    ylabel="Share of snapshots (%)",
)
fig.tight_layout()

# %%
matured = snapshots[snapshots["is_bad"].notna()]
bad_rate = matured.groupby("as_of_date")["is_bad"].mean() * 100
fig, ax = plt.subplots(figsize=(9, 3.5))
bad_rate.plot(ax=ax, marker="o")
ax.set(
    title="Bad rate of matured snapshots by as-of date",
    xlabel="As-of date (month end)",
    ylabel="Bad rate (%)",
)
fig.tight_layout()
mix.sum().to_frame("snapshots")
