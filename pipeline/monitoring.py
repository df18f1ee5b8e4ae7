"""Monitoring maths: stability (PSI/CSI), discrimination over time, migration, concentration,
early warning.

Pure functions on DataFrames, assembled per month by `pipeline.monitoring_review` for the
``monitor`` stage, and used by the notebooks.

Stability follows docs/methodology.md §4.5: PSI = Σ (A% − E%)·ln(A% / E%) over bins that are FIXED on the
development sample (score: development quantiles; characteristics: the scorecard's own bins,
including the missing, special and an ``unseen`` bin). Empty bins are smoothed by **additive
epsilon**: on both sides p_i = (share_i + ε) / (1 + k·ε), k = number of bins in the union. This
keeps a proper distribution, so PSI ≥ 0 and PSI = 0 for identical distributions, and a bin that
vanishes (or appears) contributes (A% − E%)·ln(A% / E%) > 0 instead of being dropped as toad's
``PSI`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline import metrics
from pipeline.card import assign_bins
from pipeline.card.routing import is_routed, routes, segment_cards

PSI_SMOOTHING = (
    "additive epsilon on shares: p_i = (share_i + eps) / (1 + k*eps), k = bins in the union"
)
MISSING_BIN = "missing"
UNSEEN_BIN = "unseen"


# -------------------------------------------------------------------------------------------------
# Stability
def smoothed_shares(counts: np.ndarray, epsilon: float) -> np.ndarray:
    """Shares of ``counts`` with additive epsilon smoothing: (share + ε) / (1 + k·ε)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    shares = counts / total if total > 0 else np.full(len(counts), 1.0 / max(len(counts), 1))
    return (shares + epsilon) / (1.0 + len(counts) * epsilon)


def psi_table(expected: pd.Series, actual: pd.Series, epsilon: float) -> pd.DataFrame:
    """Per-bin PSI contributions of ``actual`` against ``expected`` (counts indexed by bin label).

    Bins are the union of both indexes, expected order first, so a vanished or new bin is listed
    and counts.
    ``epsilon`` = 0 is allowed only when no bin is empty on either side.
    """
    if epsilon < 0:
        raise ValueError(f"psi epsilon must be >= 0, got {epsilon}")
    bins = list(expected.index) + [b for b in actual.index if b not in set(expected.index)]
    exp_counts = expected.reindex(bins, fill_value=0).astype(float).to_numpy()
    act_counts = actual.reindex(bins, fill_value=0).astype(float).to_numpy()
    if exp_counts.sum() <= 0 or act_counts.sum() <= 0:
        raise ValueError("psi needs a non-empty expected and actual distribution")
    if epsilon == 0 and ((exp_counts == 0).any() or (act_counts == 0).any()):
        raise ValueError("psi with epsilon = 0 is undefined when a bin is empty; use epsilon > 0")
    e = smoothed_shares(exp_counts, epsilon)
    a = smoothed_shares(act_counts, epsilon)
    return pd.DataFrame(
        {
            "bin": [str(b) for b in bins],
            "expected_count": exp_counts,
            "actual_count": act_counts,
            "expected_share": exp_counts / exp_counts.sum(),
            "actual_share": act_counts / act_counts.sum(),
            "contribution": (a - e) * np.log(a / e),
        }
    )


def psi(expected: pd.Series, actual: pd.Series, epsilon: float) -> float:
    """Population stability index of ``actual`` against ``expected`` bin counts (see above)."""
    return float(psi_table(expected, actual, epsilon)["contribution"].sum())


def psi_status(value: float, thresholds: Sequence[float]) -> str:
    """Traffic light for a PSI/CSI: green below the first threshold, amber below the second."""
    low, high = thresholds
    if value < low:
        return "green"
    return "amber" if value < high else "red"


def score_bin_edges(dev_scores: pd.Series, n_bins: int = 10) -> list[float]:
    """Inner edges of ``n_bins`` development quantile bins of the score (duplicates removed)."""
    values = pd.Series(dev_scores).dropna().astype(float)
    if values.empty:
        raise ValueError("no development scores to fix the PSI bins on")
    qs = np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1], method="linear")
    return sorted({float(q) for q in qs} - {float(values.min())})


