"""Out of core: the features stage with a small DuckDB memory limit (params ``features.memory_limit``) on an
invoice table larger than that limit completes and gives exactly the unconstrained snapshots.

Slow (a ~2M-invoice ledger, computed twice): marked ``slow``; .ci runs it in the slow step.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from pipeline.features.chunked import compute_snapshots_chunked, split_by_customer
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
