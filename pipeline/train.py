"""Stage ``train``: samples, the WoE scorecard, a raw logistic challenger, a boosting benchmark.

Inputs: ``data/processed/<ds>/snapshots.parquet`` and ``feature_dictionary.csv`` (rows with scoring
= True). Outputs: ``data/processed/<ds>/samples.parquet``, ``boosting_predictions.parquet``,
``models/<ds>/scorecard.json``, ``logistic.json``, ``train_report.json``,
``metrics/<ds>/train.json``, ``reports/<ds>/train/sample_design.json`` and ``reports/<ds>/train/sufficiency.json``;
wall-clock times go to ``logs/<ds>/train_timing.json``, a run log that is neither a DVC output nor tracked
by git, so every artefact is byte-identical from run to run.

The sample rules are `pipeline.samples` (train / calibration / oot / oot_known / excluded, split by
customer); the models and their reports are `pipeline.development`; data sufficiency (enough bads
and goods per sample, or an error naming the setting to change) is `pipeline.sufficiency`. The
``train`` parameters are checked once, here, as `pipeline.params.train.TrainParams`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from pipeline.config import Paths, require_files, run_stage, stage_argparser
from pipeline.development import (
    reason_texts,
    scoring_features,
    train_metrics,
    train_models,
    train_report,
)
from pipeline.domain import SNAPSHOT_KEYS, PipelineError
from pipeline.io import (
    code_version,
    file_sha256,
    write_json,
    write_parquet,
    write_run_log,
)
from pipeline.params import load
from pipeline.params.train import TrainParams
from pipeline.samples import assign_samples, sample_design
from pipeline.sufficiency import check_samples

log = logging.getLogger("pipeline.train")


def read_snapshots(path: Path) -> pd.DataFrame:
    """The snapshots, checked for the columns the stage needs and sorted by customer and date."""
    snapshots = pd.read_parquet(path)
    for col in SNAPSHOT_KEYS + ["is_bad"]:
        if col not in snapshots.columns:
            raise PipelineError(f"{path}: column '{col}' missing (rule: snapshots contract)")
    return snapshots.sort_values(SNAPSHOT_KEYS, kind="mergesort").reset_index(drop=True)


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
    snapshots = read_snapshots(snap_path)
    dictionary = pd.read_csv(dict_path)
    features = scoring_features(dictionary, snapshots, dict_path)
    code = code_version()

    t0 = time.perf_counter()
    samples = assign_samples(snapshots, params.split, params.base.seed)
    sufficiency = check_samples(snapshots, samples, params.split, dataset=args.dataset)
    design = sample_design(samples, snapshots, params.split)
    texts = reason_texts(dictionary, features)
    fitted = train_models(snapshots, samples, features, params, args.dataset, texts, code)
    metrics = train_metrics(snapshots, samples, fitted, features, params.split.method)
    report = train_report(fitted, samples, params, file_sha256(snap_path), code)
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
