"""Label and segment counts of a snapshot table: the features stage's metrics (metrics/<ds>/features.json)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from pipeline.domain import SEGMENTS
from pipeline.features.duckdb_engine import LABELS


def pq_rows(path) -> int:
    """Rows of a Parquet file (from its footer)."""
    return int(pq.ParquetFile(path).metadata.num_rows)


def label_tally(snapshots: pd.DataFrame) -> dict[str, Any]:
    """The counts `label_metrics` is made of, for one batch of snapshots: every figure is a sum of
    these over batches (customers counted per batch, so batches must hold whole customers; as-of dates
    kept as a set), merged with `pipeline.rules.merge_tallies`."""
    counts = snapshots["label"].value_counts()
    tally: dict[str, Any] = {
        "rows": int(len(snapshots)),
        "customers": int(snapshots["customer_id"].nunique()),
        "as_of_dates": set(snapshots["as_of_date"].unique()),
        "labels": Counter({str(k): int(v) for k, v in counts.items()}),
    }
    if "segment" in snapshots:
        seg = snapshots["segment"]
        tally["segments"] = {
            name: (
                int((seg == name).sum()),
                int((snapshots.loc[seg == name, "is_bad"] == 0).sum()),
                int((snapshots.loc[seg == name, "is_bad"] == 1).sum()),
            )
            for name in SEGMENTS
        }
        outside = snapshots.loc[seg.isna(), "label"].value_counts()
        tally["excluded"] = Counter({str(k): int(v) for k, v in outside.items()})
    return tally


def label_metrics(snapshots: pd.DataFrame) -> dict[str, Any]:
    """Row counts, label counts and shares, and the bad rate among good + bad."""
    return label_metrics_from(label_tally(snapshots))


def label_metrics_from(tally: dict[str, Any]) -> dict[str, Any]:
    """`label_metrics` from a (merged) `label_tally`."""
    counts = {k: tally["labels"][k] for k in LABELS}
    n = tally["rows"]
    decided = counts["good"] + counts["bad"]
    out: dict[str, Any] = {
        "rows": n,
        "customers": tally["customers"],
        "as_of_dates": len(tally["as_of_dates"]),
        "label_counts": counts,
        "label_shares": {k: (float(v) / n if n else None) for k, v in counts.items()},
        "bad_rate": float(counts["bad"]) / decided if decided else None,
    }
    if "segments" in tally:
        out["segments"] = segment_counts(tally)
    return out


def segment_counts(tally: dict[str, Any]) -> dict[str, Any]:
    """The observation population by segment: snapshots, goods, bads and bad rate per segment, and the
    rows outside it (no segment: already in default at the as-of date), counted by reason."""
    out: dict[str, Any] = {}
    for name in SEGMENTS:
        rows, n_good, n_bad = tally["segments"][name]
        out[name] = {
            "rows": rows,
            "good": n_good,
            "bad": n_bad,
            "bad_rate": n_bad / (n_bad + n_good) if n_bad + n_good else None,
        }
    out["excluded_from_population"] = {k: v for k, v in sorted(tally["excluded"].items()) if v}
    return out
