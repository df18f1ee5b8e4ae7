"""Stage ``monitor``: a later month scored with the published card, against the development sample.

``python -m pipeline.monitor --dataset NAME [--month YYYY-MM-DD]``; the month defaults to the
latest as-of date of the snapshots. Reads the published bundle (``exports/<ds>/scorecard.json``:
card + master scale), ``dunning_strategy.csv``, the snapshots (with the customer's credit limit at
the as-of date) and samples, and the canonical claims. Writes ``metrics/<ds>/monitor.json``
(metrics), CSV tables, PNG charts and a one-page ``report.md``. The maths lives in
:mod:`pipeline.monitoring`.

Development distribution = the snapshots of the ``train`` sample (the card's bin counts come from
the same rows). Reference AUC for the deterioration test = the scorecard's validation AUC recorded
at development: the out-of-time AUC of the current segment in ``metrics/<ds>/evaluate.json`` (not
the flattering in-sample training AUC). Months are tested on the current segment where snapshots
carry one and on the rows the card was not fitted on (train rows left out), and the p-values are adjusted for the number of months tested
(``monitor.multiplicity``, Holm by default).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import monitoring as mon
from pipeline.config import (
    Paths,
    PipelineError,
    require_files,
    run_stage,
    stage_argparser,
    stage_params,
)
from pipeline.io import code_version, read_json, write_csv, write_json, write_text
from pipeline.score import load_bundle, score_customers

log = logging.getLogger("pipeline.monitor")
KEYS = ["customer_id", "as_of_date"]


# -------------------------------------------------------------------------------- published bundle
def score_published(bundle: dict, snapshots: pd.DataFrame) -> pd.DataFrame:
    """``snapshots`` with the published bundle's ``score``, ``grade`` and ``policy_limit``
    (``pipeline.score.score_customers``: the same scoring the business runs). Rows the bundle
    cannot score (an input error) are dropped with a warning."""
    published = score_customers(bundle, snapshots)
    out = snapshots.assign(
        score=published["score"].to_numpy(),
        grade=published["grade"].to_numpy(),
        policy_limit=published["limit"].to_numpy(),
    )
    bad = published["error"].notna().to_numpy()
    if bad.any():
        log.warning(
            "%d snapshots could not be scored and are left out: %s",
            int(bad.sum()),
            published["error"].dropna().iloc[0],
        )
    out = out[~bad].reset_index(drop=True)
    out["score"] = out["score"].astype("int64")
    return out


NO_STEP = "no dunning step (nothing past due)"


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


# -------------------------------------------------------------------------------------- monitoring
def _granted_limit(frame: pd.DataFrame) -> pd.Series:
    """The customer's credit limit where the ledger has one, else the published policy limit."""
    granted = frame["credit_limit"] if "credit_limit" in frame else pd.Series(np.nan, frame.index)
    policy = frame["policy_limit"] if "policy_limit" in frame else pd.Series(np.nan, frame.index)
    return pd.to_numeric(granted, errors="coerce").fillna(pd.to_numeric(policy, errors="coerce"))


