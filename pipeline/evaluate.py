"""Stage ``evaluate``: scorecard vs logistic challenger vs boosting reference vs rule grading, out
of time.

Headline: the *current* segment of the ``oot`` sample (matured goods and bads only; for a dataset
with one observation point it is a stratified holdout). The maths (AUC, Gini, KS by count and
exposure with cluster-bootstrap intervals over customers, paired tests, matched grades, migration,
swap set, gains) lives in `pipeline.comparison`; the tables and charts in
`pipeline.evaluate_report`. Parameters: params.yaml ``evaluate`` (`EvaluateParams`) and
``train.split.method`` / ``oot_start``.

Outputs: metrics/<ds>/evaluate.json, reports/<ds>/evaluate/evaluate_*.csv|png, reports/<ds>/evaluate/comparison.md and
reports/<ds>/evaluate/evaluate_gains.csv.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import comparison as cmp
from pipeline import evaluate_report as report
from pipeline.card import all_features, load_card
from pipeline.config import PROJ_ROOT, Paths, require_files, run_stage, stage_argparser
from pipeline.domain import SNAPSHOT_KEYS, PipelineError
from pipeline.io import code_version, read_json, write_csv, write_json, write_text
from pipeline.params import load, to_dict
from pipeline.params.evaluate import EvaluateParams
from pipeline.params.train import SplitParams, TrainParams
from pipeline.snapshot_io import (
    map_rows,
    present,
    read_columns,
    read_rows,
    rows_in_samples,
    same_keys,
)

log = logging.getLogger("pipeline.evaluate")

SNAPSHOT_COLUMNS = (*SNAPSHOT_KEYS, "is_bad", "exposure", "rule_grade")
COMPARED = (*SNAPSHOT_COLUMNS, "segment", "label", "true_pd", "rule_subgrade")
EVALUATED = ("oot", "oot_known")
"""The samples the comparison reads (out of time; known customers at later dates)."""


def read_inputs(paths: Paths, budget_bytes: int | None = None) -> dict[str, Any]:
    """Samples, boosting predictions, the scorecard, the logistic challenger and the snapshots of
    the ``oot`` and ``oot_known`` samples with the `COMPARED` columns and the two models' scores
    (`comparison.model_scores`, on slices sized from ``budget_bytes``, ``base.memory_budget``)."""
    files = {
        "snapshots": paths.processed / "snapshots.parquet",
        "samples": paths.processed / "samples.parquet",
        "boosting": paths.processed / "boosting_predictions.parquet",
        "card": paths.models / "scorecard.json",
        "logistic": paths.models / "logistic.json",
    }
    require_files(files, "run the features and train stages first")
    card, logistic = load_card(files["card"]), read_json(files["logistic"])
    tables = {
        name: read_columns(files[name], [], [*SNAPSHOT_KEYS, column], "evaluate input contract")
        for name, column in (("samples", "sample"), ("boosting", "pd_boosting"))
    }
    used = [*COMPARED, *(f["name"] for f in all_features(card) + logistic["features"])]
    columns = present(files["snapshots"], used, SNAPSHOT_COLUMNS, "evaluate input contract")
    rows = rows_in_samples(files["snapshots"], tables["samples"], EVALUATED)
    tables = evaluated_rows(**tables)  # before the read: every snapshot's keys are let go
    if not rows.any():  # the error names the matured dates of every snapshot
        snapshots = read_rows(files["snapshots"], [*SNAPSHOT_KEYS, "is_bad"], ~rows)
    else:  # scored as read: the models' feature columns are never held whole
        score = partial(cmp.model_scores, card=card, logistic=logistic, keep=COMPARED)
        slice_rows = cmp.scoring_rows(card, len(columns), budget_bytes)
        snapshots = map_rows(files["snapshots"], columns, rows, score, slice_rows)
    return {**tables, "snapshots": snapshots, "card": card, "logistic": logistic}


def evaluated_rows(samples: pd.DataFrame, boosting: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rows of the `EVALUATED` samples, and their boosting predictions when the predictions
    follow the samples' row order (train writes both so; otherwise every prediction is kept and the
    comparison joins them on the keys). Only these rows are ever compared, so the keys of every
    other snapshot are not held through the comparison."""
    chosen = samples["sample"].isin(EVALUATED).to_numpy()
    if same_keys(samples, boosting):
        boosting = boosting[chosen].reset_index(drop=True)
    return {"samples": samples[chosen].reset_index(drop=True), "boosting": boosting}


