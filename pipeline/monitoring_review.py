"""One month's monitoring review of the published card: scoring as the business does, stability,
deterioration against the validation AUC, migration, concentration, early warnings with their
collection action, and the expert overlay's overrides.

Assembles the maths of `pipeline.monitoring` for the ``monitor`` stage (which only reads inputs and
writes outputs). Development distribution = the snapshots of the ``train`` sample (the card's bin
counts come from the same rows). Reference AUC for the deterioration test = the scorecard's
validation AUC recorded at development: the out-of-time AUC of the current segment in
``metrics/<ds>/evaluate.json`` (not the flattering in-sample training AUC). Months are tested on the
current segment where snapshots carry one and on the rows the card was not fitted on (train rows
left out), and the p-values are adjusted for the number of months tested (``monitor.multiplicity``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import monitoring as mon
from pipeline.card.routing import all_features
from pipeline.domain import PipelineError
from pipeline.io import code_version
from pipeline.params.monitor import MonitorParams
from pipeline.score import SCORE_ROW_BYTES, score_in_slices
from pipeline.snapshot_io import batch_rows, in_key_order, iter_frames, sort_by_keys

log = logging.getLogger("pipeline.monitor")
NO_STEP = "no dunning step (nothing past due)"


# -------------------------------------------------------------------------------- published bundle
def compact(scored: pd.DataFrame) -> pd.DataFrame:
    """Every month's rows as the review reads them (in place): without ``customer_id`` (only the
    detail months are read by customer), ``segment`` and ``sample`` as categories."""
    scored.drop(columns="customer_id", inplace=True)
    for name in ("segment", "sample"):
        if name in scored:
            scored[name] = scored[name].astype("category")
    return scored


def with_published_scores(
    bundle: dict, snapshots: pd.DataFrame, budget_bytes: int | None = None
) -> tuple[pd.DataFrame, int, str | None]:
    """``snapshots`` with the published bundle's ``score``, ``grade`` and ``policy_limit``
    (``pipeline.score.score_customers``: the same scoring the business runs), scored in slices
    sized from ``budget_bytes`` (None: in one piece), new columns on a shallow copy. Rows the
    bundle cannot score (an input error) are left out; returns the frame, how many were left out
    and the first error."""
    published = score_in_slices(
        bundle, snapshots, budget_bytes, columns=["score", "grade", "limit", "error"]
    )
    out = snapshots.copy(deep=False)  # new columns only: the snapshots' data is shared, not copied
    out["score"] = published["score"].to_numpy()
    out["grade"] = published["grade"].to_numpy()
    out["policy_limit"] = published["limit"].to_numpy()
    bad = published["error"].notna().to_numpy()
    error = published["error"].dropna().iloc[0] if bad.any() else None
    if bad.any():
        out = out[~bad].reset_index(drop=True)
    out["score"] = out["score"].astype("int64")
    return out, int(bad.sum()), error


def score_population(
    bundle: dict,
    path: Path,
    columns: list[str],
    rows: np.ndarray,
    narrow: list[str],
    detail_dates: list[pd.Timestamp],
    budget_bytes: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The population ``rows`` (a mask in file order) of the snapshot file at ``path`` scored with
    the published bundle (`with_published_scores`) slice by slice, the slices sized from
    ``budget_bytes``: returns every row's ``narrow`` columns with ``score`` and ``grade`` (file
    order), and the rows dated in ``detail_dates`` with all ``columns`` and ``policy_limit``.

    The month's review reads the card's features and policy inputs only for the reviewed and the
    previous month (stability, limits, early warnings), so they are never held for every
    snapshot."""
    size = batch_rows(budget_bytes, SCORE_ROW_BYTES + 24 * len(all_features(bundle)))
    keep = [*narrow, "score", "grade"]
    narrow_parts, detail_parts, start, dropped, error = [], [], 0, 0, None
    for batch in iter_frames(path, columns, size):
        mask = rows[start : start + len(batch)]
        start += len(batch)
        scored, n_bad, first = with_published_scores(bundle, batch[mask].reset_index(drop=True))
        dropped, error = dropped + n_bad, error or first
        detail_parts.append(scored[scored["as_of_date"].isin(detail_dates)])
        narrow_parts.append(scored[keep])
    if dropped:
        log.warning("%d snapshots could not be scored and are left out: %s", dropped, error)
    scored, detail = (pd.concat(p, ignore_index=True) for p in (narrow_parts, detail_parts))
    if not in_key_order(scored):  # the file's contract is key order; sort only when it is not
        scored, detail = (sort_by_keys(frame) for frame in (scored, detail))
    return scored, detail


