"""The generic path: a one-row-per-invoice ledger export mapped into the canonical tables.

This is how a customer's own data comes in. ``ingest.column_map.ledger`` renames the export's
headers to:

- required: ``invoice_id``, ``customer_id``, ``invoice_date``, ``due_date``, ``amount``;
- optional: ``currency``; ``settled_date`` and/or ``days_late`` (days after the due date, negative
  = early); ``paid_amount`` (default: the invoice amount); ``claim_amount``, ``claim_date``,
  ``claim_reason``; customer attributes ``name``, ``segment``, ``region``, ``group_id``,
  ``credit_limit``, ``competitor_share``.

Mapping rules: each row is an invoice. A row with a settled date, or else a days-late figure, is
paid: one payment ``<invoice_id>-P`` dated the settled date (else due date + days late). A row with
a claim amount gives one claim ``<invoice_id>-C`` dated ``claim_date`` (else the settled date, else
the due date). Customers are the distinct ``customer_id`` values with their first non-null
attributes, unless ``customers_file`` names a canonical customer master. An unparseable settled
date or days-late figure is passed on as text, so the schema quarantines that payment (rule
``parses_as_date``, the unreadable text in the reason) with the ledger row. The file is streamed in
chunks; it is read once per output table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.adapters.files import TableSource, open_table
from pipeline.params.ingest import IngestParams
from pipeline.schemas import COLUMNS, REQUIRED

LEDGER_REQUIRED = ("invoice_id", "customer_id", "invoice_date", "due_date", "amount")
CUSTOMER_ATTRS = ("name", "segment", "region", "group_id", "credit_limit", "competitor_share")
LEDGER_COLUMNS = [
    *LEDGER_REQUIRED,
    "currency",
    "settled_date",
    "days_late",
    "paid_amount",
    "claim_amount",
    "claim_date",
    "claim_reason",
    *CUSTOMER_ATTRS,
]
META = ["_source_file", "_source_row", "_source_problem"]


# days_late beyond ten years either way is not a payment delay but a mis-keyed value (a date or an
# amount pasted into the column); such a payment is passed on as text and quarantined (parses_as_date)
MAX_DAYS_LATE = 3660
EARLIEST, LATEST = pd.Timestamp("1900-01-01"), pd.Timestamp("2200-12-31")


def _dates(s: pd.Series, date_format: str) -> pd.Series:
    """Parse dates; anything unreadable or out of the datetime range becomes NaT (never raises)."""
    try:
        return pd.to_datetime(s, format=date_format, errors="coerce")
    except (ValueError, OverflowError, TypeError):
        return pd.Series(
            [_one_date(v, date_format) for v in s], index=s.index, dtype="datetime64[ns]"
        )


def _one_date(value, date_format: str):
    try:
        return pd.to_datetime(value, format=date_format, errors="coerce")
    except (ValueError, OverflowError, TypeError):
        return pd.NaT


def invoices_from(chunk: pd.DataFrame) -> pd.DataFrame:
    """The invoice columns of a ledger chunk."""
    cols = [c for c in COLUMNS["invoices"] if c in chunk]
    return chunk[cols + [m for m in META if m in chunk]]


def payments_from(chunk: pd.DataFrame, date_format: str = "ISO8601") -> pd.DataFrame:
    """One payment per settled ledger row: settled date, else due date + days late."""
    settled = (
        chunk["settled_date"]
        if "settled_date" in chunk
        else pd.Series(None, index=chunk.index, dtype=object)
    )
    late = (
        chunk["days_late"]
        if "days_late" in chunk
        else pd.Series(None, index=chunk.index, dtype=object)
    )
    paid = settled.notna() | late.notna()
    c = chunk[paid]
    days = pd.to_numeric(late[paid], errors="coerce")
    days = days.where(days.abs() <= MAX_DAYS_LATE)  # beyond: unreadable, quarantined with its text
    due = _dates(c["due_date"], date_format)
    due = due.where(due.between(EARLIEST, LATEST))
    from_late = due + pd.to_timedelta(days, unit="D")
    unreadable = (
        "due_date "
        + c["due_date"].astype(str)
        + " + days_late "
        + late[paid].astype(str)
        + f" (days_late must be a number of days within ±{MAX_DAYS_LATE})"
    )
    from_late = from_late.dt.strftime("%Y-%m-%d").where(from_late.notna(), unreadable)
    date = settled[paid].where(settled[paid].notna(), from_late)
    amount = (
        c["paid_amount"].where(c["paid_amount"].notna(), c["amount"])
        if "paid_amount" in c
        else c["amount"]
    )
    return pd.DataFrame(
        {
            "payment_id": c["invoice_id"] + "-P",
            "customer_id": c["customer_id"],
            "invoice_id": c["invoice_id"],
            "payment_date": date,
            "amount": amount,
            **{m: c[m] for m in META if m in c},
        }
    )


def claims_from(chunk: pd.DataFrame) -> pd.DataFrame:
    """One claim per ledger row with a claim amount."""
    if "claim_amount" not in chunk:
        return pd.DataFrame(columns=[*COLUMNS["claims"], *META])
    c = chunk[chunk["claim_amount"].notna()]
    date = c["claim_date"] if "claim_date" in c else pd.Series(None, index=c.index, dtype=object)
    for fallback in ("settled_date", "due_date"):
        if fallback in c:
            date = date.where(date.notna(), c[fallback])
    return pd.DataFrame(
        {
            "claim_id": c["invoice_id"] + "-C",
            "invoice_id": c["invoice_id"],
            "customer_id": c["customer_id"],
            "claim_date": date,
            "amount": c["claim_amount"],
            "reason": c["claim_reason"] if "claim_reason" in c else None,
            **{m: c[m] for m in META if m in c},
        }
    )


def customers_from(chunks: Iterator[pd.DataFrame]) -> pd.DataFrame:
    """Distinct customers with their first non-null attributes (one pass)."""
    parts = []
    for chunk in chunks:
        cols = ["customer_id", *[a for a in CUSTOMER_ATTRS if a in chunk], *META[:2]]
        parts.append(chunk.loc[chunk["customer_id"].notna(), cols])
    allrows = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["customer_id", *META[:2]])
    )
    return allrows.groupby("customer_id", sort=False, as_index=False).first()


def open_tables(
    raw_dir: Path, params: IngestParams
) -> tuple[dict[str, TableSource], dict[str, Any]]:
    """Streamed canonical tables from the ledger named in ``ingest.file`` (required for this source:
    checked when the parameters are built)."""
    name = params.file
    chunksize, column_map, date_format = params.chunksize, params.column_map, params.date_format
    ledger = open_table(
        Path(raw_dir) / name,
        "ledger",
        LEDGER_COLUMNS,
        LEDGER_REQUIRED,
        column_map=column_map.get("ledger"),
        chunksize=chunksize,
        encoding=params.encoding,
    )
    files, enc = ledger.files, ledger.encoding

    def derived(fn):
        return lambda: (fn(chunk) for chunk in ledger.chunks())

    sources = {
        "invoices": TableSource(
            "invoices", files, derived(invoices_from), ledger.unknown_columns, enc
        ),
        "payments": TableSource(
            "payments", files, derived(lambda c: payments_from(c, date_format)), [], enc
        ),
        "claims": TableSource("claims", files, derived(claims_from), [], enc),
    }
    if params.customers_file:
        sources["customers"] = open_table(
            Path(raw_dir) / params.customers_file,
            "customers",
            list(COLUMNS["customers"]),
            REQUIRED["customers"],
            column_map=column_map.get("customers"),
            chunksize=chunksize,
            encoding=params.encoding,
        )
    else:
        sources["customers"] = TableSource(
            "customers", files, lambda: iter([customers_from(ledger.chunks())]), [], enc
        )
    notes = {
        "adapter": "invoice_ledger",
        "ledger_file": name,
        "customers": params.customers_file or "distinct customer_id of the ledger",
    }
    return sources, notes
