"""Runs the feature SQL (`pipeline.features.sql`) on DuckDB, out of core, and turns the result into snapshots.

`compute_settlement` (stage ``settle``) and `compute_snapshots` are the entry points; `connect` and
`register` are the one place a DuckDB connection is opened and a table exposed to the SQL (the chunked
runner uses them too). Temp tables are dropped after their last reader, so a memory limit spills less.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.domain import LEDGER_TABLES, PipelineError
from pipeline.features.grid import as_of_dates, asof_grid, eval_days, roll_rate_months, to_day
from pipeline.features.sql import (
    EXPERT_COLUMNS,
    INVOICE_KEYS,
    MASTER_HISTORY_SQL,
    SETTLEMENT_OUTPUTS,
    SETTLEMENT_TABLES,
    build_feature_sql,
    roll_rate_sql,
    settlement_sql,
    vintage_sql,
)
from pipeline.features.vintage import copy_analysis
from pipeline.io import atomic_path
from pipeline.params.features import FeaturesParams
from pipeline.params.settle import SettleParams

TABLES = LEDGER_TABLES
LABELS = ("good", "bad", "indeterminate", "immature", "in_default")


def connect(memory_limit: str, threads: int, temp_dir: str | None):
    """A DuckDB connection with the stage's memory limit, threads and spill directory."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET temp_directory = '{temp_dir or tempfile.gettempdir()}'")
    con.execute("SET preserve_insertion_order = false")
    return con


# customer-master columns the snapshot carries; absent ones (a ledger without them) are read as null
OPTIONAL_CUSTOMER_COLUMNS = {
    "onboarding_date": "DATE",
    "competitor_share": "DOUBLE",
    "credit_limit": "DOUBLE",
    "net_worth": "DOUBLE",
    "annual_turnover": "DOUBLE",
    "source_default_flag": "BIGINT",
    "protected_sex": "VARCHAR",
    "protected_marital_status": "VARCHAR",
    "protected_age": "BIGINT",
    "protected_education": "VARCHAR",
    **{c: "BIGINT" for c in EXPERT_COLUMNS[:6]},
    "expert_approver": "VARCHAR",
    "expert_reason": "VARCHAR",
    "expert_date": "DATE",
}


def register(con, name: str, source: pd.DataFrame | Path) -> None:
    """Expose a table (DataFrame or Parquet file) as the view ``name``; the customer master gets the
    `OPTIONAL_CUSTOMER_COLUMNS` it lacks as nulls."""
    if isinstance(source, pd.DataFrame):
        con.register(f"{name}_df", source)
        relation = f"{name}_df"
    else:
        relation = f"read_parquet('{Path(source).as_posix()}')"
    extra = ""
    if name == "customers":
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
        extra = "".join(
            f", CAST(NULL AS {t}) AS {c}"
            for c, t in OPTIONAL_CUSTOMER_COLUMNS.items()
            if c not in present
        )
    con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT *{extra} FROM {relation}")


def first_invoice_date(con) -> pd.Timestamp:
    """Date of the ledger's first invoice."""
    return pd.Timestamp(con.execute("SELECT MIN(invoice_date) FROM invoices").fetchall()[0][0])


def data_cutoff_of(con) -> pd.Timestamp:
    """Latest event date in the ledger (invoices, payments, claims, write-offs)."""
    value = con.execute("""SELECT GREATEST(
        (SELECT MAX(invoice_date) FROM invoices), (SELECT MAX(write_off_date) FROM invoices),
        (SELECT MAX(payment_date) FROM payments), (SELECT MAX(claim_date) FROM claims))""").fetchall()[
        0
    ][0]
    if value is None:
        raise PipelineError("invoices.parquet: no invoices; the features stage needs at least one")
    return pd.Timestamp(value).normalize()


