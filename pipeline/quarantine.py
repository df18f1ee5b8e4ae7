"""Quarantine reasons and reconciliation of ingested tables.

A rejected row keeps its source text and gets ``_rule`` (the first rule it broke, in
`pipeline.schemas.RULE_ORDER`), ``_column`` and ``_reason`` (every rule it broke, joined). A table
reconciles when rows (and amounts) read = accepted + quarantined.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from pipeline.schemas import COLUMNS, KEYS, MAX_AMOUNT, RULE_ORDER, empty_table

META = ["_source_file", "_source_row"]
REASON_COLUMNS = ("_rule", "_column", "_reason")
QUARANTINE_META = [*META, *REASON_COLUMNS]


def empty_reasons() -> pd.DataFrame:
    """No reasons (the frame every reason function returns when no row failed)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in REASON_COLUMNS})


def reasons(rule: str, column: str, reason: pd.Series) -> pd.DataFrame:
    """One reason per row of ``reason`` (indexed by row) for ``rule`` on ``column``."""
    return pd.DataFrame({"_rule": rule, "_column": column, "_reason": reason})


def problem_reasons(problem: pd.Series | None, final_line: str) -> pd.DataFrame:
    """Rows flagged while reading (undecodable bytes, control characters, a cut-off last row);
    ``final_line`` ``accept`` lets a last row without a line break through."""
    if problem is None:
        return empty_reasons()
    p = problem.dropna()
    if final_line == "accept":
        p = p[~p.str.startswith("truncated_row|")]
    if p.empty:
        return empty_reasons()
    parts = p.str.split("|", n=2, expand=True)
    return pd.DataFrame(
        {
            "_rule": parts[0],
            "_column": parts[1],
            "_reason": parts[0] + "(" + parts[1] + "=" + parts[2] + ")",
        },
        index=p.index,
    )


def first_reason(*frames: pd.DataFrame) -> pd.DataFrame:
    """One reason per row: the first in rule order; all of them joined in ``_reason``."""
    frames = tuple(f for f in frames if len(f))
    if not frames:
        return empty_reasons()
    allr = pd.concat(frames)
    order = {r: i for i, r in enumerate(RULE_ORDER)}
    allr = allr.assign(_o=allr["_rule"].map(order).fillna(len(order)), _i=allr.index)
    allr = allr.sort_values(["_i", "_o"], kind="stable")
    joined = allr.groupby("_i", sort=True)["_reason"].agg("; ".join)
    first = allr.groupby("_i", sort=True)[["_rule", "_column"]].first()
    out = first.assign(_reason=joined)
    out.index.name = None
    return out


def summable(x: np.ndarray) -> np.ndarray:
    """Amounts that enter the totals: finite and at most MAX_AMOUNT."""
    return np.isfinite(x) & (np.abs(x) <= MAX_AMOUNT)


def exact_total(x: np.ndarray) -> float:
    """Exact (fsum) total of the summable values (finite, at most MAX_AMOUNT: never overflows)."""
    return math.fsum(x[summable(x)])


def accepted_frame(parts: list[pd.DataFrame], table: str) -> pd.DataFrame:
    """Accepted chunks as one canonical table in source order (file, row, key)."""
    if not parts:
        return empty_table(table)
    good = pd.concat(parts, ignore_index=True)
    parts.clear()  # free the chunks before any further copy
    in_order = good["_source_file"].nunique() == 1 and good["_source_row"].is_monotonic_increasing
    if not in_order:
        good = good.sort_values([*META, KEYS[table]], kind="stable", ignore_index=True)
    return good.drop(columns=META)


def quarantine_frame(parts: list[pd.DataFrame], table: str) -> pd.DataFrame:
    """Rejected rows as text with every canonical column of the table (a fixed schema)."""
    columns = [*COLUMNS[table], *QUARANTINE_META]
    frame = pd.concat(parts) if parts else pd.DataFrame(columns=columns)
    out = frame.reindex(columns=columns)
    for c in [*COLUMNS[table], "_source_file", "_rule", "_column", "_reason"]:
        out[c] = out[c].astype("string")
    out["_source_row"] = out["_source_row"].astype("int64")
    return out


def rule_counts(bad: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Quarantined rows by first broken rule (``reasons``) and by rule and column
    (``reasons_by_column``, keys ``rule:column``): the counts every ingest report entry carries."""
    return {
        "reasons": {str(k): int(v) for k, v in bad["_rule"].value_counts().sort_index().items()},
        "reasons_by_column": {
            f"{r}:{c}": int(n)
            for (r, c), n in bad.groupby(["_rule", "_column"]).size().sort_index().items()
        },
    }


def reconciled(c: dict[str, Any]) -> bool:
    """Rows read = accepted + quarantined, and amounts too (to 1e-9 relative) where a table has them."""
    rows = c["rows_read"] == c["rows_accepted"] + c["rows_quarantined"]
    if "amount_read" not in c:
        return rows
    gap = abs(c["amount_read"] - c["amount_accepted"] - c["amount_quarantined"])
    return rows and gap <= 1e-9 * max(1.0, abs(c["amount_read"]))


def unreconciled_message(report: dict[str, Any]) -> str | None:
    """The one-line error for the first table that does not reconcile; None when all do."""
    bad = [(t, c) for t, c in report["tables"].items() if not c["reconciled"]]
    if not bad:
        return None
    table, c = bad[0]
    return (
        f"{', '.join(c['files']) or table}: row ?, column amount, rule reconciled: {table} "
        f"read {c['rows_read']} rows / {c.get('amount_read')} but accepted + quarantined = "
        f"{c['rows_accepted']} + {c['rows_quarantined']} rows / {c.get('amount_accepted')} + "
        f"{c.get('amount_quarantined')}; nothing was written"
    )
