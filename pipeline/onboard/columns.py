"""Column mapping and source type: headers -> canonical names (`ALIASES`), each file -> a table,
the files -> an ingest source (``canonical``, ``invoice_ledger`` or ``uci_credit_card``), and the
date format every date column parses with. Pure functions on header lists and values."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from pipeline.domain import LEDGER_TABLES, PipelineError

# canonical name -> aliases (compared after `normalise`: case, spaces, '_', '-', '.' and '/' ignored)
# fmt: off
ALIASES: dict[str, list[str]] = {
    "customer_id": [
        "客户编号", "客户代码", "客户号", "客户ID", "customerID", "customer no", "customer number",
        "cust id", "cust no", "custno", "account", "account id", "account number", "client id",
        "debtor", "debtor id", "sold to", "customer code",
    ],
    "name": ["客户名称", "客户名", "customer name", "cust name", "client name", "account name"],
    "segment": ["行业", "所属行业", "industry", "segment", "customer segment", "sector"],
    "region": [
        "地区", "区域", "region", "country", "country code", "countryCode", "territory", "area",
    ],
    "onboarding_date": ["建档日期", "开户日期", "customer since", "onboarding date", "open date"],
    "group_id": ["集团编号", "集团", "group", "parent id", "parent account"],
    "credit_limit": ["信用额度", "授信额度", "credit limit", "creditlimit", "limit"],
    "competitor_share": ["竞品占比", "competitor share"],
    "net_worth": ["净资产", "net worth", "equity"],
    "annual_turnover": [
        "年营业额", "营业收入", "annual turnover", "turnover", "annual revenue", "revenue",
    ],
    "invoice_id": [
        "发票号", "发票号码", "单据号", "invoice", "invoice no", "invoice number", "invoiceNumber",
        "inv no", "invoice id", "document number", "doc no", "bill no", "bill id",
    ],
    "invoice_date": [
        "开票日期", "发票日期", "单据日期", "invoice date", "InvoiceDate", "inv date", "bill date",
        "document date", "posting date",
    ],
    "due_date": [
        "约定付款日", "到期日", "应收日期", "due date", "DueDate", "payment due date", "net due date",
        "due",
    ],
    "amount": [
        "金额", "发票金额", "应收金额", "收款金额", "索赔金额", "amount", "invoice amount", "InvoiceAmount",
        "amount due", "original amount", "total", "value",
    ],
    "currency": ["币种", "货币", "currency", "currency code", "curr", "ccy"],
    "write_off_date": ["核销日期", "坏账日期", "write off date", "writeoff date", "charge off date"],
    "payment_id": [
        "收款单号", "收款编号", "payment id", "payment no", "receipt no", "receipt id",
        "remittance id",
    ],
    "payment_date": ["收款日期", "到账日期", "payment date", "receipt date", "paid date", "cash date"],
    "claim_id": ["索赔单号", "扣款单号", "claim id", "claim no", "deduction id", "credit note no"],
    "claim_date": ["索赔日期", "扣款日期", "claim date", "deduction date", "credit note date"],
    "reason": ["原因", "索赔原因", "reason", "reason code", "claim reason"],
    "settled_date": [
        "结清日期", "核销完成日期", "settled date", "SettledDate", "settlement date", "clear date",
        "cleared date", "closed date", "date paid", "paid on",
    ],
    "days_late": ["逾期天数", "days late", "DaysLate", "days past due", "dpd", "days overdue"],
    "paid_amount": ["已收金额", "paid amount", "amount paid", "settled amount"],
    "claim_amount": [
        "扣款金额", "claim amount", "deduction amount", "dispute amount", "credit note amount",
    ],
}
# fmt: on
LEDGER_ONLY = ("settled_date", "days_late", "paid_amount", "claim_amount")
UCI_COLUMNS = {"ID", "Y", *(f"X{i}" for i in range(1, 24))}
DATE_FORMATS = [
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
    "%d.%m.%Y",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
]
ISO_FORMATS = {"%Y-%m-%d", "%Y/%m/%d", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S"}
UCI_DUE_DAYS = 20  # the UCI panel's statements fall due 20 days after the month end


def normalise(header: str) -> str:
    """Header text compared case-insensitively without spaces and punctuation (CJK kept)."""
    return re.sub(r"[\s_\-./()#:]+", "", str(header).strip().lower())


def _alias_index() -> dict[str, str]:
    from pipeline.adapters.ledger import LEDGER_COLUMNS
    from pipeline.schemas import COLUMNS

    index: dict[str, str] = {}
    for table in LEDGER_TABLES:
        for col in COLUMNS[table]:
            index[normalise(col)] = col
    for col in LEDGER_COLUMNS:
        index[normalise(col)] = col
    for canon, names in ALIASES.items():
        for n in names:
            index.setdefault(normalise(n), canon)
    return index


ALIAS_INDEX = _alias_index()


# ------------------------------------------------------------------------------------------ map
def propose_column_map(headers: list[str]) -> dict[str, str]:
    """``{source header: canonical name}`` for every header an alias recognises (first wins)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for h in headers:
        canon = ALIAS_INDEX.get(normalise(h))
        if canon and canon not in taken:
            out[h] = canon
            taken.add(canon)
    return out


