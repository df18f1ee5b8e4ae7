"""PD calibration on the pipeline's samples: the calibration sample and its outcome, the long-run
central tendency, the choice of calibrator, the data-driven master scale, the calibration tests per
sample and segment, the annual cohort back-tests and the truth check (synthetic data), and the
records the calibrate stage writes. Pure functions on DataFrames; the stage (`pipeline.calibrate`)
does the I/O. Method and conventions: docs/validation.md section 7.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.calibration import (
    adaptive_master_scale,
    assign_grade,
    calibration_tests,
    fit_calibrator,
    pd_band_boundaries,
)
from pipeline.card import score_frame
from pipeline.card.routing import all_features
from pipeline.domain import SEGMENTS, SNAPSHOT_KEYS, PipelineError
from pipeline.params.calibrate import CalibrateParams
from pipeline.snapshot_io import batch_rows, map_batches

SCHEMA_VERSION = "1.0"
KEYS = SNAPSHOT_KEYS
TESTED_SAMPLES = ("calibration", "oot", "oot_known")
HEADLINE_SEGMENT = SEGMENTS[0]  # "current": the headline population
LIGHT_ORDER = {None: -1, "green": 0, "yellow": 1, "red": 2}


def holdout_kind(scored: pd.DataFrame) -> str:
    """Whether the oot sample is later than the development data or a same-date holdout."""
    oot = scored.loc[scored["sample"] == "oot", "as_of_date"]
    dev = scored.loc[scored["sample"].isin(["train", "calibration"]), "as_of_date"]
    if oot.empty or dev.empty:
        return ""
    if oot.min() > dev.max():
        return "out of time (observation dates after the development sample)"
    return "a stratified holdout (same observation dates as the development sample)"


def default_outcome(snapshots: pd.DataFrame) -> pd.Series:
    """Bad vs not bad, the event a PD is the probability of: 1 bad; 0 good or indeterminate (matured,
    not bad); null without an outcome (immature, in default). Without a ``label`` column, ``is_bad``.

    The models are fitted on good vs bad (indeterminates left out, standard practice), but a grade PD
    is published for every customer of the grade, indeterminates included, so calibration, its tests
    and the back-tests count an indeterminate snapshot as a non-default: leaving them out would
    inflate the observed default rate (most indeterminates sit in the risky grades)."""
    is_bad = snapshots["is_bad"].astype(float)
    if "label" not in snapshots:
        return is_bad
    indeterminate = snapshots["label"].astype(str).eq("indeterminate").to_numpy()
    return is_bad.mask(indeterminate & is_bad.isna().to_numpy(), 0.0)


def scored_samples(
    card: dict, snapshots: pd.DataFrame, samples: pd.DataFrame, budget_bytes: int | None = None
) -> pd.DataFrame:
    """Every snapshot with its sample, integer score, (synthetic) true PD and outcome ``is_bad`` =
    `default_outcome` (bad vs not bad: indeterminates count as 0). Scored in slices sized from
    ``budget_bytes`` (``base.memory_budget``; None: in one piece)."""
    names = {f["name"] for f in all_features(card)} - {
        *KEYS,
        "is_bad",
        "label",
        "segment",
        "true_pd",
    }
    merged = snapshots[[c for c in snapshots.columns if c not in names]].merge(
        samples[KEYS + ["sample"]], on=KEYS, how="left", validate="1:1"
    )  # a left merge keeps the snapshots' row order: the scores below line up
    if merged["sample"].isna().any():
        row = int(np.flatnonzero(merged["sample"].isna().to_numpy())[0])
        raise PipelineError(
            f"samples.parquet: snapshot row {row} ({merged.loc[row, 'customer_id']}, "
            f"{merged.loc[row, 'as_of_date']}) has no sample; re-run the train stage"
        )
    out = merged[KEYS + ["sample"]].copy()
    out["is_bad"] = default_outcome(merged)
    # no segment column: every snapshot is "current"; a missing segment = outside the population
    out["segment"] = (
        merged["segment"].astype("string").astype(object).where(merged["segment"].notna(), None)
        if "segment" in merged.columns
        else HEADLINE_SEGMENT
    )
    if "true_pd" in merged.columns:
        out["true_pd"] = merged["true_pd"].astype(float)
    rows = len(snapshots) or 1
    if budget_bytes is not None:
        rows = batch_rows(budget_bytes, 8 * (3 * len(all_features(card)) + 16) + 256)
    scores = map_batches(lambda part: score_frame(card, part)["score"], snapshots, rows)
    out["score"] = scores.to_numpy()
    return out


def graded_summary(frame: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per grade (table order): count, bads and observed bad rate of ``frame`` (rows with an
    outcome), plus the mean true PD where the data has one.
    """
    rows = []
    for name in table["grade"]:
        part = frame[frame["grade"] == name]
        known = part["is_bad"].dropna()
        row = {
            "grade": name,
            "count": int(len(known)),
            "bads": int(known.sum()),
            "observed_bad_rate": float(known.mean()) if len(known) else np.nan,
        }
        if "true_pd" in frame.columns:
            row["n_true_pd"] = int(part["true_pd"].notna().sum())
            row["mean_true_pd"] = float(part["true_pd"].mean()) if len(part) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def true_pd_check(frame: pd.DataFrame, table: pd.DataFrame, tolerance: float) -> dict:
    """Relative gap |PD_grade − mean true PD| / mean true PD per grade, against ``tolerance``."""
    cols = ["grade", "pd"] + (["count"] if "count" in table.columns else [])
    summary = graded_summary(frame, table).merge(
        table[cols].rename(columns={"count": "n_calibration"}),
        on="grade",
        how="left",
        suffixes=("", "_table"),
    )
    if "n_calibration" in summary.columns:
        # relative standard error of a bad rate PD estimated from n_calibration customers
        summary["relative_se_calibration"] = np.sqrt(
            (1 - summary["pd"]) / (summary["n_calibration"] * summary["pd"])
        )
    else:
        summary["relative_se_calibration"] = np.nan
    summary["relative_gap"] = (summary["pd"] - summary["mean_true_pd"]).abs() / summary[
        "mean_true_pd"
    ]
    summary["within_tolerance"] = summary["relative_gap"] <= tolerance
    return {
        "tolerance": tolerance,
        "n_rows": int(frame["true_pd"].notna().sum()),
        "all_within": bool(summary["within_tolerance"].all()),
        "max_relative_gap": float(summary["relative_gap"].max()),
        "grades": summary[
            [
                "grade",
                "pd",
                "mean_true_pd",
                "n_true_pd",
                "relative_gap",
                "within_tolerance",
                "relative_se_calibration",
            ]
        ].to_dict("records"),
    }


