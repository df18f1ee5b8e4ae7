"""Runs the feature SQL (`pipeline.features.sql`, Spark dialect) on Apache Spark: the `engine: spark` switch.

No second copy of the feature logic: the statements are the ones `build_feature_sql(params, "spark")`
renders from the single definition the DuckDB engine also runs; the as-of grid, labels and dtypes come from
`pipeline.features.grid` and `pipeline.features.duckdb_engine`. Spark is an optional extra (`pip install .[spark]`); importing this module does not
import pyspark. See docs/spark.md for running on a cluster.

Params (features block): ``threads`` (local cores), ``spark: {master, app_name, conf: {key: value}}``.
Under ``spark-submit`` the session is the one spark-submit configured (master, executors); ``spark.master``
in params is then ignored unless set explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.domain import PipelineError
from pipeline.features.duckdb_engine import TABLES, finish_snapshots
from pipeline.features.grid import as_of_dates, asof_grid, eval_days, roll_rate_months, to_day
from pipeline.features.sql import (
    MASTER_HISTORY_SQL,
    SETTLEMENT_TABLES,
    build_feature_sql,
    is_materialized,
    roll_rate_sql,
    settlement_sql,
    vintage_sql,
)
from pipeline.params.features import FeaturesParams

DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    "spark.sql.ansi.enabled": "false",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
}


def spark_available() -> str | None:
    """None when pyspark and a Java runtime are present, else the reason Spark cannot run here."""
    import shutil

    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install '.[spark]')"
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return "no Java runtime (java not on PATH and JAVA_HOME unset)"
    return None


def spark_session(
    threads: int = 2,
    master: str | None = None,
    app_name: str = "credit-grading-features",
    conf: Mapping[str, Any] | None = None,
):
    """A SparkSession: the active one (spark-submit, notebooks), else local mode with ``threads`` cores
    (``features.threads``) and ``features.spark``'s master, application name and extra conf.

    Local defaults follow the stack notes: loopback address, no UI, few shuffle partitions, log level ERROR,
    UTC session time zone (dates must not move when timestamps are cast to days)."""
    reason = spark_available()
    if reason:
        raise PipelineError(f"params.yaml features.engine: spark needs pyspark and Java: {reason}")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    builder = SparkSession.builder.appName(app_name)
    master = master or os.environ.get("SPARK_MASTER")
    if master or "SPARK_HOME" not in os.environ:
        builder = builder.master(master or f"local[{threads}]")
    conf = {
        **DEFAULT_CONF,
        "spark.sql.shuffle.partitions": str(max(4, 2 * threads)),
        **{str(k): str(v) for k, v in (conf or {}).items()},
    }
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _arrow_table(frame: pd.DataFrame):
    """A pandas table as Arrow with Spark-compatible types: microsecond timestamps, no all-null columns."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    fields = []
    for field in table.schema:
        if pa.types.is_timestamp(field.type):
            fields.append(pa.field(field.name, pa.timestamp("us")))
        elif pa.types.is_null(field.type):
            fields.append(pa.field(field.name, pa.string()))
        else:
            fields.append(field)
    return table.cast(pa.schema(fields)).replace_schema_metadata(None)


def register_table(spark, name: str, source: pd.DataFrame | Path | str) -> None:
    """Expose a canonical table as a temp view: a DataFrame, a local Parquet file (read through Arrow,
    nanosecond timestamps narrowed), or a URI Spark reads itself (``hdfs://``, ``s3a://``, ``file://``)."""
    if isinstance(source, str) and "://" in source:
        df = spark.read.parquet(source)
    else:
        if not isinstance(source, pd.DataFrame):
            import pyarrow.parquet as pq

            source = pq.read_table(Path(source)).to_pandas()
        df = spark.createDataFrame(_arrow_table(source))
    df.createOrReplaceTempView(name)


def to_pandas(df) -> pd.DataFrame:
    """A Spark result as pandas with nullable integer columns kept integer (Arrow gives float64 with NaN),
    the dtypes DuckDB's ``.df()`` gives for the same SQL types."""
    from pyspark.sql.types import ByteType, IntegerType, LongType, ShortType

    nullable = {ByteType: "Int8", ShortType: "Int16", IntegerType: "Int32", LongType: "Int64"}
    frame = df.toPandas()
    for field in df.schema.fields:
        target = nullable.get(type(field.dataType))
        if target and frame[field.name].dtype.kind == "f":
            frame[field.name] = frame[field.name].astype(target)
    return frame


