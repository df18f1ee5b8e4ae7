"""The model card (exports/<ds>/model_card.md): what the scorecard is, how it was built, how well
it ranks and is calibrated, the limits it sets and what it cannot do."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pipeline.card.routing import ROUTE_COLUMN, main_card, segment_cards


def _fmt(v: Any, spec: str = ".4f") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def _table(frame: pd.DataFrame) -> list[str]:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        cells = [
            (_fmt(v, ",.4g") if isinstance(v, float) else str(v)).replace("|", "\\|") for v in row
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _discrimination(evaluation: dict | None) -> list[str]:
    if not evaluation or "methods" not in evaluation:
        return ["Not available: metrics/<ds>/evaluate.json was absent when publishing."]
    rows = []
    for method, bases in evaluation["methods"].items():
        for basis, m in (bases or {}).items():
            if isinstance(m, dict):
                rows.append(
                    {
                        "method": method,
                        "weighting": basis,
                        "AUC": _fmt(m.get("auc")),
                        "Gini": _fmt(m.get("gini")),
                        "KS": _fmt(m.get("ks")),
                    }
                )
    if not rows:
        return ["evaluate.json holds no per-method metrics."]
    return [
        "Out-of-time (or stratified holdout) sample, goods and bads only; the rule grading "
        "is ranked A=1 … D=4.",
        "",
        *_table(pd.DataFrame(rows)),
    ]


def _exports(card: dict, checks: dict | None) -> list[str]:
    """Each export, the clients it is executed in and the agreement with Python: measured now
    for the clients publish runs, stated from the test suite for the others."""
    from pipeline.exports import EXPORT_CLIENTS

    digits = {f["name"]: f.get("edge_digits") for f in card["features"] if f["dtype"] == "numeric"}
    lines = [
        "Bin edges are short decimals (significant digits per feature: "
        + ", ".join(f"{k} {v if v is not None else 'not recorded'}" for k, v in digits.items())
        + "), chosen at fit so that no training row changes bin; every export compares against "
        "those exact decimals. The boundary set (boundary_cases.csv) probes each edge, one "
        "step at the stored precision either side (`precision = decimal`) and one ulp either "
        "side (`precision = ulp`), each special value, missing, each category and an unseen "
        "category.",
        "",
    ]
    if checks:
        n = checks.get("boundary_cases", 0)
        done = checks.get("executed_at_publish", {})
        lines.append(
            "Executed when this bundle was published: "
            + "; ".join(
                f"{client} {c['agree']}/{c['cases']} boundary cases equal to Python"
                for client, c in done.items()
            )
            + f" ({n} cases)."
        )
        lines.append("")
    lines += [
        "Executed by the test suite (tests/test_export_clients.py, on test cards with every kind "
        "of edge; `python -m pipeline.export_clients --dataset <ds>` measures this card in each "
        "installed client). A guaranteed class must agree on every case or the tests fail.",
        "",
        *_table(pd.DataFrame(EXPORT_CLIENTS)),
    ]
    return lines


def model_card_markdown(
    card: dict,
    cutoffs: dict,
    limits: pd.DataFrame,
    policy: pd.DataFrame,
    bands: pd.DataFrame,
    evaluation: dict | None,
    dataset: str,
    bad_definition: str | None = None,
    export_checks: dict | None = None,
) -> str:
    """Markdown model card from the card, the master scale, the policy tables and evaluate.json."""
    scaling = card["scaling"]
    cal = cutoffs.get("calibration", {})
    lines = [
        f"# Model card: credit scorecard `{dataset}`",
        "",
        *_data_section(card, dataset, bad_definition),
        "",
        "## Features and points",
        f"WoE logistic scorecard, {len(card['features'])} characteristics; score = sum of "
        f"points; {scaling.get('base_score')} points at good:bad odds "
        f"{scaling.get('base_odds')}:1, {scaling.get('pdo')} points to double the odds. "
        "Full points table: scorecard.csv / scorecard.xlsx.",
        "",
        *_table(_features_table(main_card(card))),
        *_segment_cards_section(card),
        "",
        "## Discrimination",
        *_discrimination(evaluation),
        "",
        "## Calibration and master scale",
        f"Score → PD by `{cal.get('method', '–')}` calibration, fitted on a sample disjoint "
        "from training; grade PD = the grade's published PD. Score intervals are "
        "[score_min, score_max).",
        "",
        *_table(_grades_table(cutoffs)),
        "",
        "## Comparison with the rule grading",
        "See the rules rows of the discrimination table above and reports/<ds>/evaluate/comparison.md "
        "(migration matrix, swap set).",
        "",
        *_policy_section(limits, policy),
        "",
        "## Exports and where they run",
        *_exports(card, export_checks),
        "",
        *_limitations(),
    ]
    return "\n".join(lines)


def _data_section(card: dict, dataset: str, bad_definition: str | None) -> list[str]:
    """Training sample, data hash, code version and the bad definition."""
    sample, prov = card.get("sample", {}), card.get("provenance", {})
    return [
        "## Data",
        f"- Dataset `{dataset}`; training rows {sample.get('n_train', '–')}, of which bad "
        f"{sample.get('n_bad', '–')}.",
        f"- Training data SHA-256 `{prov.get('training_data_sha256', '–')}`; code version "
        f"`{prov.get('code_version', '–')}`.",
        f"- Bad definition: {bad_definition or card.get('target', {}).get('event', 'bad')}.",
    ]


def _segment_cards_section(card: dict) -> list[str]:
    """Each segment card's characteristics, after the routing rule."""
    lines = []
    for segment, sub in segment_cards(card).items():
        lines += [
            "",
            f"### Segment card `{segment}`",
            f"Rows whose `{ROUTE_COLUMN}` is `{segment}` are scored by this card "
            f"({len(sub['features'])} characteristics, fitted on the segment's "
            f"{sub.get('sample', {}).get('n_train', '?')} train rows); every other row by the "
            "card above. Same points scaling, calibration and master scale. SQL and the workbook "
            f"route by `{ROUTE_COLUMN}`; the PMML export is one document per card "
            f"(scorecard.{segment}.pmml for this one).",
            "",
            *_table(_features_table(sub)),
        ]
    return lines


