"""Bounded-memory ingest: streamed Parquet writes, compact exact key sets, source order."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.io import ParquetStream, parquet_stream, write_parquet
from pipeline.quarantine import TableSink
from pipeline.schemas import KeySet, arrow_schema, conform, text_columns


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _invoices(n: int) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "invoice_id": [f"I{i}" for i in range(n)],
            "customer_id": [f"C{i % 7}" for i in range(n)],
            "invoice_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="D"),
            "due_date": pd.Timestamp("2024-02-01") + pd.to_timedelta(np.arange(n), unit="D"),
            "amount": np.arange(n) * 1.5 + 0.25,
            "currency": "CNY",
        }
    )
    return conform(frame, "invoices")


@pytest.mark.parametrize("row_group", [4, 1024 * 1024])
def test_streamed_file_equals_one_shot_write(tmp_path: Path, row_group: int) -> None:
    """Chunks of any size (and several row groups) give the rows, dtypes and, with the same row
    groups, the bytes of one `write_parquet` call; an all-null text column is the null type."""
    frame = _invoices(23)
    stream = ParquetStream(
        tmp_path / "s.parquet", arrow_schema("invoices"), text_columns("invoices"), row_group
    )
    for start in range(0, len(frame), 5):
        stream.write(frame.iloc[start : start + 5])
    stream.close()
    write_parquet(frame, tmp_path / "w.parquet")
    streamed = pq.read_table(tmp_path / "s.parquet")
    assert streamed.equals(pq.read_table(tmp_path / "w.parquet"))
    assert streamed.schema.field("write_off_date").type == pa.timestamp("ns")
    assert pq.ParquetFile(tmp_path / "s.parquet").metadata.num_row_groups == -(-23 // row_group)
    if row_group > len(frame):
        assert _md5(tmp_path / "s.parquet") == _md5(tmp_path / "w.parquet")


def test_all_null_text_column_written_as_null_type(tmp_path: Path) -> None:
    frame = _invoices(9).assign(currency=None)
    stream = ParquetStream(tmp_path / "s.parquet", arrow_schema("invoices"), ("currency",), 4)
    for start in range(0, 9, 2):
        stream.write(frame.iloc[start : start + 2])
    stream.close()
    assert pq.read_schema(tmp_path / "s.parquet").field("currency").type == pa.null()
    assert pq.read_table(tmp_path / "s.parquet").num_rows == 9


def test_stream_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "t.parquet"
    write_parquet(_invoices(2), target)
    before = _md5(target)
    with pytest.raises(RuntimeError), parquet_stream(target, arrow_schema("invoices")) as out:
        out.write(_invoices(5))
        raise RuntimeError("stop")
    assert _md5(target) == before and list(tmp_path.iterdir()) == [target]


def test_key_set_is_exact_even_when_hashes_collide() -> None:
    """A hash shared by different keys never merges them (a deliberately weak hash: length)."""
    weak = KeySet(hasher=lambda v: np.array([len(x) for x in v], dtype=np.uint64))
    weak.add(np.array(["ab", "cd", "xyz"], dtype=object))
    weak.add(np.array(["ef", "q"], dtype=object))
    query = np.array(["cd", "ab", "ef", "xyz", "zz", "q", None], dtype=object)
    assert weak.positions(query).tolist() == [1, 0, 3, 2, -1, 4, -1]
    assert weak.keys(np.array([3, 1])).tolist() == ["ef", "cd"]


def test_key_set_matches_a_python_dict() -> None:
    rng = np.random.default_rng(3)
    keys = KeySet()
    reference: dict[str, int] = {}
    for _ in range(6):
        new = [f"K{v}" for v in rng.integers(0, 10**9, 300)]
        new = [k for k in dict.fromkeys(new) if k not in reference]
        keys.add(np.array(new, dtype=object))
        reference.update({k: len(reference) + i for i, k in enumerate(new)})
    query = np.array([*reference, "missing", "K-1", "bad\udc80"], dtype=object)
    expected = [reference.get(k, -1) for k in query]
    assert keys.positions(query).tolist() == expected
    assert len(keys) == len(reference)


class _Collect:
    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []

    def write(self, frame: pd.DataFrame) -> None:
        self.frames.append(frame)


def test_rows_out_of_source_order_stop_the_stage() -> None:
    """Nothing is held to sort afterwards: an adapter yielding rows out of order is a bug."""
    sink = TableSink("invoices", _Collect(), _Collect())
    ok = _invoices(2).assign(_source_file="a.csv", _source_row=[5, 6])
    sink.accept(ok)
    with pytest.raises(RuntimeError, match="out of source order"):
        sink.accept(ok.assign(_source_row=[3, 4]))