def cohort_dates(dates: pd.Series) -> list[pd.Timestamp]:
    """Annual back-testing cohort dates: the latest as-of date in ``dates`` and every date 12
    months before it that ``dates`` also holds (month ends), oldest first."""
    have = set(pd.to_datetime(pd.Series(dates).dropna().unique()))
    if not have:
        return []
    first, t, out = min(have), max(have), []
    while t >= first:
        if t in have:
            out.append(t)
        t = (t - pd.DateOffset(months=12)) + pd.offsets.MonthEnd(0)
    return sorted(out)


def long_run_central_tendency(
    scored: pd.DataFrame, segments: Sequence[str] = (HEADLINE_SEGMENT,)
) -> dict:
    """Long-run default rate: the mean of the annual cohort default rates over every matured
    cohort (one snapshot per customer per cohort date, the calibrated ``segments``, all samples)."""
    matured = scored[scored["segment"].isin(list(segments)) & scored["is_bad"].notna()]
    cohorts = []
    for date in cohort_dates(matured["as_of_date"]):
        part = matured[matured["as_of_date"] == date]
        cohorts.append(
            {
                "cohort_date": date,
                "customers": int(part["customer_id"].nunique()),
                "defaults": int(part["is_bad"].sum()),
                "default_rate": float(part["is_bad"].astype(float).mean()),
            }
        )
    if not cohorts:
        raise PipelineError(
            "params.yaml calibrate.central_tendency: long_run needs at least one matured cohort "
            "(snapshots with an outcome); give a number or null"
        )
    return {
        "value": float(np.mean([c["default_rate"] for c in cohorts])),
        "rule": "mean of the annual cohort default rates (latest matured as-of date and every 12 "
        "months before it; one snapshot per customer per cohort date; "
        f"{_segments_text(segments)}; all samples, out-of-time cohorts included)",
        "cohorts": cohorts,
    }