def last_uses(
    statements: list[tuple[str, str]], keep: tuple[str, ...] = ()
) -> dict[int, list[str]]:
    """For each statement index, the temp tables no later statement reads, directly or through a view
    (safe to drop once it has run). Dropping them keeps DuckDB's working set to what is still needed, so a
    memory limit spills less."""
    names = [n for n, _ in statements]
    is_view = [" TEMP VIEW " in sql for _, sql in statements]
    last: dict[str, int] = {}
    for k in range(len(statements) - 1, -1, -1):
        pattern = re.compile(rf"\b{names[k]}\b")
        readers = [j for j in range(k + 1, len(statements)) if pattern.search(statements[j][1])]
        last[names[k]] = max((last[names[j]] if is_view[j] else j for j in readers), default=k)
    drops: dict[int, list[str]] = {}
    for k, name in enumerate(names[:-1]):
        if not is_view[k] and name not in keep:
            drops.setdefault(last[name], []).append(name)
    return drops


def run_statements(con, statements: list[tuple[str, str]], keep: tuple[str, ...] = ()) -> str:
    """Run every statement but the last on DuckDB, dropping temp tables after their last reader; return
    the last one (the snapshot SELECT) for the caller to fetch or COPY."""
    drops = last_uses(statements, keep)
    for k, (_, sql) in enumerate(statements[:-1]):
        con.execute(sql)
        for name in drops.get(k, []):
            con.execute(f"DROP TABLE {name}")
    return statements[-1][1]


ANALYSIS_INPUTS = ("cust_keys", "inv_settled", "open_balance")


