"""Stage `features`: point-in-time customer snapshots, labels, rule grades, vintage and roll rates.

Reads data/interim/<ds>/{customers,invoices,payments,claims}.parquet (+ truth.parquet); runs the feature SQL
on DuckDB out of core (memory limit, threads and a spill directory from params); writes
data/processed/<ds>/snapshots.parquet and feature_dictionary.csv, the vintage and roll-rate reports and plots,
reports/<ds>/features/grading.json and metrics/<ds>/features.json.
"""

from __future__ import annotations

import logging
import tempfile
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from pipeline.config import (
    Paths,
    PipelineError,
    require_files,
    run_stage,
    stage_argparser,
    stage_params,
)
from pipeline.feature_engine import LABELS, TABLES, feature_dictionary
from pipeline.feature_sql import SEGMENTS, SETTLEMENT_TABLES, delinquent_threshold
from pipeline.io import write_csv, write_json, write_parquet
from pipeline.platform import add_platform_features
from pipeline.platform import dictionary_rows as platform_dictionary
from pipeline.sufficiency import check_as_of_grid, ledger_facts, warn_label
from pipeline.vintage import plot_roll_rates, plot_vintage, roll_rate_table, vintage_table

log = logging.getLogger("pipeline.features")


def pq_rows(path) -> int:
    """Rows of a Parquet file (from its footer)."""
    return int(pq.ParquetFile(path).metadata.num_rows)


def label_metrics(snapshots: pd.DataFrame) -> dict[str, Any]:
    """Row counts, label counts and shares, and the bad rate among good + bad."""
    counts = snapshots["label"].value_counts().reindex(list(LABELS), fill_value=0)
    n = int(len(snapshots))
    decided = int(counts["good"] + counts["bad"])
    out: dict[str, Any] = {
        "rows": n,
        "customers": int(snapshots["customer_id"].nunique()),
        "as_of_dates": int(snapshots["as_of_date"].nunique()),
        "label_counts": {k: int(v) for k, v in counts.items()},
        "label_shares": {k: (float(v) / n if n else None) for k, v in counts.items()},
        "bad_rate": float(counts["bad"]) / decided if decided else None,
    }
    if "segment" in snapshots:
        out["segments"] = segment_counts(snapshots)
    return out


def segment_counts(snapshots: pd.DataFrame) -> dict[str, Any]:
    """The observation population by segment: snapshots, goods, bads and bad rate per segment, and the
    rows outside it (no segment: already in default at the as-of date), counted by reason."""
    seg = snapshots["segment"]
    out: dict[str, Any] = {}
    for name in SEGMENTS:
        part = snapshots.loc[seg == name, "is_bad"]
        n_bad, n_good = int((part == 1).sum()), int((part == 0).sum())
        out[name] = {
            "rows": int(len(part)),
            "good": n_good,
            "bad": n_bad,
            "bad_rate": n_bad / (n_bad + n_good) if n_bad + n_good else None,
        }
    outside = snapshots.loc[seg.isna(), "label"].value_counts()
    out["excluded_from_population"] = {str(k): int(v) for k, v in sorted(outside.items())}
    return out


