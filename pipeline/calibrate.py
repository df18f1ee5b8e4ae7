"""Stage ``calibrate``: score → PD on the calibration sample, the master scale and its tests.

Reads models/<ds>/scorecard.json, data/processed/<ds>/samples.parquet and snapshots.parquet.
Fits the calibrator on ``sample == "calibration"`` (disjoint from training), cuts the score into
grades (pipeline.calibration.master_scale), and tests the published grade PDs on the calibration
and out-of-time samples. Writes models/<ds>/grade_cutoffs.{json,csv}, metrics/<ds>/calibrate.json,
plots/<ds>/calibrate_reliability.{csv,png} and reports/<ds>/calibration.md. On synthetic data
(``true_pd`` present) each grade's PD is compared with the mean true PD of its customers.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from pipeline.calibrate_report import calibration_markdown, reliability_plot
from pipeline.calibration import (
    assign_grade,
    calibration_tests,
    fit_calibrator,
    master_scale,
    pd_band_boundaries,
)
from pipeline.config import (
    Paths,
    PipelineError,
    require_files,
    run_stage,
    stage_argparser,
    stage_params,
)
from pipeline.io import code_version, file_sha256, write_csv, write_json, write_text
from pipeline.scorecard import load_card, score_frame

log = logging.getLogger("pipeline.calibrate")

SCHEMA_VERSION = "1.0"
KEYS = ["customer_id", "as_of_date"]
TESTED_SAMPLES = ("calibration", "oot")


def holdout_kind(scored: pd.DataFrame) -> str:
    """Whether the oot sample is later than the development data or a same-date holdout."""
    oot = scored.loc[scored["sample"] == "oot", "as_of_date"]
    dev = scored.loc[scored["sample"].isin(["train", "calibration"]), "as_of_date"]
    if oot.empty or dev.empty:
        return ""
    if oot.min() > dev.max():
        return "out of time (observation dates after the development sample)"
    return "a stratified holdout (same observation dates as the development sample)"


def scored_samples(card: dict, snapshots: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """Every snapshot with its sample, outcome, integer score and (synthetic) true PD."""
    merged = snapshots.merge(samples[KEYS + ["sample"]], on=KEYS, how="left", validate="1:1")
    if merged["sample"].isna().any():
        row = int(np.flatnonzero(merged["sample"].isna().to_numpy())[0])
        raise PipelineError(
            f"samples.parquet: snapshot row {row} ({merged.loc[row, 'customer_id']}, "
            f"{merged.loc[row, 'as_of_date']}) has no sample; re-run the train stage"
        )
    out = merged[KEYS + ["sample", "is_bad"]].copy()
    if "true_pd" in merged.columns:
        out["true_pd"] = merged["true_pd"].astype(float)
    out["score"] = score_frame(card, merged)["score"].to_numpy()
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


def calibrate(scored: pd.DataFrame, params: dict) -> dict:
    """Fit the calibrator and master scale on the calibration sample; test on calibration and oot.

    Returns ``calibrator``, ``table`` (master scale with the calibration sample's counts and
    observed bad rates), ``graded`` (scored rows with ``pd_calibrated`` and ``grade``), ``tests``
    per sample and, when ``true_pd`` is present, ``true_pd_check`` per sample.
    """
    cal = scored[(scored["sample"] == "calibration") & scored["is_bad"].notna()]
    if cal.empty:
        raise PipelineError("samples.parquet: no rows with sample == 'calibration' and an outcome")
    calibrator = fit_calibrator(
        cal["score"].to_numpy(),
        cal["is_bad"].astype(int).to_numpy(),
        method=params.get("method", "auto"),
        isotonic_min_sample=int(params.get("isotonic_min_sample", 5000)),
        central_tendency=params.get("central_tendency"),
        pd_floor=float(params.get("pd_floor", 0.0)),
    )
    cal_pd = calibrator.predict_pd(cal["score"].to_numpy())
    scale_args = dict(
        n_grades=int(params.get("n_grades", 10)),
        scale=params.get("scale", "letter"),
        min_grade_share=float(params.get("min_grade_share", 0.02)),
        bands=params.get("pd_bands", "geometric"),
        pd_targets=params.get("pd_targets") or (),
    )
    table = master_scale(
        cal["score"].to_numpy(), cal_pd, pd_floor=float(params.get("pd_floor", 0.0)), **scale_args
    )
    target_bounds = pd_band_boundaries(
        np.sort(cal_pd),
        scale_args["n_grades"],
        scale_args["min_grade_share"],
        scale_args["bands"],
        scale_args["pd_targets"],
    )
    graded = scored.copy()
    graded["pd_calibrated"] = calibrator.predict_pd(graded["score"].to_numpy())
    graded["grade"] = assign_grade(graded["score"].to_numpy(), table)
    summary = graded_summary(graded[graded["sample"] == "calibration"], table)
    table = table.merge(summary[["grade", "bads", "observed_bad_rate"]], on="grade", how="left")

    tests, checks = {}, {}
    hl_df = params.get("hl_df", "k")
    tolerance = float(params.get("true_pd_tolerance", 0.2))
    for name in TESTED_SAMPLES:
        part = graded[(graded["sample"] == name) & graded["is_bad"].notna()]
        if part.empty:
            continue
        tests[name] = calibration_tests(part["grade"], part["is_bad"].astype(int), table, hl_df)
        if "true_pd" in graded.columns and part["true_pd"].notna().any():
            checks[name] = true_pd_check(part, table, tolerance)
    if "true_pd" in graded.columns and graded["true_pd"].notna().any():
        checks["all_snapshots"] = true_pd_check(graded, table, tolerance)
    return {
        "calibrator": calibrator,
        "table": table,
        "graded": graded,
        "tests": tests,
        "true_pd_check": checks,
        "target_pd_boundaries": [float(v) for v in target_bounds],
        "scale_args": scale_args,
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
            "parameters": cal.to_dict(),
            "fitted_on": "calibration sample (disjoint from training)",
        },
        "scale": {
            "type": args["scale"],
            "n_grades": args["n_grades"],
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
    out = {
        "method": result["calibrator"].kind,
        "oot_kind": result.get("holdout_kind", ""),
        "n_grades": int(len(result["table"])),
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
    for name, c in result["true_pd_check"].items():
        out[f"true_pd_{name}"] = {
            "all_within_tolerance": c["all_within"],
            "max_relative_gap": c["max_relative_gap"],
            "n_grades_within": int(sum(g["within_tolerance"] for g in c["grades"])),
        }
    return out


def main() -> None:
    args = stage_argparser(
        "calibrate", "Calibrate scores to PDs, cut the master scale and test calibration."
    ).parse_args()
    params = stage_params("calibrate", args.dataset)
    paths = Paths(args.dataset)
    card_path = paths.models / "scorecard.json"
    samples_path = paths.processed / "samples.parquet"
    snap_path = paths.processed / "snapshots.parquet"
    require_files(
        {"samples": samples_path, "snapshots": snap_path},
        "run the features and train stages first",
    )
    card = load_card(card_path)
    snapshots = pd.read_parquet(snap_path)
    samples = pd.read_parquet(samples_path)
    for frame, p, cols in (
        (snapshots, snap_path, KEYS + ["is_bad"]),
        (samples, samples_path, KEYS + ["sample"]),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise PipelineError(f"{p}: column(s) {missing} missing (rule: architecture contract)")

    # accounts already in default at t are not part of the scoring population (all_snapshots check)
    if "label" in snapshots:
        snapshots = snapshots[snapshots["label"] != "in_default"].reset_index(drop=True)
    result = calibrate(scored_samples(card, snapshots, samples), params)
    provenance = {
        "code_version": code_version(),
        "scorecard_sha256": file_sha256(card_path),
        "samples_sha256": file_sha256(samples_path),
    }
    spec = cutoffs_spec(result, args.dataset, provenance)
    rel = reliability_table(result)
    write_json(spec, paths.models / "grade_cutoffs.json")
    write_csv(result["table"], paths.models / "grade_cutoffs.csv")
    write_json(calibrate_metrics(result), paths.metrics / "calibrate.json")
    write_csv(rel, paths.plots / "calibrate_reliability.csv")
    reliability_plot(rel, paths.plots / "calibrate_reliability.png")
    (paths.reports).mkdir(parents=True, exist_ok=True)
    write_text(calibration_markdown(result, args.dataset), paths.reports / "calibration.md")
    log.info(
        "calibrate %s: %s, %d grades, PDs %s",
        args.dataset,
        result["calibrator"].kind,
        len(result["table"]),
        ", ".join(f"{v:.4f}" for v in result["table"]["pd"]),
    )


if __name__ == "__main__":
    run_stage(main, "calibrate")
