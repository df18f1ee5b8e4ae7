"""Out of core: the features stage with a small DuckDB memory limit (params ``features.memory_limit``) on an
invoice table larger than that limit completes and gives exactly the unconstrained snapshots.

Slow (a ~2M-invoice ledger, computed twice): marked ``slow``; .ci runs it in the slow step.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.features.chunked import (
    INVOICE_DATES_PER_GB,
    chunk_count,
    compute_snapshots_chunked,
    customer_ranges,
    split_by_customer,
)
from pipeline.features.duckdb_engine import TABLES, compute_snapshots
from tests.fixtures.feature_params import features_params

PARAMS = {
    "windows_months": [3, 6, 12],
    "threads": 2,
    "as_of": {"start": "2024-01-31", "end": "2024-12-31", "freq": "ME"},
    "roll_rate_months": 12,
    "label": {
        "source": "ledger",
        "performance_window_months": 12,
        "bad_days_beyond_terms": 90,
        "good_max_days_beyond_terms": 30,
        "material_amount": 100.0,
        "material_share": 0.01,
    },
}
LIMIT_MB = 128


def _ledger(tmp_path, n_customers: int) -> dict:
    from pipeline.synth import write_ledger

    write_ledger(tmp_path, n_customers, 24, "2023-01-01", 20261129, fmt="parquet")
    return {name: tmp_path / f"{name}.parquet" for name in (*TABLES, "truth")}


def test_split_keeps_every_row_once(tmp_path):
    tables = _ledger(tmp_path / "l", 300)
    chunks = split_by_customer(
        tables, 4, tmp_path / "c", features_params({"memory_limit": "256MB", "threads": 1})
    )
    for name in TABLES:
        total = pq.read_table(tables[name]).num_rows
        parts = [pq.read_table(c[name]) for c in chunks]
        assert sum(p.num_rows for p in parts) == total
        ids = [set(p.column("customer_id").to_pylist()) for p in parts]
        assert all(not (a & b) for i, a in enumerate(ids) for b in ids[i + 1 :]), (
            f"{name}: a customer in two chunks"
        )
        assert all(max(a) < min(b) for a, b in zip(ids, ids[1:], strict=False) if a and b), (
            f"{name}: chunks are not customer ranges in order"
        )
    invoices = [pq.read_table(c["invoices"]).num_rows for c in chunks]
    assert len(invoices) == 4 and max(invoices) < 1.2 * sum(invoices) / 4, invoices


def test_customer_ranges_balance_invoices_and_never_split_a_customer():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE invoices AS SELECT * FROM (VALUES ('A'), ('B'), ('C'), ('D')) t(customer_id)"
    )
    assert customer_ranges(con, 2) == [(None, "C"), ("C", None)]
    assert customer_ranges(con, 1) == [(None, None)]
    # O'Brien holds 6 of 8 invoices: invoices before each customer 0 (A), 1 (O'Brien), 7 (Z) put A and
    # O'Brien in chunk floor(0 * 4 / 8) = floor(1 * 4 / 8) = 0 and Z in floor(7 * 4 / 8) = 3
    con.execute("DELETE FROM invoices")
    con.execute(
        "INSERT INTO invoices SELECT * FROM (VALUES ('A'), ('Z')) t(c) "
        "UNION ALL SELECT 'O''Brien' FROM range(6)"
    )
    assert customer_ranges(con, 4) == [(None, "Z"), ("Z", None)]
    con.execute("DELETE FROM invoices")
    assert customer_ranges(con, 3) == [(None, None)]


def test_auto_chunks_hold_the_stated_invoice_dates_per_gb_of_memory_limit():
    auto = features_params({"customer_chunks": "auto", "memory_limit": "2GB"})
    per_chunk = 2 * INVOICE_DATES_PER_GB
    assert chunk_count(auto, per_chunk // 12, 12) == 1
    assert chunk_count(auto, per_chunk // 12 + 1, 12) == 2
    assert chunk_count(auto, 5 * per_chunk // 24, 24) == 5
    assert chunk_count(auto, 0, 24) == 1
    assert chunk_count(features_params({"customer_chunks": 3}), 10**9, 60) == 3


def test_split_handles_a_quote_in_a_boundary_customer_id(tmp_path):
    ids = ["A", "A", "O'Brien", "Z"]  # invoices before: 0, 2, 3 of 4 -> chunks 0, 1, 1
    tables = {}
    for name in TABLES:
        tables[name] = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({"customer_id": ids}), tables[name])
    chunks = split_by_customer(tables, 2, tmp_path / "c", features_params({"threads": 1}))
    got = [pq.read_table(c["payments"]).column("customer_id").to_pylist() for c in chunks]
    assert got == [["A", "A"], ["O'Brien", "Z"]]


@pytest.mark.slow
def test_features_complete_under_a_memory_limit_smaller_than_the_invoices(tmp_path):
    tables = _ledger(tmp_path, 150_000)
    invoice_mb = pq.read_table(tables["invoices"]).nbytes / 2**20
    assert invoice_mb > LIMIT_MB, (
        f"invoice table {invoice_mb:.0f} MB in memory is not larger than the limit"
    )
    limited = features_params({**PARAMS, "memory_limit": f"{LIMIT_MB}MB", "customer_chunks": 128})
    got = compute_snapshots_chunked(tables, limited, temp_dir=str(tmp_path), with_analysis=True)
    want = compute_snapshots(
        tables,
        features_params({**PARAMS, "memory_limit": "8GB"}),
        temp_dir=str(tmp_path),
        with_analysis=True,
    )
    assert len(want["snapshots"]) > 1_000_000
    import pandas as pd

    pd.testing.assert_frame_equal(got["snapshots"], want["snapshots"], check_exact=True)
    pd.testing.assert_frame_equal(got["vintage_events"], want["vintage_events"], check_exact=True)
    pd.testing.assert_frame_equal(got["buckets"], want["buckets"], check_exact=True)
    assert got["roll_months"] == want["roll_months"] and got["data_cutoff"] == want["data_cutoff"]