def compute_settlement(
    tables: Mapping[str, pd.DataFrame | Path],
    params: SettleParams,
    out_dir: Path,
    temp_dir: str | None = None,
) -> dict[str, int]:
    """Settle the ledger once: allocation of payments, FIFO pool, settlement day and open-amount inputs.

    Writes one Parquet file per `SETTLEMENT_TABLES` name into ``out_dir`` (each streamed by DuckDB ``COPY``)
    and returns their row counts. `compute_snapshots` reads them back
    (``tables`` given those names) instead of settling again, so every as-of grid and experiment reuses one
    settlement. The files go through `pipeline.io.atomic_path`, so a killed stage leaves the previous
    complete settlement."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = connect(params.memory_limit, params.threads, temp_dir)
    counts: dict[str, int] = {}
    try:
        for name in ("customers", "invoices", "payments"):
            if name not in tables:
                raise PipelineError(f"settle: canonical table '{name}' is missing")
            register(con, name, tables[name])
        for _, sql in settlement_sql("duckdb"):
            con.execute(sql)
        con.execute(f"CREATE TEMP TABLE invoice_keys AS {INVOICE_KEYS}")
        for name, select in SETTLEMENT_OUTPUTS.items():
            # through pipeline.io: committed with the stage's other outputs and recorded in its manifest
            with atomic_path(out_dir / f"{name}.parquet") as tmp:
                con.execute(f"COPY ({select}) TO '{tmp.as_posix()}' (FORMAT parquet)")
                counts[name] = int(
                    con.execute(
                        f"SELECT COUNT(*) FROM read_parquet('{tmp.as_posix()}')"
                    ).fetchall()[0][0]
                )
    finally:
        con.close()
    return counts


def compute_snapshots(
    tables: Mapping[str, pd.DataFrame | Path],
    params: FeaturesParams,
    temp_dir: str | None = None,
    with_analysis: bool = False,
    out_path: Path | None = None,
    analysis_dir: Path | None = None,
) -> dict[str, Any]:
    """Snapshots (labelled, keyed by ``customer_id``, ``as_of_date``) from the canonical tables on DuckDB.

    ``tables`` maps customers/invoices/payments/claims (and optionally truth) to DataFrames or Parquet paths.
    Returns ``{"snapshots", "data_cutoff", "grid"}`` plus, with ``with_analysis``, ``vintage_events`` (per
    customer first invoice / first bad day) and ``buckets`` (worst ageing bucket per customer and month end).
    With ``out_path`` the snapshot table is streamed to that Parquet file by DuckDB (never held in Python
    memory) and ``snapshots`` is the path; otherwise it is a DataFrame. With ``analysis_dir`` the
    vintage events and the month-end buckets are Parquet files there too (``<name>.parquet``).
    """
    con = connect(params.memory_limit, params.threads, temp_dir)
    try:
        for name in TABLES:
            if name not in tables:
                raise PipelineError(f"features: canonical table '{name}' is missing")
            register(con, name, tables[name])
        with_truth = tables.get("truth") is not None
        if with_truth:
            register(con, "truth", tables["truth"])
        if tables.get("customer_history") is not None:
            register(con, "customer_history", tables["customer_history"])
        else:
            con.execute(f"CREATE OR REPLACE VIEW customer_history AS {MASTER_HISTORY_SQL}")
        settled = all(tables.get(name) is not None for name in SETTLEMENT_TABLES)
        if settled:
            for name in SETTLEMENT_TABLES:
                register(con, name, tables[name])
        cutoff = pd.Timestamp(params.data_cutoff) if params.data_cutoff else data_cutoff_of(con)
        grid = asof_grid(
            as_of_dates(params.as_of, cutoff),
            params.windows,
            params.label.performance_window_months,
            cutoff,
        )
        first = first_invoice_date(con)
        months = roll_rate_months(first, cutoff, params.roll_rate_months) if with_analysis else []
        con.register("asof_grid", grid)
        con.register("eval_days", eval_days(grid, months))
        statements = build_feature_sql(params, "duckdb", with_truth, settled)
        snapshot_sql = run_statements(con, statements, ANALYSIS_INPUTS if with_analysis else ())
        result: dict[str, Any] = {"data_cutoff": cutoff, "grid": grid}
        if with_analysis:
            label = params.label
            vintage = vintage_sql(label.bad_days_beyond_terms, label.material_cents)
            month_days = {to_day(m) for m in months}
            if analysis_dir is not None:
                copy_analysis(con, vintage, month_days, Path(analysis_dir), result)
                result["roll_months"] = months
        if with_analysis and analysis_dir is None:
            result["vintage_events"] = con.execute(vintage).df()
            buckets = con.execute(roll_rate_sql()).df()
            result["buckets"] = buckets[buckets["eval_day"].isin(month_days)].reset_index(
                drop=True
            )
            result["roll_months"] = months
        if out_path is not None:
            con.execute(f"COPY ({snapshot_sql}) TO '{Path(out_path).as_posix()}' (FORMAT parquet)")
            result["snapshots"] = Path(out_path)
        else:
            result["snapshots"] = finish_snapshots(con.execute(snapshot_sql).df())
    finally:
        con.close()
    return result


SNAPSHOT_INT_PREFIXES = (
    "invoice_count_",
    "claims_count_",
    "days_beyond_terms_max_",
    "payment_count_",
    "payment_delay_max_",
)
SNAPSHOT_INT_COLUMNS = (
    "overdue_invoice_count",
    "worst_days_past_due",
    "days_beyond_terms_last_invoice",
    "days_since_last_late_payment",
    "days_since_last_payment",
)


def finish_snapshots(raw: pd.DataFrame) -> pd.DataFrame:
    """Pandas dtypes of the SQL snapshot table: nanosecond dates, string ids, nullable Int64 counts and
    days, nullable Int8 ``is_bad`` (the same whichever engine produced it)."""
    frame = raw
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).astype("datetime64[ns]")
    frame["customer_id"] = frame["customer_id"].astype("str")
    frame["label"] = frame["label"].astype("str")
    frame["is_bad"] = frame["is_bad"].astype("Int8")
    ints = [c for c in frame.columns if c.startswith(SNAPSHOT_INT_PREFIXES)]
    for col in [*ints, *SNAPSHOT_INT_COLUMNS]:
        frame[col] = frame[col].astype("Int64")
    return frame