def compared_samples(
    inputs: dict[str, Any], p: EvaluateParams, split: SplitParams
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Scored matured rows of ``oot`` (and ``oot_known`` where the split has one), and the ``oot``
    counts of what was left out."""
    frames, counts = {}, {}
    samples = inputs["samples"]
    for name in ("oot", "oot_known"):
        if name == "oot" or (samples["sample"] == name).any():
            frame, counts[name] = cmp.oot_sample(
                inputs["snapshots"],
                samples,
                inputs["boosting"],
                p.rule_undefined,
                name,
                split.oot_start,
            )
            frames[name] = cmp.model_risks(frame)
    return frames, counts["oot"]


def compare(
    dataset: str, inputs: dict[str, Any], p: EvaluateParams, split: SplitParams
) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame]:
    """evaluate.json's content, the decision tables and the headline frame."""
    holdout = split.method == "stratified_holdout"
    level, n_resamples, seed = p.ci_level, p.bootstrap_resamples, p.base.seed
    frames, counts = compared_samples(inputs, p, split)
    all_oot = frames["oot"]
    frame = all_oot[all_oot["segment"] == "current"].reset_index(drop=True)
    if frame.empty or frame["is_bad"].nunique() < 2:
        raise PipelineError(
            "OOT sample, segment current: the comparison needs both goods and bads "
            "(columns segment, is_bad)"
        )
    frame["scorecard_grade"] = cmp.matched_grades(frame)
    methods, pairs, settings = cmp.compare_discrimination(
        frame, {m: f"risk_{m}" for m in cmp.METHODS}, level, n_resamples, seed
    )
    decisions = cmp.decision_analysis(frame, p.rule_reject_grades)
    result: dict[str, Any] = {
        "dataset": dataset,
        "code_version": code_version(),
        "sample": cmp.headline_sample(frame, counts, all_oot, holdout),
        "inference": settings,
        "methods": methods,
        "paired_tests": pairs,
        "segments": cmp.segment_cells(frames, level, n_resamples, seed, holdout),
        "models_all_matured_oot": cmp.models_on_all_rows(
            inputs["snapshots"], inputs["samples"], inputs["boosting"]
        ),
        "params": {
            **{k: v for k, v in to_dict(p).items() if k != "base"},
            "seed": seed,
        },
        "decision": cmp.decision_summary(decisions),
    }
    ceiling = cmp.true_pd_ceiling(frame, level, n_resamples, seed)
    if ceiling is not None:  # synthetic data: the true PD is known
        result["true_pd"] = ceiling
    return result, decisions, frame


def run(
    dataset: str,
    root: Path = PROJ_ROOT,
    params: EvaluateParams | None = None,
    split: SplitParams | None = None,
) -> dict[str, Any]:
    """Read the inputs of ``dataset`` under ``root``, compare the methods, write the outputs.
    ``params`` / ``split`` default to params.yaml's ``evaluate`` block and ``train.split``."""
    p = load(EvaluateParams, "evaluate", dataset) if params is None else params
    split = load(TrainParams, "train", dataset).split if split is None else split
    paths = Paths(dataset, root)
    inputs = read_inputs(paths, p.base.budget_bytes)
    result, decisions, frame = compare(dataset, inputs, p, split)
    tables = report.chart_tables(frame, p.n_bands)
    for name, table in tables.items():
        write_csv(table, paths.stage_dir("evaluate") / f"evaluate_{name}.csv")
    report.write_plots(
        tables, decisions["migration"], result, paths.stage_dir("evaluate"), dataset
    )
    write_csv(
        cmp.gains_tables(frame, p.n_bands), paths.stage_dir("evaluate") / "evaluate_gains.csv"
    )
    write_json(result, paths.metrics / "evaluate.json")
    text = report.comparison_markdown(
        result, decisions, tables["bad_rate_by_band"], frame, inputs["card"]
    )
    paths.stage_dir("evaluate").mkdir(parents=True, exist_ok=True)
    write_text(text, paths.stage_dir("evaluate") / "comparison.md")
    log.info(
        "evaluate %s: %d OOT cases, AUC scorecard %.4f, rules %.4f",
        dataset,
        len(frame),
        result["methods"]["scorecard"]["count"]["auc"],
        result["methods"]["rules"]["count"]["auc"],
    )
    return result


def main() -> None:
    args = stage_argparser(
        "evaluate", "Compare scorecard, challenger, boosting and rule grading out of time"
    ).parse_args()
    run(args.dataset)


if __name__ == "__main__":
    run_stage(main, "evaluate")