def apply_rules(
    snapshots: pd.DataFrame, dataset: str
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """Append the seed's rule-based grade (pipeline.rules) and return its report."""
    try:
        from pipeline import rules
    except ImportError:
        log.warning("pipeline.rules not available: snapshots written without rule grades")
        return snapshots, None
    params = stage_params("rules", dataset)
    graded = rules.grade(snapshots, params)
    new_cols = [c for c in graded.columns if c not in snapshots.columns]
    if len(graded) != len(snapshots):
        raise PipelineError("pipeline.rules.grade changed the number of snapshot rows")
    out = pd.concat(
        [snapshots.reset_index(drop=True), graded[new_cols].reset_index(drop=True)], axis=1
    )
    return out, rules.grading_report(out, params)


def stated_cutoff(params: dict[str, Any], dataset: str) -> str:
    """The features cut-off: ``features.data_cutoff`` if set, else the dataset's required
    ``ingest.data_cutoff``; never the latest event date, so no single row can move it."""
    value = params.get("data_cutoff") or stage_params("ingest", dataset).get("data_cutoff")
    if not value:
        raise PipelineError(
            f"params.yaml: datasets.{dataset}.ingest.data_cutoff is required (rule required_param): "
            "the features cut-off is the stated data cut-off, never the latest event date"
        )
    try:
        return str(pd.Timestamp(str(value)).date())
    except (ValueError, TypeError):
        raise PipelineError(
            f"params.yaml: data_cutoff = {value!r} is not a date (rule param_type), e.g. 2025-12-31"
        ) from None


def main() -> None:
    args = stage_argparser(
        "features", "Point-in-time snapshots, labels and rule grades."
    ).parse_args()
    ds = args.dataset
    paths, params = Paths(ds), stage_params("features", ds)
    try:
        delinquent_threshold(params)
    except ValueError as exc:
        raise PipelineError(str(exc)) from exc
    engine = params.get("engine", "duckdb")
    if engine == "spark":
        from pipeline.spark_engine import compute_snapshots_spark as compute
    elif engine == "duckdb":
        from pipeline.out_of_core import compute_snapshots_chunked as compute
    else:
        raise PipelineError(f"params.yaml features.engine: '{engine}' is not duckdb or spark")
    params["data_cutoff"] = stated_cutoff(params, ds)
    tables: dict[str, Any] = {name: paths.interim / f"{name}.parquet" for name in TABLES}
    require_files(tables, f"run `python -m pipeline.ingest --dataset {ds}` first")
    facts = ledger_facts(tables)
    check_as_of_grid(params, facts)
    if (paths.interim / "truth.parquet").exists():
        tables["truth"] = paths.interim / "truth.parquet"
    if (paths.interim / "customer_history.parquet").exists():  # attributes as they stood at t
        tables["customer_history"] = paths.interim / "customer_history.parquet"
    settlement = {n: paths.processed / "settlement" / f"{n}.parquet" for n in SETTLEMENT_TABLES}
    require_files(settlement, f"run `python -m pipeline.settle --dataset {ds}` first")
    tables.update(settlement)
    with tempfile.TemporaryDirectory(prefix="features_spill_") as spill:
        result = compute(
            tables, params, temp_dir=params.get("temp_directory") or spill, with_analysis=True
        )
    snaps = result["snapshots"]
    log.info("snapshots: %d rows, %d columns", len(snaps), snaps.shape[1])
    platform_path = paths.interim / "platform.parquet"
    with_platform = platform_path.exists() and pq_rows(platform_path) > 0
    if with_platform:  # optional e-commerce indicators, point in time (pipeline.platform)
        snaps = add_platform_features(snaps, pd.read_parquet(platform_path), params.get("platform"))
    snaps, grading = apply_rules(snaps, ds)
    dictionary = feature_dictionary(params, list(snaps.columns))
    if with_platform:
        dictionary = pd.concat([dictionary, platform_dictionary()], ignore_index=True)

    events = result["vintage_events"]
    vintage = vintage_table(events, result["data_cutoff"], int(params.get("vintage_months", 24)))
    first = events.set_index("customer_id")["first_invoice_day"]
    rolls = roll_rate_table(result["buckets"], first, result["roll_months"])

    write_parquet(snaps, paths.processed / "snapshots.parquet")
    write_csv(dictionary, paths.processed / "feature_dictionary.csv")
    write_csv(vintage, paths.stage_dir("features") / "vintage.csv")
    write_csv(rolls, paths.stage_dir("features") / "roll_rates.csv")
    write_csv(vintage, paths.stage_dir("features") / "features_vintage.csv")
    plot_vintage(vintage, paths.stage_dir("features") / "features_vintage.png", ds)
    plot_roll_rates(rolls, paths.stage_dir("features") / "features_roll_rates.png", ds)
    if grading is not None:
        write_json(grading, paths.stage_dir("features") / "grading.json")
    metrics = label_metrics(snaps)
    metrics["data_cutoff"] = result["data_cutoff"]
    metrics["label_source"] = params.get("label", {}).get("source", "ledger")
    for warning in warn_label(metrics, params.get("label", {}), facts["median_amount"]):
        log.warning("%s", warning)
    write_json(metrics, paths.metrics / "features.json")
    log.info(
        "labels: %s; bad rate %.4f", metrics["label_counts"], metrics["bad_rate"] or float("nan")
    )


if __name__ == "__main__":
    run_stage(main, "features")
