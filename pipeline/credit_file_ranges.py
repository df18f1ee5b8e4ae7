"""The credit-file tables ingested in ranges of customers: memory bounded by a range, not by the files.

Every credit-file rule works within one customer: the row rules per row, the timeline checks per
customer (`credit_file.timeline_failures`), the duplicate checks on keys that hold ``customer_id``
(`credit_file.duplicate_failures`), the history completion per customer, the Delphi consensus per
customer and panel and its merge per customer (`pipeline.delphi`). So the customers are cut into
ranges of their ids (in the string order pandas sorts by) and the whole-table path runs on each range.

Each table is read once through the same reader (`pipeline.adapters.files.open_table`, so parsing is
unchanged) and its rows are spilled, as read, to a temporary pickle file per range: the source may be
in any order, and the rows of one customer may be anywhere in it. Rows are routed by their
``customer_id`` as text, the value the rules see; a row without one can only fail its row rules and
goes to the first range. Each range is then loaded and validated (`credit_file.validate_table`) and
assembled (`credit_file.assemble_credit_file`); the accepted tables, sorted by customer first, are
streamed range after range (`pipeline.io.parquet_stream`) and so are the files of the whole-table path.
Quarantined rows (few) are gathered and sorted by source row, the whole-table order; the report's counts
are sums over ranges, the Delphi agreement medians are taken over the gathered panels.

With one range (no budget, or a budget the files fit) the whole-table path runs unchanged.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.adapters.files import open_table
from pipeline.credit_file import (
    CREDIT_FILE_TABLES,
    META,
    _absent,
    _counts,
    assemble_credit_file,
    ingest_credit_file,
    validate_table,
)
from pipeline.delphi import agreement_summary
from pipeline.io import parquet_stream, write_parquet
from pipeline.schemas import COLUMNS, HISTORY_ATTRIBUTES, REQUIRED

RANGE_SHARE = 0.5
"""Share of the memory left under ``base.memory_budget`` (the budget less what the process holds when
the credit file starts: the interpreter, the customer master) one range's working set may take; the
rest covers what the allocator keeps after a range and the output row groups."""
MIN_ROOM = 0.1
"""Share of the budget taken as left when the process already holds more."""
WORKING_FACTOR = 10
"""Peak memory of one range over its source bytes (text frames, pandera's parsed copies, the assembled
history and the panels): measured 10 at 1M customers of the synthetic ledger in two ranges."""
AGREEMENT_COLUMNS = ["customer_id", "converged", "max_iqr", "kendalls_w", "moved_share", "experts"]


def source_bytes(path: Path) -> int:
    """Size of a source as text: a CSV's file size, a Parquet file's uncompressed size."""
    if path.suffix.lower() in (".parquet", ".pq"):
        meta = pq.ParquetFile(path).metadata
        return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return path.stat().st_size


def resident_bytes() -> int:
    """Resident memory of this process now (Linux ``/proc``; 0 where unknown)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def range_customers(
    total_bytes: int, customers: int, budget_bytes: int | None, used_bytes: int = 0
) -> int:
    """Customers per range: `RANGE_SHARE` of the memory left under the budget (``used_bytes`` held
    already) over `WORKING_FACTOR` times a customer's share of the source bytes (all customers in one
    range without a budget)."""
    if budget_bytes is None or customers == 0 or total_bytes == 0:
        return max(customers, 1)
    room = max(budget_bytes - used_bytes, MIN_ROOM * budget_bytes)
    per_customer = WORKING_FACTOR * total_bytes / customers
    return min(customers, max(1, int(RANGE_SHARE * room / per_customer)))


def release_freed_memory() -> None:
    """Hand the heap a finished range freed back to the system (glibc ``malloc_trim``; nothing
    elsewhere), so the resident size does not creep up range after range."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def range_bounds(ids: pd.Series, size: int) -> np.ndarray:
    """Lower bounds of ranges 1.. (range 0 is open below): every ``size``-th id in sorted order."""
    ordered = np.array(sorted(set(ids.astype(str))), dtype=object)
    return ordered[size::size]


def range_of(ids: pd.Series, bounds: np.ndarray) -> np.ndarray:
    """The range of each id (as text); a missing id goes to range 0."""
    present = ids.notna().to_numpy()
    out = np.zeros(len(ids), dtype=np.int64)
    if present.any() and len(bounds):
        text = ids[present].astype(str).to_numpy(object)
        out[present] = np.searchsorted(bounds, text, side="right")
    return out


def _spill(src: Any, bounds: np.ndarray, folder: Path, table: str) -> int:
    """Append each chunk's rows to the pickle file of their range; return the rows read."""
    rows = 0
    for chunk in src.chunks():
        if chunk.empty:
            continue
        rows += len(chunk)
        where = range_of(chunk["customer_id"], bounds)
        for k in np.unique(where):
            with (folder / f"{table}.{k}.pkl").open("ab") as fh:
                pickle.dump(chunk[where == k], fh, protocol=pickle.HIGHEST_PROTOCOL)
    return rows


