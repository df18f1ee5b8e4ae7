"""Stage ``calibrate``: score → PD on the calibration sample, the master scale and its tests.

Reads models/<ds>/scorecard.json, data/processed/<ds>/samples.parquet and snapshots.parquet (in slices
sized from ``base.memory_budget``, scored as they are read).
Fits the calibrator on ``sample == "calibration"`` (disjoint from training) with the outcome bad vs
not bad (an indeterminate snapshot is a matured non-default), cuts the score into grades, and tests
the published grade PDs on the calibration and out-of-time samples and by annual cohort. Writes
models/<ds>/grade_cutoffs.{json,csv}, metrics/<ds>/calibrate.json,
reports/<ds>/calibrate/calibration_backtests.json, reports/<ds>/calibrate/calibrate_reliability.{csv,png} and
reports/<ds>/calibrate/calibration.md. On synthetic data (``true_pd`` present) each grade's PD is compared
with the mean true PD of its snapshots. The computation lives in `pipeline.pd_calibration` (samples,
master scale, tests) and `pipeline.calibration` (calibrators, scale, statistical tests).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from pipeline.calibrate_report import calibration_markdown, reliability_plot
from pipeline.card import load_card
from pipeline.card.routing import all_features, calibrated_segments
from pipeline.config import Paths, require_files, run_stage, stage_argparser
from pipeline.domain import SNAPSHOT_KEYS, PipelineError
from pipeline.io import code_version, file_sha256, write_csv, write_json, write_text
from pipeline.params import load
from pipeline.params.base import BaseParams
from pipeline.params.calibrate import CalibrateParams
from pipeline.pd_calibration import (
    calibrate,
    calibrate_metrics,
    cutoffs_spec,
    reliability_table,
    scored_samples,
    validation_record,
)
from pipeline.snapshot_io import (
    batch_rows,
    iter_frames,
    outside_default,
    present,
    read_columns,
    same_keys,
)
from pipeline.sufficiency import explain_grade_failure, warn_grades

__all__ = ["calibrate", "main", "scored_samples", "validation_record"]

log = logging.getLogger("pipeline.calibrate")


def read_inputs(paths: Paths) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """The card, the snapshots outside default at *t* (the columns calibration uses: keys, outcome,
    label, segment, true PD and the card's features) and the samples."""
    card = load_card(paths.models / "scorecard.json")
    snap_path, samples = _inputs(paths)
    snapshots = read_columns(
        snap_path, _used(card), SNAPSHOT_KEYS + ["is_bad"], "architecture contract"
    )
    return card, _outside_default(snapshots), samples


def _inputs(paths: Paths) -> tuple[Path, pd.DataFrame]:
    samples_path = paths.processed / "samples.parquet"
    snap_path = paths.processed / "snapshots.parquet"
    require_files(
        {"samples": samples_path, "snapshots": snap_path},
        "run the features and train stages first",
    )
    samples = read_columns(samples_path, [], SNAPSHOT_KEYS + ["sample"], "architecture contract")
    return snap_path, samples


def _used(card: dict) -> list[str]:
    return ["label", "segment", "true_pd", *(f["name"] for f in all_features(card))]


def _outside_default(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Accounts already in default at t are not part of the scoring population."""
    if "label" in snapshots:
        return snapshots[outside_default(snapshots)].reset_index(drop=True)
    return snapshots


def scored_inputs(paths: Paths, budget_bytes: int) -> tuple[dict, pd.DataFrame]:
    """The card and `scored_samples` of every snapshot outside default at *t*, read and scored in
    slices sized from ``budget_bytes`` (the card's features are never held for every snapshot).

    train writes samples.parquet in the snapshot file's row order, so each slice takes the samples'
    rows at the same positions (keys checked equal, customer ids shared); when they differ the
    whole-table path (`read_inputs`, a merge on the keys) gives the same frame."""
    card = load_card(paths.models / "scorecard.json")
    snap_path, samples = _inputs(paths)
    columns = present(snap_path, _used(card), SNAPSHOT_KEYS + ["is_bad"], "architecture contract")
    rows = batch_rows(budget_bytes, 8 * (3 * len(all_features(card)) + 16) + 256)
    parts, start = [], 0
    if len(samples) == pq.ParquetFile(snap_path).metadata.num_rows:
        for batch in iter_frames(snap_path, columns, rows):
            part = samples.iloc[start : start + len(batch)].reset_index(drop=True)
            start += len(batch)
            if not same_keys(batch, part):
                parts = None
                break
            batch["customer_id"] = part["customer_id"].to_numpy()
            keep = outside_default(batch)
            parts.append(
                scored_samples(
                    card, batch[keep].reset_index(drop=True), part[keep].reset_index(drop=True)
                )
            )
        if parts is not None:
            return card, pd.concat(parts, ignore_index=True)
    card, snapshots, samples = read_inputs(paths)
    return card, scored_samples(card, snapshots, samples, budget_bytes)


def write_outputs(result: dict, dataset: str, paths: Paths) -> None:
    """Master scale, metrics, back-test record, reliability table and plot, markdown report."""
    provenance = {
        "code_version": code_version(),
        "scorecard_sha256": file_sha256(paths.models / "scorecard.json"),
        "samples_sha256": file_sha256(paths.processed / "samples.parquet"),
    }
    rel = reliability_table(result)
    write_json(cutoffs_spec(result, dataset, provenance), paths.models / "grade_cutoffs.json")
    write_csv(result["table"], paths.models / "grade_cutoffs.csv")
    write_json(calibrate_metrics(result), paths.metrics / "calibrate.json")
    write_json(
        validation_record(result), paths.stage_dir("calibrate") / "calibration_backtests.json"
    )
    write_csv(rel, paths.stage_dir("calibrate") / "calibrate_reliability.csv")
    reliability_plot(rel, paths.stage_dir("calibrate") / "calibrate_reliability.png")
    paths.stage_dir("calibrate").mkdir(parents=True, exist_ok=True)
    write_text(
        calibration_markdown(result, dataset), paths.stage_dir("calibrate") / "calibration.md"
    )


def main() -> None:
    args = stage_argparser(
        "calibrate", "Calibrate scores to PDs, cut the master scale and test calibration."
    ).parse_args()
    params = load(CalibrateParams, "calibrate", args.dataset)
    paths = Paths(args.dataset)
    card, scored = scored_inputs(paths, load(BaseParams, "base", args.dataset).budget_bytes)
    warn_grades(scored, params.n_grades)
    try:
        result = calibrate(scored, params, calibrated_segments(card))
    except PipelineError as exc:
        raise explain_grade_failure(
            exc,
            scored,
            n_grades=params.n_grades,
            method=params.method,
            isotonic_min_sample=params.isotonic_min_sample,
            central_tendency=params.central_tendency,
            pd_floor=params.pd_floor,
        ) from None
    write_outputs(result, args.dataset, paths)
    log.info(
        "calibrate %s: %s, %d grades, PDs %s",
        args.dataset,
        result["calibrator"].kind,
        len(result["table"]),
        ", ".join(f"{v:.4f}" for v in result["table"]["pd"]),
    )


if __name__ == "__main__":
    run_stage(main, "calibrate")
