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
# # 03 Rule grading vs scorecard (规则分级 vs 评分卡)
#
# The seed's A/B/C/D grading from three hard indicators — net collection rate (净回款率), payment timing
# against the agreed date, and the share of competitors' products — against the WoE points scorecard, on
# the out-of-time sample. Everything comes from the `features` (rule grades in the snapshots) and
# `evaluate` stages (`metrics/<ds>/evaluate.json`, `reports/<ds>/evaluate/comparison.md`); the tables below are
# rebuilt with the evaluate stage's own functions, not re-implemented.

# %% tags=["parameters"]
DATASET = "synthetic"

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from pipeline import comparison
from pipeline.card import load_card
from pipeline.config import Paths
from pipeline.io import read_json
from pipeline.params import load
from pipeline.params.evaluate import EvaluateParams

# %matplotlib inline
pd.set_option("display.width", 160)
paths = Paths(DATASET)
result = read_json(paths.metrics / "evaluate.json")
snapshots = pd.read_parquet(paths.processed / "snapshots.parquet")

# %% [markdown]
# ## The seed's rule logic
# Indicator thresholds (params.yaml `rules`) and how the three letters combine. The textbook defines
# AAA, AAB → A; ABB, BBB → B; BBC, BCC, CCC → C; any D → D. AAC, ABC and ACC are not defined: the
# `rules.completion` parameter fills them (additive by default: A=1, B=2, C=3, sum 3–4 → A, 5–6 → B, 7–9 → C).

# %%
from pipeline.params import to_dict
from pipeline.params.rules import RulesParams

rules_params = load(RulesParams, "rules", DATASET)
print({k: v for k, v in to_dict(rules_params).items() if k != "overlay"})

# %%
from itertools import combinations_with_replacement

from pipeline import rules

cells = []
for letters in combinations_with_replacement("ABC", 3):
    row = {"indicator letters": "".join(letters)}
    for completion in rules.COMPLETIONS:
        row[completion] = rules.combine(letters, completion)[0]
    row["in the seed's table"] = "".join(letters) in rules.TEXTBOOK
    cells.append(row)
pd.DataFrame(cells)

# %%
combination = (
    snapshots.groupby(["rule_subgrade", "rule_grade"], dropna=False)
    .agg(snapshots=("customer_id", "size"), bads=("is_bad", "sum"), matured=("is_bad", "count"))
    .reset_index()
)
combination["bad_rate"] = combination["bads"] / combination["matured"].where(
    combination["matured"] > 0
)
combination.sort_values(["rule_grade", "rule_subgrade"])

# %%
basis = (
    snapshots.groupby(["rule_grade", "rule_grade_basis"], dropna=False)
    .size()
    .unstack(fill_value=0)
)
basis

# %% [markdown]
# ## Discrimination on the out-of-time sample

# %%
rows = []
for method, label in comparison.METHODS.items():
    for basis_name in ("count", "exposure"):
        m = result["methods"][method].get(basis_name) or {}
        rows.append(
            {
                "method": label,
                "basis": basis_name,
                "auc": m.get("auc"),
                "ci_low": m.get("ci_low"),
                "ci_high": m.get("ci_high"),
                "gini": m.get("gini"),
                "ks": m.get("ks"),
            }
        )
discrimination = pd.DataFrame(rows)
print("sample:", {k: result["sample"][k] for k in ("kind", "compared", "n_bad", "bad_rate")})
discrimination

# %%
count = discrimination[discrimination["basis"] == "count"]
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.barh(
    count["method"],
    count["auc"],
    xerr=[count["auc"] - count["ci_low"], count["ci_high"] - count["auc"]],
    color="steelblue",
)
ax.axvline(0.5, color="grey", ls=":")
ax.set(
    title="AUC on the out-of-time sample with 95% CI",
    xlabel="AUC (0.5 = random, 1 = perfect)",
    ylabel="Method",
    xlim=(0.4, 1.0),
)
fig.tight_layout()

# %%
display(Markdown((paths.stage_dir("evaluate") / "comparison.md").read_text(encoding="utf-8")))

# %% [markdown]
# ## Migration matrix and swap set
# The scorecard is cut into A–D with the same shares as the rule grades (`comparison.matched_grades`), so
# both grade the same number of customers into each letter and the swap set compares equal approval rates.

# %%
ev = load(EvaluateParams, "evaluate", DATASET)
frame, counts = comparison.oot_sample(
    snapshots,
    pd.read_parquet(paths.processed / "samples.parquet"),
    pd.read_parquet(paths.processed / "boosting_predictions.parquet"),
    ev.rule_undefined,
)
frame = comparison.add_model_scores(
    frame, load_card(paths.models / "scorecard.json"), read_json(paths.models / "logistic.json")
)
frame["scorecard_grade"] = comparison.matched_grades(frame)
decisions = comparison.decision_analysis(frame, ev.rule_reject_grades)
migration = decisions["migration"]
counts_matrix = migration.pivot(index="grade_from", columns="grade_to", values="count")
bad_rates = migration.pivot(index="grade_from", columns="grade_to", values="bad_rate")
counts_matrix

# %%
fig, ax = plt.subplots(figsize=(5.5, 4.5))
im = ax.imshow(counts_matrix.to_numpy(), cmap="Blues")
for i in range(counts_matrix.shape[0]):
    for j in range(counts_matrix.shape[1]):
        rate = bad_rates.iloc[i, j]
        text = f"{counts_matrix.iloc[i, j]}\n" + ("–" if np.isnan(rate) else f"{rate:.1%}")
        ax.text(j, i, text, ha="center", va="center", fontsize=8)
ax.set_xticks(range(4), counts_matrix.columns)
ax.set_yticks(range(4), counts_matrix.index)
ax.set(
    title="Rule grade → scorecard grade (count, bad rate)",
    xlabel="Scorecard grade (matched shares)",
    ylabel="Rule grade",
)
fig.colorbar(im, ax=ax, label="Customers (count)")
fig.tight_layout()

# %%
decisions["swap_set"]

# %%
grades = pd.concat(
    [
        decisions["rule_grades"].assign(grading="rules"),
        decisions["scorecard_grades"].assign(grading="scorecard"),
    ]
)
pivot = grades.pivot(index="grade", columns="grading", values="bad_rate")
ax = (100 * pivot).plot.bar(figsize=(7, 3.5), rot=0)
ax.set(
    title="Bad rate per grade: rule grading vs scorecard (same shares)",
    xlabel="Grade",
    ylabel="Bad rate (%)",
)
plt.tight_layout()
