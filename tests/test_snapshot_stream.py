"""The features stage's batched post-processing (pipeline.features.stream) gives exactly the snapshot
file and reports of grading the whole table at once, whatever the batch size."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from pipeline import rules
from pipeline.domain import PipelineError
from pipeline.features import stream
from pipeline.features.duckdb_engine import TABLES, compute_snapshots, connect, finish_snapshots
from pipeline.features.platform import add_platform_features
from pipeline.features.report import label_metrics, label_metrics_from
from pipeline.io import write_parquet
from pipeline.params import ParamsError
from pipeline.params.base import check_duckdb_limit
from pipeline.params.rules import RulesParams
from tests.fixtures.feature_params import features_params

PARAMS = features_params(
    {
        "threads": 1,
        "memory_limit": "1GB",
        "as_of": {"start": "2023-06-30", "end": "2024-12-31", "freq": "ME"},
    }
)


@pytest.fixture(scope="module")
def sql_snapshots(tmp_path_factory) -> dict:
    """An 800-customer ledger's snapshots as the SQL writes them (Parquet), with competitor share
    blanked for the first customers (a text column null in the first batches only), and a platform
    table for every other customer."""
    from pipeline.synth import write_ledger

    tmp = tmp_path_factory.mktemp("stream")
    write_ledger(tmp, 800, 24, "2023-01-01", 7, fmt="parquet")
    raw = tmp / "raw.parquet"
    tables = {name: tmp / f"{name}.parquet" for name in TABLES}
    compute_snapshots(tables, PARAMS, temp_dir=str(tmp), out_path=raw)
    path = tmp / "snapshots_sql.parquet"
    con = connect("1GB", 1, str(tmp))
    con.execute(f"""COPY (SELECT * REPLACE (CASE WHEN customer_id < (SELECT quantile_disc(customer_id, 0.6)
        FROM read_parquet('{raw}')) THEN NULL ELSE competitor_share END AS competitor_share)
        FROM read_parquet('{raw}') ORDER BY customer_id, as_of_date) TO '{path}' (FORMAT parquet)""")
    whole = finish_snapshots(con.execute(f"SELECT * FROM read_parquet('{path}')").df())
    con.close()
    ids = sorted(whole["customer_id"].unique())[::2]
    periods = pd.date_range("2023-01-31", "2024-12-31", freq="ME")
    rng = np.random.default_rng(3)
    platform = pd.DataFrame(
        [(c, p) for c in ids for p in periods], columns=["customer_id", "period"]
    ).assign(
        rating=lambda d: rng.uniform(1, 5, len(d)).round(1),
        transactions=lambda d: rng.integers(0, 40, len(d)),
        refunds=lambda d: rng.integers(0, 3, len(d)),
        complaints=lambda d: rng.integers(0, 2, len(d)),
    )
    platform_path = tmp / "platform.parquet"
    write_parquet(platform, platform_path)
    return {"path": path, "whole": whole, "platform": platform, "platform_path": platform_path}


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("budget", [1, 10**12])  # one vector per batch; everything in one batch
def test_batches_give_the_whole_table_result_byte_for_byte(
    sql_snapshots, make_params, tmp_path, monkeypatch, budget
):
    rp = make_params(RulesParams, "rules")
    whole = add_platform_features(
        sql_snapshots["whole"], sql_snapshots["platform"], PARAMS.platform
    )
    graded = rules.grade(whole, rp)
    want = tmp_path / "want.parquet"
    write_parquet(graded, want)

    batches = list(stream.parquet_batches(sql_snapshots["path"], budget, PARAMS, str(tmp_path)))
    if budget == 1:
        assert len(batches) > 3
        for a, b in zip(batches, batches[1:], strict=False):
            assert a["customer_id"].iloc[-1] < b["customer_id"].iloc[0]  # whole customers
        assert batches[0]["competitor_share"].isna().all()  # a text column null in batch 1 only
    else:
        assert len(batches) == 1
    assert graded["grade_competitor_share"].isna().sum() > 0
    monkeypatch.setattr(stream, "_row_group_rows", lambda *_: stream.ROW_GROUP_ROWS)
    got = tmp_path / "got.parquet"
    out = stream.stream_snapshots(
        iter(batches), got, budget, sql_snapshots["platform_path"], PARAMS, rp
    )
    assert _md5(got) == _md5(want)
    assert out["columns"] == list(graded.columns)
    assert rules.grading_report_from(out["grading"], rp) == rules.grading_report(graded, rp)
    assert label_metrics_from(out["labels"]) == label_metrics(graded)


def test_small_budget_changes_row_groups_not_content(sql_snapshots, make_params, tmp_path):
    rp = make_params(RulesParams, "rules")
    small, large = tmp_path / "small.parquet", tmp_path / "large.parquet"
    for budget, path in ((1, small), (10**12, large)):
        batches = stream.parquet_batches(sql_snapshots["path"], budget, PARAMS, str(tmp_path))
        stream.stream_snapshots(batches, path, budget, None, PARAMS, rp)
    import pyarrow.parquet as pq

    assert pq.ParquetFile(small).metadata.num_row_groups > 1
    assert pq.ParquetFile(large).metadata.num_row_groups == 1
    pd.testing.assert_frame_equal(pd.read_parquet(small), pd.read_parquet(large), check_exact=True)


def test_frame_batches_hold_whole_customers(sql_snapshots):
    whole = sql_snapshots["whole"]
    parts = list(stream.frame_batches(whole, 1))
    assert len(parts) > 3
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    assert all(
        a["customer_id"].iloc[-1] != b["customer_id"].iloc[0]
        for a, b in zip(parts, parts[1:], strict=False)
    )


def test_rows_out_of_order_are_refused(sql_snapshots, make_params, tmp_path):
    whole = sql_snapshots["whole"]
    shuffled = whole.iloc[::-1].reset_index(drop=True)
    with pytest.raises(PipelineError, match="ordered by customer_id, as_of_date"):
        stream.stream_snapshots(
            iter([shuffled]),
            tmp_path / "x.parquet",
            10**9,
            None,
            PARAMS,
            make_params(RulesParams, "rules"),
        )
    assert not (tmp_path / "x.parquet").exists()


def test_batch_size_follows_the_budget():
    assert (
        stream.batch_rows(6 * 10**9, 2000)
        == 6
        * 10**9
        * stream.BATCH_SHARE
        // (stream.WORKING_FACTOR * 2000)
        // stream.VECTOR
        * stream.VECTOR
    )
    assert stream.batch_rows(2 * 10**9, 2000) < stream.batch_rows(6 * 10**9, 2000)
    assert stream.batch_rows(1, 2000) == stream.VECTOR


def test_duckdb_limit_must_sit_inside_the_budget():
    check_duckdb_limit("features", "4.5GB", 6 * 10**9)
    with pytest.raises(ParamsError, match="key features.memory_limit: rule within_budget"):
        check_duckdb_limit("features", "4.6GB", 6 * 10**9)
    with pytest.raises(ParamsError, match="key settle.memory_limit: rule within_budget"):
        check_duckdb_limit("settle", "6GB", 6 * 10**9)


@pytest.mark.parametrize("chunks", [1, 3])
def test_vintage_and_roll_rates_from_parquet_match_the_dataframes(tmp_path, chunks):
    """Analysis inputs left on disk (`copy_analysis`, aggregated by DuckDB) give the tables the
    in-memory frames give, also when the SQL runs per customer chunk."""
    from pipeline.features.chunked import compute_snapshots_chunked
    from pipeline.features.vintage import analysis_tables
    from pipeline.synth import write_ledger

    write_ledger(tmp_path, 300, 24, "2023-01-01", 11, fmt="parquet")
    tables = {name: tmp_path / f"{name}.parquet" for name in TABLES}
    params = features_params(
        {"threads": 1, "memory_limit": "1GB", "customer_chunks": chunks, "roll_rate_months": 12}
    )
    frames = compute_snapshots_chunked(tables, params, temp_dir=str(tmp_path), with_analysis=True)
    files = compute_snapshots_chunked(
        tables,
        params,
        temp_dir=str(tmp_path),
        with_analysis=True,
        out_path=tmp_path / "snaps.parquet",
        analysis_dir=tmp_path / "analysis",
    )
    assert not isinstance(files["buckets"], pd.DataFrame)
    want = analysis_tables(frames, 24, "1GB", str(tmp_path))
    got = analysis_tables(files, 24, "1GB", str(tmp_path))
    assert want[1]["count"].sum() > 1000 and (want[1]["count"] > 0).sum() > 6
    for w, g in zip(want, got, strict=True):
        pd.testing.assert_frame_equal(g, w, check_exact=True)