def collection_actions(
    strategy: pd.DataFrame, letter_grade: Any, days_past_due: Any, amount: Any
) -> np.ndarray:
    """Action per customer from the collection strategy (``policy.dunning_table``: letter grade ×
    days-past-due band × amount band → action, wait days).

    Each customer gets the row of its letter grade whose band lower edges (``dpd_min``,
    ``amount_min``) are the largest not above its days past due and amount; ``""`` for an unknown
    grade and ``NO_STEP`` below the first days-past-due band.
    """
    letters = pd.Series(letter_grade, dtype=object).to_numpy()
    dpd = np.clip(np.nan_to_num(np.asarray(days_past_due, dtype=float), nan=0.0), 0, None)
    amt = np.clip(np.nan_to_num(np.asarray(amount, dtype=float), nan=0.0), 0, None)
    out = np.full(len(letters), "", dtype=object)
    for letter, rows in strategy.groupby(strategy["letter_grade"].astype(str), sort=True):
        mask = letters.astype(str) == letter
        if not mask.any():
            continue
        dpd_edges = np.sort(rows["dpd_min"].astype(float).unique())
        amt_edges = np.sort(rows["amount_min"].astype(float).unique())
        text = {
            (float(r.dpd_min), float(r.amount_min)): f"{r.action} (wait {int(r.wait_days)} days)"
            for r in rows.itertuples(index=False)
        }
        i = np.searchsorted(dpd_edges, dpd[mask], side="right") - 1
        j = np.searchsorted(amt_edges, amt[mask], side="right") - 1
        out[mask] = [
            NO_STEP if a < 0 or b < 0 else text.get((dpd_edges[a], amt_edges[b]), NO_STEP)
            for a, b in zip(i, j, strict=True)
        ]
    return out


def validation_reference(evaluation: dict, path: Path) -> dict[str, Any]:
    """The scorecard's validation AUC from evaluate.json: out of time, current segment, by count."""
    try:
        m = evaluation["methods"]["scorecard"]["count"]
        auc = float(m["auc"])
    except (KeyError, TypeError, ValueError):
        raise PipelineError(
            f"{path}: methods.scorecard.count.auc missing (rule: monitor compares with the "
            "validation AUC); rerun the evaluate stage"
        ) from None
    sample = evaluation.get("sample", {})
    return {
        "auc": auc,
        "ks": m.get("ks"),
        "ci_low": m.get("ci_low"),
        "ci_high": m.get("ci_high"),
        "source": f"validation AUC recorded at development: {path.name}, sample "
        f"{sample.get('name', 'oot')} ({sample.get('kind', '')}), segment "
        f"{sample.get('segment', 'current')}, {sample.get('compared', 0):,} snapshots of "
        f"{sample.get('customers', 0):,} customers",
    }


# -------------------------------------------------------------------------------------- the month
def granted_limit(frame: pd.DataFrame) -> pd.Series:
    """The customer's credit limit where the ledger has one, else the published policy limit."""
    granted = frame["credit_limit"] if "credit_limit" in frame else pd.Series(np.nan, frame.index)
    policy = frame["policy_limit"] if "policy_limit" in frame else pd.Series(np.nan, frame.index)
    return pd.to_numeric(granted, errors="coerce").fillna(pd.to_numeric(policy, errors="coerce"))


