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
# # 02 Scorecard review (评分卡复核)
#
# Reads the card the `train` stage wrote (`models/<ds>/scorecard.json`) and its report
# (`models/<ds>/train_report.json`); scores with `pipeline.card.score_frame`, the one scoring function.
# Nothing here refits or re-bins: to change the card, change `params.yaml` (`train.*`) and run `dvc repro`.
#
# Contents: selection decisions, coefficients with inference, binning table and WoE plot per
# characteristic, the points table, and a what-if on one customer.

# %% tags=["parameters"]
DATASET = "synthetic"

# %%
import matplotlib.pyplot as plt
import pandas as pd

from pipeline.card import load_card, score_frame
from pipeline.card.routing import cards
from pipeline.config import Paths
from pipeline.io import read_json
from pipeline.monitoring import card_bin_label

# %matplotlib inline
pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)
paths = Paths(DATASET)
card = load_card(paths.models / "scorecard.json")
train_report = read_json(paths.models / "train_report.json")
print(
    f"card {card['dataset']}: {len(card['features'])} characteristics, scaling {card['scaling']}"
)
print("sample:", card.get("sample"), "| code version:", card["provenance"]["code_version"])

# %% [markdown]
# ## Segment cards
# Each delinquency segment offered its own card (`train.split.segment_cards`) and whether it was kept:
# only where it ranks the segment's calibration rows better than the main card. A kept card scores the
# rows of its segment everywhere (`pipeline.card.routing`); the tables below show the main card.

# %%
pd.DataFrame(train_report.get("segment_cards", {})).T

# %% [markdown]
# ## Selection decisions
# Every candidate characteristic with its information value and why it was kept or dropped
# (IV range, correlation, VIF, sign of the coefficient, maximum number of characteristics).

# %%
selection = pd.DataFrame(card.get("selection", []))
selection.sort_values(["decision", "iv"], ascending=[False, False]) if len(
    selection
) else selection

# %% [markdown]
# ## Coefficients with inference
# logit P(bad) = intercept + Σ β·WoE, WoE = ln(%good/%bad), so every β must be negative.
# Standard errors and p-values come from the statsmodels fit stored in the card.

# %%
coefficients = pd.DataFrame(
    [
        {
            k: f.get(k)
            for k in (
                "name",
                "coefficient",
                "std_error",
                "p_value",
                "vif",
                "reason_code",
                "baseline_points",
                "unseen_points",
            )
        }
        for f in card["features"]
    ]
)
coefficients["ci_95_low"] = coefficients["coefficient"] - 1.96 * coefficients["std_error"]
coefficients["ci_95_high"] = coefficients["coefficient"] + 1.96 * coefficients["std_error"]
assert (coefficients["coefficient"] < 0).all(), "every WoE coefficient must be negative"
print("intercept", card["intercept"])
coefficients

# %% [markdown]
# ## Binning tables and WoE per characteristic
# Bins are half-open `[lower, upper)`; missing and special values have their own bins.


# %%
def binning_table(feature: dict) -> pd.DataFrame:
    rows = []
    for b in feature["bins"]:
        rows.append(
            {
                "bin": card_bin_label(b),
                "count": b.get("count"),
                "count_bad": b.get("count_bad"),
                "bad_rate": b.get("bad_rate"),
                "woe": b.get("woe"),
                "points": b.get("points"),
            }
        )
    return pd.DataFrame(rows)


for feature in card["features"]:
    table = binning_table(feature)
    print(f"\n{feature['name']}  (coefficient {feature['coefficient']:.3f})")
    print(table.to_string(index=False))

# %%
n = len(card["features"])
fig, axes = plt.subplots(n, 1, figsize=(9, 3.2 * n), squeeze=False)
for ax, feature in zip(axes[:, 0], card["features"], strict=True):
    table = binning_table(feature)
    ax.bar(range(len(table)), table["woe"], color="steelblue")
    ax.set_xticks(range(len(table)), table["bin"], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("WoE, ln(%good/%bad)")
    ax.set_xlabel("Bin")
    ax.set_title(f"{feature['name']}: WoE (bars) and bad rate (line)")
    twin = ax.twinx()
    twin.plot(
        range(len(table)), 100 * table["bad_rate"].astype(float), color="darkred", marker="o"
    )
    twin.set_ylabel("Bad rate (%)")
fig.tight_layout()

# %% [markdown]
# ## Points table
# points = round(−(β·WoE + α/n)·factor + offset/n); the score is the sum over characteristics.

# %%
points = pd.concat(
    [
        binning_table(f).assign(feature=f["name"])[["feature", "bin", "woe", "points"]]
        for f in card["features"]
    ],
    ignore_index=True,
)
span = points.groupby("feature")["points"].agg(["min", "max"])
span["range"] = span["max"] - span["min"]
print("score range of the card:", int(span["min"].sum()), "to", int(span["max"].sum()), "points")
points

# %%
fig, ax = plt.subplots(figsize=(8, 0.4 * len(span) + 1.5))
span.sort_values("range")["range"].plot.barh(ax=ax, color="slategray")
ax.set(
    title="Points range per characteristic (weight in the card)",
    xlabel="Max − min points (points)",
    ylabel="Characteristic",
)
fig.tight_layout()

# %% [markdown]
# ## What-if on one customer
# The latest snapshot of one customer in the out-of-time sample, scored as is and with its worst
# characteristic moved to the best bin's range. Reason codes rank the shortfall against the baseline points.

# %%
snapshots = pd.read_parquet(paths.processed / "snapshots.parquet")
samples = pd.read_parquet(paths.processed / "samples.parquet")
oot = snapshots.merge(samples[samples["sample"] == "oot"], on=["customer_id", "as_of_date"])
scored = score_frame(card, oot)
row = oot.loc[[scored["score"].idxmin()]]  # the riskiest customer in the sample
before = score_frame(card, row)
print("customer", row["customer_id"].iloc[0], "as of", row["as_of_date"].iloc[0].date())
print(
    before[["score", "pd_model", "reason_1", "reason_2", "reason_3", "reason_4"]].to_string(
        index=False
    )
)

# %%
reason = before["reason_1"].iloc[0]
feature = next(
    (f for c in cards(card) for f in c["features"] if f["reason_code"] == reason),
    card["features"][0],
)
best = max(feature["bins"], key=lambda b: b.get("points", -1e9))
what_if = row.copy()
if best["type"] == "range":
    lo, hi = best.get("lower"), best.get("upper")
    what_if[feature["name"]] = lo if lo is not None else (hi - 1 if hi is not None else 0)
elif best["type"] == "category":
    what_if[feature["name"]] = best["categories"][0]
after = score_frame(card, what_if)
comparison = pd.DataFrame(
    {
        "value": [row[feature["name"]].iloc[0], what_if[feature["name"]].iloc[0]],
        "points": [
            before[f"points__{feature['name']}"].iloc[0],
            after[f"points__{feature['name']}"].iloc[0],
        ],
        "score": [before["score"].iloc[0], after["score"].iloc[0]],
        "pd_model": [before["pd_model"].iloc[0], after["pd_model"].iloc[0]],
    },
    index=["as is", f"{feature['name']} in its best bin ({card_bin_label(best)})"],
)
comparison
