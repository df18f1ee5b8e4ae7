"""Deterministic, atomic writers: byte-identical outputs across runs (a second ``dvc repro`` changes
nothing), and never a half-written file.

Every writer here writes to a temporary file in the target's directory, flushes it to disk and then
``os.replace``-s it over the target, so a reader sees the previous complete file or the new complete
file, never a part. Inside `stage_outputs` (opened by `pipeline.config.run_stage` for every stage) the
replaces are deferred to the end of the stage: a stage killed while it computes or writes leaves all
of its previous outputs untouched. At commit the stage's manifest (``reports/<ds>/<stage>/manifest.json``:
size, SHA-256 and Parquet row count of every output) is first marked incomplete, the outputs are
moved into place, then the manifest is written complete. `verify_recorded` (called by
`pipeline.config.require_files`) refuses an input whose manifest is incomplete or disagrees with the
file, so a stage killed in the middle of its commit is rebuilt, never read.

``PIPELINE_FAULT_AT`` (tests only) kills the process with SIGKILL at a named point: ``write:<n>``
(during the n-th output write, after part of it is on disk), ``before_commit``, ``commit:<n>`` (after
n outputs were moved into place) and ``after_commit``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

JSON_SIGNIFICANT_DIGITS = (
    10  # floats in JSON artefacts: stable across BLAS builds and thread counts
)
TMP_MARK = ".~tmp"
FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")
MANIFEST_KIND = "stage_manifest"
MANIFEST_GLOB = "reports/*/*/manifest.json"  # pipeline.config.Paths.manifest


# ----------------------------------------------------------------------------- fault injection
_counters: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Test hook: SIGKILL this process when ``PIPELINE_FAULT_AT`` names this point."""
    wanted = os.environ.get("PIPELINE_FAULT_AT")
    if not wanted:
        return
    if name in ("write", "commit"):
        _counters[name] = _counters.get(name, 0) + 1
        name = f"{name}:{_counters[name]}"
    if name == wanted:
        os.kill(os.getpid(), signal.SIGKILL)


# ----------------------------------------------------------------------------- transactions
class _Transaction:
    """Outputs written during one stage: (temporary file, target) pairs, moved into place at commit."""

    def __init__(self, manifest: Path | None) -> None:
        self.manifest = manifest
        self.pending: list[tuple[Path, Path]] = []
        self.created: list[Path] = []

    def add(self, tmp: Path, target: Path, created: list[Path]) -> None:
        self.pending = [(t, d) for t, d in self.pending if d != target]
        self.pending.append((tmp, target))
        self.created += created

    def discard(self) -> None:
        for tmp, _ in self.pending:
            tmp.unlink(missing_ok=True)
        self.pending.clear()
        _remove_empty(self.created)

    def commit(self) -> None:
        fault_point("before_commit")
        outputs = {target: _describe(tmp) for tmp, target in self.pending}
        if self.manifest is not None:
            _replace_now(self.manifest, _manifest_text(outputs, self.manifest, complete=False))
        for tmp, target in self.pending:
            os.replace(tmp, target)
            fault_point("commit")
        _fsync_dirs({target.parent for _, target in self.pending})
        for directory in {target.parent for _, target in self.pending}:
            remove_stale_temporaries(directory)
        self.pending.clear()
        if self.manifest is not None:
            _replace_now(self.manifest, _manifest_text(outputs, self.manifest, complete=True))
        fault_point("after_commit")


_active: list[_Transaction] = []


@contextlib.contextmanager
def stage_outputs(manifest: Path | None = None) -> Iterator[_Transaction]:
    """Defer every output of the enclosed code to one commit at the end (see the module docstring).

    On an exception the temporary files are removed and the previous outputs stay as they were.
    """
    tx = _Transaction(Path(manifest) if manifest else None)
    _active.append(tx)
    try:
        yield tx
    except BaseException:
        _active.remove(tx)
        tx.discard()
        raise
    _active.remove(tx)
    tx.commit()


