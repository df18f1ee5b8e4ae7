"""The canonical source: one file per table under data/raw/<dataset>/ (``ingest.files``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.adapters.files import TableSource, open_table
from pipeline.schemas import COLUMNS, REQUIRED, TABLES

OPTIONAL_TABLES = ("claims",)


def open_tables(
    raw_dir: Path, params: dict[str, Any]
) -> tuple[dict[str, TableSource], dict[str, Any]]:
    """A streamed `TableSource` per table; ``claims`` may be absent or header-only."""
    files = params.get("files", {})
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
            column_map=(params.get("column_map") or {}).get(table),
            chunksize=int(params.get("chunksize", 500_000)),
            encoding=params.get("encoding", "auto"),
            allow_no_rows=table in OPTIONAL_TABLES,
        )
    return out, {}