def _features_table(card: dict) -> pd.DataFrame:
    """One row per characteristic: reason code, IV, coefficient, bins, points range, text."""
    return pd.DataFrame(
        [
            {
                "feature": f["name"],
                "reason": f.get("reason_code"),
                "IV": f.get("iv"),
                "coefficient": f.get("coefficient"),
                "bins": len(f["bins"]),
                "points min": min(b["points"] for b in f["bins"]),
                "points max": max(b["points"] for b in f["bins"]),
                "unseen": f["unseen_points"],
                "text": f.get("reason_text"),
            }
            for f in card["features"]
        ]
    )


GRADE_COLUMNS = (
    "grade",
    "letter_grade",
    "score_min",
    "score_max",
    "pd",
    "count",
    "observed_bad_rate",
)
LIMIT_COLUMNS = [
    "letter_grade",
    "size_band",
    "typical_monthly_sales",
    "pd",
    "need",
    "expected_loss_cap",
    "limit",
    "binding",
]
POLICY_COLUMNS = [
    "letter_grade",
    "terms",
    "review_months",
    "grade_factor",
    "net_worth_share",
    "turnover_share",
]


def _grades_table(cutoffs: dict) -> pd.DataFrame:
    """The master scale's columns a reader needs, in a fixed order."""
    grades = pd.DataFrame(cutoffs["grades"])
    return grades[[c for c in GRADE_COLUMNS if c in grades]]


def _policy_section(limits: pd.DataFrame, policy: pd.DataFrame) -> list[str]:
    """The limit table, the per-grade policy and the behaviour triggers."""
    return [
        "## Limits and credit policy",
        "Limit = min(need, capacity caps, expected-loss cap); binding constraint per cell. "
        "Size band = average monthly invoiced amount; typical size = band median at each "
        "customer's latest snapshot.",
        "",
        *_table(limits[LIMIT_COLUMNS]),
        "",
        *_table(policy[POLICY_COLUMNS]),
        "",
        "Behaviour triggers (all grades):",
        f"- {policy['trigger_raise'].iloc[0]}",
        f"- {policy['trigger_cut'].iloc[0]}",
        f"- {policy['trigger_suspend'].iloc[0]}",
    ]


def _limitations() -> list[str]:
    return [
        "## Known limitations",
        "- Points and PDs hold for a population like the development sample; re-validate "
        "after a change of customers, products or terms (see the monitor stage).",
        "- Limits use the grade's PD, an LGD and an expected-loss budget from params; they are "
        "a policy, not an estimate of what a customer can repay. Capacity caps apply only "
        "when net worth or turnover are in the customer master.",
        "- Customers without sales history get no credit (need = 0) until they have one.",
        "- The calibration tests assume independent defaults; one economic cycle in the data "
        "makes the PDs point-in-time.",
        "- Protected attributes are never scored; fairness is reported separately.",
        "",
    ]
