"""UCI "default of credit card clients" (Yeh & Lien 2009, CC BY 4.0) as a canonical ledger.

The file is a monthly statement panel, Apr–Sep 2005, one row per customer. The mapping rules:

- **customers**: ``ID`` → ``customer_id``; ``X1`` (LIMIT_BAL) → ``credit_limit``; ``Y`` (default in
  Oct 2005) → ``source_default_flag``; ``X2`` SEX, ``X4`` MARRIAGE, ``X5`` AGE, ``X3`` EDUCATION →
  ``protected_*`` (carried for fairness reports, never features). Undocumented codes become
  ``unknown``.
- **invoices**: each customer-month is one bill: ``invoice_id`` = ``<ID>-<YYYYMM>``,
  ``invoice_date`` = the statement month end, ``due_date`` = ``due_days`` later (``ingest.adapter.due_days``
  in params.yaml), ``amount`` = the bill (``X12``…``X17``). Bills ≤ 0 (credit balances) are passed on and
  quarantined by the schema (rule ``amount_positive``), so the totals still reconcile.
- **payments**: two kinds of records, so that each bill's settlement date follows the repayment status.
  *Cash* (``<ID>-<YYYYMM>-P``): the amount paid in month m (``X18``…``X23``), dated the 20th-day due
  date of the bill of month m − 1 and allocated to that bill (unallocated when that bill is outside the
  panel — the April payment settles March — or is ≤ 0; the features stage allocates it FIFO). A zero
  payment is no payment (counted in ``notes``). *Rollover* (``<ID>-<YYYYMM>-R``): the accounts are
  revolving, so the part of a bill not paid in cash is carried into the next statement's balance. The
  repayment status of month m (``X6``…``X11``: −2, −1, 0 → 0 months behind; k ≥ 1 → k months behind)
  says how far back the arrears reach: the bill of month j is still in arrears at month m when
  status(m) ≥ m − j. The bill is settled (its remainder rolled over) at the first later month where it
  is no longer in arrears, with days beyond terms = 30 · (months of arrears), i.e. dated due date +
  30·(m − j − 1) days. A bill still in arrears at September stays open and is aged at the as-of date —
  this is how September's status (PAY_0, the strongest signal in the panel) reaches point-in-time
  features without any event dated after the cut-off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.adapters.files import TableSource, detect_encoding
from pipeline.domain import PipelineError
from pipeline.params.ingest import IngestParams

MONTHS = pd.period_range("2005-04", "2005-09", freq="M")
# columns per month, April first: repayment status, bill amount, amount paid
STATUS = ["X11", "X10", "X9", "X8", "X7", "X6"]
BILL = ["X17", "X16", "X15", "X14", "X13", "X12"]
PAID = ["X23", "X22", "X21", "X20", "X19", "X18"]
SEX = {1: "male", 2: "female"}
MARRIAGE = {1: "married", 2: "single", 3: "others"}
EDUCATION = {1: "graduate_school", 2: "university", 3: "high_school", 4: "others"}
REQUIRED = ["ID", "X1", "X2", "X3", "X4", "X5", *STATUS, *BILL, *PAID, "Y"]


def _customers(
    raw: pd.DataFrame, cid: pd.Series, row: pd.Series, source_file: str
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": cid,
            "credit_limit": raw["X1"].astype(float),
            "source_default_flag": raw["Y"].astype("int64"),
            "protected_sex": raw["X2"].map(SEX).fillna("unknown"),
            "protected_marital_status": raw["X4"].map(MARRIAGE).fillna("unknown"),
            "protected_age": raw["X5"].astype("int64"),
            "protected_education": raw["X3"].map(EDUCATION).fillna("unknown"),
            "_source_file": source_file,
            "_source_row": row,
        }
    )


def _bills_and_cash(
    cid: pd.Series,
    row: pd.Series,
    bills: np.ndarray,
    paid: np.ndarray,
    due_days: int,
    currency: str,
    source_file: str,
) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """One invoice per customer-month, and the cash paid in month m allocated to the bill of m-1."""
    ends = [month.to_timestamp(how="end").normalize() for month in MONTHS]
    meta = {"_source_file": source_file, "_source_row": row}
    invoices, payments = [], []
    for m, month in enumerate(MONTHS):
        invoices.append(
            pd.DataFrame(
                {
                    "invoice_id": cid + f"-{month.strftime('%Y%m')}",
                    "customer_id": cid,
                    "invoice_date": ends[m],
                    "due_date": ends[m] + pd.Timedelta(days=due_days),
                    "amount": bills[:, m],
                    "currency": currency,
                    **meta,
                    "_month": m,
                    "_kind": 0,
                }
            )
        )
        prev = month - 1
        allocated = bills[:, m - 1] > 0 if m > 0 else np.zeros(len(cid), dtype=bool)
        payments.append(
            pd.DataFrame(
                {
                    "payment_id": cid + f"-{month.strftime('%Y%m')}-P",
                    "customer_id": cid,
                    "invoice_id": (cid + f"-{prev.strftime('%Y%m')}").where(allocated, None),
                    "payment_date": prev.to_timestamp(how="end").normalize()
                    + pd.Timedelta(days=due_days),
                    "amount": paid[:, m],
                    **meta,
                    "_month": m,
                    "_kind": 0,
                }
            )[paid[:, m] != 0]
        )
    return invoices, payments


def _rollovers(
    cid: pd.Series,
    row: pd.Series,
    arrears: np.ndarray,
    bills: np.ndarray,
    paid: np.ndarray,
    due_days: int,
    source_file: str,
) -> list[pd.DataFrame]:
    """A bill's unpaid remainder settled at the first later month its arrears no longer reach it."""
    out = []
    for j, month in enumerate(MONTHS[:-1]):
        due = month.to_timestamp(how="end").normalize() + pd.Timedelta(days=due_days)
        later = np.arange(j + 1, len(MONTHS))
        cleared = arrears[:, later] < (later - j)
        settled = cleared.any(axis=1) & (bills[:, j] > 0)
        first = later[np.argmax(cleared, axis=1)]
        remainder = bills[:, j] - np.clip(paid[:, j + 1], 0, None)
        keep = settled & (remainder > 0)
        out.append(
            pd.DataFrame(
                {
                    "payment_id": cid + f"-{month.strftime('%Y%m')}-R",
                    "customer_id": cid,
                    "invoice_id": cid + f"-{month.strftime('%Y%m')}",
                    "payment_date": due + pd.to_timedelta(30 * (first - j - 1), unit="D"),
                    "amount": remainder,
                    "_source_file": source_file,
                    "_source_row": row,
                    "_month": j + 1,
                    "_kind": 1,
                }
            )[keep]
        )
    return out