def _segments_text(segments: Sequence[str]) -> str:
    return f"{' and '.join(segments)} segment{'s' if len(segments) > 1 else ''}"


def resolve_central_tendency(
    scored: pd.DataFrame, setting: Any, segments: Sequence[str] = (HEADLINE_SEGMENT,)
) -> dict | None:
    """``null`` (no anchor), a number, or ``long_run`` (:func:`long_run_central_tendency`)."""
    if setting is None:
        return None
    if isinstance(setting, str):
        if setting != "long_run":
            raise PipelineError(
                f"params.yaml calibrate.central_tendency: {setting!r} (use null, a PD in (0, 1) "
                "or long_run)"
            )
        return long_run_central_tendency(scored, segments)
    return {"value": float(setting), "rule": "given in params.yaml", "cohorts": []}


def fit_scale(
    cal: pd.DataFrame, params: CalibrateParams, method: str, central: float | None
) -> dict:
    """One calibrator and its data-driven master scale on the calibration rows."""
    calibrator = fit_calibrator(
        cal["score"].to_numpy(),
        cal["is_bad"].astype(int).to_numpy(),
        method=method,
        central_tendency=central,
        pd_floor=params.pd_floor,
    )
    cal_pd = calibrator.predict_pd(cal["score"].to_numpy())
    scale_args = dict(
        scale=params.scale,
        min_grade_share=params.min_grade_share,
        bands=params.pd_bands,
        pd_targets=params.pd_targets,
    )
    table, attempts = adaptive_master_scale(
        cal["score"].to_numpy(),
        cal_pd,
        cal["customer_id"].to_numpy(),
        n_grades=params.n_grades,
        min_customers=params.min_grade_customers,
        min_expected_defaults=params.min_grade_expected_defaults,
        pd_floor=params.pd_floor,
        **scale_args,
    )
    return {
        "calibrator": calibrator,
        "table": table,
        "attempts": attempts,
        "cal_pd": cal_pd,
        "scale_args": {**scale_args, "n_grades": int(len(table))},
    }


def choose_calibration(cal: pd.DataFrame, params: CalibrateParams, central: float | None) -> dict:
    """Platt by default. Isotonic (``method: isotonic``, or ``auto`` with at least
    ``isotonic_min_sample`` rows) only where its master scale has strictly rising grade PDs with
    as many grades as Platt's; otherwise Platt (``auto``) or an error naming the cause
    (``isotonic``)."""
    method = params.method
    n_min = params.isotonic_min_sample
    if method == "isotonic" or (method == "auto" and len(cal) >= n_min):
        try:
            iso = fit_scale(cal, params, "isotonic", central)
        except PipelineError as exc:
            iso, why = None, str(exc)
        if iso is not None:
            if method == "isotonic":
                return {**iso, "choice": "isotonic (calibrate.method: isotonic)"}
            platt = fit_scale(cal, params, "platt", central)
            if len(iso["table"]) >= len(platt["table"]):
                return {
                    **iso,
                    "choice": f"isotonic (auto: {len(cal):,} rows >= calibrate.isotonic_min_sample "
                    f"and strictly rising PDs over {len(iso['table'])} grades, as many as Platt)",
                }
            why = (
                f"isotonic supports only {len(iso['table'])} grades with strictly rising PDs, "
                f"Platt {len(platt['table'])}"
            )
            return {**platt, "choice": f"platt (auto: {why})"}
        if method == "isotonic":
            raise PipelineError(
                f"params.yaml calibrate.method: isotonic gives no master scale with strictly "
                f"rising grade PDs ({why}); use platt"
            )
        return {**fit_scale(cal, params, "platt", central), "choice": f"platt (auto: {why})"}
    reason = (
        "platt (calibrate.method: platt)"
        if method == "platt"
        else f"platt (auto: {len(cal):,} rows < calibrate.isotonic_min_sample {n_min:,})"
    )
    return {**fit_scale(cal, params, "platt", central), "choice": reason}


def _verdict(tests: dict) -> str | None:
    """Worst of the portfolio Jeffreys light and the Hosmer-Lemeshow light."""
    lights = [tests["portfolio"].get("jeffreys_light"), tests["hosmer_lemeshow"].get("light")]
    return max(lights, key=lambda x: LIGHT_ORDER.get(x, -1))