def classify_table(headers: list[str], mapped: set[str]) -> str | None:
    """Which table a file is: uci_panel, ledger, invoices, payments, claims, customers (or None)."""
    if UCI_COLUMNS <= {str(h).strip() for h in headers}:
        return "uci_panel"
    if "payment_id" in mapped or ("payment_date" in mapped and "due_date" not in mapped):
        return "payments"
    if "claim_id" in mapped or ("claim_date" in mapped and "due_date" not in mapped):
        return "claims"
    if {"invoice_id", "due_date"} <= mapped:
        return "ledger" if mapped & set(LEDGER_ONLY) else "invoices"
    if "customer_id" in mapped and not mapped & {"invoice_date", "due_date", "amount"}:
        return "customers"
    return None


def _table_map(mapping: dict[str, str], table: str) -> dict[str, str]:
    """The ``column_map`` entries a table needs (headers that differ from their canonical name);
    in a payments or claims file an ``amount`` alias maps to amount, a settled date to the event date."""
    out = {}
    for h, c in mapping.items():
        if table == "payments" and c == "settled_date":
            c = "payment_date"
        if table == "claims" and c == "claim_amount":
            c = "amount"
        if h != c:
            out[h] = c
    return out


def choose_source(files: list[dict[str, Any]]) -> dict[str, Any]:
    """The source type and its ingest settings from the classified files (see `classify_table`)."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for f in files:
        kinds.setdefault(f["table"] or "unknown", []).append(f)
    if "uci_panel" in kinds:
        return {
            "source": "uci_credit_card",
            "file": kinds["uci_panel"][0]["name"],
            "adapter": {"due_days": UCI_DUE_DAYS},
        }
    if "invoices" in kinds and "payments" in kinds:
        names, cmap = {}, {}
        for t in LEDGER_TABLES:
            if t in kinds:
                f = kinds[t][0]
                names[t] = f["name"]
                m = _table_map(f["column_map"], t)
                if m:
                    cmap[t] = m
        return {
            "source": "canonical",
            "files": names,
            "column_map": cmap,
            "missing": [t for t in ("customers",) if t not in names],
        }
    ledger = kinds.get("ledger") or kinds.get("invoices")
    if ledger:
        f = ledger[0]
        out = {"source": "invoice_ledger", "file": f["name"], "column_map": {}}
        m = _table_map(f["column_map"], "ledger")
        if m:
            out["column_map"]["ledger"] = m
        if "customers" in kinds:
            c = kinds["customers"][0]
            out["customers_file"] = c["name"]
            cm = _table_map(c["column_map"], "customers")
            if cm:
                out["column_map"]["customers"] = cm
        if not (set(f["column_map"].values()) & {"settled_date", "days_late"}):
            out["missing"] = ["settled_date or days_late (no payment information)"]
        return out
    found = ", ".join(f"{f['name']} ({f['table'] or 'not recognised'})" for f in files)
    raise PipelineError(
        f"onboard: cannot tell the source type from {found}; need invoices + payments files, a "
        "one-row-per-invoice ledger with due and settled dates (or days late), or a UCI-like panel "
        "(ID, X1..X23, Y). Name the columns with ingest.column_map (docs/ingest.md)"
    )


def detect_date_format(values: pd.Series) -> tuple[str | None, list[str]]:
    """The first format in `DATE_FORMATS` that parses every non-empty value, and every one that does
    (two candidates, e.g. %m/%d/%Y and %d/%m/%Y, mean the order is ambiguous: check it)."""
    v = values.dropna().astype(str).str.strip()
    v = v[v != ""]
    if v.empty:
        return None, []
    sample = v.iloc[:: max(1, len(v) // 5000)]
    ok = [
        f for f in DATE_FORMATS if pd.to_datetime(sample, format=f, errors="coerce").notna().all()
    ]
    return (ok[0] if ok else None), ok