def _notes(
    raw: pd.DataFrame, payments: pd.DataFrame, due_days: int, currency: str
) -> dict[str, Any]:
    paid_all = raw[PAID].astype(float)
    return {
        "adapter": "uci_credit_card",
        "rules": {
            "invoice": "one bill per customer-month Apr-Sep 2005; invoice_date = month end; "
            f"due_date = +{due_days} days",
            "payment": "cash paid in month m, dated the due date of the bill of month m-1 and "
            "allocated to it; unallocated when that bill is outside the panel (April) or <= 0",
            "rollover": "revolving balance: a bill's unpaid remainder is settled (rolled into the "
            "next statement) at the first month its arrears no longer reach it; status -2,-1,0 -> "
            "0 months behind, k>=1 -> k months; days beyond terms = 30 * months in arrears; a bill "
            "still in arrears at the last statement stays open",
            "non_positive_bills": "passed to validation and quarantined (rule amount_positive)",
        },
        "customers_in_file": int(len(raw)),
        "zero_payments_skipped": int((paid_all == 0).to_numpy().sum()),
        "unallocated_payments": int(payments["invoice_id"].isna().sum()),
        "rollover_settlements": int(payments["payment_id"].str.endswith("-R").sum()),
        "currency": currency,
    }


def to_canonical(
    raw: pd.DataFrame,
    due_days: int,
    currency: str,
    source_file: str = "UCI_Credit_Card.csv",
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Map the UCI panel (X1…X23, Y) to canonical tables with ``_source_file/_source_row``."""
    raw = raw.reset_index(drop=True)
    row = pd.Series(np.arange(2, len(raw) + 2), index=raw.index)
    cid = raw["ID"].astype("int64").astype(str)
    arrears = np.clip(raw[STATUS].to_numpy(dtype="int64"), 0, None)
    bills = raw[BILL].to_numpy(dtype=float)
    paid = raw[PAID].to_numpy(dtype=float)
    invoices, payments = _bills_and_cash(cid, row, bills, paid, due_days, currency, source_file)
    payments += _rollovers(cid, row, arrears, bills, paid, due_days, source_file)
    invoices_df = (
        pd.concat(invoices)
        .sort_values(["_source_row", "_month"], kind="stable")
        .drop(columns=["_month", "_kind"])
    )
    payments_df = (
        pd.concat(payments)
        .sort_values(["_source_row", "_month", "_kind"], kind="stable")
        .drop(columns=["_month", "_kind"])
    )
    tables = {
        "customers": _customers(raw, cid, row, source_file),
        "invoices": invoices_df,
        "payments": payments_df,
    }
    return tables, _notes(raw, payments_df, due_days, currency)


def open_tables(
    raw_dir: Path, params: IngestParams
) -> tuple[dict[str, TableSource], dict[str, Any]]:
    """Read the UCI CSV ``ingest.file`` (3 MB, whole) and map it to canonical tables."""
    path = Path(raw_dir) / params.file
    if not path.exists():
        raise PipelineError(f"{path}: UCI file not found; copy UCI_Credit_Card.csv into {raw_dir}")
    raw = pd.read_csv(path, encoding=detect_encoding(path, params.encoding))
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise PipelineError(
            f"{path}: row 1, column {missing[0]}, rule required_column: the UCI layout "
            f"needs ID, X1..X23, Y; missing {missing}"
        )
    for column in REQUIRED:
        bad = pd.to_numeric(raw[column], errors="coerce").isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise PipelineError(
                f"{path}: row {i + 2}, column {column}, rule parses_as_number: "
                f"value {raw[column].iloc[i]!r} is not a number"
            )
    for column in ["ID", "X2", "X3", "X4", "X5", *STATUS, "Y"]:
        values = pd.to_numeric(raw[column], errors="coerce")
        bad = (values != values.round()) | (values.abs() > 2**53)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise PipelineError(
                f"{path}: row {i + 2}, column {column}, rule whole_number: value "
                f"{raw[column].iloc[i]!r} must be a whole number"
            )
    currency = params.adapter.currency or params.currency
    tables, notes = to_canonical(raw, params.adapter.due_days, currency, path.name)
    sources = {
        t: TableSource(t, [path.name], (lambda df=df: iter([df])), [], {path.name: "utf-8"})
        for t, df in tables.items()
    }
    sources["claims"] = TableSource("claims", [], lambda: iter([pd.DataFrame()]))
    return sources, notes