def back_tests(graded: pd.DataFrame, table: pd.DataFrame) -> dict:
    """Annual cohort back-tests of the published grade PDs: per cohort date one snapshot per
    customer (the rows at that date), the customers the scorecard was not fitted on (train rows
    left out), per segment; plus the pooled figure over the cohorts, labelled pooled.
    Out-of-sample convention: Hosmer-Lemeshow on k degrees of freedom."""
    usable = graded[
        graded["is_bad"].notna()
        & graded["segment"].notna()
        & ~graded["sample"].isin(["train", "excluded"])
    ]
    dates = cohort_dates(usable["as_of_date"])
    out: dict[str, Any] = {
        "rule": "one snapshot per customer per annual cohort date (latest matured as-of date and "
        "every 12 months before it); train customers' rows left out; HL df = k (out of sample); "
        "pooled = all cohorts together (a customer can appear in several cohorts)",
        "cohort_dates": dates,
        "cohorts": [],
        "pooled": [],
    }
    for segment in sorted(usable["segment"].unique(), key=lambda x: (x != HEADLINE_SEGMENT, x)):
        seg = usable[usable["segment"] == segment]
        for date in dates:
            part = seg[seg["as_of_date"] == date]
            if part.empty or part["is_bad"].nunique() < 1:
                continue
            t = calibration_tests(part["grade"], part["is_bad"].astype(int), table, "k")
            out["cohorts"].append(
                {
                    "segment": segment,
                    "cohort_date": date,
                    "customers": int(part["customer_id"].nunique()),
                    "samples": {
                        str(k): int(v)
                        for k, v in part["sample"].value_counts().sort_index().items()
                    },
                    "verdict": _verdict(t),
                    "tests": t,
                }
            )
        pooled = seg[seg["as_of_date"].isin(dates)]
        if len(pooled):
            t = calibration_tests(pooled["grade"], pooled["is_bad"].astype(int), table, "k")
            out["pooled"].append(
                {
                    "segment": segment,
                    "label": f"pooled over {len(dates)} annual cohorts",
                    "customers": int(pooled["customer_id"].nunique()),
                    "snapshots": int(len(pooled)),
                    "verdict": _verdict(t),
                    "tests": t,
                }
            )
    return out


def grade_count_reason(attempts: list[dict], requested: int) -> str:
    """Why the master scale has the grades it has, from the attempts of adaptive_master_scale."""
    last = attempts[-1]
    if last["n_grades"] == requested and not last["reason"]:
        return "as requested"
    failed = [a for a in attempts if not a["formed"]]
    why = failed[-1]["reason"] if failed else ""
    text = f"{last['n_grades']} of the {requested} grades requested: {why}"
    return text + (f"; {last['reason']}" if last["reason"] else "")


