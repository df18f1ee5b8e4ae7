"""Stage ``train``: samples, the WoE scorecard, a raw logistic challenger, a boosting benchmark.

Inputs: ``data/processed/<ds>/snapshots.parquet`` and ``feature_dictionary.csv`` (rows with scoring
= True). Outputs: ``data/processed/<ds>/samples.parquet``, ``boosting_predictions.parquet``,
``models/<ds>/scorecard.json``, ``logistic.json``, ``train_report.json``,
``metrics/<ds>/train.json``, ``reports/<ds>/train/sample_design.json`` and ``reports/<ds>/train/sufficiency.json``;
wall-clock times go to ``logs/<ds>/train_timing.json``, a run log that is neither a DVC output nor tracked
by git, so every artefact is byte-identical from run to run.

Memory (``base.memory_budget``): only the narrow columns (`NARROW`) are read for every snapshot; the
candidate features are read for the fit rows alone, and the three models predict every snapshot in
file slices sized from the budget. When the fit rows exceed what the budget allows
(`pipeline.samples.max_fit_rows`), the models are fitted on a seeded customer-level sample stratified
by outcome (`pipeline.samples.bounded_fit`), stated in train_report.json (``samples.fit_sample``) and
sample_design.json (``fit.bounded_sample``); binning statistics then come from that sample too.

The sample rules are `pipeline.samples` (train / calibration / oot / oot_known / excluded, split by
customer); the models and their reports are `pipeline.development`; data sufficiency (enough bads
and goods per sample, or an error naming the setting to change) is `pipeline.sufficiency`. The
``train`` parameters are checked once, here, as `pipeline.params.train.TrainParams`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.card.routing import ROUTE_COLUMN
from pipeline.config import Paths, require_files, run_stage, stage_argparser
from pipeline.development import (
    MODELS,
    attach_predictions,
    fit_models,
    fit_segment_cards,
    predict_models,
    prediction_row_bytes,
    reason_texts,
    scoring_features,
    train_metrics,
    train_report,
)
from pipeline.domain import SNAPSHOT_KEYS
from pipeline.io import (
    code_version,
    file_sha256,
    write_json,
    write_parquet,
    write_run_log,
)
from pipeline.params import load
from pipeline.params.train import TrainParams
from pipeline.samples import (
    assign_samples,
    bounded_fit,
    fit_rows,
    max_fit_rows,
    sample_design,
)
from pipeline.snapshot_io import (
    batch_rows,
    in_key_order,
    iter_frames,
    present,
    read_columns,
    read_rows,
    snapshot_columns,
)
from pipeline.sufficiency import check_samples

log = logging.getLogger("pipeline.train")


NARROW = (
    *SNAPSHOT_KEYS,
    "is_bad",
    "label",
    "segment",
    "days_beyond_terms_max_12m",
    "worst_days_past_due",
)
"""Columns read for every snapshot (samples, sufficiency, sample design); the candidate features
are read for the fit rows only, and streamed in slices for the predictions."""


def read_snapshots(path: Path) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The narrow columns of the snapshots, checked and in key order (customer, date), and the file
    row of each row when the file is not in key order (None when it is: no sorted copy is made)."""
    frame = read_columns(path, NARROW, [*SNAPSHOT_KEYS, "is_bad"], "snapshots contract")
    if in_key_order(frame):
        return frame, None
    order = frame[SNAPSHOT_KEYS].sort_values(SNAPSHOT_KEYS, kind="mergesort").index.to_numpy()
    frame = frame.take(order)
    frame.index = pd.RangeIndex(len(frame))
    return frame, order


def read_fit_rows(path: Path, columns: list[str], order: np.ndarray | None, fit: np.ndarray):
    """The ``columns`` of the rows of ``fit`` (a mask in key order), in key order and indexed by
    key-order position, as ``snapshots.loc[fit]`` of a full read would be."""
    if order is None:
        frame = read_rows(path, columns, fit)
    else:
        rows = order[fit]
        keep = np.zeros(len(order), dtype=bool)
        keep[rows] = True
        frame = read_rows(path, columns, keep).iloc[np.searchsorted(np.sort(rows), rows)]
    frame.index = np.flatnonzero(fit)
    return frame