def new_claim_counts(claims: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Claims per customer dated in (start, end]."""
    dated = claims[(claims["claim_date"] > start) & (claims["claim_date"] <= end)]
    return dated.groupby("customer_id").size()


def monitor_month(
    scored: pd.DataFrame,
    development: pd.DataFrame,
    card: dict,
    grades: list[dict],
    month: pd.Timestamp,
    params: dict,
    claims: pd.DataFrame,
    strategy: pd.DataFrame,
    reference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every monitoring figure and table for ``month`` (``scored``: snapshots, score, grade).

    ``reference``: the validation AUC the deterioration test compares against (``auc``,
    ``source``; :func:`validation_reference`). Without one the development (train) AUC is used
    and labelled as in sample."""
    thresholds = tuple(params.get("psi_thresholds", (0.10, 0.25)))
    eps = float(params.get("psi_epsilon", 1e-4))
    n_bins = int(params.get("score_bins", 10))
    order = [g["grade"] for g in grades]
    letter = {g["grade"]: g.get("letter_grade", g["grade"]) for g in grades}
    current = scored[scored["as_of_date"] == month]
    earlier = scored.loc[scored["as_of_date"] < month, "as_of_date"]
    previous_month = earlier.max() if len(earlier) else None

    score_value, score_table = mon.score_psi(development["score"], current["score"], n_bins, eps)
    psi_rows = []
    for date, group in scored.groupby("as_of_date", sort=True):
        value, _ = mon.score_psi(development["score"], group["score"], n_bins, eps)
        psi_rows.append(
            {"as_of_date": date, "psi": value, "status": mon.psi_status(value, thresholds)}
        )
    csi, csi_bins = mon.characteristic_stability(
        card, current.set_index("customer_id"), eps, thresholds
    )

    development_fit = mon.discrimination(development["is_bad"], development["score"])
    if reference is None:
        reference = {
            **development_fit,
            "source": "development (train) sample, in sample: optimistic",
        }
    else:
        reference = {**reference, "development_auc": development_fit["auc"],
                     "ks": reference.get("ks", development_fit["ks"])}
    # months are tested on the current segment and on rows the card was not fitted on
    population = scored
    if "segment" in population.columns:
        population = population[population["segment"] == "current"]
    if "sample" in population.columns:
        population = population[population["sample"] != "train"]
    over_time = mon.discrimination_over_time(
        population,
        reference["auc"],
        alpha=float(params.get("alpha", 0.05)),
        min_bads=int(params.get("min_bads", 5)),
        adjust=str(params.get("multiplicity", "holm")),
    )
    concentration, hhi = mon.grade_concentration(current["grade"].dropna(), order)

    cur = current.set_index("customer_id")
    if previous_month is not None:
        prev = scored[scored["as_of_date"] == previous_month].set_index("customer_id")
        migration = mon.migration_matrix(prev["grade"], cur["grade"], order)
        claims_since = previous_month
    else:
        prev = cur.iloc[0:0]
        migration = mon.migration_matrix(cur["grade"].iloc[0:0], cur["grade"].iloc[0:0], order)
        claims_since = month - pd.offsets.MonthEnd(1)
    dbt_col = params.get("dbt_measure", "days_beyond_terms_max_12m")
    by_letter = params.get("downgrade_on", "letter_grade") == "letter_grade"
    ew_now = pd.DataFrame(
        {
            "days_beyond_terms": cur[dbt_col],
            "grade": cur["grade"].map(letter) if by_letter else cur["grade"],
            "exposure": cur["exposure"],
            "limit": _granted_limit(cur),
            "new_claims": new_claim_counts(claims, claims_since, month).reindex(
                cur.index, fill_value=0
            ),
        }
    )
    ew_prev = pd.DataFrame(
        {
            "days_beyond_terms": prev[dbt_col],
            "grade": prev["grade"].map(letter) if by_letter else prev["grade"],
        }
    )
    ew_order = list(dict.fromkeys(letter[g] for g in order)) if by_letter else order
    warnings = mon.early_warnings(
        ew_now, ew_prev, ew_order, float(params.get("dbt_jump_days", 15))
    )
    warnings["score_grade"] = cur["grade"].reindex(warnings["customer_id"]).to_numpy()
    warnings["letter_grade"] = warnings["score_grade"].map(letter)
    dpd_col = params.get("dpd_column", "worst_days_past_due")
    dpd = cur[dpd_col] if dpd_col in cur else cur[dbt_col]
    warnings["days_past_due"] = dpd.reindex(warnings["customer_id"]).to_numpy()
    warnings["action"] = collection_actions(
        strategy, warnings["letter_grade"], warnings["days_past_due"], warnings["exposure"]
    )
    overrides, by_approver, by_date = mon.override_statistics(scored)
    overrides_month, _, _ = mon.override_statistics(current)
    return {
        "previous_month": previous_month,
        "score_psi": score_value,
        "score_psi_table": score_table,
        "psi_over_time": pd.DataFrame(psi_rows),
        "csi": csi,
        "csi_bins": csi_bins,
        "reference": reference,
        "discrimination": over_time,
        "concentration": concentration,
        "hhi": hhi,
        "migration": migration,
        "migration_summary": mon.migration_summary(migration),
        "early_warning": warnings,
        "overrides": overrides,
        "overrides_month": overrides_month,
        "overrides_by_approver": by_approver,
        "overrides_by_date": by_date,
        "thresholds": thresholds,
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


def main() -> None:
    parser = stage_argparser("monitor", "Monitor a later month against the development sample.")
    parser.add_argument(
        "--month", default=None, help="as-of date to monitor (YYYY-MM-DD); default latest"
    )
    args = parser.parse_args()
    params = stage_params("monitor", args.dataset)
    paths = Paths(args.dataset)
    bundle_path = paths.exports / "scorecard.json"
    inputs = {
        "bundle": bundle_path,
        "strategy": paths.exports / "dunning_strategy.csv",
        "snapshots": paths.processed / "snapshots.parquet",
        "samples": paths.processed / "samples.parquet",
        "claims": paths.interim / "claims.parquet",
        "evaluation": paths.metrics / "evaluate.json",
    }
    require_files(inputs, "run the stages before monitor (dvc repro)")
    bundle = load_bundle(bundle_path)
    grades = list(bundle["master_scale"]["grades"])
    snapshots = (
        pd.read_parquet(inputs["snapshots"])
        .sort_values(KEYS, kind="mergesort")
        .reset_index(drop=True)
    )
    # accounts already in default at t are not part of the scoring population
    if "label" in snapshots:
        snapshots = snapshots[snapshots["label"] != "in_default"].reset_index(drop=True)
    samples = pd.read_parquet(inputs["samples"])
    months = sorted(snapshots["as_of_date"].unique())
    month = pd.Timestamp(args.month) if args.month else pd.Timestamp(months[-1])
    if month not in set(pd.to_datetime(months)):
        raise PipelineError(
            f"{inputs['snapshots']}: no snapshots at --month {month:%Y-%m-%d}; "
            f"as-of dates run {pd.Timestamp(months[0]):%Y-%m-%d} to "
            f"{pd.Timestamp(months[-1]):%Y-%m-%d}"
        )
    log.info(
        "monitor %s: scoring %d snapshots with the published card", args.dataset, len(snapshots)
    )
    scored = score_published(bundle, snapshots)
    scored = scored.merge(samples[[*KEYS, "sample"]], on=KEYS, how="left", validate="1:1")
    development = scored[scored["sample"] == "train"].reset_index(drop=True)
    claims = pd.read_parquet(inputs["claims"])
    strategy = pd.read_csv(inputs["strategy"])
    dbt_col = params.get("dbt_measure", "days_beyond_terms_max_12m")
    for path, frame, columns in (
        (inputs["snapshots"], snapshots, [*KEYS, "is_bad", "exposure", dbt_col]),
        (
            inputs["strategy"],
            strategy,
            ["letter_grade", "dpd_min", "amount_min", "action", "wait_days"],
        ),
        (inputs["claims"], claims, ["customer_id", "claim_date"]),
    ):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise PipelineError(
                f"{path}: column(s) {', '.join(missing)} missing (rule: monitor input contract); "
                "rerun the stage that writes it, or set monitor.dbt_measure in params.yaml"
            )

    reference = validation_reference(read_json(inputs["evaluation"]), inputs["evaluation"])
    res = monitor_month(
        scored, development, bundle, grades, month, params, claims, strategy, reference
    )
    n_cur = int((scored["as_of_date"] == month).sum())
    log.info(
        "monitor %s %s: score PSI %.4f, %d features red, %d early warnings",
        args.dataset,
        f"{month:%Y-%m-%d}",
        res["score_psi"],
        int((res["csi"]["status"] == "red").sum()),
        len(res["early_warning"]),
    )
    write_outputs(
        res,
        metrics_json(res, args.dataset, month, len(development), n_cur, bundle),
        paths.monitoring,
        paths.metrics / "monitor.json",
    )


# ----------------------------------------------------------------------------------------- outputs
def write_outputs(
    res: dict[str, Any], summary: dict[str, Any], out: Path, summary_path: Path | None = None
) -> None:
    """monitor.json (to ``summary_path`` if given), the tables, charts and report.md under ``out``."""
    from pipeline.monitor_report import render_report, write_charts

    write_json(summary, summary_path or out / "monitor.json")
    write_csv(res["score_psi_table"], out / "score_psi.csv")
    write_csv(res["psi_over_time"], out / "psi_over_time.csv")
    write_csv(res["csi"], out / "csi.csv")
    write_csv(res["csi_bins"], out / "csi_bins.csv")
    write_csv(res["discrimination"], out / "discrimination_over_time.csv")
    write_csv(res["concentration"], out / "concentration.csv")
    write_csv(res["migration"].reset_index(), out / "migration_matrix.csv")
    write_csv(res["early_warning"], out / "early_warning.csv")
    write_csv(res["overrides_by_date"], out / "overrides_by_date.csv")
    write_csv(res["overrides_by_approver"], out / "overrides_by_approver.csv")
    write_charts(res, out)
    write_text(render_report(res, summary), out / "report.md")


if __name__ == "__main__":
    run_stage(main, "monitor")