def calibrate(
    scored: pd.DataFrame, params: CalibrateParams, segments: Sequence[str] = (HEADLINE_SEGMENT,)
) -> dict:
    """Fit the calibrator and master scale on the calibration sample of ``segments`` (the current
    segment, plus each segment the card scores with its own card: one scale for every row the
    card grades); test on calibration (in sample, HL df k−2), oot and oot_known (HL df k) per
    segment, and back-test annual cohorts.

    Returns ``calibrator``, ``table`` (master scale with the calibration sample's counts and
    observed bad rates), ``graded`` (scored rows with ``pd_calibrated`` and ``grade``), ``tests``
    per sample, ``back_tests``, ``central_tendency``, ``grade_count`` and, when ``true_pd`` is
    present, ``true_pd_check`` per sample.
    """
    if "segment" not in scored.columns:
        scored = scored.assign(segment=HEADLINE_SEGMENT)
    current = scored["segment"].isin(list(segments))
    cal = scored[(scored["sample"] == "calibration") & scored["is_bad"].notna() & current]
    if cal.empty:
        raise PipelineError(
            "samples.parquet: no rows with sample == 'calibration', an outcome and segment in "
            f"{list(segments)}"
        )
    central = resolve_central_tendency(scored, params.central_tendency, segments)
    fitted = choose_calibration(cal, params, None if central is None else central["value"])
    calibrator, table, scale_args = fitted["calibrator"], fitted["table"], fitted["scale_args"]
    target_bounds = pd_band_boundaries(
        np.sort(fitted["cal_pd"]),
        scale_args["n_grades"],
        scale_args["min_grade_share"],
        scale_args["bands"],
        scale_args["pd_targets"],
    )
    graded = scored.copy()
    graded["pd_calibrated"] = calibrator.predict_pd(graded["score"].to_numpy())
    graded["grade"] = assign_grade(graded["score"].to_numpy(), table)
    summary = graded_summary(graded[(graded["sample"] == "calibration") & current], table)
    table = table.merge(summary[["grade", "bads", "observed_bad_rate"]], on="grade", how="left")

    tests, checks = {}, {}
    tolerance = params.true_pd_tolerance
    segments = [x for x in graded["segment"].dropna().unique() if x != HEADLINE_SEGMENT]
    for name in TESTED_SAMPLES:
        for segment in [HEADLINE_SEGMENT, *sorted(segments)]:
            part = graded[
                (graded["sample"] == name)
                & graded["is_bad"].notna()
                & (graded["segment"] == segment)
            ]
            if part.empty:
                continue
            key = name if segment == HEADLINE_SEGMENT else f"{name}_{segment}"
            hl_df = "k-2" if name == "calibration" else "k"  # in sample: fitted on these rows
            tests[key] = calibration_tests(part["grade"], part["is_bad"].astype(int), table, hl_df)
            if "true_pd" in graded.columns and part["true_pd"].notna().any():
                checks[key] = true_pd_check(part, table, tolerance)
    population = graded[graded["segment"] == HEADLINE_SEGMENT]
    if "true_pd" in graded.columns and population["true_pd"].notna().any():
        checks["all_snapshots"] = true_pd_check(population, table, tolerance)
    requested = params.n_grades
    return {
        "calibrator": calibrator,
        "table": table,
        "graded": graded,
        "tests": tests,
        "back_tests": back_tests(graded, table),
        "true_pd_check": checks,
        "target_pd_boundaries": [float(v) for v in target_bounds],
        "scale_args": scale_args,
        "method_choice": fitted["choice"],
        "central_tendency": central,
        "grade_count": {
            "requested": requested,
            "chosen": int(len(table)),
            "min_grade_customers": params.min_grade_customers,
            "min_grade_expected_defaults": params.min_grade_expected_defaults,
            "reason": grade_count_reason(fitted["attempts"], requested),
            "attempts": fitted["attempts"],
        },
        "holdout_kind": holdout_kind(scored),
    }


def cutoffs_spec(result: dict, dataset: str, provenance: dict) -> dict:
    """The grade_cutoffs.json document (docs/architecture.md)."""
    table = result["table"]
    grades = [
        {
            "grade": r.grade,
            "letter_grade": r.letter_grade,
            "score_min": None if np.isnan(r.score_min) else int(r.score_min),
            "score_max": None if np.isnan(r.score_max) else int(r.score_max),
            "pd": float(r.pd),
            "count": int(r.count),
            "share": float(r.share),
            "observed_bad_rate": float(r.observed_bad_rate),
        }
        for r in table.itertuples(index=False)
    ]
    cal = result["calibrator"]
    args = result["scale_args"]
    return {
        "schema_version": SCHEMA_VERSION,
        "dataset": dataset,
        "calibration": {
            "method": cal.kind,
            "method_choice": result.get("method_choice", ""),
            "parameters": cal.to_dict(),
            "fitted_on": "calibration sample (disjoint from training), current segment",
            "central_tendency": None
            if result.get("central_tendency") is None
            else {k: v for k, v in result["central_tendency"].items() if k != "cohorts"},
        },
        "scale": {
            "type": args["scale"],
            "n_grades": args["n_grades"],
            "n_grades_requested": result.get("grade_count", {}).get("requested", args["n_grades"]),
            "n_grades_reason": result.get("grade_count", {}).get("reason", ""),
            "min_grade_share": args["min_grade_share"],
            "pd_bands": args["bands"],
            "target_pd_boundaries": result["target_pd_boundaries"],
            "interval": "[score_min, score_max), null = unbounded; best grade first",
            "grade_pd": "mean calibrated PD of the grade's calibration-sample customers, floored",
        },
        "grades": grades,
        "tests": result["tests"],
        "provenance": provenance,
    }