def bin_scores(scores: pd.Series, edges: Sequence[float]) -> pd.Series:
    """Label each score with its half-open bin ``[lower, upper)`` over the fixed ``edges``."""
    edges = list(edges)
    bounds = [-np.inf, *edges, np.inf]
    labels = [_range_label(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    values = pd.Series(scores).astype(float)
    idx = np.searchsorted(np.asarray(edges, dtype=float), values.to_numpy(), side="right")
    out = pd.Series([labels[i] for i in idx], index=values.index, dtype=object)
    out[values.isna()] = MISSING_BIN
    return out


def score_psi(
    dev_scores: pd.Series, scores: pd.Series, n_bins: int, epsilon: float
) -> tuple[float, pd.DataFrame]:
    """PSI of ``scores`` against development scores, bins = development quantiles."""
    edges = score_bin_edges(dev_scores, n_bins)
    bounds = [-np.inf, *edges, np.inf]
    order = [_range_label(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    expected = bin_scores(dev_scores, edges).value_counts().reindex(order, fill_value=0)
    actual = bin_scores(scores, edges).value_counts().reindex(order, fill_value=0)
    table = psi_table(expected, actual, epsilon)
    return float(table["contribution"].sum()), table


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and np.isinf(x)):
        return "inf" if x is not None and x > 0 else "-inf"
    return f"{x:g}"


def _range_label(lower: float | None, upper: float | None) -> str:
    lo = "-inf" if lower is None or np.isneginf(lower) else _fmt(lower)
    hi = "inf" if upper is None or np.isposinf(upper) else _fmt(upper)
    return f"[{lo}, {hi})"


def card_bin_label(bin_spec: dict[str, Any]) -> str:
    """A readable label for one bin of a scorecard feature (range, category, special, missing)."""
    kind = bin_spec.get("type")
    if kind == "range":
        return _range_label(bin_spec.get("lower"), bin_spec.get("upper"))
    if kind == "category":
        return "{" + ", ".join(map(str, bin_spec.get("categories", []))) + "}"
    if kind == "special":
        return "special " + ", ".join(map(str, bin_spec.get("values", [])))
    if kind == "missing":
        return MISSING_BIN
    raise ValueError(f"unknown bin type {kind!r} in scorecard")


def assign_card_bins(
    feature: dict[str, Any], values: pd.Series | None, index: pd.Index
) -> pd.Series:
    """Label each value with its card bin, by the card's own lookup (``scorecard.assign_bins``).

    Null → ``missing``; a listed special value → ``special``; numeric → the ``range`` bin with
    lower ≤ x < upper; a category in no bin, or an absent feature (``values`` None) → ``unseen``.
    """
    if values is None:
        return pd.Series(UNSEEN_BIN, index=index, dtype=object)
    labels = np.array([card_bin_label(b) for b in feature["bins"]] + [UNSEEN_BIN], dtype=object)
    positions = assign_bins(feature, pd.Series(values).reset_index(drop=True))
    return pd.Series(labels[positions], index=index, dtype=object)  # -1 picks ``unseen``


def card_bin_counts(feature: dict[str, Any]) -> pd.Series:
    """Development counts per bin as stored in the card, plus an ``unseen`` bin with count 0."""
    labels = [card_bin_label(b) for b in feature["bins"]]
    counts = [float(b.get("count") or 0) for b in feature["bins"]]
    if MISSING_BIN not in labels:
        labels.append(MISSING_BIN)
        counts.append(0.0)
    labels.append(UNSEEN_BIN)
    counts.append(0.0)
    return pd.Series(counts, index=labels)


def characteristic_stability(
    card: dict[str, Any],
    X: pd.DataFrame,
    epsilon: float,
    thresholds: Sequence[float],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CSI of every scorecard feature in ``X`` against the card's development bin counts.

    Returns (summary: feature, csi, status, n_bins, empty_dev_bins, empty_current_bins;
    detail: feature + the ``psi_table`` columns). Bins with zero development and zero current count
    (the placeholder missing/unseen bins) are left out so they do not add ε noise.
    """
    if is_routed(
        card
    ):  # each card against the rows it scores; "segment: feature" for a segment card
        tables = []
        for seg, (sub, rows) in zip([*segment_cards(card), None], routes(card, X), strict=True):
            pair = characteristic_stability(sub, X.iloc[rows], epsilon, thresholds)
            if seg is not None:
                pair = tuple(t.assign(feature=f"{seg}: " + t["feature"]) for t in pair)
            tables.insert(0, pair)
        return tuple(pd.concat(list(t), ignore_index=True) for t in zip(*tables, strict=True))
    summary, detail = [], []
    for feature in card["features"]:
        name = feature["name"]
        expected = card_bin_counts(feature)
        actual = assign_card_bins(feature, X[name] if name in X else None, X.index).value_counts()
        bins = list(expected.index) + [b for b in actual.index if b not in set(expected.index)]
        expected = expected.reindex(bins, fill_value=0)
        actual = actual.reindex(bins, fill_value=0)
        keep = (expected > 0) | (actual > 0)
        table = psi_table(expected[keep], actual[keep], epsilon)
        value = float(table["contribution"].sum())
        summary.append(
            {
                "feature": name,
                "csi": value,
                "status": psi_status(value, thresholds),
                "n_bins": len(table),
                "empty_dev_bins": int((table["expected_count"] == 0).sum()),
                "empty_current_bins": int((table["actual_count"] == 0).sum()),
            }
        )
        detail.append(table.assign(feature=name))
    detail_df = pd.concat(detail, ignore_index=True) if detail else pd.DataFrame()
    cols = ["feature", *[c for c in detail_df.columns if c != "feature"]]
    return pd.DataFrame(summary), detail_df[cols] if len(detail_df) else detail_df


# -------------------------------------------------------------------------------------------------
# Discrimination
def score_discrimination(is_bad: pd.Series, score: pd.Series) -> dict[str, float]:
    """AUC, Gini and KS (pipeline.metrics) of one published score on one set of rows, with the
    counts of bads and goods; a higher score is lower risk (bad = 1). Point figures only: the
    development comparison with intervals is `pipeline.comparison.compare_discrimination`."""
    frame = pd.DataFrame(
        {
            "y": pd.to_numeric(pd.Series(is_bad), errors="coerce"),
            "s": pd.to_numeric(pd.Series(score), errors="coerce"),
        }
    ).dropna()
    n_bad = int(frame["y"].sum())
    out: dict[str, float] = {
        "n": int(len(frame)),
        "n_bad": n_bad,
        "n_good": int(len(frame)) - n_bad,
    }
    if out["n_bad"] == 0 or out["n_good"] == 0:
        return {**out, "auc": float("nan"), "gini": float("nan"), "ks": float("nan")}
    risk = -frame["s"].to_numpy()
    value = metrics.auc(frame["y"].to_numpy(), risk)
    ks = metrics.ks_statistic(frame["y"].to_numpy(), risk)["ks"]
    return {**out, "auc": value, "gini": metrics.gini(value), "ks": ks}


def discrimination_over_time(
    frame: pd.DataFrame,
    reference_auc: float,
    date_col: str = "as_of_date",
    label_col: str = "is_bad",
    score_col: str = "score",
    *,
    alpha: float,
    min_bads: int,
    adjust: str,
) -> pd.DataFrame:
    """AUC, Gini, KS per date over matured outcomes, each tested against the reference AUC (the
    out-of-time AUC recorded at validation).

    The test is the one-sided ECB deterioration test of ``pipeline.metrics.auc_deterioration_test``
    (Hanley–McNeil SE on the month's one snapshot per customer, reference fixed). Testing many
    months inflates false alarms, so the p-values are adjusted over the tested months (``holm``:
    Holm–Bonferroni step-down, ``bonferroni``, or ``none``); ``deteriorated`` = adjusted p <
    ``alpha``; ``n_tested`` = number of months in the family. Dates with fewer than ``min_bads``
    bads or goods, or a zero standard error (AUC = 1), are reported untested.
    """
    if adjust not in ("holm", "bonferroni", "none"):
        raise ValueError(f"monitor.multiplicity: {adjust!r} (use holm, bonferroni or none)")
    rows = []
    matured = frame[frame[label_col].notna()]
    for date, group in matured.groupby(date_col, sort=True):
        row: dict[str, Any] = {
            date_col: date,
            **score_discrimination(group[label_col], group[score_col]),
        }
        row.update(
            {"reference_auc": reference_auc, "z": np.nan, "p_value": np.nan, "deteriorated": False}
        )
        if row["n_bad"] >= min_bads and row["n_good"] >= min_bads:
            try:
                test = metrics.auc_deterioration_test(
                    row["auc"], reference_auc, row["n_bad"], row["n_good"]
                )
            except ValueError:
                test = None
            if test is not None:
                row.update({"z": test["z"], "p_value": test["p_value"]})
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    tested = out["p_value"].notna()
    out["tested"] = tested
    out["n_tested"] = int(tested.sum())
    out["p_value_adjusted"] = np.nan
    out["adjustment"] = adjust
    if tested.any():
        p = out.loc[tested, "p_value"].to_numpy(dtype=float)
        if adjust == "none":
            adj = p
        else:
            from statsmodels.stats.multitest import multipletests

            adj = multipletests(p, alpha=alpha, method=adjust)[1]
        out.loc[tested, "p_value_adjusted"] = adj
    out["deteriorated"] = (out["p_value_adjusted"] < alpha).fillna(False).astype(bool)
    return out


# -------------------------------------------------------------------------------------------------
# Migration and concentration
def migration_matrix(
    previous: pd.Series, current: pd.Series, grades: Sequence[str]
) -> pd.DataFrame:
    """Customers by grade last period (rows) × grade this period (columns), best grade first.

    ``previous`` and ``current`` are grades indexed by customer; only customers graded in both
    count.
    """
    both = pd.concat({"previous": previous, "current": current}, axis=1, join="inner").dropna()
    matrix = pd.crosstab(both["previous"], both["current"])
    matrix = matrix.reindex(index=list(grades), columns=list(grades), fill_value=0).astype(int)
    matrix.index.name, matrix.columns.name = "previous_grade", "current_grade"
    return matrix


def month_migration_summary(matrix: pd.DataFrame) -> dict[str, float]:
    """Shares of stable, upgraded, downgraded and ≥2-notch moves of customers between last period
    and this period (``matrix``: `migration_matrix`). Not the rules -> scorecard migration of the
    development comparison (`pipeline.comparison.rules_to_scorecard_migration`)."""
    counts = matrix.to_numpy(dtype=float)
    n = counts.sum()
    i, j = np.indices(counts.shape)
    share = (lambda m: float(counts[m].sum() / n)) if n else (lambda m: float("nan"))
    return {
        "n": int(n),
        "stable": share(i == j),
        "upgraded": share(j < i),
        "downgraded": share(j > i),
        "moved_2_or_more": share(np.abs(i - j) >= 2),
    }


def grade_concentration(grades: pd.Series, order: Sequence[str]) -> tuple[pd.DataFrame, float]:
    """Count and share per grade (in ``order``) and the Herfindahl–Hirschman index Σ share²."""
    counts = pd.Series(grades).value_counts().reindex(list(order), fill_value=0)
    total = counts.sum()
    shares = counts / total if total else counts.astype(float)
    table = pd.DataFrame(
        {"grade": list(order), "count": counts.to_numpy(), "share": shares.to_numpy()}
    )
    return table, float((shares**2).sum())


# -------------------------------------------------------------------------------------------------
# Early warning
EARLY_WARNING_TRIGGERS = ("dbt_jump", "limit_breach", "new_claims", "grade_downgrade")


def early_warnings(
    current: pd.DataFrame,
    previous: pd.DataFrame,
    grades: Sequence[str],
    dbt_jump_days: float,
) -> pd.DataFrame:
    """Customers whose behaviour crossed a trigger between two monitoring dates.

    ``current``/``previous`` are indexed by customer_id with columns ``days_beyond_terms``,
    ``grade`` and (current only) ``exposure``, ``limit`` (null = no limit known) and ``new_claims``
    (count of claims dated after the previous date). Triggers: days beyond terms up by
    ≥ ``dbt_jump_days``; exposure above
    the limit; any new claim; a worse grade than last period. The jump and downgrade triggers need
    last period's value (a customer new this period cannot jump). One row per flagged customer.
    """
    rank = {g: k for k, g in enumerate(grades)}
    prev = previous.reindex(current.index)
    dbt_now = pd.to_numeric(current["days_beyond_terms"], errors="coerce")
    dbt_before = pd.to_numeric(prev["days_beyond_terms"], errors="coerce")
    flags = pd.DataFrame(index=current.index)
    flags["dbt_jump"] = dbt_before.notna() & ((dbt_now - dbt_before) >= dbt_jump_days)
    limit = pd.to_numeric(current["limit"], errors="coerce")
    flags["limit_breach"] = limit.notna() & (pd.to_numeric(current["exposure"]) > limit)
    flags["new_claims"] = pd.to_numeric(current["new_claims"]).fillna(0) > 0
    now_rank = current["grade"].map(rank)
    before_rank = prev["grade"].map(rank)
    flags["grade_downgrade"] = now_rank.notna() & before_rank.notna() & (now_rank > before_rank)
    flags = flags.fillna(False).astype(bool)
    out = pd.DataFrame(
        {
            "previous_grade": prev["grade"],
            "grade": current["grade"],
            "previous_days_beyond_terms": dbt_before,
            "days_beyond_terms": dbt_now,
            "exposure": current["exposure"],
            "limit": limit,
            "new_claims": current["new_claims"],
        },
        index=current.index,
    )
    out = out.join(flags.add_prefix("trigger_"))
    out["triggers"] = flags.apply(
        lambda r: ";".join(t for t in EARLY_WARNING_TRIGGERS if r[t]), axis=1
    )
    out = out[flags.any(axis=1)]
    out.index.name = "customer_id"
    return out.reset_index().sort_values(["customer_id"], kind="stable").reset_index(drop=True)


# -------------------------------------------------------------------------------------------------
# Expert overlay
def override_statistics(
    snapshots: pd.DataFrame, date_col: str = "as_of_date"
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Override rate of the expert overlay: overall, up vs down, by approver and by date.

    An override is a row with ``overlay_notches`` ≠ 0. Also the bad rate of overridden vs
    non-overridden rows over matured outcomes (``is_bad`` not null).
    Returns (summary, by_approver, by_date).
    """
    notches = pd.to_numeric(snapshots["overlay_notches"], errors="coerce").fillna(0)
    overridden = notches != 0
    n = int(len(snapshots))
    summary: dict[str, Any] = {
        "n": n,
        "n_overridden": int(overridden.sum()),
        "override_rate": float(overridden.mean()) if n else float("nan"),
        "upgrade_rate": float((notches > 0).mean()) if n else float("nan"),
        "downgrade_rate": float((notches < 0).mean()) if n else float("nan"),
    }
    if "expert_score" in snapshots:
        scored = pd.to_numeric(snapshots["expert_score"], errors="coerce").notna()
        summary["n_expert_scored"] = int(scored.sum())
    if "is_bad" in snapshots:
        y = pd.to_numeric(snapshots["is_bad"], errors="coerce")
        for name, mask in (("overridden", overridden), ("not_overridden", ~overridden)):
            matured = y[mask].dropna()
            summary[f"bad_rate_{name}"] = float(matured.mean()) if len(matured) else float("nan")
            summary[f"n_matured_{name}"] = int(len(matured))
    frame = pd.DataFrame(
        {
            "approver": snapshots.get(
                "override_approver", pd.Series(index=snapshots.index, dtype=object)
            ),
            "date": snapshots[date_col] if date_col in snapshots else pd.NaT,
            "overridden": overridden,
            "up": notches > 0,
            "down": notches < 0,
        }
    )
    by_approver = (
        frame[frame["overridden"]]
        .assign(approver=lambda d: d["approver"].fillna("(none)"))
        .groupby("approver", sort=True)
        .agg(n_overrides=("overridden", "sum"), n_up=("up", "sum"), n_down=("down", "sum"))
        .reset_index()
    )
    by_date = (
        frame.groupby("date", sort=True)
        .agg(
            n=("overridden", "size"),
            n_overrides=("overridden", "sum"),
            n_up=("up", "sum"),
            n_down=("down", "sum"),
        )
        .reset_index()
        .rename(columns={"date": date_col})
    )
    by_date["override_rate"] = by_date["n_overrides"] / by_date["n"]
    return summary, by_approver, by_date
