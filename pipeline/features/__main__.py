"""Stage `features`: point-in-time customer snapshots, labels, rule grades, vintage and roll rates.

Reads data/interim/<ds>/{customers,invoices,payments,claims}.parquet (+ truth.parquet) and the settlement
(data/processed/<ds>/settlement); runs the feature SQL on DuckDB out of core (memory limit, threads and a
spill directory from params) or on Spark; writes data/processed/<ds>/snapshots.parquet and
feature_dictionary.csv, the vintage and roll-rate reports and plots, reports/<ds>/features/grading.json and
metrics/<ds>/features.json. Params: ``features`` (FeaturesParams), ``rules``, ``ingest.data_cutoff`` and
``base.memory_budget``: the snapshots go from the SQL to Parquet and are graded and written in batches of
whole customers sized from the budget (`pipeline.features.stream`), never held whole in pandas.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from pipeline.config import Paths, require_files, run_stage, stage_argparser
from pipeline.domain import PipelineError
from pipeline.features.dictionary import feature_dictionary
from pipeline.features.duckdb_engine import TABLES
from pipeline.features.report import label_metrics_from, pq_rows
from pipeline.features.sql import SETTLEMENT_TABLES
from pipeline.features.stream import (
    frame_batches,
    parquet_batches,
    peak_rss_bytes,
    stream_snapshots,
)
from pipeline.features.vintage import analysis_tables, plot_roll_rates, plot_vintage
from pipeline.io import write_csv, write_json
from pipeline.params import load
from pipeline.params.base import BaseParams, check_duckdb_limit
from pipeline.params.features import FeaturesParams, stated_cutoff
from pipeline.params.ingest import IngestParams
from pipeline.params.rules import RulesParams
from pipeline.rules import grading_report_from
from pipeline.sufficiency import check_as_of_grid, ledger_facts, warn_label

log = logging.getLogger("pipeline.features")


@contextlib.contextmanager
def compute(tables: dict[str, Any], params: FeaturesParams) -> Iterator[dict[str, Any]]:
    """Snapshots and the vintage / roll-rate inputs on the configured engine; on DuckDB they are
    Parquet files in a temporary directory (deleted when the block ends), never DataFrames. A full disk
    under the spill folder, here or in the block, or DuckDB out of memory, is a one-line error naming the
    params keys to change."""
    try:
        with tempfile.TemporaryDirectory(
            prefix="features_spill_", dir=params.temp_directory
        ) as spill:
            if params.engine == "spark":
                from pipeline.features.spark import compute_snapshots_spark

                yield compute_snapshots_spark(tables, params, temp_dir=spill, with_analysis=True)
                return
            from pipeline.features.chunked import compute_snapshots_chunked

            yield compute_snapshots_chunked(
                tables,
                params,
                temp_dir=spill,
                with_analysis=True,
                out_path=Path(spill) / "snapshots_sql.parquet",
                analysis_dir=Path(spill) / "analysis",
            )
    except Exception as exc:
        if isinstance(exc, duckdb.OutOfMemoryException):
            raise PipelineError(
                f"features: DuckDB ran out of memory within features.memory_limit "
                f"({params.memory_limit}) with features.customer_chunks = {params.customer_chunks}; "
                "set customer_chunks to auto or to more chunks"
            ) from exc
        if not disk_full(exc):
            raise
        folder = params.temp_directory or tempfile.gettempdir()
        raise PipelineError(
            f"features: out of disk space (No space left on device) while spilling under {folder} or "
            "writing the outputs; set features.temp_directory to a folder with more room, or raise "
            "features.memory_limit (within 75% of base.memory_budget) so that less spills"
        ) from exc


def disk_full(exc: BaseException) -> bool:
    """True for an operating-system or DuckDB error that says the disk is full."""
    return getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc)


def write_analysis(result: dict[str, Any], params: FeaturesParams, paths: Paths, ds: str) -> None:
    """The vintage and roll-rate tables and charts (`pipeline.features.vintage.analysis_tables`)."""
    vintage, rolls = analysis_tables(
        result, params.vintage_months, params.memory_limit, params.temp_directory
    )
    write_csv(vintage, paths.stage_dir("features") / "vintage.csv")
    write_csv(rolls, paths.stage_dir("features") / "roll_rates.csv")
    write_csv(vintage, paths.stage_dir("features") / "features_vintage.csv")
    plot_vintage(vintage, paths.stage_dir("features") / "features_vintage.png", ds)
    plot_roll_rates(rolls, paths.stage_dir("features") / "features_roll_rates.png", ds)


def main() -> None:
    args = stage_argparser(
        "features", "Point-in-time snapshots, labels and rule grades."
    ).parse_args()
    ds = args.dataset
    paths = Paths(ds)
    params = load(FeaturesParams, "features", ds)
    rules_params = load(RulesParams, "rules", ds)
    budget = load(BaseParams, "base", ds).budget_bytes
    check_duckdb_limit("features", params.memory_limit, budget)
    cutoff = stated_cutoff(params.data_cutoff, load(IngestParams, "ingest", ds).data_cutoff, ds)
    params = dataclasses.replace(params, data_cutoff=cutoff)
    tables: dict[str, Any] = {name: paths.interim / f"{name}.parquet" for name in TABLES}
    require_files(tables, f"run `python -m pipeline.ingest --dataset {ds}` first")
    facts = ledger_facts(tables, params.memory_limit)
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
    platform: Path | None = paths.interim / "platform.parquet"
    if not (platform.exists() and pq_rows(platform) > 0):  # optional e-commerce indicators
        platform = None
    with compute(tables, params) as result:
        log.info("feature SQL done; peak memory so far %.2f GB", peak_rss_bytes() / 1e9)
        snaps = result["snapshots"]
        batches = (
            frame_batches(snaps, budget)
            if isinstance(snaps, pd.DataFrame)
            else parquet_batches(snaps, budget, params, params.temp_directory)
        )
        del snaps
        written = stream_snapshots(
            batches, paths.processed / "snapshots.parquet", budget, platform, params, rules_params
        )
        n_rows, n_cols = written["labels"]["rows"], len(written["columns"])
        log.info("snapshots: %d rows, %d columns", n_rows, n_cols)
        dictionary = feature_dictionary(params, written["columns"])
        write_csv(dictionary, paths.processed / "feature_dictionary.csv")
        write_analysis(result, params, paths, ds)
    grading = grading_report_from(written["grading"], rules_params)
    write_json(grading, paths.stage_dir("features") / "grading.json")
    metrics = label_metrics_from(written["labels"])
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
