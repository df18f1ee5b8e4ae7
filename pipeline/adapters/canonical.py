"""The canonical source: one file per table under data/raw/<dataset>/ (``ingest.files``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.adapters.files import TableSource, open_table
from pipeline.params.ingest import IngestParams
from pipeline.schemas import COLUMNS, REQUIRED, TABLES

OPTIONAL_TABLES = ("claims",)


def open_tables(
    raw_dir: Path, params: IngestParams
) -> tuple[dict[str, TableSource], dict[str, str]]:
    """A streamed `TableSource` per table; ``claims`` may be absent or header-only."""
    files, maps = params.files, params.column_map
    out: dict[str, TableSource] = {}
    for table in TABLES:
        name = files.get(table)
        path = Path(raw_dir) / name if name else None
        if table in OPTIONAL_TABLES and (path is None or not path.exists()):
            out[table] = TableSource(table, [], lambda: iter([pd.DataFrame()]))
            continue
        out[table] = open_table(
            path or Path(raw_dir) / f"{table}.csv",
            table,
            list(COLUMNS[table]),
            REQUIRED[table],
            column_map=maps.get(table),
            chunksize=params.chunksize,
            encoding=params.encoding,
            allow_no_rows=table in OPTIONAL_TABLES,
        )
    return out, {}