def _load(folder: Path, table: str, k: int) -> pd.DataFrame:
    """The rows of range ``k`` in source order, as `credit_file._read` gives a whole table."""
    path, parts = folder / f"{table}.{k}.pkl", []
    if path.exists():
        with path.open("rb") as fh:
            while True:
                try:
                    parts.append(pickle.load(fh))
                except EOFError:
                    break
    if not parts:
        return pd.DataFrame(columns=[*COLUMNS[table], *META])
    return pd.concat(parts, ignore_index=True)


class _Output:
    """An interim table written range by range: a `parquet_stream` opened at the first rows, with
    the schema pyarrow infers for the whole table (text columns that no range fills stay null);
    a table with no rows is written as the whole-table path writes its empty frame."""

    def __init__(self, path: Path, stack: ExitStack) -> None:
        self.path, self.stack = path, stack
        self.stream: Any = None
        self.empty: pd.DataFrame | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            self.empty = frame
            return
        if self.stream is None:
            schema = pa.Schema.from_pandas(frame, preserve_index=False).remove_metadata()
            text = tuple(c for c in frame.columns if frame[c].dtype == object)
            fields = [pa.field(f.name, pa.string()) if f.name in text else f for f in schema]
            self.stream = self.stack.enter_context(
                parquet_stream(self.path, pa.schema(fields), text)
            )
        self.stream.write(frame)

    def finish(self) -> None:
        if self.stream is None and self.empty is not None:
            write_parquet(self.empty, self.path)


def _add(total: dict[str, Any], part: Mapping[str, Any]) -> None:
    """Sum ``part`` into ``total``: numbers added, dicts key by key, anything else kept as first seen."""
    for key, value in part.items():
        if isinstance(value, dict):
            _add(total.setdefault(key, {}), value)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + int(value)
        else:
            total.setdefault(key, value)


def _range(
    folder: Path, k: int, present: dict[str, Any], customers: pd.DataFrame, args: dict[str, Any]
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], dict[str, Any], dict[str, int]]:
    """The whole-table path on range ``k``: (interim tables, quarantined rows, report lines, rows
    accepted per table)."""
    ids = pd.Index(customers["customer_id"])
    accepted, bad, n_ok = {}, {}, {}
    for table in CREDIT_FILE_TABLES:
        if table in present:
            raw = _load(folder, table, k)
            good, bad[table] = validate_table(raw, table, ids, args["cutoff"], args["date_format"])
        else:
            good, bad[table], _ = _absent(table)
        accepted[table], n_ok[table] = good, len(good)
    tables, extra = assemble_credit_file(
        accepted, customers, args["first_invoice"], args["max_iqr"]
    )
    return tables, bad, extra, n_ok


def _sources(
    raw_dir: Path, files: Mapping[str, str], column_map: Mapping[str, Mapping[str, str]], **kw: Any
) -> dict[str, Any]:
    """The present credit-file tables' sources (`open_table`, as `credit_file._read` opens them)."""
    out = {}
    for table in CREDIT_FILE_TABLES:
        path = Path(raw_dir) / files[table]
        if path.exists():
            mapping = column_map[table] if table in column_map else None
            out[table] = open_table(
                path,
                table,
                list(COLUMNS[table]),
                REQUIRED[table],
                column_map=dict(mapping) if mapping is not None else None,
                allow_no_rows=True,
                **kw,
            )
    return out