def run_statements_spark(spark, statements: list[tuple[str, str]]) -> pd.DataFrame:
    """Run `build_feature_sql(..., "spark")` statements in order; cache the reused intermediates (their row
    ids must not be recomputed) and return the last statement's result as pandas."""
    for name, sql in statements[:-1]:
        spark.sql(sql)
        if is_materialized(name):
            spark.sql(f"CACHE TABLE {name}")
    return to_pandas(spark.sql(statements[-1][1]))


def data_cutoff_spark(spark) -> pd.Timestamp:
    """Latest event date in the ledger (the same rule as `duckdb_engine.data_cutoff_of`)."""
    row = spark.sql("""SELECT GREATEST(
        (SELECT MAX(CAST(invoice_date AS DATE)) FROM invoices), (SELECT MAX(CAST(write_off_date AS DATE)) FROM invoices),
        (SELECT MAX(CAST(payment_date AS DATE)) FROM payments), (SELECT MAX(CAST(claim_date AS DATE)) FROM claims))
        AS cutoff""").collect()[0]
    if row["cutoff"] is None:
        raise PipelineError("invoices.parquet: no invoices; the features stage needs at least one")
    return pd.Timestamp(row["cutoff"]).normalize()


def _uncache(spark) -> None:
    for table in spark.catalog.listTables():
        if table.isTemporary and is_materialized(table.name):
            spark.sql(f"UNCACHE TABLE IF EXISTS {table.name}")


def compute_snapshots_spark(
    tables: Mapping[str, pd.DataFrame | Path | str],
    params: FeaturesParams,
    temp_dir: str | None = None,
    with_analysis: bool = False,
    spark=None,
) -> dict[str, Any]:
    """`duckdb_engine.compute_snapshots` on Spark: same inputs, same returned keys, same snapshot table.

    ``temp_dir`` is accepted for signature parity (Spark spills to ``spark.local.dir``)."""
    conf = params.spark
    spark = spark or spark_session(params.threads, conf.master, conf.app_name, conf.conf)
    for name in TABLES:
        if name not in tables:
            raise PipelineError(f"features: canonical table '{name}' is missing")
        register_table(spark, name, tables[name])
    try:
        cutoff = (
            pd.Timestamp(params.data_cutoff) if params.data_cutoff else data_cutoff_spark(spark)
        )
        dates = as_of_dates(params.as_of, cutoff)
        grid = asof_grid(dates, params.windows, params.label.performance_window_months, cutoff)
        first = pd.Timestamp(
            spark.sql("SELECT MIN(CAST(invoice_date AS DATE)) AS d FROM invoices").collect()[0][
                "d"
            ]
        )
        months = roll_rate_months(first, cutoff, params.roll_rate_months) if with_analysis else []
        spark.createDataFrame(_arrow_table(grid)).createOrReplaceTempView("asof_grid")
        spark.createDataFrame(_arrow_table(eval_days(grid, months))).createOrReplaceTempView(
            "eval_days"
        )
        with_truth = tables.get("truth") is not None
        if with_truth:
            register_table(spark, "truth", tables["truth"])
        if tables.get("customer_history") is not None:
            register_table(spark, "customer_history", tables["customer_history"])
        else:
            spark.sql(f"CREATE OR REPLACE TEMP VIEW customer_history AS {MASTER_HISTORY_SQL}")
        settled = all(tables.get(name) is not None for name in SETTLEMENT_TABLES)
        if settled:
            for name in SETTLEMENT_TABLES:
                register_table(spark, name, tables[name])
        for name, _ in settlement_sql("spark"):  # views of an earlier run in this session go stale
            spark.catalog.dropTempView(name)
        snaps = run_statements_spark(
            spark, build_feature_sql(params, "spark", with_truth, settled)
        )
        result: dict[str, Any] = {"data_cutoff": cutoff, "grid": grid}
        if with_analysis:
            label = params.label
            vintage = vintage_sql(label.bad_days_beyond_terms, label.material_cents)
            result["vintage_events"] = to_pandas(spark.sql(vintage))
            buckets = to_pandas(spark.sql(roll_rate_sql()))
            month_days = {to_day(m) for m in months}
            result["buckets"] = buckets[buckets["eval_day"].isin(month_days)].reset_index(
                drop=True
            )
            result["roll_months"] = months
    finally:
        _uncache(spark)
    result["snapshots"] = finish_snapshots(snaps)
    return result
