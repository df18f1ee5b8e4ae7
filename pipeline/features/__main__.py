"""Stage `features`: point-in-time customer snapshots, labels, rule grades, vintage and roll rates.

Reads data/interim/<ds>/{customers,invoices,payments,claims}.parquet (+ truth.parquet) and the settlement
(data/processed/<ds>/settlement); runs the feature SQL on DuckDB out of core (memory limit, threads and a
spill directory from params) or on Spark; writes data/processed/<ds>/snapshots.parquet and
feature_dictionary.csv, the vintage and roll-rate reports and plots, reports/<ds>/features/grading.json and
metrics/<ds>/features.json. Params: ``features`` (FeaturesParams), ``rules``, ``ingest.data_cutoff``.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from typing import Any

import pandas as pd

from pipeline.config import Paths, require_files, run_stage, stage_argparser
from pipeline.domain import PipelineError
from pipeline.features.dictionary import feature_dictionary
from pipeline.features.duckdb_engine import TABLES
from pipeline.features.platform import add_platform_features
from pipeline.features.report import label_metrics, pq_rows
from pipeline.features.sql import SETTLEMENT_TABLES
from pipeline.features.vintage import plot_roll_rates, plot_vintage, roll_rate_table, vintage_table
from pipeline.io import write_csv, write_json, write_parquet
from pipeline.params import load
from pipeline.params.features import FeaturesParams, stated_cutoff
from pipeline.params.ingest import IngestParams
from pipeline.params.rules import RulesParams
from pipeline.sufficiency import check_as_of_grid, ledger_facts, warn_label

log = logging.getLogger("pipeline.features")


def apply_rules(
    snapshots: pd.DataFrame, rules_params: RulesParams
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Append the seed's rule-based grade (pipeline.rules) and return its report."""
    from pipeline import rules

    graded = rules.grade(snapshots, rules_params)
    new_cols = [c for c in graded.columns if c not in snapshots.columns]
    if len(graded) != len(snapshots):
        raise PipelineError("pipeline.rules.grade changed the number of snapshot rows")
    out = pd.concat(
        [snapshots.reset_index(drop=True), graded[new_cols].reset_index(drop=True)], axis=1
    )
    return out, rules.grading_report(out, rules_params)


def compute(tables: dict[str, Any], params: FeaturesParams) -> dict[str, Any]:
    """Snapshots and the vintage / roll-rate inputs on the configured engine."""
    if params.engine == "spark":
        from pipeline.features.spark import compute_snapshots_spark as run
    else:
        from pipeline.features.chunked import compute_snapshots_chunked as run
    with tempfile.TemporaryDirectory(prefix="features_spill_") as spill:
        return run(tables, params, temp_dir=params.temp_directory or spill, with_analysis=True)


def main() -> None:
    args = stage_argparser(
        "features", "Point-in-time snapshots, labels and rule grades."
    ).parse_args()
    ds = args.dataset
    paths = Paths(ds)
    params = load(FeaturesParams, "features", ds)
    rules_params = load(RulesParams, "rules", ds)
    cutoff = stated_cutoff(params.data_cutoff, load(IngestParams, "ingest", ds).data_cutoff, ds)
    params = dataclasses.replace(params, data_cutoff=cutoff)
    tables: dict[str, Any] = {name: paths.interim / f"{name}.parquet" for name in TABLES}
    require_files(tables, f"run `python -m pipeline.ingest --dataset {ds}` first")
    facts = ledger_facts(tables)
    check_as_of_grid(
        facts,
        start=params.as_of.start,
        end=params.as_of.end,
        freq=params.as_of.freq,
        data_cutoff=params.data_cutoff,
        performance_months=params.label.performance_window_months,
    )
    for optional in ("truth", "customer_history"):  # attributes as they stood at t
        if (paths.interim / f"{optional}.parquet").exists():
            tables[optional] = paths.interim / f"{optional}.parquet"
    settlement = {n: paths.processed / "settlement" / f"{n}.parquet" for n in SETTLEMENT_TABLES}
    require_files(settlement, f"run `python -m pipeline.settle --dataset {ds}` first")
    tables.update(settlement)
    result = compute(tables, params)
    snaps = result["snapshots"]
    log.info("snapshots: %d rows, %d columns", len(snaps), snaps.shape[1])
    platform_path = paths.interim / "platform.parquet"
    with_platform = platform_path.exists() and pq_rows(platform_path) > 0
    if with_platform:  # optional e-commerce indicators, point in time (pipeline.features.platform)
        snaps = add_platform_features(snaps, pd.read_parquet(platform_path), params.platform)
    snaps, grading = apply_rules(snaps, rules_params)
    dictionary = feature_dictionary(params, list(snaps.columns))

    events = result["vintage_events"]
    vintage = vintage_table(events, result["data_cutoff"], params.vintage_months)
    first = events.set_index("customer_id")["first_invoice_day"]
    rolls = roll_rate_table(result["buckets"], first, result["roll_months"])

    write_parquet(snaps, paths.processed / "snapshots.parquet")
    write_csv(dictionary, paths.processed / "feature_dictionary.csv")
    write_csv(vintage, paths.stage_dir("features") / "vintage.csv")
    write_csv(rolls, paths.stage_dir("features") / "roll_rates.csv")
    write_csv(vintage, paths.stage_dir("features") / "features_vintage.csv")
    plot_vintage(vintage, paths.stage_dir("features") / "features_vintage.png", ds)
    plot_roll_rates(rolls, paths.stage_dir("features") / "features_roll_rates.png", ds)
    write_json(grading, paths.stage_dir("features") / "grading.json")
    metrics = label_metrics(snaps)
    metrics["data_cutoff"] = result["data_cutoff"]
    metrics["label_source"] = params.label.source
    for warning in warn_label(
        metrics,
        source=params.label.source,
        material_amount=params.label.material_amount,
        bad_days_beyond_terms=params.label.bad_days_beyond_terms,
        median_amount=facts["median_amount"],
    ):
        log.warning("%s", warning)
    write_json(metrics, paths.metrics / "features.json")
    log.info(
        "labels: %s; bad rate %.4f", metrics["label_counts"], metrics["bad_rate"] or float("nan")
    )


if __name__ == "__main__":
    run_stage(main, "features")
