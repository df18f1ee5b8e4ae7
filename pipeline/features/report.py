"""Label and segment counts of a snapshot table: the features stage's metrics (metrics/<ds>/features.json)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from pipeline.domain import SEGMENTS
from pipeline.features.duckdb_engine import LABELS


def pq_rows(path) -> int:
    """Rows of a Parquet file (from its footer)."""
    return int(pq.ParquetFile(path).metadata.num_rows)


def label_metrics(snapshots: pd.DataFrame) -> dict[str, Any]:
    """Row counts, label counts and shares, and the bad rate among good + bad."""
    counts = snapshots["label"].value_counts().reindex(list(LABELS), fill_value=0)
    n = int(len(snapshots))
    decided = int(counts["good"] + counts["bad"])
    out: dict[str, Any] = {
        "rows": n,
        "customers": int(snapshots["customer_id"].nunique()),
        "as_of_dates": int(snapshots["as_of_date"].nunique()),
        "label_counts": {k: int(v) for k, v in counts.items()},
        "label_shares": {k: (float(v) / n if n else None) for k, v in counts.items()},
        "bad_rate": float(counts["bad"]) / decided if decided else None,
    }
    if "segment" in snapshots:
        out["segments"] = segment_counts(snapshots)
    return out


def segment_counts(snapshots: pd.DataFrame) -> dict[str, Any]:
    """The observation population by segment: snapshots, goods, bads and bad rate per segment, and the
    rows outside it (no segment: already in default at the as-of date), counted by reason."""
    seg = snapshots["segment"]
    out: dict[str, Any] = {}
    for name in SEGMENTS:
        part = snapshots.loc[seg == name, "is_bad"]
        n_bad, n_good = int((part == 1).sum()), int((part == 0).sum())
        out[name] = {
            "rows": int(len(part)),
            "good": n_good,
            "bad": n_bad,
            "bad_rate": n_bad / (n_bad + n_good) if n_bad + n_good else None,
        }
    outside = snapshots.loc[seg.isna(), "label"].value_counts()
    out["excluded_from_population"] = {str(k): int(v) for k, v in sorted(outside.items())}
    return out
