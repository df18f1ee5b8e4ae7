"""Column-pruned, row-filtered and batch-streamed reads of the snapshot table for the model stages.

At a million customers x 24 months the snapshot table is ~24M rows x ~136 columns (~26 GB in pandas);
train, evaluate, calibrate and monitor each read only the columns they use (keys, outcome, sample
inputs, the card's features ...), keep only the rows they need (a positional mask built from the
narrow key columns), and run the per-row maps (scoring) over slices sized from
``base.memory_budget``. A pruned or filtered read gives the same pandas dtypes as a full
``pd.read_parquet`` followed by column selection and row filtering: an integer column with nulls
anywhere in the file stays float64 even when the kept rows have none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.domain import SNAPSHOT_KEYS, PipelineError

BATCH_SHARE = 0.05
"""Share of ``base.memory_budget`` one scoring slice may use (a per-row map allocates a few times
its input)."""
MIN_BATCH_ROWS, MAX_BATCH_ROWS = 10_000, 2_000_000
READ_BATCH_ROWS = 65_536


def snapshot_columns(path: Path) -> list[str]:
    """Column names of a Parquet file, in file order (reads the footer only)."""
    return list(pq.ParquetFile(path).schema_arrow.names)


def present(
    path: Path, wanted: Iterable[str], required: Sequence[str] = (), rule: str = ""
) -> list:
    """The ``wanted`` columns the file has, in file order; a missing ``required`` one is an error
    naming the file and ``rule``."""
    names = snapshot_columns(path)
    missing = [c for c in required if c not in names]
    if missing:
        raise PipelineError(
            f"{path}: column(s) {', '.join(missing)} missing (rule: {rule or 'input contract'}); "
            "rerun the stage that writes this file"
        )
    wanted = set(wanted) | set(required)
    return [c for c in names if c in wanted]


def read_columns(
    path: Path, wanted: Iterable[str], required: Sequence[str] = (), rule: str = ""
) -> pd.DataFrame:
    """The ``wanted`` columns present in ``path`` (file order), every row."""
    frame = pd.read_parquet(path, columns=present(path, wanted, required, rule))
    release_arrow_memory()
    return frame


def _nullable_integers(parquet: pq.ParquetFile, columns: list[str]) -> list[str]:
    """Integer columns with a null somewhere in the file (pandas reads them whole as float64)."""
    schema = parquet.schema_arrow
    out = []
    meta = parquet.metadata
    for name in columns:
        if not pa.types.is_integer(schema.field(name).type):
            continue
        idx = schema.get_field_index(name)
        nulls = 0
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(idx).statistics
            if stats is None or not stats.has_null_count:
                nulls = parquet.read(columns=[name]).column(0).null_count
                break
            nulls += stats.null_count
        if nulls:
            out.append(name)
    return out


READ_COLUMN_GROUP = 8
"""Columns of one row group decoded at a time by `read_rows` (a 1M-row group of 8 float64 columns is
64 MB, against 0.8 GB for the ~100 columns of the train stage's fit rows)."""


def _kept_tables(parquet: pq.ParquetFile, path: Path, columns: list[str], keep: np.ndarray):
    """The ``columns`` of the rows where ``keep`` (a boolean mask in file order) is true, one Arrow
    table per row group that keeps any, in file order."""
    keep = np.asarray(keep, dtype=bool)
    if len(keep) != parquet.metadata.num_rows:
        raise PipelineError(
            f"{path}: row mask of {len(keep)} rows for {parquet.metadata.num_rows}"
        )
    schema = pa.schema([parquet.schema_arrow.field(c) for c in columns])
    start = 0
    for group in range(parquet.metadata.num_row_groups):
        mask = keep[start : start + parquet.metadata.row_group(group).num_rows]
        start += len(mask)
        if mask.any():
            yield _kept_rows(parquet, group, columns, pa.array(mask), schema)


def _kept_rows(
    parquet: pq.ParquetFile, group: int, columns: list[str], mask: pa.Array, schema: pa.Schema
) -> pa.Table:
    """The rows of row group ``group`` where ``mask`` holds, read `READ_COLUMN_GROUP` columns at a
    time."""
    arrays = []
    for i in range(0, len(columns), READ_COLUMN_GROUP):
        part = parquet.read_row_group(group, columns=columns[i : i + READ_COLUMN_GROUP])
        arrays.extend(part.filter(mask).columns)
    return pa.Table.from_arrays(arrays, schema=schema)


def _to_pandas(
    parquet: pq.ParquetFile, columns: list[str], parts: list[pa.Table], floats: list[str]
) -> pd.DataFrame:
    """Arrow tables of ``columns`` as one DataFrame, Arrow buffers freed as converted and the pool's
    freed memory returned (`release_arrow_memory`), the integer columns ``floats`` (nulls somewhere
    in the file) as float64."""
    schema = pa.schema([parquet.schema_arrow.field(c) for c in columns])
    table = pa.concat_tables(parts) if parts else schema.empty_table()
    parts.clear()
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    release_arrow_memory()
    for name in floats:
        frame[name] = frame[name].astype("float64")
    return frame


def read_rows(path: Path, columns: Sequence[str], keep: np.ndarray) -> pd.DataFrame:
    """The ``columns`` of the rows where ``keep`` (a boolean mask in file order) is true; dtypes as a
    full read. Each row group is decoded `READ_COLUMN_GROUP` columns at a time and filtered at once,
    so only one such slice of the file and the kept rows are ever held."""
    parquet, columns = pq.ParquetFile(path), list(columns)
    parts = list(_kept_tables(parquet, path, columns, keep))
    return _to_pandas(parquet, columns, parts, _nullable_integers(parquet, columns))


def map_rows(
    path: Path,
    columns: Sequence[str],
    keep: np.ndarray,
    fn: Callable[[pd.DataFrame], pd.DataFrame],
    rows: int | None = None,
) -> pd.DataFrame:
    """``fn(read_rows(path, columns, keep))`` for a per-row map ``fn`` (e.g. scoring, then keeping
    a few columns), computed on slices of at least ``rows`` kept rows (whole row groups; None: one
    slice) as they are read, so that the wide ``columns`` are held in pandas one slice at a time.
    Each slice has the dtypes of a full read; the results are concatenated in file order."""
    parquet, columns = pq.ParquetFile(path), list(columns)
    floats = _nullable_integers(parquet, columns)
    rows = len(keep) if rows is None else rows
    parts, held, out = [], 0, []
    for table in _kept_tables(parquet, path, columns, keep):
        parts.append(table)
        held += table.num_rows
        if held >= rows:
            out.append(fn(_to_pandas(parquet, columns, parts, floats)))
            held = 0
    if parts or not out:
        out.append(fn(_to_pandas(parquet, columns, parts, floats)))
    return out[0] if len(out) == 1 else pd.concat(out, ignore_index=True)


def release_arrow_memory() -> None:
    """Return the memory the Arrow pool holds but no longer uses to the system: its allocator keeps
    freed pages for reuse, which otherwise stays in the stage's resident memory after a large read."""
    pa.default_memory_pool().release_unused()


def batch_rows(budget_bytes: int, bytes_per_row: int) -> int:
    """Rows per scoring slice: `BATCH_SHARE` of the budget over the bytes a row costs."""
    rows = int(budget_bytes * BATCH_SHARE / max(bytes_per_row, 1))
    return int(min(max(rows, MIN_BATCH_ROWS), MAX_BATCH_ROWS))


def map_batches(
    fn: Callable[[pd.DataFrame], pd.DataFrame | pd.Series | np.ndarray],
    frame: pd.DataFrame,
    rows: int,
) -> pd.DataFrame | pd.Series | np.ndarray:
    """``fn`` applied to consecutive slices of ``frame`` of ``rows`` rows, the results concatenated
    in order (``fn`` must be a per-row map: its result on a slice is the slice of its result)."""
    if len(frame) <= rows:
        return fn(frame)
    parts = [fn(frame.iloc[i : i + rows]) for i in range(0, len(frame), rows)]
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    return pd.concat(parts, copy=False)


def iter_frames(path: Path, columns: Sequence[str], rows: int):
    """Consecutive slices of ``rows`` rows of the ``columns`` (file order) as DataFrames, integer
    columns with a null anywhere in the file as float64 in every slice."""
    parquet = pq.ParquetFile(path)
    columns = list(columns)
    floats = _nullable_integers(parquet, columns)
    for table in _slices(parquet, columns, rows):
        frame = table.to_pandas()
        del table
        for name in floats:
            frame[name] = frame[name].astype("float64")
        yield frame
        release_arrow_memory()


def _slices(parquet: pq.ParquetFile, columns: list[str], rows: int):
    """Arrow tables of ``rows`` consecutive rows (the last one shorter), read with one reader per
    row group: a single reader over the whole file keeps what it read of every row group until it
    is exhausted (at 1M customers, 14 row groups of ~0.2 GB of features each)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for group in range(parquet.metadata.num_row_groups):
        for batch in parquet.iter_batches(batch_size=rows, columns=columns, row_groups=[group]):
            pending.append(batch)
            held += batch.num_rows
            while held >= rows:
                table = pa.Table.from_batches(pending)
                yield table.slice(0, rows)
                rest = table.slice(rows)
                pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


def same_keys(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """True when ``a`` and ``b`` hold the same snapshot keys (``customer_id``, ``as_of_date``) row by
    row: the test for reading one table's rows off another by position instead of joining on keys."""
    return len(a) == len(b) and all(
        np.array_equal(a[k].to_numpy(), b[k].to_numpy()) for k in SNAPSHOT_KEYS
    )


def follows_file_order(path: Path, frame: pd.DataFrame) -> bool:
    """True when ``frame``'s keys (``customer_id``, ``as_of_date``) are the snapshot file's, row by
    row (train writes samples.parquet so), compared in slices."""
    parquet = pq.ParquetFile(path)
    if parquet.metadata.num_rows != len(frame):
        return False
    start = 0
    for batch in parquet.iter_batches(
        batch_size=READ_BATCH_ROWS * 16, columns=list(SNAPSHOT_KEYS)
    ):
        part = batch.to_pandas()
        other = frame.iloc[start : start + len(part)]
        start += len(part)
        if not same_keys(part, other):
            return False
    return True


def rows_in_samples(path: Path, samples: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """Boolean mask, in the snapshot file's row order, of the snapshots whose key
    (``customer_id``, ``as_of_date``) is in ``samples`` with ``sample`` in ``names``: read off
    ``samples`` when it follows the file's row order, else by a merge on the keys."""
    chosen = samples["sample"].isin(list(names)).to_numpy()
    if follows_file_order(path, samples):
        return chosen
    keys = list(SNAPSHOT_KEYS)
    wanted = samples.loc[chosen, keys]
    frame = pd.read_parquet(path, columns=keys)
    return frame.merge(wanted, on=keys, how="left", indicator=True)["_merge"].eq("both").to_numpy()


def population_rows(path: Path) -> np.ndarray:
    """Mask, in file order, of the snapshots in the scoring population: accounts already in default
    at the as-of date are not part of it (read from the ``label`` column alone)."""
    if "label" not in snapshot_columns(path):
        return np.ones(pq.ParquetFile(path).metadata.num_rows, dtype=bool)
    return outside_default(pd.read_parquet(path, columns=["label"]))


def outside_default(snapshots: pd.DataFrame) -> np.ndarray:
    """Mask of the rows not already in default at the as-of date (``label`` != ``in_default``; every
    row when there is no ``label``): the scoring population."""
    if "label" not in snapshots:
        return np.ones(len(snapshots), dtype=bool)
    return (snapshots["label"] != "in_default").to_numpy()


def sort_by_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` sorted by ``customer_id`` and then ``as_of_date`` (stable)."""
    return frame.sort_values(list(SNAPSHOT_KEYS), kind="mergesort").reset_index(drop=True)


def in_key_order(frame: pd.DataFrame) -> bool:
    """True when the rows run by ``customer_id`` and then ``as_of_date``."""
    ids, dates = frame["customer_id"].to_numpy(), frame["as_of_date"].to_numpy()
    later = (ids[1:] > ids[:-1]) | ((ids[1:] == ids[:-1]) & (dates[1:] >= dates[:-1]))
    return bool(later.all())


def samples_of(
    scored: pd.DataFrame, samples: pd.DataFrame, path: Path, rows: np.ndarray
) -> pd.DataFrame:
    """``scored`` (the population ``rows`` of the file at ``path``, in file order) with each row's
    ``sample``: read off ``samples`` at the same positions when they follow the file's order (train
    writes them so), else joined on the keys."""
    if follows_file_order(path, samples):
        kept = samples[rows].reset_index(drop=True)
        if same_keys(kept, scored):
            out = scored.copy(deep=False)
            out["sample"] = kept["sample"].to_numpy()
            return out
    return scored.merge(
        samples[[*SNAPSHOT_KEYS, "sample"]], on=list(SNAPSHOT_KEYS), how="left", validate="1:1"
    )