def predict_all(path: Path, fitted: dict, features: dict, params: TrainParams, order, n: int):
    """The three models' P(bad) of the ``n`` snapshots, in key order, scored in file slices sized
    from ``base.memory_budget`` into arrays allocated once."""
    rows = batch_rows(params.base.budget_bytes, prediction_row_bytes(len(features)))
    pred = {model: np.empty(n) for model in MODELS}
    start = 0
    for part in iter_frames(path, present(path, [*features, ROUTE_COLUMN]), rows):
        scored = predict_models(fitted, part, params)
        for model in MODELS:
            pred[model][start : start + len(part)] = scored[model].to_numpy()
        start += len(part)
    return pred if order is None else {model: p[order] for model, p in pred.items()}


def main() -> None:
    args = stage_argparser(
        "train", "Fit the WoE scorecard, logistic challenger and boosting benchmark."
    ).parse_args()
    params = load(TrainParams, "train", args.dataset)
    paths = Paths(args.dataset)
    snap_path = paths.processed / "snapshots.parquet"
    dict_path = paths.processed / "feature_dictionary.csv"
    require_files(
        {"snapshots": snap_path, "feature_dictionary": dict_path}, "run the features stage first"
    )
    snapshots, order = read_snapshots(snap_path)
    dictionary = pd.read_csv(dict_path)
    features = scoring_features(dictionary, snapshot_columns(snap_path), dict_path)
    code = code_version()

    t0 = time.perf_counter()
    samples = assign_samples(snapshots, params.split, params.base.seed)
    sufficiency = check_samples(snapshots, samples, params.split, dataset=args.dataset)
    max_rows = max_fit_rows(params.base.budget_bytes, len(features), len(snapshots))
    fit, fit_sample = bounded_fit(
        snapshots, fit_rows(snapshots, samples, params.split), max_rows, params.base.seed
    )
    design = sample_design(samples, snapshots, params.split, fit_sample)
    texts = reason_texts(dictionary, features)
    columns = present(snap_path, [*NARROW, *features])
    train = read_fit_rows(snap_path, columns, order, fit)
    fitted = fit_models(train, features, params, args.dataset, texts, code)
    del train
    decisions = fit_segment_cards(
        fitted,
        snapshots,
        samples,
        lambda mask: read_fit_rows(snap_path, columns, order, mask),
        features,
        params,
        texts,
    )
    pred = predict_all(snap_path, fitted, features, params, order, len(snapshots))
    attach_predictions(fitted, snapshots, pred)
    metrics = train_metrics(snapshots, samples, fitted, features, params.split.method)
    report = train_report(fitted, samples, params, file_sha256(snap_path), code, fit_sample)
    report["segment_cards"] = design["fit"]["segment_cards"] = decisions
    timing = {
        **fitted["timing"],
        "total_s": time.perf_counter() - t0,
        "n_snapshots": len(snapshots),
    }

    write_parquet(samples, paths.processed / "samples.parquet")
    write_parquet(fitted["boosting"], paths.processed / "boosting_predictions.parquet")
    write_json(fitted["card"], paths.models / "scorecard.json")
    write_json(fitted["logistic"], paths.models / "logistic.json")
    write_json(report, paths.models / "train_report.json")
    write_json(metrics, paths.metrics / "train.json")
    write_run_log(timing, paths.root / "logs" / args.dataset / "train_timing.json")
    write_json(sufficiency, paths.stage_dir("train") / "sufficiency.json")
    write_json(design, paths.stage_dir("train") / "sample_design.json")
    log.info(
        "train %s: AUC oot scorecard %.4f, logistic %.4f, boosting %.4f; %d features in the card",
        args.dataset,
        metrics["auc_scorecard_oot"] or float("nan"),
        metrics["auc_logistic_oot"] or float("nan"),
        metrics["auc_boosting_oot"] or float("nan"),
        metrics["n_features_scorecard"],
    )


if __name__ == "__main__":
    run_stage(main, "train")
