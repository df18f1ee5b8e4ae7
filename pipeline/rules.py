"""The seed's rule-based A/B/C/D grading and the 6C/Delphi expert overlay (docs/rule_grading.md).

Three hard indicators are graded A–D each (D is a veto, 一票否决):

- **net collection rate** (净回款率, ``net_collection_rate_12m``): 100% → A; [95%, 100%) → B; [90%, 95%) → C;
  below 90% → D.
- **payment timing** against the agreed date, days beyond terms as chosen by ``timing_measure``:
  ``amount_weighted_lateness`` (the default: amount-weighted mean of max(0, days beyond terms), so an
  early payment never offsets a late one, as the textbook grades how late the customer pays),
  ``worst_dbt``, ``last_period_dbt`` or ``amount_weighted_dbt`` (the signed amount-weighted mean, the
  former default, kept as an option): ≤ 0 → A; (0, 5) → B; [5, 10) → C; ≥ 10 → D.
- **competitor share** (share of competitors' products the customer sells): ≤ ``a_max`` (ours only) → A;
  ≤ ``b_max`` (mostly ours) → B; ≤ ``c_max`` (about half) → C; above → D (mostly competitors).

The combination is the textbook table (AAA, AAB → A; ABB, BBB → B; BBC, BCC, CCC → C; any D → D) with a
completion for the three cells it leaves open (AAC, ABC, ACC): ``additive`` (A=1, B=2, C=3, sum 3–4 → A,
5–6 → B, 7–9 → C), ``conservative`` (worst indicator, one step better only if both others are A) or
``strict`` (UNDEFINED with a reason). A customer missing one indicator is graded on the other two
(`combine` on a pair, rule in `combine`); missing two or more → UNDEFINED.

The overlay moves the rule grade by bounded notches from the weighted expert score; every override keeps
the approver, reason and date of the expert assessment, and an assessment dated after the as-of date, or
without approver or date, is not applied.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.domain import LETTER_GRADES as GRADES
from pipeline.domain import PipelineError

if TYPE_CHECKING:
    from pipeline.params.rules import (
        CollectionThresholds,
        CompetitorShareThresholds,
        OverlayParams,
        RulesParams,
        TimingThresholds,
    )

UNDEFINED = "UNDEFINED"
NOT_APPLIED = "not applied: expert assessment without approver/date or dated after as-of"
GAPS = ("AAC", "ABC", "ACC")
COMPLETIONS = ("additive", "conservative", "strict")
INDICATORS = ("net_collection", "payment_timing", "competitor_share")
TIMING_MEASURES = {
    "amount_weighted_lateness": "days_late_wavg_{w}m",
    "worst_dbt": "days_beyond_terms_max_{w}m",
    "amount_weighted_dbt": "days_beyond_terms_wavg_{w}m",
    "last_period_dbt": "days_beyond_terms_last_invoice",
}
EXPERT_CS = ("character", "capacity", "capital", "collateral", "conditions", "coverage")
# the textbook's table on multisets (letters sorted): the seven defined cells
TEXTBOOK = {"AAA": "A", "AAB": "A", "ABB": "B", "BBB": "B", "BBC": "C", "BCC": "C", "CCC": "C"}
MISSING_RULES = ("two_indicator", "worst_of_present")
OUTPUT_COLUMNS = [
    "grade_net_collection",
    "grade_payment_timing",
    "grade_competitor_share",
    "rule_subgrade",
    "rule_grade",
    "rule_grade_basis",
    "rule_grade_reason",
    "expert_score",
    "overlay_notches",
    "final_grade",
    "override_reason",
    "override_approver",
    "override_date",
]


# ---- the combination rule ------------------------------------------------------------------------------


def _rank(letter: str) -> int:
    return GRADES.index(letter)


def combine(grades: tuple[str, ...], completion: str = "additive") -> tuple[str, str | None]:
    """The rule grade of three (or, for a customer missing one indicator, two) indicator grades.

    Returns ``(grade, reason)``; ``reason`` is None for a cell of the textbook table and says why otherwise
    (veto, completion used, UNDEFINED). Order of the letters does not matter.

    Pairs are graded by the same completion on two letters: ``additive`` = the additive rule on the mean
    (mean < 1.5 → A, ≤ 2 → B, > 2 → C, which equals the sum rule for three letters), ``conservative`` =
    the worse letter, one step better if the other is A; ``strict`` = as ``additive`` except a pair
    mixing A and C (the letters that make every textbook gap) is UNDEFINED.
    """
    if completion not in COMPLETIONS:
        raise PipelineError(f"rules: completion '{completion}' is not one of {COMPLETIONS}")
    if len(grades) not in (2, 3) or any(g not in GRADES for g in grades):
        raise PipelineError(f"rules: cannot combine {grades!r}: need 2 or 3 letters from {GRADES}")
    key = "".join(sorted(grades))
    if "D" in key:
        return "D", f"veto: D in {key}"
    if len(key) == 3 and key in TEXTBOOK:
        return TEXTBOOK[key], None
    pair = "" if len(key) == 3 else " (two indicators)"
    if completion == "strict" and "A" in key and "C" in key:
        return UNDEFINED, f"{key} is not defined by the seed's table (strict completion){pair}"
    scores = [_rank(g) + 1 for g in key]
    if completion == "conservative":
        worst = max(scores)
        others = list(scores)
        others.remove(worst)
        letter = GRADES[max(worst - 1 - (1 if all(s == 1 for s in others) else 0), 0)]
        return letter, f"conservative completion: {key} → {letter}{pair}"
    mean = sum(scores) / len(scores)
    letter = "A" if mean < 1.5 else "B" if mean <= 2 else "C"
    return letter, f"additive completion: {key} sum {sum(scores)} → {letter}{pair}"


# ---- indicator grades -------------------------------------------------------------------------------------


def grade_net_collection(rate: pd.Series, thresholds: CollectionThresholds) -> pd.Series:
    """100% → A; [95%, 100%) → B; [90%, 95%) → C; below → D; null stays null."""
    x = pd.to_numeric(rate, errors="coerce").to_numpy(dtype=float)
    out = np.select(
        [
            x >= thresholds.a_min,
            x >= thresholds.b_min,
            x >= thresholds.c_min,
            x < thresholds.c_min,
        ],
        ["A", "B", "C", "D"],
        default=None,
    )
    return pd.Series(out, index=rate.index, dtype=object)


def grade_payment_timing(days_beyond_terms: pd.Series, thresholds: TimingThresholds) -> pd.Series:
    """On time or early (≤ 0) → A; (0, 5) → B; [5, 10) → C; ≥ 10 → D; null stays null."""
    x = pd.to_numeric(days_beyond_terms, errors="coerce").to_numpy(dtype=float)
    out = np.select(
        [
            x <= thresholds.a_max,
            x < thresholds.b_below,
            x < thresholds.c_below,
            x >= thresholds.c_below,
        ],
        ["A", "B", "C", "D"],
        default=None,
    )
    return pd.Series(out, index=days_beyond_terms.index, dtype=object)


def grade_competitor_share(share: pd.Series, thresholds: CompetitorShareThresholds) -> pd.Series:
    """≤ a_max → A (ours only); ≤ b_max → B; ≤ c_max → C; above → D (mostly competitors)."""
    x = pd.to_numeric(share, errors="coerce").to_numpy(dtype=float)
    out = np.select(
        [
            x <= thresholds.a_max,
            x <= thresholds.b_max,
            x <= thresholds.c_max,
            x > thresholds.c_max,
        ],
        ["A", "B", "C", "D"],
        default=None,
    )
    return pd.Series(out, index=share.index, dtype=object)


def _combine_rows(letters: pd.DataFrame, completion: str, missing_rule: str) -> pd.DataFrame:
    """Rule grade, basis and reason per row of indicator letters (null = missing); one `combine` call per
    distinct pattern, so the cost does not grow with the number of rows."""
    key = np.zeros(len(letters), dtype=np.int64)
    for col in letters.columns:
        values = letters[col].to_numpy(dtype=object)
        code = np.full(len(values), 4, dtype=np.int64)
        for i, g in enumerate(GRADES):
            code[values == g] = i
        key = key * 5 + code
    uniq, inverse = np.unique(key, return_inverse=True)
    rows = []
    for u in uniq:
        sub = "".join("ABCD-"[d] for d in (u // 25, u // 5 % 5, u % 5))
        present = [ch for ch in sub if ch != "-"]
        missing = [INDICATORS[i] for i, ch in enumerate(sub) if ch == "-"]
        vetoed = [INDICATORS[i] for i, ch in enumerate(sub) if ch == "D"]
        basis = {3: "three_indicators", 2: "two_indicators"}.get(
            len(present), "insufficient_indicators"
        )
        if vetoed:
            grade, reason = "D", f"veto: D on {', '.join(vetoed)}"
        elif len(present) < 2:
            grade, reason = UNDEFINED, "insufficient indicators"
        elif len(present) == 2 and missing_rule == "worst_of_present":
            grade, reason = combine((*present, max(present, key=_rank)), completion)
        else:
            grade, reason = combine(tuple(present), completion)
        reason = reason or "textbook table"
        if missing:
            how = (
                {
                    "worst_of_present": "imputed as the worse present grade",
                    "two_indicator": "graded on the other two",
                }[missing_rule]
                if len(present) == 2
                else ""
            )
            reason = f"missing {', '.join(missing)}" + (f" ({how})" if how else "") + f"; {reason}"
        rows.append((sub, grade, basis, reason))
    table = np.array(rows, dtype=object).reshape(len(uniq), 4)
    names = ["rule_subgrade", "rule_grade", "rule_grade_basis", "rule_grade_reason"]
    return pd.DataFrame(
        {name: table[inverse, j] for j, name in enumerate(names)}, index=letters.index
    )


# ---- the expert overlay ------------------------------------------------------------------------------------


def expert_score(frame: pd.DataFrame, weights: Mapping[str, float]) -> pd.Series:
    """Weighted Delphi score Σ w_c·s_c over the Cs scored (weights renormalised over those present);
    null when the customer has no expert score."""
    num = pd.Series(0.0, index=frame.index)
    den = pd.Series(0.0, index=frame.index)
    for c, w in weights.items():
        col = f"expert_{c}"
        if col not in frame:
            continue
        s = pd.to_numeric(frame[col], errors="coerce").astype(float)
        num += s.fillna(0.0) * w
        den += s.notna() * w
    return (num / den).where(den > 0)


def overlay_notches(score: pd.Series, overlay: OverlayParams) -> pd.Series:
    """Requested notches (+ = upgrade): whole steps of ``points_per_notch`` away from ``neutral_score``,
    truncated toward zero and bounded by ``max_notches_up`` / ``max_notches_down``; 0 when no score."""
    d = (score - float(overlay.neutral_score)) / float(overlay.points_per_notch)
    raw = np.trunc(d.fillna(0.0).to_numpy() + np.sign(d.fillna(0.0).to_numpy()) * 1e-9)
    bounded = np.clip(raw, -int(overlay.max_notches_down), int(overlay.max_notches_up))
    return pd.Series(bounded.astype(int), index=score.index)


def _apply_overlay(
    out: pd.DataFrame, snapshots: pd.DataFrame, overlay: OverlayParams
) -> pd.DataFrame:
    n = len(out)
    out["expert_score"] = expert_score(snapshots, overlay.weights) if n else pd.Series(dtype=float)
    out["overlay_notches"] = 0
    out["final_grade"] = out["rule_grade"]
    out["override_reason"] = pd.Series([None] * n, index=out.index, dtype=object)
    out["override_approver"] = pd.Series([None] * n, index=out.index, dtype=object)
    out["override_date"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
    if not overlay.enabled or out["expert_score"].isna().all():
        return out
    approver = snapshots.get("expert_approver", pd.Series(None, index=out.index, dtype=object))
    date = pd.to_datetime(snapshots.get("expert_date", pd.Series(pd.NaT, index=out.index)))
    as_of = pd.to_datetime(snapshots["as_of_date"]) if "as_of_date" in snapshots else None
    requested = overlay_notches(out["expert_score"], overlay)
    rank = out["rule_grade"].map({g: i for i, g in enumerate(GRADES)})
    eligible = rank.notna() & (requested != 0)
    if not overlay.upgrade_d:
        eligible &= ~((rank == 3) & (requested > 0))
    documented = approver.notna() & date.notna()
    if as_of is not None:
        documented &= date <= as_of
    apply = eligible & documented
    new_rank = (rank - requested).clip(0, 3)
    effective = (rank - new_rank).where(apply, 0).fillna(0).astype(int)
    moved = apply & (effective != 0)
    out["overlay_notches"] = effective
    out.loc[moved, "final_grade"] = new_rank[moved].astype(int).map(dict(enumerate(GRADES)))
    reason = snapshots.get("expert_reason", pd.Series(None, index=out.index, dtype=object))
    m = moved.to_numpy()
    k = effective[m]
    out.loc[moved, "override_reason"] = (
        reason[m].fillna("expert overlay").astype(str)
        + "; expert score "
        + out.loc[moved, "expert_score"].round(2).astype(str)
        + " → "
        + np.where(k > 0, "+", "-")
        + k.abs().astype(str)
        + np.where(k.abs() > 1, " notches", " notch")
    )
    out.loc[moved, "override_approver"] = approver[moved]
    out.loc[moved, "override_date"] = date[moved]
    not_applied = eligible & ~documented
    out.loc[not_applied, "override_reason"] = NOT_APPLIED
    return out


# ---- public API -------------------------------------------------------------------------------------------


def indicator_columns(params: RulesParams) -> dict[str, str]:
    """The snapshot column each indicator reads, from params."""
    return {
        "net_collection": f"net_collection_rate_{params.collection_window_months}m",
        "payment_timing": TIMING_MEASURES[params.timing_measure].format(
            w=params.timing_window_months
        ),
        "competitor_share": "competitor_share",
    }


def grade(snapshots: pd.DataFrame, params: RulesParams) -> pd.DataFrame:
    """A copy of ``snapshots`` with the rule grade and the expert overlay (columns in `OUTPUT_COLUMNS`).

    ``params`` is the ``rules`` block (``pipeline.params.load(RulesParams, "rules", ds)``).
    """
    p = params
    cols = indicator_columns(params)
    absent = [c for c in cols.values() if c not in snapshots.columns]
    if absent:
        raise PipelineError(
            f"rules.grade: snapshots lack column(s) {absent} needed by the rule grading "
            f"(timing_measure={p.timing_measure}); the features stage must write them"
        )
    out = snapshots.copy()
    letters = pd.DataFrame(
        {
            "grade_net_collection": grade_net_collection(
                out[cols["net_collection"]], p.collection_thresholds
            ),
            "grade_payment_timing": grade_payment_timing(
                out[cols["payment_timing"]], p.timing_thresholds
            ),
            "grade_competitor_share": grade_competitor_share(
                out[cols["competitor_share"]], p.competitor_share_thresholds
            ),
        },
        index=out.index,
    )
    combined = (
        _combine_rows(letters, p.completion, p.missing_competitor_rule)
        if len(out)
        else pd.DataFrame(columns=OUTPUT_COLUMNS[3:7], index=out.index, dtype=object)
    )
    for col in letters:
        out[col] = letters[col]
    for col in combined:
        out[col] = combined[col]
    out = _apply_overlay(out, snapshots, p.overlay)
    return out


def _counts(values: pd.Series) -> Counter:
    return Counter({k: int(v) for k, v in values.value_counts().items()})


def _sorted_counts(counts: Counter) -> dict[str, int]:
    return {str(k): int(counts[k]) for k in sorted(counts) if counts[k]}


BAD_RATE_GROUPS = ("overridden", "not_overridden", "upgraded", "downgraded")


def grading_tally(graded: pd.DataFrame) -> dict[str, Any]:
    """The counts `grading_report` is made of, for one batch of graded rows: every figure of the report
    is a sum of these over batches (customers counted once per batch, so batches must hold whole
    customers), so a snapshot table graded batch by batch reports exactly what it would in one piece."""
    notches = graded["overlay_notches"].fillna(0).astype(int)
    over = notches != 0
    two = graded["rule_grade_basis"] == "two_indicators"
    tally: dict[str, Any] = {
        "rows": len(graded),
        "rule_grade": _counts(graded["rule_grade"]),
        "final_grade": _counts(graded["final_grade"]),
        "basis": _counts(graded["rule_grade_basis"]),
        "subgrade": _counts(graded["rule_subgrade"]),
        "two_indicators": int(two.sum()),
        "missing_competitor_share": int(graded["grade_competitor_share"].isna().sum()),
        "undefined": int((graded["rule_grade"] == UNDEFINED).sum()),
        "with_expert_score": int(graded["expert_score"].notna().sum()),
        "overrides": int(over.sum()),
        "upgrades": int((notches > 0).sum()),
        "downgrades": int((notches < 0).sum()),
        "not_applied": int((graded["override_reason"] == NOT_APPLIED).sum()),
        "by_approver": _counts(graded.loc[over, "override_approver"]),
    }
    if "customer_id" in graded:
        tally["customers"] = int(graded["customer_id"].nunique())
        tally["customers_two_indicators"] = int(graded.loc[two, "customer_id"].nunique())
    if "is_bad" in graded:
        known = graded["is_bad"].notna()
        bad = pd.to_numeric(graded["is_bad"], errors="coerce")
        masks = dict(zip(BAD_RATE_GROUPS, (over, ~over, notches > 0, notches < 0), strict=True))
        for g in (*GRADES, UNDEFINED):
            masks[f"rule:{g}"] = graded["rule_grade"] == g
            masks[f"final:{g}"] = graded["final_grade"] == g
        tally["bad"] = {
            k: (int((m & known).sum()), int(bad[m & known].sum())) for k, m in masks.items()
        }
    return tally


def merge_tallies(total: dict[str, Any] | None, part: dict[str, Any]) -> dict[str, Any]:
    """Two tallies (`grading_tally`, `pipeline.features.report.label_tally`) added key by key."""
    if total is None:
        return part
    out: dict[str, Any] = {}
    for key, value in total.items():
        other = part[key]
        if isinstance(value, Counter):
            out[key] = value + other
        elif isinstance(value, set):
            out[key] = value | other
        elif isinstance(value, dict):
            out[key] = merge_tallies(value, other)
        elif isinstance(value, tuple):
            out[key] = tuple(a + b for a, b in zip(value, other, strict=True))
        else:
            out[key] = value + other
    return out


def grading_report(graded: pd.DataFrame, params: RulesParams) -> dict[str, Any]:
    """Grade counts, how many were graded on two indicators or left UNDEFINED, override rates (all, up,
    down, by approver) and the bad rate of overridden vs not (rows with ``is_bad`` known)."""
    return grading_report_from(grading_tally(graded), params)


def grading_report_from(tally: dict[str, Any], params: RulesParams) -> dict[str, Any]:
    """`grading_report` from a (merged) `grading_tally`."""
    n = tally["rows"]
    subgrades = _sorted_counts(tally["subgrade"])
    report: dict[str, Any] = {
        "rows": n,
        "settings": {
            k: getattr(params, k)
            for k in ("completion", "timing_measure", "missing_competitor_rule")
        },
        "rule_grade_counts": _sorted_counts(tally["rule_grade"]),
        "final_grade_counts": _sorted_counts(tally["final_grade"]),
        "basis_counts": _sorted_counts(tally["basis"]),
        "graded_on_two_indicators": tally["two_indicators"],
        "missing_competitor_share": tally["missing_competitor_share"],
        "undefined": tally["undefined"],
        "completion_cells": sum(v for k, v in subgrades.items() if "".join(sorted(k)) in GAPS),
        "subgrade_counts": subgrades,
        "overlay": {
            "with_expert_score": tally["with_expert_score"],
            "overrides": tally["overrides"],
            "override_rate": tally["overrides"] / n if n else None,
            "upgrades": tally["upgrades"],
            "downgrades": tally["downgrades"],
            "not_applied_undocumented": tally["not_applied"],
            "by_approver": _sorted_counts(tally["by_approver"]),
        },
    }
    if "customers" in tally:
        report["customers"] = tally["customers"]
        report["customers_graded_on_two_indicators"] = tally["customers_two_indicators"]
    if "bad" in tally:

        def rate(key: str) -> dict[str, Any]:
            count, bads = tally["bad"][key]
            return {"count": count, "bad_rate": bads / count if count else None}

        report["bad_rate"] = {
            **{k: rate(k) for k in BAD_RATE_GROUPS},
            "by_rule_grade": {g: rate(f"rule:{g}") for g in (*GRADES, UNDEFINED)},
            "by_final_grade": {g: rate(f"final:{g}") for g in (*GRADES, UNDEFINED)},
        }
    return report
