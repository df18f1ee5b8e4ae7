"""Quarantine reasons and reconciliation of ingested tables.

A rejected row keeps its source text and gets ``_rule`` (the first rule it broke, in
`pipeline.schemas.RULE_ORDER`), ``_column`` and ``_reason`` (every rule it broke, joined). A table
reconciles when rows (and amounts) read = accepted + quarantined.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

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


class TableSink:
    """Where one table's validated rows go, chunk by chunk: accepted rows (canonical columns) and
    quarantined rows (text, `QUARANTINE_META`) are written to their streams (`pipeline.io.ParquetStream`
    or anything with ``write``) in source order, quarantined rows are counted by rule, and ``learn``
    sees each accepted chunk (with ``_source_file/_source_row``) and its source currency.

    Rows must arrive in source order (file, row), as every adapter reads them; the whole table is
    never held, so a row out of order is an adapter bug and stops the stage."""

    def __init__(
        self,
        table: str,
        accepted: Any,
        rejected: Any,
        learn: Callable[[pd.DataFrame, pd.Series | None], None] | None = None,
    ) -> None:
        self.table, self.accepted, self.rejected, self.learn = table, accepted, rejected, learn
        self.rows_accepted = 0
        self.rows_quarantined = 0
        self._rules: Counter = Counter()
        self._rule_columns: Counter = Counter()
        self._last: dict[str, tuple[str, int] | None] = {"accepted": None, "quarantined": None}

    def _in_order(self, kind: str, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        files, rows = frame["_source_file"].to_numpy(object), frame["_source_row"].to_numpy()
        last = self._last[kind]
        ordered = (files == files[0]).all() and bool((rows[1:] >= rows[:-1]).all())
        if last is not None:
            ordered = ordered and files[0] == last[0] and rows[0] >= last[1]
        if not ordered:
            raise RuntimeError(f"{self.table}: {kind} rows arrive out of source order (file, row)")
        self._last[kind] = (files[0], int(rows[-1]))

    def accept(self, ok: pd.DataFrame, source_currency: pd.Series | None = None) -> None:
        """Accepted rows (canonical columns plus ``_source_file/_source_row``)."""
        self._in_order("accepted", ok)
        self.rows_accepted += len(ok)
        if self.learn is not None:
            self.learn(ok, source_currency)
        self.accepted.write(ok.drop(columns=META))

    def reject(self, bad: pd.DataFrame) -> None:
        """Quarantined rows as text with ``_source_file/_source_row`` and their reasons."""
        if bad.empty:
            return
        frame = quarantine_frame([bad], self.table)
        self._in_order("quarantined", frame)
        self.rows_quarantined += len(frame)
        self._rules.update(frame["_rule"].value_counts().to_dict())
        self._rule_columns.update(frame.groupby(["_rule", "_column"]).size().to_dict())
        self.rejected.write(frame)

    def rule_counts(self) -> dict[str, dict[str, int]]:
        """The counts `rule_counts` gives for the whole quarantined table."""
        return {
            "reasons": {str(k): int(v) for k, v in sorted(self._rules.items()) if v},
            "reasons_by_column": {
                f"{r}:{c}": int(n) for (r, c), n in sorted(self._rule_columns.items()) if n
            },
        }


def quarantine_schema(table: str) -> pa.Schema:
    """The Parquet schema of a quarantine table: the canonical columns and the reasons as text,
    ``_source_row`` as int64 (the dtypes `quarantine_frame` gives)."""
    return pa.schema(
        [
            (c, pa.int64() if c == "_source_row" else pa.string())
            for c in [*COLUMNS[table], *QUARANTINE_META]
        ]
    )


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
