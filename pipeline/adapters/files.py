"""Reading source files: encoding detection, header checks and chunked (streamed) reads of CSV and
Parquet.

A CSV file is never loaded whole: `TableSource.chunks()` yields ``chunksize`` rows at a time, all
as text, with the canonical column names (after ``column_map``) plus ``_source_file`` and
``_source_row`` (the row number a spreadsheet shows: the header is row 1, the first record row 2;
for Parquet, the 1-based record number).
"""

from __future__ import annotations

import codecs
import io
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from pipeline.domain import PipelineError

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
    """The file's encoding, decided by its lines, never by one row.

    A declared encoding (``ingest.encoding``) wins. Else: a UTF-8 BOM → ``utf-8-sig``; else each line
    is classed as ASCII, valid non-ASCII UTF-8, or not UTF-8 (streamed in 1 MB blocks). Lines of valid
    non-ASCII UTF-8 at least as many as the lines that are not UTF-8 → ``utf-8`` (one GBK row in a
    UTF-8 file does not flip it; that row is quarantined with rule ``readable_encoding``); else
    ``gb18030`` when some of them decode as GB18030 (lines that do not are quarantined), else
    ``utf-8``. A UTF-16/32 file (BOM or NUL in the first bytes) raises PipelineError.
    """
    if declared and declared != "auto":
        try:
            codecs.lookup(declared)
        except LookupError:
            raise PipelineError(
                f"params.yaml: ingest.encoding '{declared}' is not a known encoding, rule "
                "known_encoding (use auto, utf-8, gb18030, ...)"
            ) from None
        return declared
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head[:2]:
        raise PipelineError(
            f"{path}: row 1, column ?, rule readable_encoding: the file is UTF-16/UTF-32, not UTF-8 "
            "or GBK/GB18030; re-export it as UTF-8 CSV or set ingest.encoding in params.yaml"
        )
    utf8_lines, bad_lines, gb_ok = 0, 0, 0
    with path.open("rb") as fh:
        for line in fh:
            if line.isascii():
                continue
            try:
                line.decode("utf-8")
                utf8_lines += 1
            except UnicodeDecodeError:
                bad_lines += 1
                try:
                    line.decode("gb18030")
                    gb_ok += 1
                except UnicodeDecodeError:
                    pass
    if bad_lines == 0 or utf8_lines >= bad_lines or gb_ok == 0:
        return "utf-8"
    return "gb18030"


class _MarkControlBytes(io.RawIOBase):
    """A binary file that replaces NUL bytes with SUB (0x1A) as it is read.

    pandas' C parser ends a field at a NUL (``12\\x00345`` would load as 12); SUB is ASCII in UTF-8
    and GB18030 alike, so the cell keeps a visible control character and is quarantined.
    """

    def __init__(self, path: Path) -> None:
        self._fh = path.open("rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._fh.read(len(buffer))
        n = len(data)
        buffer[:n] = data.replace(b"\x00", b"\x1a")
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def printable(text: str) -> str:
    """Text with bytes that did not decode (lone surrogates) shown as ``\\xNN``: storable as UTF-8."""
    if not UNDECODABLE.search(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


CONTROL = re.compile("[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]")
UNDECODABLE = re.compile("[\\udc80-\\udcff]")
SUSPECT = re.compile("[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\udc80-\\udcff]")


def row_problems(chunk: pd.DataFrame) -> pd.Series:
    """Per row, the first problem of its raw text: ``readable_encoding`` (bytes that do not decode
    in the file's encoding) or ``control_character`` (NUL and other control bytes), as
    ``rule|column|reason``; None for a clean row."""
    out = pd.Series(None, index=chunk.index, dtype=object)
    for column in chunk.columns:
        if column.startswith("_"):
            continue
        s = chunk[column]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        if _clean(s):
            continue
        hit = s.str.contains(SUSPECT, na=False).to_numpy(bool) & out.isna().to_numpy()
        for i in map(int, hit.nonzero()[0]):
            value = str(s.iloc[i])
            rule = "readable_encoding" if UNDECODABLE.search(value) else "control_character"
            out.iloc[i] = f"{rule}|{column}|{ascii(value)[:60]}"
    return out


def _clean(s: pd.Series) -> bool:
    """No value of the column has a suspect character: one regex search over the joined text (the
    separator is not suspect), instead of one per value."""
    try:
        return SUSPECT.search("\n".join(s.dropna().to_numpy(object))) is None
    except TypeError:  # values that are not text: checked one by one
        return False


def _no_repeated_header(path: Path, enc: str) -> None:
    """pandas renames a repeated header to ``name.1``; a repeated column is a file error."""
    import csv

    with path.open(encoding=enc, errors="surrogateescape", newline="") as fh:
        header = next(csv.reader(fh), [])
    seen: set[str] = set()
    for name in (h.strip() for h in header):
        if name and name in seen:
            raise PipelineError(
                f"{path}: row 1, column {name}, rule unique_header: the column appears twice; keep "
                "one (the other would be dropped or read as another column)"
            )
        seen.add(name)


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
            header = list(
                pd.read_csv(path, nrows=0, encoding=enc, encoding_errors="surrogateescape").columns
            )
        except pd.errors.EmptyDataError:
            raise PipelineError(
                f"{path}: row 1, column ?, rule not_empty: the file has no header row"
            ) from None
        n_rows = None
    if not is_parquet:
        _no_repeated_header(path, enc)
        header = [printable(str(h).strip()) for h in header]
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
            first = next(_csv_chunks(path, enc, usecols, rename, 2), None)
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
    comma in an amount) then stops the stage instead of shifting or dropping values silently.

    Each chunk carries ``_source_problem`` (see `row_problems`); when the file does not end with a
    line break its last row is marked ``truncated_row`` (a file cut off mid-amount would otherwise
    load ``...,12`` as 12)."""
    start = 2
    complete = _ends_with_newline(path)
    try:
        reader = pd.read_csv(
            _MarkControlBytes(path),
            encoding=enc,
            encoding_errors="surrogateescape",
            dtype=str,
            index_col=False,
            chunksize=chunksize,
            keep_default_na=False,
            na_values=NA_VALUES,
            skipinitialspace=True,
        )
        previous = None
        for chunk in _strict(reader):
            if previous is not None:
                yield previous
            chunk.columns = [printable(str(c).strip()) for c in chunk.columns]
            problems = row_problems(chunk)
            chunk = chunk[usecols].rename(columns=rename)
            rows = pd.RangeIndex(start, start + len(chunk))
            chunk.index = rows
            chunk["_source_file"] = path.name
            chunk["_source_row"] = rows.to_numpy()
            chunk["_source_problem"] = problems.to_numpy()
            start += len(chunk)
            previous = chunk
        if previous is not None:
            if not complete and len(previous):
                last = previous.index[-1]
                if pd.isna(previous.at[last, "_source_problem"]):
                    previous.at[last, "_source_problem"] = (
                        "truncated_row|?|the file ends without a line break: the last row may be "
                        "cut off (re-export the file, or end it with a line break if the row is "
                        "complete)"
                    )
            yield previous
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise PipelineError(
            f"{path}: row ≥{start}, column ?, rule field_count: {_first_line(exc)}; quote values "
            "that contain the delimiter (e.g. 1,000.50) or export without thousands separators"
        ) from None


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(0, 2)
        if fh.tell() == 0:
            return True
        fh.seek(-1, 2)
        return fh.read(1) in (b"\n", b"\r")


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
        chunk["_source_problem"] = row_problems(chunk).to_numpy()
        start += len(chunk)
        yield chunk