def reliability_table(result: dict) -> pd.DataFrame:
    """Per tested sample and grade: published PD, mean calibrated PD, observed bad rate, count."""
    graded, table = result["graded"], result["table"]
    rows = []
    for name in TESTED_SAMPLES:
        part = graded[(graded["sample"] == name) & graded["is_bad"].notna()]
        if part.empty:
            continue
        summary = graded_summary(part, table)
        mean_cal = part.groupby("grade")["pd_calibrated"].mean()
        for r, pd_ in zip(summary.to_dict("records"), table["pd"], strict=True):
            row = {
                "sample": name,
                "grade": r["grade"],
                "pd": float(pd_),
                "mean_pd_calibrated": float(mean_cal.get(r["grade"], np.nan)),
                "observed_bad_rate": r["observed_bad_rate"],
                "count": r["count"],
            }
            if "mean_true_pd" in r:
                row["mean_true_pd"] = r["mean_true_pd"]
            rows.append(row)
    return pd.DataFrame(rows)


def calibrate_metrics(result: dict) -> dict:
    """Flat numbers for dvc metrics."""
    central = result.get("central_tendency")
    out = {
        "method": result["calibrator"].kind,
        "method_choice": result.get("method_choice", ""),
        "oot_kind": result.get("holdout_kind", ""),
        "n_grades": int(len(result["table"])),
        "n_grades_requested": result.get("grade_count", {}).get("requested"),
        "central_tendency": None if central is None else central["value"],
        "pd_strictly_increasing": bool(np.all(np.diff(result["table"]["pd"].to_numpy()) > 0)),
        "min_grade_share": float(result["table"]["share"].min()),
    }
    for name, t in result["tests"].items():
        port = t["portfolio"]
        out[name] = {
            "count": port["count"],
            "observed_bad_rate": port["observed_bad_rate"],
            "mean_pd": port["pd"],
            "binomial_p": port["binomial_p"],
            "jeffreys_p": port["jeffreys_p"],
            "hosmer_lemeshow_p": t["hosmer_lemeshow"]["p"],
            "spiegelhalter_p": t["spiegelhalter"]["p_two_sided"],
            "grades_red_jeffreys": sum(g.get("jeffreys_light") == "red" for g in t["per_grade"]),
            "grades_yellow_jeffreys": sum(
                g.get("jeffreys_light") == "yellow" for g in t["per_grade"]
            ),
        }
    bt = result.get("back_tests") or {}
    out["back_tests"] = {
        **{
            f"{c['segment']}_{pd.Timestamp(c['cohort_date']):%Y-%m-%d}": {
                "customers": c["customers"],
                "verdict": c["verdict"],
                "observed_bad_rate": c["tests"]["portfolio"]["observed_bad_rate"],
                "mean_pd": c["tests"]["portfolio"]["pd"],
            }
            for c in bt.get("cohorts", [])
        },
        **{
            f"{c['segment']}_pooled": {
                "customers": c["customers"],
                "verdict": c["verdict"],
                "observed_bad_rate": c["tests"]["portfolio"]["observed_bad_rate"],
                "mean_pd": c["tests"]["portfolio"]["pd"],
            }
            for c in bt.get("pooled", [])
        },
    }
    for name, c in result["true_pd_check"].items():
        out[f"true_pd_{name}"] = {
            "all_within_tolerance": c["all_within"],
            "max_relative_gap": c["max_relative_gap"],
            "n_grades_within": int(sum(g["within_tolerance"] for g in c["grades"])),
        }
    return out


def validation_record(result: dict) -> dict:
    """reports/<ds>/calibrate/calibration_backtests.json: what the validation report needs from this stage
    (cohort back-tests, central tendency, grade-count decision, truth comparison)."""
    table = result["table"]
    return {
        "method": result["calibrator"].kind,
        "method_choice": result.get("method_choice", ""),
        "central_tendency": result.get("central_tendency"),
        "grade_count": result.get("grade_count"),
        "master_scale": table.to_dict("records"),
        "back_tests": result.get("back_tests"),
        "sample_tests": result["tests"],
        "true_pd_check": result["true_pd_check"],
        "holdout_kind": result.get("holdout_kind", ""),
    }