def _make_parents(path: Path) -> list[Path]:
    """Create ``path``'s missing parent folders; return them, outermost first."""
    missing = [p for p in reversed(path.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed write created, innermost first, where nothing else was written."""
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_MARK}")


def remove_stale_temporaries(directory: Path) -> None:
    """Delete temporary files a killed writer left in ``directory``."""
    if directory.is_dir():
        for stale in directory.glob(f".*{TMP_MARK}"):
            with contextlib.suppress(OSError):
                stale.unlink()


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_dirs(dirs: set[Path]) -> None:
    for d in dirs:
        _fsync(d)


def _replace_now(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    tmp.write_text(text, encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` through (any writer: DuckDB COPY, savefig, openpyxl).

    When the block ends normally the file is flushed and moved into place (now, or at the end of the
    enclosing `stage_outputs`); on an exception it is deleted and ``path`` is left untouched.
    """
    path = Path(path)
    created = _make_parents(path)
    tmp = _tmp_name(path)
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: the writer produced no file for {path}")
        fault_point("write")
        _fsync(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_empty(created)
        raise
    if _active:
        _active[-1].add(tmp, path, created)
    else:
        os.replace(tmp, path)


def write_bytes(data: bytes, path: Path | str) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(text: str, path: Path | str) -> None:
    """Write UTF-8 text to ``path`` atomically."""
    write_bytes(text.encode("utf-8"), path)


def save_figure(fig, path: Path | str, **kwargs: Any) -> None:
    """``fig.savefig`` through a temporary file (the format taken from ``path``'s suffix)."""
    fmt = kwargs.pop("format", Path(path).suffix.lstrip(".") or "png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, **kwargs)


# ----------------------------------------------------------------------------- manifests
def _describe(path: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
    if path.name.endswith((".parquet", f".parquet.{os.getpid()}{TMP_MARK}")):
        with contextlib.suppress(Exception):
            info["rows"] = pq.ParquetFile(path).metadata.num_rows
    return info


def _root_of(manifest: Path) -> Path:
    # manifests live at <root>/reports/<ds>/<stage>/manifest.json
    return manifest.parents[3]


def _manifest_text(outputs: dict[Path, dict[str, Any]], manifest: Path, complete: bool) -> str:
    root = _root_of(manifest)
    entries = {}
    for target, info in outputs.items():
        try:
            key = target.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            key = target.resolve().as_posix()
        entries[key] = info
    body = {"kind": MANIFEST_KIND, "complete": complete, "outputs": dict(sorted(entries.items()))}
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def stage_manifest_path(root: Path, dataset: str, stage: str) -> Path:
    """Where a stage's manifest lives (`pipeline.config.Paths.manifest`)."""
    from pipeline.config import Paths

    return Paths(dataset, Path(root)).manifest(stage)


def verify_recorded(path: Path | str, root: Path) -> str | None:
    """Check ``path`` against the manifest of the stage that wrote it.

    Returns None when it agrees (or when no manifest under ``root`` records it, e.g. a hand-made
    input), else the reason to refuse it.
    """
    path = Path(path)
    try:
        key = path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return None
    for manifest in sorted(Path(root).glob(MANIFEST_GLOB)):
        try:
            body = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        entry = (body.get("outputs") or {}).get(key)
        if entry is None:
            continue
        where = f"{manifest.relative_to(root).as_posix()}"
        if not body.get("complete"):
            return f"the stage that writes it stopped while replacing its outputs ({where} incomplete)"
        if not path.is_file():
            return f"recorded in {where} but missing"
        if path.stat().st_size != entry.get("bytes"):
            return (
                f"{path.stat().st_size} bytes, but {where} records {entry.get('bytes')}: "
                "the file was changed or partly written after its stage finished"
            )
        if "rows" in entry:
            try:
                rows = pq.ParquetFile(path).metadata.num_rows
            except Exception as exc:  # noqa: BLE001 - any unreadable Parquet is a refusal
                return f"not a readable Parquet file ({type(exc).__name__})"
            if rows != entry["rows"]:
                return f"{rows} rows, but {where} records {entry['rows']}"
        if file_sha256(path) != entry.get("sha256"):
            return f"content hash differs from {where}: the file changed after its stage finished"
        return None
    return None


# ----------------------------------------------------------------------------- writers
def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` as Parquet with no pandas index metadata and no timestamps, so bytes are stable."""
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    table = table.replace_schema_metadata(None)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)


PARQUET_ROW_GROUP = 1024 * 1024
"""Rows per row group: pyarrow's ``write_table`` default, so a streamed file has the row groups (and
the bytes) of the same table written at once by `write_parquet`."""


class ParquetStream:
    """A Parquet file written chunk by chunk with a schema fixed up front (never inferred per chunk).

    Chunks are buffered to whole row groups of `PARQUET_ROW_GROUP` rows, so at most one row group is
    held and the file is byte-identical to `write_parquet` of the concatenated frame. ``null_if_empty``
    names text columns that are written as the null type when the whole table has no value in them
    (what `write_parquet` infers for an all-null object column); a file already past its first row
    group is then rewritten one row group at a time."""

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        null_if_empty: tuple[str, ...] = (),
        row_group_size: int = PARQUET_ROW_GROUP,
    ) -> None:
        self.path, self.schema, self.row_group_size = Path(path), schema, row_group_size
        self.rows = 0
        self._empty = {c for c in null_if_empty if c in schema.names}
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._writer: pq.ParquetWriter | None = None
        self._closed = False

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame`` (the schema's columns, in any dtype pyarrow converts to the schema's)."""
        if frame.empty:
            return
        if self._closed:
            raise RuntimeError(f"{self.path}: write after close")
        table = pa.Table.from_pandas(
            frame[self.schema.names], schema=self.schema, preserve_index=False
        ).replace_schema_metadata(None)
        self._empty = {c for c in self._empty if table.column(c).null_count == len(table)}
        self._buffer.append(table)
        self._buffered += len(table)
        self.rows += len(table)
        while self._buffered >= self.row_group_size:
            self._flush(self.row_group_size)

    def _flush(self, n: int) -> None:
        table = pa.concat_tables(self._buffer)
        self._buffer = [table.slice(n)] if len(table) > n else []
        self._buffered = len(table) - n
        if self._writer is None:
            self._writer = pq.ParquetWriter(
                self.path, self.schema, compression="zstd", write_statistics=True
            )
        self._writer.write_table(table.slice(0, n).combine_chunks(), row_group_size=n)

    def close(self) -> None:
        """Write what is buffered and finish the file (once: later calls do nothing). The file is
        complete on disk but moved into place only when its `parquet_stream` block ends."""
        if self._closed:
            return
        self._closed = True
        if self._writer is None:
            table = (
                pa.concat_tables(self._buffer).combine_chunks()
                if self._buffer
                else self.schema.empty_table()
            )
            table = _nulls_for(table, self._empty)
            pq.write_table(table, self.path, compression="zstd", write_statistics=True)
            return
        if self._buffered:
            self._flush(self._buffered)
        self._writer.close()
        if self._empty:
            _rewrite_with_nulls(self.path, self._empty)

    def abort(self) -> None:
        """Release the file of a stream that will not be completed."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()


def _nulls_for(table: pa.Table, columns: set[str]) -> pa.Table:
    for name in sorted(columns):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, pa.field(name, pa.null()), pa.nulls(len(table)))
    return table


def _rewrite_with_nulls(path: Path, columns: set[str]) -> None:
    source = pq.ParquetFile(path)
    tmp = path.with_name(path.name + ".nulls")
    writer = None
    try:
        for i in range(source.num_row_groups):
            table = _nulls_for(source.read_row_group(i), columns)
            if writer is None:
                writer = pq.ParquetWriter(
                    tmp, table.schema, compression="zstd", write_statistics=True
                )
            writer.write_table(table, row_group_size=len(table))
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)


@contextlib.contextmanager
def parquet_stream(
    path: Path | str, schema: pa.Schema, null_if_empty: tuple[str, ...] = ()
) -> Iterator[ParquetStream]:
    """Stream a Parquet file to ``path`` through `atomic_path` (see `ParquetStream`): the file is
    moved into place only when the block ends normally, and left untouched on an exception."""
    with atomic_path(path) as tmp:
        stream = ParquetStream(tmp, schema, null_if_empty)
        try:
            yield stream
        except BaseException:
            stream.abort()
            raise
        stream.close()


def stable_float(value: float, digits: int = JSON_SIGNIFICANT_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (the last digits of a float sum differ
    between BLAS builds and thread counts; ten digits are far below any reported precision)."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return None if math.isnan(value) or math.isinf(value) else stable_float(value)
    if isinstance(obj, (pd.Timestamp,)):
        return obj.strftime("%Y-%m-%d") if obj == obj.normalize() else obj.isoformat()
    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, Path):
        return obj.as_posix()
    return obj


def json_text(obj: Any) -> str:
    """The JSON text `write_json` writes: sorted keys, floats at `JSON_SIGNIFICANT_DIGITS`
    significant digits, NaN/inf as null, a trailing newline."""
    return json.dumps(_jsonable(obj), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stored_form(obj: Any) -> Any:
    """``obj`` as `write_json` stores it and `read_json` returns it (floats at
    `JSON_SIGNIFICANT_DIGITS`): a fitted spec kept in this form scores in memory exactly as its file."""
    return json.loads(json_text(obj))


def write_json(obj: Any, path: Path) -> None:
    """Write JSON (see `json_text`) atomically."""
    write_text(json_text(obj), path)


def write_run_log(obj: Any, path: Path) -> None:
    """Write a run log (timings and other run-dependent figures) now, outside the stage's commit and
    manifest: it is not an output, so it never changes a recorded hash."""
    _replace_now(Path(path), json_text(obj))


def read_json(path: Path) -> Any:
    """Read a JSON artefact."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula (leading ``=``, ``+``, ``-``, ``@``, tab or
    carriage return) prefixed with a single quote, as OWASP advises for CSV exports; numbers (and
    text that is a plain number such as ``-12.5``) are left alone so they stay numbers."""
    out = df.copy()
    for column in out.columns:
        s = out[column]
        if not (
            pd.api.types.is_object_dtype(s)
            or pd.api.types.is_string_dtype(s)
            or isinstance(s.dtype, pd.CategoricalDtype)
        ):
            continue
        text = s.astype(object)
        is_text = text.map(lambda v: isinstance(v, str))
        if not is_text.any():
            continue
        risky = is_text & text.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_LEAD))
        numeric = pd.to_numeric(text.where(risky), errors="coerce").notna()
        risky &= ~numeric
        if risky.any():
            out[column] = text.where(~risky, "'" + text.where(risky).astype(str))
    out.columns = [
        "'" + c if isinstance(c, str) and c.startswith(FORMULA_LEAD) else c for c in out.columns
    ]
    return out


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Write CSV (UTF-8, no index, floats at 10 significant digits, formula-leading text escaped)
    atomically, for dvc plots and spreadsheets."""
    text = spreadsheet_safe(df).to_csv(index=False, lineterminator="\n", float_format="%.10g")
    write_text(text, path)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, streamed."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def frame_sha256(df: pd.DataFrame) -> str:
    """Order-sensitive content hash of a DataFrame (values and column names)."""
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    digest = hashlib.sha256(hashed.tobytes())
    digest.update("|".join(map(str, df.columns)).encode())
    return digest.hexdigest()


def code_version(stage: str | None = None) -> str:
    """The stamp stored in every artefact: the package version plus a hash of the stage's own code
    (its import closure within ``pipeline/``, `pipeline.stages.stage_code`), so an edit to one
    module re-stamps only the stages that import it.

    ``stage`` defaults to the running stage (`pipeline.stages.running_stage`: the innermost stage
    module on the call stack, whether run as ``python -m pipeline.<stage>`` or its ``main`` called
    from a test); outside any stage the hash covers the whole package.
    """
    from pipeline.stages import running_stage, stage_code_version

    return stage_code_version(stage or running_stage())
