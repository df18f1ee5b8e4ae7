"""Out-of-core features: the ledger split by customer into chunks that each fit the DuckDB memory limit.

Every feature, label and report row is per customer, so the snapshots of the whole ledger are the snapshots of
disjoint customer chunks stacked. DuckDB's wide per-customer aggregates do not spill well below a few hundred
MB per million invoices; chunking bounds the working set by the chunk, not the ledger. The split itself is a
streaming DuckDB ``COPY`` under the same memory limit. The data cut-off and the roll-rate
months are fixed from the whole ledger first so that every chunk sees the same as-of grid.

Params (features block): ``memory_limit``, ``threads``, ``customer_chunks`` (1 = no split; ``auto`` =
sized from the invoice count, the as-of grid and the memory limit, `chunk_count`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import progress
from pipeline.features.duckdb_engine import (
    TABLES,
    compute_snapshots,
    connect,
    data_cutoff_of,
    first_invoice_date,
    register,
)
from pipeline.features.grid import as_of_dates, roll_rate_months
from pipeline.features.sql import SETTLEMENT_TABLES
from pipeline.params.base import size_bytes
from pipeline.params.features import FeaturesParams

log = logging.getLogger("pipeline.features")


INVOICE_DATES_PER_GB = 8_000_000
"""Invoice × as-of date pairs one chunk may hold per GB of ``features.memory_limit`` under
``customer_chunks: auto``. Measured on the 1M-customer ledger, 19 as-of dates, 4GB (docs/memory.md): a
chunk of 1.9M invoices (36.6M pairs) ran in 4.3 GB resident and spilled 1.0 GB; one of 3.9M invoices
(73M pairs) ran out of memory."""


def chunk_count(params: FeaturesParams, invoices: int, as_of_dates: int) -> int:
    """``features.customer_chunks``, or under ``auto`` the fewest chunks holding at most
    `INVOICE_DATES_PER_GB` invoice × as-of pairs per GB of ``features.memory_limit`` each."""
    if params.customer_chunks != "auto":
        return params.customer_chunks
    per_chunk = INVOICE_DATES_PER_GB * size_bytes(params.memory_limit) / 1e9
    return max(1, math.ceil(invoices * as_of_dates / per_chunk))


def customer_ranges(con: Any, n_chunks: int) -> list[tuple[Any, Any]]:
    """At most ``n_chunks`` ``[low, high)`` ranges of ``customer_id`` (None: unbounded) that cut the
    customers, in customer order, into runs of about equal invoice counts (a customer is never split, so a
    customer with more than a chunk's share of invoices makes fewer ranges)."""
    lows = [
        row[0]
        for row in con.execute(f"""WITH per AS (
              SELECT customer_id, COUNT(*) AS n FROM invoices GROUP BY customer_id),
            cum AS (SELECT customer_id, SUM(n) OVER (ORDER BY customer_id) - n AS before,
              SUM(n) OVER () AS total FROM per)
            SELECT MIN(customer_id) FROM cum GROUP BY floor(before * {n_chunks} / total)
            ORDER BY 1""").fetchall()
    ][1:]
    bounds = [None, *lows, None]
    return list(zip(bounds[:-1], bounds[1:], strict=False))


def _literal(value: Any) -> str:
    return f"'{value}'" if not isinstance(value, str) else "'" + value.replace("'", "''") + "'"


def split_by_customer(
    tables: Mapping[str, Path], n_chunks: int, out_dir: Path, params: FeaturesParams
) -> list[dict[str, Path]]:
    """Write each canonical table (and the settlement, customer history and truth when given) as
    ``out_dir/<table>/chunk_<k>.parquet``, chunk k holding the customers of the k-th `customer_ranges`
    range (one streaming scan per chunk); returns one ``{table: path}`` mapping per chunk, in customer
    order, so that the chunks' snapshots stacked in that order are ordered by customer."""
    optional = (*SETTLEMENT_TABLES, "customer_history", "truth")
    names = [n for n in (*TABLES, *optional) if n in TABLES or tables.get(n) is not None]
    con = connect(params.memory_limit, params.threads, str(out_dir / "spill"))
    try:
        for name in names:
            register(con, name, tables[name])
        ranges = customer_ranges(con, n_chunks)
        for name in names:
            (out_dir / name).mkdir(parents=True, exist_ok=True)
            for k, (low, high) in enumerate(ranges):
                where = " AND ".join(
                    [f"customer_id >= {_literal(low)}"] * (low is not None)
                    + [f"customer_id < {_literal(high)}"] * (high is not None)
                )
                con.execute(f"""COPY (SELECT * FROM {name} {"WHERE " + where if where else ""})
                    TO '{(out_dir / name / f"chunk_{k}.parquet").as_posix()}' (FORMAT parquet)""")
    finally:
        con.close()
    return [
        {name: out_dir / name / f"chunk_{k}.parquet" for name in names} for k in range(len(ranges))
    ]


def concatenate_parquet(
    parts: list[Path], out_path: Path, params: FeaturesParams, temp_dir: str | None
) -> None:
    """Stack Parquet parts, in list order, into one file (a streaming DuckDB ``COPY`` that keeps the
    order: the parts are customer ranges in customer order, each ordered by customer and as-of date, so
    nothing is sorted and nothing spills)."""
    con = connect(params.memory_limit, params.threads, temp_dir)
    try:
        con.execute("SET preserve_insertion_order = true")
        files = ", ".join(f"'{Path(p).as_posix()}'" for p in parts)
        con.execute(f"""COPY (SELECT * FROM read_parquet([{files}]))
            TO '{Path(out_path).as_posix()}' (FORMAT parquet)""")
    finally:
        con.close()


def _ledger_span(
    tables: Mapping[str, Path], params: FeaturesParams, temp_dir: str | None
) -> tuple[pd.Timestamp, pd.Timestamp, int]:
    """The data cut-off (stated or the ledger's), the first invoice date and the invoice count."""
    con = connect(params.memory_limit, params.threads, temp_dir)
    try:
        for name in TABLES:
            register(con, name, tables[name])
        cutoff = pd.Timestamp(params.data_cutoff) if params.data_cutoff else data_cutoff_of(con)
        (invoices,) = con.execute("SELECT COUNT(*) FROM invoices").fetchone()
        return cutoff, first_invoice_date(con), int(invoices)
    finally:
        con.close()


def compute_snapshots_chunked(
    tables: Mapping[str, Path],
    params: FeaturesParams,
    temp_dir: str | None = None,
    with_analysis: bool = False,
    out_path: Path | None = None,
    analysis_dir: Path | None = None,
) -> dict[str, Any]:
    """`duckdb_engine.compute_snapshots` over ``customer_chunks`` customer chunks: the same result.

    With ``out_path`` each chunk's snapshots go to a Parquet part and one DuckDB ``COPY`` stacks the parts
    (customer ranges in order) into ``out_path``, so the snapshot table never passes through pandas.
    With ``analysis_dir`` each chunk's vintage events and buckets stay Parquet files under it (the
    result lists them; `pipeline.features.vintage.analysis_tables` reads them)."""
    cutoff, first, invoices = _ledger_span(tables, params, temp_dir)
    n_chunks = chunk_count(params, invoices, len(as_of_dates(params.as_of, cutoff)))
    if n_chunks <= 1:
        return compute_snapshots(
            tables,
            params,
            temp_dir=temp_dir,
            with_analysis=with_analysis,
            out_path=out_path,
            analysis_dir=analysis_dir,
        )
    log.info("features: %d invoices in %d customer chunks", invoices, n_chunks)
    fixed = dataclasses.replace(params, data_cutoff=str(cutoff.date()))
    if temp_dir:
        Path(temp_dir).mkdir(parents=True, exist_ok=True)
    parts: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="features_chunks_", dir=temp_dir) as tmp:
        chunks = split_by_customer(tables, n_chunks, Path(tmp), params)
        for k, chunk in enumerate(progress(chunks, "features", total=len(chunks), unit="chunk")):
            part_path = None if out_path is None else Path(tmp) / f"snapshots_{len(parts)}.parquet"
            parts.append(
                compute_snapshots(
                    chunk,
                    fixed,
                    temp_dir=temp_dir,
                    with_analysis=with_analysis,
                    out_path=part_path,
                    analysis_dir=None if analysis_dir is None else analysis_dir / f"chunk_{k}",
                )
            )
        if out_path is not None:
            concatenate_parquet([p["snapshots"] for p in parts], out_path, params, temp_dir)

    def stack(key: str, order: list[str]) -> pd.DataFrame:
        frames = [p[key] for p in parts if len(p[key])] or [parts[0][key]]
        return (
            pd.concat(frames, ignore_index=True)
            .sort_values(order, kind="stable")
            .reset_index(drop=True)
        )

    result: dict[str, Any] = {
        "data_cutoff": cutoff,
        "grid": parts[0]["grid"],
        "snapshots": (
            Path(out_path)
            if out_path is not None
            else stack("snapshots", ["customer_id", "as_of_date"])
        ),
    }
    if with_analysis and analysis_dir is not None:
        result["vintage_events"] = [p["vintage_events"] for p in parts]
        result["buckets"] = [p["buckets"] for p in parts]
    elif with_analysis:
        result["vintage_events"] = stack("vintage_events", ["customer_id"])
        result["buckets"] = stack("buckets", ["customer_id", "eval_day"])
    if with_analysis:
        result["roll_months"] = roll_rate_months(first, cutoff, params.roll_rate_months)
    return result