def new_claim_counts(claims: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Claims per customer dated in (start, end]."""
    dated = claims[(claims["claim_date"] > start) & (claims["claim_date"] <= end)]
    return dated.groupby("customer_id").size()


def stability(
    scored: pd.DataFrame,
    development: pd.DataFrame,
    current: pd.DataFrame,
    card: dict,
    p: MonitorParams,
) -> dict[str, Any]:
    """Score PSI of the month (with its bin table), score PSI of every month, and CSI per card
    feature, all against the development sample's fixed bins."""
    eps, n_bins, thresholds = p.psi_epsilon, p.score_bins, p.psi_thresholds
    score_value, score_table = mon.score_psi(development["score"], current["score"], n_bins, eps)
    psi_rows = []
    for date, scores in scored["score"].groupby(scored["as_of_date"], sort=True):
        value, _ = mon.score_psi(development["score"], scores, n_bins, eps)
        psi_rows.append(
            {"as_of_date": date, "psi": value, "status": mon.psi_status(value, thresholds)}
        )
    csi, csi_bins = mon.characteristic_stability(
        card, current.set_index("customer_id"), eps, thresholds
    )
    return {
        "score_psi": score_value,
        "score_psi_table": score_table,
        "psi_over_time": pd.DataFrame(psi_rows),
        "csi": csi,
        "csi_bins": csi_bins,
    }


def deterioration(
    scored: pd.DataFrame,
    development: pd.DataFrame,
    reference: dict[str, Any] | None,
    p: MonitorParams,
) -> dict[str, Any]:
    """The reference figures and the per-month AUC deterioration tests against them, on the
    current segment and the rows the card was not fitted on. Without a ``reference`` the
    development (train) AUC is used and labelled as in sample."""
    development_fit = mon.score_discrimination(development["is_bad"], development["score"])
    if reference is None:
        reference = {
            **development_fit,
            "source": "development (train) sample, in sample: optimistic",
        }
    else:
        reference = {
            **reference,
            "development_auc": development_fit["auc"],
            "ks": reference.get("ks", development_fit["ks"]),
        }
    keep = np.ones(len(scored), dtype=bool)
    if "segment" in scored.columns:
        keep &= (scored["segment"] == "current").to_numpy()
    if "sample" in scored.columns:
        keep &= (scored["sample"] != "train").to_numpy()
    population = scored.loc[keep, ["as_of_date", "is_bad", "score"]]  # only what the test reads
    over_time = mon.discrimination_over_time(
        population, reference["auc"], alpha=p.alpha, min_bads=p.min_bads, adjust=p.multiplicity
    )
    return {"reference": reference, "discrimination": over_time}


def early_warning_table(
    cur: pd.DataFrame,
    prev: pd.DataFrame,
    new_claims: pd.Series,
    grades: list[dict],
    strategy: pd.DataFrame,
    p: MonitorParams,
) -> pd.DataFrame:
    """Customers crossing an early-warning trigger this month (``cur``/``prev``: the month's and the
    previous month's scored snapshots by customer), with the collection action of their letter
    grade, days past due and exposure."""
    order = [g["grade"] for g in grades]
    letter = {g["grade"]: g.get("letter_grade", g["grade"]) for g in grades}
    by_letter = p.downgrade_on == "letter_grade"
    dbt_col = p.dbt_measure
    ew_now = pd.DataFrame(
        {
            "days_beyond_terms": cur[dbt_col],
            "grade": cur["grade"].map(letter) if by_letter else cur["grade"],
            "exposure": cur["exposure"],
            "limit": granted_limit(cur),
            "new_claims": new_claims.reindex(cur.index, fill_value=0),
        }
    )
    ew_prev = pd.DataFrame(
        {
            "days_beyond_terms": prev[dbt_col],
            "grade": prev["grade"].map(letter) if by_letter else prev["grade"],
        }
    )
    ew_order = list(dict.fromkeys(letter[g] for g in order)) if by_letter else order
    warnings = mon.early_warnings(ew_now, ew_prev, ew_order, p.dbt_jump_days)
    warnings["score_grade"] = cur["grade"].reindex(warnings["customer_id"]).to_numpy()
    warnings["letter_grade"] = warnings["score_grade"].map(letter)
    dpd = cur[p.dpd_column] if p.dpd_column in cur else cur[dbt_col]
    warnings["days_past_due"] = dpd.reindex(warnings["customer_id"]).to_numpy()
    warnings["action"] = collection_actions(
        strategy, warnings["letter_grade"], warnings["days_past_due"], warnings["exposure"]
    )
    return warnings


def monitor_month(
    scored: pd.DataFrame,
    development: pd.DataFrame,
    card: dict,
    grades: list[dict],
    month: pd.Timestamp,
    p: MonitorParams,
    claims: pd.DataFrame,
    strategy: pd.DataFrame,
    reference: dict[str, Any] | None = None,
    detail: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Every monitoring figure and table for ``month`` (``scored``: snapshots, score, grade).

    ``reference``: the validation AUC the deterioration test compares against (``auc``,
    ``source``; :func:`validation_reference`). Without one the development (train) AUC is used
    and labelled as in sample. ``detail``: the rows of ``month`` and the month before with every
    column (card features, policy inputs, ``policy_limit``) when ``scored`` holds only the
    narrow columns of every month (`score_population`); None: ``scored`` has them all."""
    order = [g["grade"] for g in grades]
    detail = scored if detail is None else detail
    current = detail[detail["as_of_date"] == month]
    earlier = scored.loc[scored["as_of_date"] < month, "as_of_date"]
    previous_month = earlier.max() if len(earlier) else None
    concentration, hhi = mon.grade_concentration(current["grade"].dropna(), order)
    cur = current.set_index("customer_id")
    if previous_month is not None:
        prev = detail[detail["as_of_date"] == previous_month].set_index("customer_id")
        migration = mon.migration_matrix(prev["grade"], cur["grade"], order)
        claims_since = previous_month
    else:
        prev = cur.iloc[0:0]
        migration = mon.migration_matrix(cur["grade"].iloc[0:0], cur["grade"].iloc[0:0], order)
        claims_since = month - pd.offsets.MonthEnd(1)
    new_claims = new_claim_counts(claims, claims_since, month)
    overrides, by_approver, by_date = mon.override_statistics(scored)
    overrides_month, _, _ = mon.override_statistics(current)
    return {
        "previous_month": previous_month,
        **stability(scored, development, current, card, p),
        **deterioration(scored, development, reference, p),
        "concentration": concentration,
        "hhi": hhi,
        "migration": migration,
        "migration_summary": mon.month_migration_summary(migration),
        "early_warning": early_warning_table(cur, prev, new_claims, grades, strategy, p),
        "overrides": overrides,
        "overrides_month": overrides_month,
        "overrides_by_approver": by_approver,
        "overrides_by_date": by_date,
        "thresholds": p.psi_thresholds,
    }


def metrics_json(
    res: dict[str, Any], dataset: str, month: pd.Timestamp, n_dev: int, n_cur: int, card: dict
) -> dict[str, Any]:
    """The headline figures for ``monitor.json`` (dvc metrics)."""
    thresholds = res["thresholds"]
    disc = res["discrimination"]
    latest = disc.iloc[-1].to_dict() if len(disc) else {}
    ew = res["early_warning"]
    return {
        "dataset": dataset,
        "month": month,
        "previous_month": res["previous_month"],
        "n_development": n_dev,
        "n_current": n_cur,
        "card_code_version": card.get("provenance", {}).get("code_version"),
        "code_version": code_version(),
        "stability": {
            "smoothing": mon.PSI_SMOOTHING,
            "thresholds": list(thresholds),
            "score_psi": res["score_psi"],
            "score_psi_status": mon.psi_status(res["score_psi"], thresholds),
            "csi": {
                r.feature: {"csi": r.csi, "status": r.status} for r in res["csi"].itertuples()
            },
            "n_features_red": int((res["csi"]["status"] == "red").sum()),
            "n_features_amber": int((res["csi"]["status"] == "amber").sum()),
        },
        "discrimination": {
            "reference_auc": res["reference"]["auc"],
            "reference_source": res["reference"].get("source"),
            "reference_ks": res["reference"]["ks"],
            "development_auc_in_sample": res["reference"].get("development_auc"),
            "n_months_tested": int(disc["n_tested"].iloc[0]) if len(disc) else 0,
            "multiplicity_adjustment": str(disc["adjustment"].iloc[0]) if len(disc) else None,
            "latest_p_value_adjusted": latest.get("p_value_adjusted"),
            "latest_matured_date": latest.get("as_of_date"),
            "latest_auc": latest.get("auc"),
            "latest_ks": latest.get("ks"),
            "latest_p_value": latest.get("p_value"),
            "n_dates_deteriorated": int(disc["deteriorated"].sum()) if len(disc) else 0,
        },
        "concentration": {
            "hhi": res["hhi"],
            "share": dict(
                zip(res["concentration"]["grade"], res["concentration"]["share"], strict=True)
            ),
        },
        "migration": res["migration_summary"],
        "early_warning": {
            "n_flagged": int(len(ew)),
            **{t: int(ew[f"trigger_{t}"].sum()) for t in mon.EARLY_WARNING_TRIGGERS},
        },
        "overrides": {"all_dates": res["overrides"], "month": res["overrides_month"]},
    }
