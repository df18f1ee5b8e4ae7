"""Column-pruned, row-filtered and sliced reads of the snapshot table (pipeline.snapshot_io) and the
bounded fit sample of the train stage (pipeline.samples.bounded_fit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.card import score_frame
from pipeline.domain import PipelineError
from pipeline.samples import bounded_fit, max_fit_rows
from pipeline.snapshot_io import (
    batch_rows,
    follows_file_order,
    in_key_order,
    iter_frames,
    map_batches,
    map_rows,
    read_columns,
    read_rows,
    rows_in_samples,
    sort_by_keys,
)


@pytest.fixture
def snapshot_file(tmp_path):
    """Six snapshots in two row groups; ``is_bad`` has its only null in the first group."""
    frame = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c2", "c2", "c3", "c3"],
            "as_of_date": pd.to_datetime(["2024-01-31", "2024-02-29"] * 3),
            "is_bad": pa.array([None, 0, 1, 0, 0, 1], type=pa.int8()),
            "x": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0],
            "grade": ["A", "B", None, "D", "A", "C"],
        }
    )
    path = tmp_path / "snapshots.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=3)
    return path


def test_read_columns_keeps_file_order_and_names_missing(snapshot_file) -> None:
    got = read_columns(snapshot_file, ["x", "customer_id", "absent"])
    assert list(got.columns) == ["customer_id", "x"]
    with pytest.raises(PipelineError, match=r"snapshots.parquet: column\(s\) label missing"):
        read_columns(snapshot_file, ["x"], ["label"], "snapshots contract")


def test_read_rows_matches_a_full_read_then_filter(snapshot_file) -> None:
    keep = np.array([False, True, True, False, False, True])
    got = read_rows(snapshot_file, ["customer_id", "is_bad", "x", "grade"], keep)
    full = pd.read_parquet(snapshot_file)[["customer_id", "is_bad", "x", "grade"]]
    want = full[keep].reset_index(drop=True)
    # the kept rows have no null is_bad, but the file has one: float64 like the full read
    assert got["is_bad"].dtype == np.float64
    pd.testing.assert_frame_equal(got, want)


def test_read_rows_by_column_groups_and_row_groups(snapshot_file, monkeypatch) -> None:
    """Two columns decoded at a time, a row group with no kept row skipped: the rows and dtypes of a
    full read then filter (file rows 3 and 5, both in the second row group)."""
    monkeypatch.setattr("pipeline.snapshot_io.READ_COLUMN_GROUP", 2)
    keep = np.array([False, False, False, True, False, True])
    columns = ["customer_id", "as_of_date", "is_bad", "x", "grade"]
    got = read_rows(snapshot_file, columns, keep)
    assert got["customer_id"].tolist() == ["c2", "c3"]
    assert got["x"].tolist() == [4.0, 6.0] and got["is_bad"].tolist() == [0.0, 1.0]
    assert got["is_bad"].dtype == np.float64  # the null in the first row group still counts
    want = pd.read_parquet(snapshot_file)[columns][keep].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    none = read_rows(snapshot_file, columns, np.zeros(6, dtype=bool))
    assert len(none) == 0 and list(none.columns) == columns


def test_iter_frames_slices_have_the_full_read_dtypes(snapshot_file) -> None:
    parts = list(iter_frames(snapshot_file, ["is_bad", "x"], rows=2))
    assert [len(p) for p in parts] == [2, 2, 2]
    assert all(p["is_bad"].dtype == np.float64 for p in parts)
    pd.testing.assert_frame_equal(
        pd.concat(parts, ignore_index=True), pd.read_parquet(snapshot_file)[["is_bad", "x"]]
    )


def test_map_rows_maps_slices_like_one_read(snapshot_file, monkeypatch) -> None:
    """Kept file rows 1, 2, 3 and 5, read a row group (three file rows) at a time and mapped in slices of two,
    and in one piece: the same frame, in file order, ``is_bad`` float64 in every slice (the file
    has a null, the kept rows none)."""
    keep = np.array([False, True, True, True, False, True])
    sizes, dtypes = [], set()

    def doubled(part: pd.DataFrame) -> pd.DataFrame:
        sizes.append(len(part))
        dtypes.add(part["is_bad"].dtype)
        return part[["customer_id", "is_bad"]].assign(x2=part["x"] * 2)

    want = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c2", "c3"],
            "is_bad": [0.0, 1.0, 0.0, 1.0],
            "x2": [4.0, np.nan, 8.0, 12.0],
        }
    )
    columns = ["customer_id", "is_bad", "x", "grade"]
    pd.testing.assert_frame_equal(map_rows(snapshot_file, columns, keep, doubled, rows=2), want)
    assert sizes == [2, 2] and dtypes == {np.dtype("float64")}
    sizes.clear()
    pd.testing.assert_frame_equal(map_rows(snapshot_file, columns, keep, doubled), want)
    assert sizes == [4]
    with pytest.raises(PipelineError, match="row mask of 5 rows for 6"):
        map_rows(snapshot_file, columns, keep[:5], doubled)


def test_iter_frames_slices_span_row_groups(snapshot_file) -> None:
    """Row groups of 3 rows read one at a time still give slices of ``rows`` rows: 4 + 2, or the
    whole file in one slice; the values in file order."""
    assert [len(p) for p in iter_frames(snapshot_file, ["x"], rows=4)] == [4, 2]
    (whole,) = iter_frames(snapshot_file, ["customer_id", "x"], rows=10)
    assert whole["customer_id"].tolist() == ["c1", "c1", "c2", "c2", "c3", "c3"]
    parts = list(iter_frames(snapshot_file, ["x"], rows=4))
    assert parts[1]["x"].tolist() == [5.0, 6.0]


def test_rows_in_samples(snapshot_file) -> None:
    samples = pd.read_parquet(snapshot_file, columns=["customer_id", "as_of_date"])
    samples = samples.iloc[::-1].reset_index(drop=True)  # order of samples does not matter
    samples["sample"] = ["oot", "train", "oot_known", "train", "excluded", "oot"]
    got = rows_in_samples(snapshot_file, samples, ("oot", "oot_known"))
    # file rows 5, 3 and 0 (reversed positions 0, 2 and 5)
    assert got.tolist() == [True, False, False, True, False, True]
    in_order = samples.iloc[::-1].reset_index(drop=True)  # the file's order: read off the samples
    assert follows_file_order(snapshot_file, in_order)
    assert not follows_file_order(snapshot_file, samples)
    assert not follows_file_order(snapshot_file, in_order.iloc[1:])
    got = rows_in_samples(snapshot_file, in_order, ("oot", "oot_known"))
    assert got.tolist() == [True, False, False, True, False, True]


def test_batch_rows_is_the_budget_share_clamped() -> None:
    assert batch_rows(6 * 10**9, 1000) == 300_000  # 5% of 6 GB over 1 kB
    assert batch_rows(2**28, 10**9) == 10_000
    assert batch_rows(10**15, 1) == 2_000_000


def test_map_batches_scores_like_one_piece() -> None:
    card = {
        "features": [
            {
                "name": "x",
                "dtype": "numeric",
                "reason_code": "X",
                "baseline_points": 30,
                "unseen_points": 0,
                "bins": [
                    {"type": "range", "lower": None, "upper": 2.0, "points": 10},
                    {"type": "range", "lower": 2.0, "upper": None, "points": 30},
                    {"type": "missing", "points": 5},
                ],
            }
        ],
        "scaling": {"factor": 28.85, "offset": 487.12},
        "reason_codes": {"top_n": 1},
    }
    frame = pd.DataFrame({"x": [1.0, 2.0, np.nan, 3.0, 0.5]})
    whole = score_frame(card, frame)
    pd.testing.assert_frame_equal(map_batches(lambda p: score_frame(card, p), frame, 2), whole)
    assert whole["score"].tolist() == [10, 30, 5, 30, 10]


def _fit_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """Customer b1..b4 have one bad row and one good row; g1..g8 two good rows each."""
    ids = [f"b{i}" for i in range(1, 5) for _ in range(2)] + [
        f"g{i}" for i in range(1, 9) for _ in range(2)
    ]
    is_bad = [1, 0] * 4 + [0] * 16
    frame = pd.DataFrame({"customer_id": ids, "is_bad": is_bad})
    return frame, np.ones(len(frame), dtype=bool)


def test_bounded_fit_does_not_bind_below_the_cap() -> None:
    frame, fit = _fit_frame()
    mask, info = bounded_fit(frame, fit, max_rows=24, seed=7)
    assert mask.all() and not info["bound"]
    assert (info["rows_available"], info["rows_used"], info["customers_used"]) == (24, 24, 12)


def test_bounded_fit_keeps_whole_customers_per_stratum() -> None:
    frame, fit = _fit_frame()
    mask, info = bounded_fit(frame, fit, max_rows=12, seed=7)
    kept = frame[mask]
    # half of each stratum's rows: 2 of 4 bad customers (4 rows), 4 of 8 good ones (8 rows)
    assert info["bound"] and info["rows_used"] == 12 == len(kept)
    per_customer = kept.groupby("customer_id").size()
    assert (per_customer == 2).all()  # whole customers only
    assert kept["customer_id"].str.startswith("b").sum() == 4
    assert kept["is_bad"].sum() == 2  # the bad share of the rows is kept: 2 of 12 vs 4 of 24
    again, _ = bounded_fit(frame.iloc[::-1].reset_index(drop=True), fit, max_rows=12, seed=7)
    assert set(frame.iloc[::-1].reset_index(drop=True)[again]["customer_id"]) == set(
        kept["customer_id"]
    )  # the draw depends on the customers, not the row order


def test_max_fit_rows_from_the_budget_less_the_snapshot_rows() -> None:
    # no snapshot: 0.8 x 6e9 / (8 x 15 x 40 + 512) = 4.8e9 / 5312 = 903,614.4
    assert max_fit_rows(6 * 10**9, 40, 0) == 903_614
    # 10M snapshots hold 128 x 1e7 = 1.28e9: (4.8e9 - 1.28e9) / 5312 = 3.52e9 / 5312 = 662,650.6
    assert max_fit_rows(6 * 10**9, 40, 10**7) == 662_650
    # 1M customers (14,174,161 snapshots, 97 candidates): 4.8e9 - 1,814,292,608 = 2,985,707,392
    # over 8 x 15 x 97 + 512 = 12,152 bytes: 12,152 x 245,696 = 2,985,697,792, remainder 9,600
    assert max_fit_rows(6 * 10**9, 97, 14_174_161) == 245_696
    assert max_fit_rows(6 * 10**9, 40, 10**8) == 0  # the snapshots alone exceed the share


def test_key_order_and_sort_by_keys() -> None:
    snaps = pd.DataFrame(
        {
            "customer_id": ["b", "a", "a", "b"],
            "as_of_date": pd.to_datetime(["2024-01-31", "2024-02-29", "2024-01-31", "2023-12-31"]),
            "x": [1, 2, 3, 4],
        }
    )
    assert not in_key_order(snaps)
    ordered = sort_by_keys(snaps)
    assert ordered["x"].tolist() == [3, 2, 4, 1] and in_key_order(ordered)
