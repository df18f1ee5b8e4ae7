"""Reading source files: encoding detection, header checks and chunked (streamed) reads of CSV and
Parquet.

A CSV file is never loaded whole: `TableSource.chunks()` yields ``chunksize`` rows at a time, all
as text, with the canonical column names (after ``column_map``) plus ``_source_file`` and
``_source_row`` (the row number a spreadsheet shows: the header is row 1, the first record row 2;
for Parquet, the 1-based record number).
"""

from __future__ import annotations

import codecs
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from pipeline.config import PipelineError

BLOCK = 1 << 20
NA_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A"]


@dataclass
class TableSource:
    """One canonical table from a source: its files and a factory for its chunks."""

    table: str
    files: list[str]
    chunks: Callable[[], Iterator[pd.DataFrame]]
    unknown_columns: list[str] = field(default_factory=list)
    encoding: dict[str, str] = field(default_factory=dict)


def detect_encoding(path: Path, declared: str = "auto") -> str:
    """BOM → ``utf-8-sig``; else ``utf-8`` if all of the file decodes; else ``gb18030``.

    The whole file is checked in 1 MB blocks with an incremental decoder (streamed; a multi-byte
    character split across blocks is fine). A file that decodes as neither raises PipelineError.
    """
    if declared and declared != "auto":
        return declared
    with path.open("rb") as fh:
        if fh.read(3) == codecs.BOM_UTF8:
            return "utf-8-sig"
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        offset = 0
        try:
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(BLOCK), b""):
                    decoder.decode(block)
                    offset += len(block)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise PipelineError(
        f"{path}: row ?, column ?, rule readable_encoding: the file is neither UTF-8 (with or "
        "without BOM) nor GBK/GB18030; re-export it as UTF-8 CSV or set ingest.encoding in "
        "params.yaml"
    )


def _rename(columns: list[str], mapping: dict[str, str], path: Path) -> list[str]:
    names = [mapping.get(str(c).strip(), str(c).strip()) for c in columns]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise PipelineError(
                f"{path}: row 1, column {name}, rule unique_header: two source columns map to "
                f"'{name}'; fix ingest.column_map or the file header"
            )
        seen.add(name)
    return names


def open_table(
    path: Path,
    table: str,
    known: list[str],
    required: tuple[str, ...],
    column_map: dict[str, str] | None = None,
    chunksize: int = 500_000,
    encoding: str = "auto",
    allow_no_rows: bool = False,
) -> TableSource:
    """Check a source file's header and return a streamed `TableSource` of its known columns.

    Raises PipelineError for a missing file, an empty file, an unreadable encoding, a missing
    required column or (unless ``allow_no_rows``) a file with a header but no data rows.
    """
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: file not found; name it in params.yaml ingest.files.{table}")
    if path.stat().st_size == 0:
        raise PipelineError(
            f"{path}: row 1, column ?, rule not_empty: the file is empty (0 bytes)"
        )
    mapping = {str(k).strip(): v for k, v in (column_map or {}).items()}
    is_parquet = path.suffix.lower() in (".parquet", ".pq")
    if is_parquet:
        enc = "parquet"
        header = list(pq.ParquetFile(path).schema_arrow.names)
        n_rows = pq.ParquetFile(path).metadata.num_rows
    else:
        enc = detect_encoding(path, encoding)
        try:
            header = list(pd.read_csv(path, nrows=0, encoding=enc).columns)
        except pd.errors.EmptyDataError:
            raise PipelineError(
                f"{path}: row 1, column ?, rule not_empty: the file has no header row"
            ) from None
        n_rows = None
    names = _rename(header, mapping, path)
    missing = [c for c in required if c not in names]
    if missing:
        raise PipelineError(
            f"{path}: row 1, column {missing[0]}, rule required_column: required column(s) "
            f"{', '.join(missing)} not found in header {header}; add them or map them with "
            f"ingest.column_map.{table} in params.yaml"
        )
    unknown = [h for h, c in zip(header, names, strict=True) if c not in known]
    rename = dict(zip(header, names, strict=True))
    usecols = [h for h, c in zip(header, names, strict=True) if c in known]
    if is_parquet:
        chunks = lambda: _parquet_chunks(path, usecols, rename, chunksize)  # noqa: E731
    else:
        chunks = lambda: _csv_chunks(path, enc, usecols, rename, chunksize)  # noqa: E731
    source = TableSource(table, [path.name], chunks, unknown, {path.name: enc})
    if not allow_no_rows:
        if n_rows is None:
            first = next(_csv_chunks(path, enc, usecols, rename, 1), None)
            n_rows = 0 if first is None else len(first)
        if n_rows == 0:
            raise PipelineError(
                f"{path}: row 2, column ?, rule has_data_rows: the file has a header but no "
                "data rows"
            )
    return source


def _csv_chunks(
    path: Path, enc: str, usecols: list[str], rename: dict[str, str], chunksize: int
) -> Iterator[pd.DataFrame]:
    """Read every column (no ``usecols``): a row with more fields than the header (an unquoted
    comma in an amount) then stops the stage instead of shifting or dropping values silently."""
    start = 2
    try:
        reader = pd.read_csv(
            path,
            encoding=enc,
            dtype=str,
            index_col=False,
            chunksize=chunksize,
            keep_default_na=False,
            na_values=NA_VALUES,
            skipinitialspace=True,
        )
        for chunk in _strict(reader):
            chunk = chunk[usecols].rename(columns=rename)
            rows = pd.RangeIndex(start, start + len(chunk))
            chunk.index = rows
            chunk["_source_file"] = path.name
            chunk["_source_row"] = rows.to_numpy()
            start += len(chunk)
            yield chunk
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise PipelineError(
            f"{path}: row ≥{start}, column ?, rule field_count: {exc}; quote values that contain "
            "the delimiter (e.g. 1,000.50) or export without thousands separators"
        ) from None


def _strict(reader: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Turn pandas' ParserWarning (rows longer than the header were truncated) into an error."""
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            try:
                chunk = next(reader)
            except StopIteration:
                return
            except pd.errors.ParserWarning as exc:
                raise pd.errors.ParserError(
                    f"rows have more fields than the header ({exc})"
                ) from None
        yield chunk


def _parquet_chunks(
    path: Path, usecols: list[str], rename: dict[str, str], chunksize: int
) -> Iterator[pd.DataFrame]:
    start = 1
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunksize, columns=usecols):
        chunk = batch.to_pandas().rename(columns=rename)
        rows = pd.RangeIndex(start, start + len(chunk))
        chunk.index = rows
        chunk["_source_file"] = path.name
        chunk["_source_row"] = rows.to_numpy()
        start += len(chunk)
        yield chunk