def _report(
    present: dict[str, Any],
    read: dict[str, int],
    n_ok: dict[str, int],
    bad: dict[str, pd.DataFrame],
    extra: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """The tables' report entries from the sums over ranges (as `ingest_credit_file` reports them)."""
    report = {}
    for table in CREDIT_FILE_TABLES:
        if table in present:
            accepted = pd.DataFrame(index=pd.RangeIndex(n_ok[table]))
            counts = _counts(present[table].files, read[table], accepted, bad[table])
            counts["unknown_columns_dropped"] = list(present[table].unknown_columns)
        else:
            counts = _absent(table)[2]
        report[table] = counts
    changed = extra["customer_history"]["attributes_with_history"]
    extra["customer_history"]["attributes_without_history"] = [
        c for c in HISTORY_ATTRIBUTES if changed.get(c, 0) == 0
    ]
    for table, lines in extra.items():
        report[table].update(lines)
    return report


def ingest_credit_file_ranges(
    raw_dir: Path,
    interim_dir: Path,
    quarantine_dir: Path,
    customers: pd.DataFrame,
    first_invoice: pd.Series | None,
    cutoff: pd.Timestamp | None,
    *,
    budget_bytes: int | None = None,
    customers_per_range: int | None = None,
    **options: Any,
) -> dict[str, dict[str, Any]]:
    """`credit_file.ingest_credit_file` in ranges of customers sized from ``budget_bytes``
    (``base.memory_budget``, less what the process holds now; None: one range) or of
    ``customers_per_range`` customers; the same files and report entries. ``options`` are
    `credit_file.ingest_credit_file`'s keyword options (files, column_map, chunksize, encoding,
    date_format, max_iqr)."""
    files = options["files"]
    paths = [Path(raw_dir) / files[t] for t in CREDIT_FILE_TABLES]
    total = sum(source_bytes(p) for p in paths if p.exists())
    size = customers_per_range or range_customers(
        total, len(customers), budget_bytes, resident_bytes()
    )
    bounds = range_bounds(customers["customer_id"], size)
    if not len(bounds):
        return ingest_credit_file(
            raw_dir, interim_dir, quarantine_dir, customers, first_invoice, cutoff, **options
        )
    sources = _sources(
        raw_dir,
        files,
        options["column_map"],
        chunksize=options["chunksize"],
        encoding=options["encoding"],
    )
    args = {"cutoff": cutoff, "date_format": options["date_format"]}
    args.update(first_invoice=first_invoice, max_iqr=options["max_iqr"])
    with tempfile.TemporaryDirectory(prefix="credit_file_") as tmp:
        read = {t: _spill(src, bounds, Path(tmp), t) for t, src in sources.items()}
        return _run_ranges(
            Path(tmp), bounds, sources, read, customers, args, interim_dir, quarantine_dir
        )


def _run_ranges(
    folder: Path,
    bounds: np.ndarray,
    sources: dict[str, Any],
    read: dict[str, int],
    customers: pd.DataFrame,
    args: dict[str, Any],
    interim_dir: Path,
    quarantine_dir: Path,
) -> dict[str, dict[str, Any]]:
    """Every range through the whole-table path, the interim tables streamed in range order."""
    where = range_of(customers["customer_id"], bounds)
    bad: dict[str, list[pd.DataFrame]] = {t: [] for t in CREDIT_FILE_TABLES}
    n_ok = dict.fromkeys(CREDIT_FILE_TABLES, 0)
    extra: dict[str, Any] = {}
    panels = []
    with ExitStack() as stack:
        outputs: dict[str, _Output] = {}
        for k in range(len(bounds) + 1):
            tables, rejected, lines, ok = _range(folder, k, sources, customers[where == k], args)
            for name, frame in tables.items():
                out = outputs.setdefault(
                    name, _Output(Path(interim_dir) / f"{name}.parquet", stack)
                )
                out.write(frame)
            for table in CREDIT_FILE_TABLES:
                bad[table].append(rejected[table])
                n_ok[table] += ok[table]
            lines["expert_scores"].pop("agreement")
            _add(extra, lines)
            if not tables["delphi_panels"].empty:
                panels.append(tables["delphi_panels"][AGREEMENT_COLUMNS])
            del tables, rejected
            release_freed_memory()
        for out in outputs.values():
            out.finish()
    merged = {}
    for table, parts in bad.items():
        frame = pd.concat(parts, ignore_index=True).sort_values("_source_row", kind="stable")
        merged[table] = frame.reset_index(drop=True)
        write_parquet(merged[table], Path(quarantine_dir) / f"{table}.parquet")
    agreement = agreement_summary(
        pd.concat(panels, ignore_index=True) if panels else pd.DataFrame()
    )
    extra["expert_scores"] = {"agreement": agreement}
    return _report(sources, read, n_ok, merged, extra)
