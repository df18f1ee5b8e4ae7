"""Onboard a ledger in one command: profile the raw files, map the columns, derive the settings.

``python -m pipeline.onboard data/raw/<name>/`` (or ``credit-onboard data/raw/<name>/``)

1. **profile** every CSV/Parquet file: encoding, header row, columns, rows;
2. **map** the headers to canonical names (`ALIASES`: canonical names, Chinese ERP headers, common
   English AR-export headers) and **pick the source type**: ``canonical`` (customers / invoices /
   payments / claims files), ``invoice_ledger`` (one row per invoice with a settled date or days late)
   or ``uci_credit_card`` (a UCI-like monthly statement panel);
3. read the ledger through the same adapter the ingest stage uses and **profile** it: date formats,
   date range, customers, invoices, amount scale, currencies, lateness (days beyond terms, FIFO);
4. **derive** the dataset's settings from the data (`derive_settings`): data cut-off, as-of grid,
   out-of-time start with matured outcomes, feature windows that fit the history, materiality relative
   to the invoice amounts, a bad definition the data supports (a non-default proxy, labelled as such,
   when too few customers reach 90 days), the number of grades the bads support, and the currency;
5. write the ``datasets.<name>`` block into params.yaml (text insertion: the rest of the file and its
   comments stay byte for byte), a comment beside every derived value, and print a one-screen summary
   with what to check. An existing block is never replaced without ``--force``.

`profile_ledger`, `propose_column_map`, `classify_table`, `choose_source`, `derive_settings`,
`render_block` and `insert_block` are pure; file reading and writing happen in `scan_files`,
`load_ledger` and `main`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipeline.config import PROJ_ROOT, deep_merge
from pipeline.domain import PipelineError
from pipeline.params.ingest import (
    IngestParams,
    OnboardDefaults,
    onboard_defaults,
    profiling_params,
    project_params,
)
from pipeline.sufficiency import (
    MIN_BAD_CUSTOMERS,
    grades_that_fit,
    month_ends_between,
    propose_material_amount,
    suggest_as_of,
    suggest_oot_start,
)

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
DEFAULT_WINDOWS = (3, 6, 12)
STAGES = ("ingest", "features", "train", "evaluate", "calibrate", "publish")
UCI_DUE_DAYS = 20  # the UCI panel's statements fall due 20 days after the month end
SOURCE_NOTES = {
    "canonical": "separate customers / invoices / payments (/ claims) files",
    "invoice_ledger": "one row per invoice (settled date / days late -> payment)",
    "uci_credit_card": "monthly statement panel (ID, X1..X23, Y) -> canonical tables",
}
BAD_DAYS_LADDER = (90, 60, 30)
# country code -> ISO currency, for exports that carry a country but no currency column
COUNTRY_CURRENCY = {
    "US": "USD",
    "USA": "USD",
    "CN": "CNY",
    "CHN": "CNY",
    "TW": "TWD",
    "HK": "HKD",
    "GB": "GBP",
    "UK": "GBP",
    "JP": "JPY",
    "DE": "EUR",
    "FR": "EUR",
    "IT": "EUR",
    "ES": "EUR",
    "NL": "EUR",
    "SG": "SGD",
    "IN": "INR",
    "CA": "CAD",
    "AU": "AUD",
}


def normalise(header: str) -> str:
    """Header text compared case-insensitively without spaces and punctuation (CJK kept)."""
    return re.sub(r"[\s_\-./()#:]+", "", str(header).strip().lower())


def _alias_index() -> dict[str, str]:
    from pipeline.adapters.ledger import LEDGER_COLUMNS
    from pipeline.schemas import COLUMNS

    index: dict[str, str] = {}
    for table in ("customers", "invoices", "payments", "claims"):
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
    canonical_tables = ("customers", "invoices", "payments", "claims")
    if "invoices" in kinds and "payments" in kinds:
        names, cmap = {}, {}
        for t in canonical_tables:
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


# -------------------------------------------------------------------------------------- profile
def settle_fifo(invoices: pd.DataFrame, credits: pd.DataFrame) -> pd.Series:
    """Settlement date per invoice: credits (payments, claims) applied first-in-first-out by due date
    per customer; NaT when the invoice is still open (cumulative credits never reach it)."""
    inv = invoices.sort_values(["customer_id", "due_date", "invoice_date"], kind="stable").copy()
    inv["cum"] = inv.groupby("customer_id")["amount"].cumsum() * (1 - 1e-9) - 0.005
    cr = credits.dropna(subset=["date"]).sort_values(["customer_id", "date"], kind="stable").copy()
    cr["cum"] = cr.groupby("customer_id")["amount"].cumsum()
    if cr.empty:
        return pd.Series(pd.NaT, index=invoices.index)
    left = inv[["customer_id", "cum"]].reset_index().sort_values("cum")
    right = cr[["customer_id", "cum", "date"]].sort_values("cum")
    m = pd.merge_asof(left, right, on="cum", by="customer_id", direction="forward")
    return m.set_index(m.columns[0])["date"].reindex(invoices.index)


def invoice_lateness(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> pd.DataFrame:
    """Per invoice: customer, amount, due date, settlement (FIFO) and days beyond terms (open invoices
    aged at the cut-off; a write-off ends the invoice)."""
    inv = tables["invoices"]
    pays = tables["payments"].rename(columns={"payment_date": "date"})[
        ["customer_id", "date", "amount"]
    ]
    claims = tables.get("claims")
    parts = [pays]
    if claims is not None and len(claims):
        parts.append(
            claims.rename(columns={"claim_date": "date"})[["customer_id", "date", "amount"]]
        )
    settled = settle_fifo(inv, pd.concat(parts, ignore_index=True))
    wo = inv["write_off_date"] if "write_off_date" in inv else pd.Series(pd.NaT, index=inv.index)
    end = settled.where(settled.notna(), cutoff)
    end = end.where(wo.isna() | (wo > end), wo)
    return pd.DataFrame(
        {
            "customer_id": inv["customer_id"],
            "amount": inv["amount"],
            "due_date": inv["due_date"],
            "settled_date": settled,
            "open": settled.isna() & wo.isna(),
            "written_off": wo.notna(),
            "write_off_date": wo,
            "dbt": (end - inv["due_date"]).dt.days,
        }
    )


def profile_ledger(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Date range, customers, invoices, amount scale, currencies and lateness of canonical tables."""
    inv = tables["invoices"]
    dates = [inv["invoice_date"].max()]
    if "write_off_date" in inv:
        dates.append(inv["write_off_date"].max())
    for t, c in (("payments", "payment_date"), ("claims", "claim_date")):
        if t in tables and len(tables[t]):
            dates.append(tables[t][c].max())
    last_event = max(pd.Timestamp(d) for d in dates if pd.notna(d))
    amounts = inv["amount"].astype(float)
    decimals = float((amounts.round(0) != amounts).mean())
    cur = (
        inv["currency"].fillna("(blank)").astype(str).value_counts()
        if "currency" in inv
        else pd.Series(dtype=int)
    )
    cust = tables.get("customers")
    flag = None
    if cust is not None and "source_default_flag" in cust:
        f = pd.to_numeric(cust["source_default_flag"], errors="coerce")
        flag = {"bad": int((f == 1).sum()), "good": int((f == 0).sum())}
    first = pd.Timestamp(inv["invoice_date"].min())
    months = (last_event.year - first.year) * 12 + last_event.month - first.month + 1
    return {
        "first_invoice": first,
        "last_invoice": pd.Timestamp(inv["invoice_date"].max()),
        "last_event": last_event,
        "months_of_history": int(months),
        "customers": int(inv["customer_id"].nunique()),
        "invoices": int(len(inv)),
        "payments": int(len(tables["payments"])),
        "claims": int(len(tables.get("claims", []))),
        "invoices_per_customer_month": float(
            len(inv) / max(1, inv["customer_id"].nunique()) / months
        ),
        "amount": {
            "median": float(amounts.median()),
            "p05": float(amounts.quantile(0.05)),
            "p95": float(amounts.quantile(0.95)),
            "max": float(amounts.max()),
            "total": float(amounts.sum()),
            "share_with_decimals": decimals,
        },
        "currencies": {str(k): int(v) for k, v in cur.items()},
        "regions": (
            sorted(cust["region"].dropna().astype(str).unique().tolist())[:20]
            if cust is not None and "region" in cust
            else []
        ),
        "source_default_flag": flag,
    }


def lateness_profile(late: pd.DataFrame) -> dict[str, Any]:
    """Share of invoices by days beyond terms band, and customers reaching 30/60/90 days."""
    d = late["dbt"].clip(lower=0)
    bands = {
        "on_time": d <= 0,
        "1_29": (d >= 1) & (d < 30),
        "30_59": (d >= 30) & (d < 60),
        "60_89": (d >= 60) & (d < 90),
        "90_plus": d >= 90,
    }
    worst = late.groupby("customer_id")["dbt"].max()
    return {
        "invoice_share": {k: float(v.mean()) for k, v in bands.items()},
        "dbt_p50_p90_p99": [float(x) for x in d.quantile([0.5, 0.9, 0.99])],
        "open_at_cutoff": int(late["open"].sum()),
        "written_off": int(late["written_off"].sum()),
        "customers_reaching": {str(t): int((worst >= t).sum()) for t in (15, 30, 60, 90)},
    }


# --------------------------------------------------------------------------------------- derive
def choose_cutoff(last_event: pd.Timestamp) -> tuple[pd.Timestamp, str]:
    """The latest event date, moved to its month end when that is at most 5 days on (a full month)."""
    me = last_event + pd.offsets.MonthEnd(0)
    if (me - last_event).days <= 5:
        return me, f"latest event {last_event.date()}, its month end"
    return (
        last_event,
        f"latest event {last_event.date()} (month incomplete: last as-of is the month end before)",
    )


def estimate_outcomes(
    late: pd.DataFrame,
    grid: list[pd.Timestamp],
    first_invoice: pd.Series,
    cutoff: pd.Timestamp,
    bad_days: int,
    material: float,
    perf_months: int,
) -> pd.DataFrame:
    """Approximate labels per customer and matured as-of date: in default at t, bad when the first bad
    event (a material invoice reaching ``bad_days`` beyond terms, or a write-off) falls in (t, t+perf],
    else good. Mirrors the features stage's definition closely enough to size the samples."""
    late_bad = (late["amount"] > material) & (late["dbt"] >= bad_days)
    hit = late[late_bad | late["written_off"]]
    by_dbt = (hit["due_date"] + pd.to_timedelta(bad_days, unit="D")).where(late_bad[hit.index])
    ev = pd.concat([by_dbt, hit["write_off_date"]], axis=1).min(axis=1)
    ev = ev[ev <= cutoff]
    first_bad = ev.groupby(hit.loc[ev.index, "customer_id"]).min()
    rows = []
    for t in grid:
        perf_end = t + pd.DateOffset(months=perf_months)
        active = first_invoice[first_invoice <= t].index
        fb = first_bad.reindex(active)
        in_default = fb <= t
        bad = (fb > t) & (fb <= perf_end)
        rows.append(
            {
                "as_of": t,
                "bads": int(bad.sum()),
                "goods": int((~bad & ~in_default).sum()),
                "bad_customers": set(fb[bad].index),
            }
        )
    return pd.DataFrame(rows)


@dataclass
class Derived:
    """The derived block, a comment per value (keyed by dotted path) and the things to check."""

    block: dict[str, Any]
    comments: dict[str, str] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def _set(d: Derived, path: str, value: Any, comment: str = "") -> None:
    node = d.block
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    if comment:
        d.comments[path] = comment


def derive_currency(
    profile: dict[str, Any], given: str | None, plan: dict[str, Any]
) -> tuple[str | None, str]:
    """The dataset currency: ``--currency``, else the currency column's dominant value, else one implied
    by every customer's country code, else the adapter's documented currency; None when unknown."""
    if given:
        return given.upper(), "given with --currency"
    if plan["source"] == "uci_credit_card":
        return "TWD", "the UCI panel is in NT dollars (Taiwan)"
    cur = {k: v for k, v in profile["currencies"].items() if k != "(blank)"}
    if cur:
        top = max(cur, key=cur.get)
        share = cur[top] / sum(profile["currencies"].values())
        return top, f"currency column: {top} on {share:.0%} of invoices"
    implied = {COUNTRY_CURRENCY.get(r.upper()) for r in profile["regions"]}
    if implied and None not in implied and len(implied) == 1:
        c = implied.pop()
        return c, f"no currency column; every region/country code implies {c}"
    return None, "no currency column"


def _derive_ingest(
    d: Derived,
    plan: dict[str, Any],
    profile: dict[str, Any],
    date_format: str | None,
    currency: str | None,
    defaults: OnboardDefaults,
) -> str:
    """The ``ingest`` settings (source, files, currency, cut-off, date format); returns the currency."""
    src = plan["source"]
    _set(d, "ingest.source", src, SOURCE_NOTES[src])
    for key, what in (
        ("file", "the export found in the folder"),
        ("customers_file", "customer master"),
    ):
        if plan.get(key):
            _set(d, f"ingest.{key}", plan[key], what)
    if src == "uci_credit_card":
        _set(
            d,
            "ingest.adapter.due_days",
            plan["adapter"]["due_days"],
            f"due date = statement month end + {plan['adapter']['due_days']} days",
        )
    default_files = defaults.ingest["files"]
    files = {t: n for t, n in (plan.get("files") or {}).items() if default_files.get(t) != n}
    if files:
        _set(d, "ingest.files", files, "file per table (names differ from the defaults)")
    cur, why = derive_currency(profile, currency, plan)
    if cur is None:
        cur = defaults.base_currency
        why = f"NOT IN THE DATA: assumed {cur} (base.currency); confirm or rerun with --currency"
        d.checks.append(f"currency {cur} is an assumption: the files carry no currency")
    _set(d, "ingest.currency", cur, why)
    others = [k for k in profile["currencies"] if k not in (cur, "(blank)")]
    if plan.get("fx_rates"):
        _set(d, "ingest.fx_rates", plan["fx_rates"], f"dated FX table: other currencies -> {cur}")
    if others:
        d.checks.append(
            f"invoices in {', '.join(others)} besides {cur}: "
            + (
                f"check that {plan['fx_rates']} covers them"
                if plan.get("fx_rates")
                else "add fx_rates.csv (date,currency,rate_to_base) to the raw folder, or they "
                "are quarantined"
            )
        )
    cutoff, why = choose_cutoff(profile["last_event"])
    _set(d, "ingest.data_cutoff", str(cutoff.date()), why)
    if date_format and date_format not in ISO_FORMATS:
        _set(d, "ingest.date_format", date_format, "parses every date column in the files")
    if plan.get("column_map"):
        _set(
            d, "ingest.column_map", plan["column_map"], "source header -> canonical name (check!)"
        )
    return cur


def _derive_panel(
    d: Derived,
    profile: dict[str, Any],
    cutoff: pd.Timestamp,
    windows: list[int],
    defaults: OnboardDefaults,
) -> None:
    """A single-observation panel: its last statement, its own default flag, a stratified holdout."""
    history = profile["months_of_history"]
    _set(
        d,
        "features.as_of",
        {"start": str(cutoff.date()), "end": str(cutoff.date()), "freq": "ME"},
        "single observation point: the panel's last statement",
    )
    _set(
        d,
        "features.label.source",
        "customer_flag",
        "the panel's own default flag (next month) is the outcome",
    )
    _set(d, "features.windows_months", windows, f"windows that fit {history} months of history")
    _set(
        d,
        "train.split.method",
        "stratified_holdout",
        "one observation point: customer-disjoint stratified holdout, not out of time",
    )
    flag = profile.get("source_default_flag") or {"bad": 0, "good": 0}
    cal_bads = int(flag["bad"] * 0.8 * 0.25)
    d.facts.update(bads=flag["bad"], goods=flag["good"], bad_customers=flag["bad"])
    n_grades = grades_that_fit(cal_bads, defaults.n_grades)
    _set(d, "calibrate.n_grades", n_grades, f"about {cal_bads} calibration bads expected")


def _derive_time_design(
    d: Derived, profile: dict[str, Any], cutoff: pd.Timestamp, windows: list[int]
) -> tuple[int, list[pd.Timestamp], pd.Timestamp]:
    """Performance window, as-of grid and out-of-time start; returns (window, matured dates, oot)."""
    history = profile["months_of_history"]
    perf = 12 if history >= 24 else 6
    _set(
        d,
        "features.label.performance_window_months",
        perf,
        f"{history} months of history"
        + ("" if perf == 12 else ": a 12-month outcome would leave too few matured dates"),
    )
    if perf != 12:
        d.checks.append(
            f"performance window shortened to {perf} months (only {history} months of data)"
        )
    grid = suggest_as_of(profile["first_invoice"], cutoff, windows, perf)
    _set(d, "features.as_of", grid, "from the 6th month end of the ledger to the cut-off")
    _set(d, "features.windows_months", windows, f"windows that fit {history} months of history")
    ends = month_ends_between(pd.Timestamp(grid["start"]), pd.Timestamp(grid["end"]))
    matured = [t for t in ends if t + pd.DateOffset(months=perf) <= cutoff]
    oot = suggest_oot_start(matured)
    if oot is None:
        raise PipelineError(
            f"onboard: {history} months of history leave fewer than two as-of dates with a matured "
            f"{perf}-month outcome; an out-of-time design needs a longer ledger"
        )
    _set(
        d, "train.split.method", "out_of_time", "monthly snapshots over time: test on later dates"
    )
    n_oot = len([t for t in matured if t >= oot])
    _set(
        d,
        "train.split.oot_start",
        str(oot.date()),
        f"last {n_oot} of {len(matured)} as-of dates with a matured outcome ({matured[0].date()}..{matured[-1].date()})",
    )
    return perf, matured, oot


def _try_bad_definitions(
    late: pd.DataFrame | None,
    matured: list[pd.Timestamp],
    first_invoice: pd.Series,
    cutoff: pd.Timestamp,
    material: float,
    perf: int,
    oot: pd.Timestamp,
    default_days: int,
) -> tuple[tuple | None, list[tuple]]:
    """Bad definitions from the default down the ladder until enough customers reach one:
    (chosen or None, every one tried as (days, customers, bads, dev bads, oot bads, goods))."""
    tried = []
    for days in [default_days, *[t for t in BAD_DAYS_LADDER if t < default_days]]:
        est = estimate_outcomes(late, matured, first_invoice, cutoff, days, material, perf)
        bad_customers = set().union(*est["bad_customers"]) if len(est) else set()
        dev = est[est["as_of"] < oot]
        tried.append(
            (
                days,
                len(bad_customers),
                int(est["bads"].sum()),
                int(dev["bads"].sum()),
                int(est.loc[est["as_of"] >= oot, "bads"].sum()),
                int(est["goods"].sum()),
            )
        )
        if len(bad_customers) >= MIN_BAD_CUSTOMERS:
            return tried[-1], tried
    return None, tried


def _derive_label(d: Derived, chosen: tuple, tried: list[tuple], default_days: int) -> None:
    """The bad definition chosen (flagged as a proxy when it is not the default)."""
    days, n_cust, n_bads, dev_bads, oot_bads, n_goods = chosen
    d.facts.update(
        bads=n_bads,
        goods=n_goods,
        bad_customers=n_cust,
        dev_bads=dev_bads,
        oot_bads=oot_bads,
        bad_definitions_tried=tried,
    )
    if days == default_days:
        _set(
            d,
            "features.label.bad_days_beyond_terms",
            days,
            f"default definition: {n_cust} customers reach it (~{n_bads} bad snapshots, {oot_bads} out of time)",
        )
        return
    reached = tried[0][1]
    _set(
        d,
        "features.label.bad_days_beyond_terms",
        days,
        f"NON-DEFAULT PROXY: {reached or 'no'} customers reach {default_days} days "
        f"(< {MIN_BAD_CUSTOMERS}); {days} days: {n_cust}",
    )
    d.checks.append(
        f"bad = {days}+ days beyond terms is a NON-DEFAULT PROXY: {tried[0][1]} customers reach "
        f"{default_days} days (< {MIN_BAD_CUSTOMERS}); review before any credit decision"
    )


def _derive_outcomes(
    d: Derived,
    profile: dict[str, Any],
    late: pd.DataFrame | None,
    tables: dict[str, pd.DataFrame],
    design: tuple[int, list[pd.Timestamp], pd.Timestamp],
    cutoff: pd.Timestamp,
    cur: str,
    defaults: OnboardDefaults,
) -> None:
    """Materiality, the bad and good definitions and the number of grades the bads support."""
    perf, matured, oot = design
    material = propose_material_amount(profile["amount"]["median"])
    _set(
        d,
        "features.label.material_amount",
        material,
        f"0.5% of the median invoice ({profile['amount']['median']:,.2f} {cur}), rounded",
    )
    first_invoice = tables["invoices"].groupby("customer_id")["invoice_date"].min()
    default_days = defaults.bad_days_beyond_terms
    chosen, tried = _try_bad_definitions(
        late, matured, first_invoice, cutoff, material, perf, oot, default_days
    )
    if chosen is None:
        chosen = max(tried, key=lambda r: r[1])
        d.checks.append(
            f"too few bads for any definition tried ({', '.join(f'{t[0]}d: {t[1]} customers' for t in tried)}); "
            "results will be fragile"
        )
    _derive_label(d, chosen, tried, default_days)
    days, dev_bads = chosen[0], chosen[3]
    good_max = min(defaults.good_max_days_beyond_terms, days // 2)
    _set(
        d,
        "features.label.good_max_days_beyond_terms",
        good_max,
        "worse than this but not bad = indeterminate"
        + ("" if good_max == 30 else " (half the bad threshold)"),
    )
    cal_bads = int(dev_bads * defaults.calibration_share)
    n_grades = grades_that_fit(cal_bads, defaults.n_grades)
    _set(d, "calibrate.n_grades", n_grades, f"about {cal_bads} calibration bads expected")
    if n_grades < 10:
        d.checks.append(
            f"{n_grades} grades only: the calibration sample holds about {cal_bads} bads"
        )
    d.checks.append(
        f"publish.el_budget ({defaults.el_budget}), publish.size_bands and publish.dunning.amount_bands "
        f"are absolute amounts: restate them in {cur} for invoices of about {profile['amount']['median']:,.0f}"
    )


def derive_settings(
    plan: dict[str, Any],
    profile: dict[str, Any],
    late: pd.DataFrame | None,
    tables: dict[str, pd.DataFrame],
    date_format: str | None,
    currency: str | None,
    defaults: OnboardDefaults,
) -> Derived:
    """The ``datasets.<name>`` block for a profiled ledger (pure: no file access)."""
    # every stage key exists: dvc.yaml tracks datasets.<name>.<stage> as params of each stage
    d = Derived(block={stage: {} for stage in STAGES})
    cur = _derive_ingest(d, plan, profile, date_format, currency, defaults)
    cutoff = pd.Timestamp(d.block["ingest"]["data_cutoff"])
    history = profile["months_of_history"]
    windows = [w for w in DEFAULT_WINDOWS if w <= history] or [min(DEFAULT_WINDOWS)]
    if plan["source"] == "uci_credit_card":
        _derive_panel(d, profile, cutoff, windows, defaults)
        return d
    design = _derive_time_design(d, profile, cutoff, windows)
    _derive_outcomes(d, profile, late, tables, design, cutoff, cur, defaults)
    return d


# --------------------------------------------------------------------------------------- render
def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    s = str(v)
    plain = re.fullmatch(r"[A-Za-z_\u0080-\uffff][\w\u0080-\uffff ./-]*", s) is not None
    if plain and not s.endswith(" ") and yaml.safe_load(s) == s:
        return s
    return json.dumps(s, ensure_ascii=False)


def _flow(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _scalar(v)


def render_block(name: str, d: Derived, header: str, indent: int = 2) -> str:
    """The block as YAML text: block style, short mappings/lists in flow style, a comment per value."""
    lines = [f"{' ' * indent}{name}:" + (f"  # {header}" if header else "")]

    def emit(node: dict[str, Any], depth: int, prefix: str) -> None:
        for k, v in node.items():
            path = f"{prefix}{k}"
            pad = " " * (indent + 2 * depth)
            note = d.comments.get(path)
            flowable = not isinstance(v, dict) or (
                all(not isinstance(x, (dict, list)) for x in v.values())
                and len(_flow(v)) < 60
                and not any(p.startswith(path + ".") for p in d.comments)
            )
            if isinstance(v, dict) and not v:
                text = f"{pad}{_scalar(k)}: {{}}"
            elif flowable:
                text = f"{pad}{_scalar(k)}: {_flow(v)}"
            else:
                lines.append(f"{pad}{_scalar(k)}:" + (f"  # {note}" if note else ""))
                emit(v, depth + 1, path + ".")
                continue
            if note:
                text = f"{text.ljust(indent + 36)} # {note}"
            lines.append(text)

    emit(d.block, 1, "")
    return "\n".join(lines) + "\n"


def _datasets_span(lines: list[str]) -> tuple[int, int]:
    """Line range [start, end) of the ``datasets:`` mapping's body."""
    try:
        start = next(i for i, ln in enumerate(lines) if re.match(r"^datasets:\s*(#.*)?$", ln))
    except StopIteration:
        raise PipelineError("params.yaml: no top-level 'datasets:' mapping") from None
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith((" ", "#"))):
        end += 1
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1
    return start + 1, end


def insert_block(params_text: str, name: str, block_text: str, force: bool = False) -> str:
    """params.yaml text with ``block_text`` as ``datasets.<name>``: appended after the last dataset, or
    (``force``) in place of the existing block; everything else byte for byte."""
    lines = params_text.splitlines(keepends=True)
    start, end = _datasets_span(lines)
    head = re.compile(rf"^  {re.escape(name)}:(\s|$)")
    at = next((i for i in range(start, end) if head.match(lines[i])), None)
    if not block_text.endswith("\n"):
        block_text += "\n"
    if at is None:
        return "".join(lines[:end] + [block_text] + lines[end:])
    if not force:
        raise PipelineError(
            f"params.yaml: datasets.{name} already exists; rerun with --force to replace it "
            "(the old block is overwritten, the rest of the file is kept)"
        )
    stop = at + 1
    while stop < end and (not lines[stop].strip() or lines[stop].startswith("   ")):
        stop += 1
    while stop > at + 1 and not lines[stop - 1].strip():
        stop -= 1
    return "".join(lines[:at] + [block_text] + lines[stop:])


# ------------------------------------------------------------------------------------------ I/O
def _read_head(path: Path, encoding: str, n: int = 12) -> list[str]:
    out = []
    with path.open(encoding=encoding, errors="replace") as fh:
        for _ in range(n):
            line = fh.readline()
            if not line:
                break
            out.append(line.rstrip("\r\n"))
    return out


def header_row(lines: list[str]) -> int:
    """0-based line of the header: the first of the leading lines with the most recognised names."""
    best, at = -1, 0
    for i, line in enumerate(lines):
        cells = [c.strip().strip('"') for c in line.split(",")]
        hits = sum(normalise(c) in ALIAS_INDEX for c in cells) + (
            10 if UCI_COLUMNS <= set(cells) else 0
        )
        if hits > best:
            best, at = hits, i
    return at


def scan_files(raw_dir: Path) -> list[dict[str, Any]]:
    """Profile each CSV/Parquet file: encoding, header row, header, rows, proposed map, table."""
    from pipeline.adapters.files import detect_encoding

    out = []
    for path in sorted(Path(raw_dir).iterdir()):
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq", ".txt") or path.name in (
            "truth.csv",
            "fx_rates.csv",
        ):
            continue
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(path)
            headers, enc, hdr, rows = (
                list(meta.schema_arrow.names),
                "parquet",
                0,
                meta.metadata.num_rows,
            )
        else:
            enc = detect_encoding(path)
            head = _read_head(path, enc)
            hdr = header_row(head)
            headers = list(pd.read_csv(path, nrows=0, encoding=enc, skiprows=hdr).columns)
            with path.open("rb") as fh:
                rows = sum(1 for _ in fh) - 1 - hdr
        mapping = propose_column_map(headers)
        out.append(
            {
                "name": path.name,
                "encoding": enc,
                "header_row": hdr + 1,
                "rows": rows,
                "headers": headers,
                "column_map": mapping,
                "unmapped": [h for h in headers if h not in mapping],
                "table": classify_table(headers, set(mapping.values())),
            }
        )
    if not out:
        raise PipelineError(f"{raw_dir}: no CSV or Parquet files to onboard")
    return out


def _date_columns(files: list[dict[str, Any]], raw_dir: Path) -> pd.Series:
    """Every value of every mapped date column in the text files (to detect the date format)."""
    vals = []
    for f in files:
        cols = [h for h, c in f["column_map"].items() if c.endswith("_date")]
        if not cols or f["encoding"] == "parquet":
            continue
        df = pd.read_csv(
            raw_dir / f["name"],
            usecols=cols,
            dtype=str,
            encoding=f["encoding"],
            skiprows=f["header_row"] - 1,
        )
        vals.extend(df[c] for c in cols)
    return pd.concat(vals, ignore_index=True) if vals else pd.Series(dtype=str)


def load_ledger(raw_dir: Path, ingest: IngestParams) -> dict[str, pd.DataFrame]:
    """The canonical tables through the ingest stage's own adapter (typed; unparseable values
    dropped — the profile is a sketch, ingest does the validation)."""
    from pipeline.adapters import ADAPTERS
    from pipeline.schemas import COLUMNS, DATE

    sources, _ = ADAPTERS[ingest.source](Path(raw_dir), ingest)
    out = {}
    for table, src in sources.items():
        parts = [c for c in src.chunks() if len(c)]
        frame = (
            pd.concat(parts, ignore_index=True)
            if parts
            else pd.DataFrame(columns=list(COLUMNS[table]))
        )
        for col, kind in COLUMNS[table].items():
            if col not in frame:
                continue
            if kind == DATE and not pd.api.types.is_datetime64_any_dtype(frame[col]):
                frame[col] = pd.to_datetime(frame[col], format=ingest.date_format, errors="coerce")
            elif kind in ("float64", "Int64"):
                frame[col] = pd.to_numeric(frame[col], errors="coerce")
            elif kind == "str":
                frame[col] = frame[col].astype("string")
        out[table] = frame
    inv = out["invoices"]
    out["invoices"] = inv.dropna(subset=["customer_id", "invoice_date", "due_date", "amount"])
    out["invoices"] = out["invoices"][out["invoices"]["amount"] > 0]
    for t, c in (("payments", "payment_date"), ("claims", "claim_date")):
        if t in out and len(out[t]):
            out[t] = out[t].dropna(subset=[c, "amount"])
    return out


def onboard(
    raw_dir: Path, currency: str | None = None, params: dict[str, Any] | None = None
) -> tuple[Derived, dict]:
    """Profile ``raw_dir`` and derive its settings against ``params`` (the whole params.yaml; None:
    the project's); returns (derived, profile report)."""
    files = scan_files(raw_dir)
    plan = choose_source(files)
    if (Path(raw_dir) / "fx_rates.csv").is_file():
        plan["fx_rates"] = "fx_rates.csv"
    if any(f["header_row"] > 1 for f in files):
        bad = [f["name"] for f in files if f["header_row"] > 1]
        raise PipelineError(
            f"{raw_dir}: the header is not on line 1 of {bad}; delete the title lines above it "
            "(ingest reads the header from line 1)"
        )
    date_values = _date_columns(files, raw_dir)
    fmt, candidates = detect_date_format(date_values)
    if date_values.notna().any() and fmt is None:
        raise PipelineError(
            f"{raw_dir}: dates in none of the formats {DATE_FORMATS}; set ingest.date_format"
        )
    defaults = onboard_defaults(project_params() if params is None else params)
    block = deep_merge(defaults.ingest, {k: v for k, v in plan.items() if k != "missing"})
    block["date_format"] = fmt if fmt and fmt not in ISO_FORMATS else "ISO8601"
    tables = load_ledger(raw_dir, profiling_params(block))
    prof = profile_ledger(tables)
    cutoff, _ = choose_cutoff(prof["last_event"])
    late = invoice_lateness(tables, cutoff)
    derived = derive_settings(plan, prof, late, tables, fmt, currency, defaults)
    if len(candidates) > 1 and not set(candidates) <= ISO_FORMATS:
        derived.checks.append(
            f"date order ambiguous: {' and '.join(candidates)} both parse every date; chose {fmt}"
        )
    for m in plan.get("missing", []):
        derived.checks.append(f"missing: {m}")
    for f in files:
        if f["unmapped"] and f["table"] != "uci_panel":
            derived.checks.append(
                f"{f['name']}: columns not used: {', '.join(map(str, f['unmapped']))}"
            )
    report = {
        "files": files,
        "plan": plan,
        "date_format": fmt,
        "date_format_candidates": candidates,
        "ledger": prof,
        "lateness": lateness_profile(late),
    }
    return derived, report


def summary(name: str, d: Derived, report: dict[str, Any]) -> str:
    """The one-screen summary: files, ledger, lateness, derived settings, what to check."""
    p, lt = report["ledger"], report["lateness"]
    cur = d.block["ingest"]["currency"]
    lines = [f"onboard {name}: source {d.block['ingest']['source']}"]
    for f in report["files"]:
        lines.append(
            f"  {f['name']}: {f['rows']:,} rows, {f['encoding']}, header line {f['header_row']}, "
            f"table {f['table']}, {len(f['column_map'])}/{len(f['headers'])} columns mapped"
        )
    lines += [
        f"  dates {p['first_invoice'].date()}..{p['last_event'].date()} ({p['months_of_history']} months), "
        f"format {report['date_format']}",
        f"  {p['customers']:,} customers, {p['invoices']:,} invoices, {p['payments']:,} payments, {p['claims']:,} claims",
        f"  invoice amount median {p['amount']['median']:,.2f} (p5 {p['amount']['p05']:,.2f}, p95 "
        f"{p['amount']['p95']:,.2f}) {cur}; currencies {p['currencies'] or 'none in the file'}",
        "  lateness (share of invoices): "
        + ", ".join(f"{k} {v:.1%}" for k, v in lt["invoice_share"].items())
        + f"; customers reaching 30/60/90 days: {lt['customers_reaching']['30']}/"
        f"{lt['customers_reaching']['60']}/{lt['customers_reaching']['90']}",
        "settings written (params.yaml datasets." + name + "):",
    ]
    for path, note in d.comments.items():
        node: Any = d.block
        for k in path.split("."):
            node = node[k]
        shown = _flow(node)
        if len(shown) > 70:
            shown = (
                f"{{{len(node)} entries, see the block}}"
                if isinstance(node, dict)
                else shown[:67] + "..."
            )
        lines.append(f"  {path} = {shown}  # {note}")
    lines.append("check before `dvc repro`:")
    lines += [f"  - {c}" for c in d.checks] or ["  - nothing flagged"]
    lines.append(f"next: dvc repro publish@{name}   (or `dvc repro` for every dataset)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="credit-onboard",
        description="Profile data/raw/<name>/ and write its datasets.<name> block.",
    )
    parser.add_argument("raw_dir", type=Path, help="the dataset's raw folder, data/raw/<name>/")
    parser.add_argument("--name", help="dataset name (default: the folder name)")
    parser.add_argument("--currency", help="ISO currency of the amounts when the files do not say")
    parser.add_argument(
        "--force", action="store_true", help="replace an existing datasets.<name> block"
    )
    parser.add_argument(
        "--params", type=Path, default=None, help="params file (default: the project's)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the block, write nothing")
    args = parser.parse_args(argv)
    try:
        raw = args.raw_dir.resolve()
        if not raw.is_dir():
            raise PipelineError(
                f"{args.raw_dir}: not a folder; put the ledger files in data/raw/<name>/"
            )
        name = args.name or raw.name
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            raise PipelineError(
                f"dataset name {name!r}: use letters, digits and _ (it names folders and stages)"
            )
        params_path = args.params or (PROJ_ROOT / "params.yaml")
        text = params_path.read_text(encoding="utf-8")
        project = yaml.safe_load(text) or {}
        if name in (project.get("datasets") or {}) and not args.force and not args.dry_run:
            raise PipelineError(
                f"params.yaml: datasets.{name} already exists; rerun with --force to replace it"
            )
        derived, report = onboard(raw, args.currency, project)
        when = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
        block = render_block(
            name, derived, f"derived by credit-onboard on {when}; review the comments"
        )
        new_text = insert_block(text, name, block, force=args.force)
        check = yaml.safe_load(new_text)["datasets"][name]
        if check != derived.block:
            raise PipelineError(
                f"onboard: the rendered block for {name} does not read back as derived (bug)"
            )
        print(summary(name, derived, report))
        if args.dry_run:
            print("\n" + block)
            return 0
        tmp = params_path.with_suffix(".yaml.tmp")
        tmp.write_text(new_text, encoding="utf-8")
        tmp.replace(params_path)
        return 0
    except PipelineError as exc:
        print(f"[onboard] ERROR: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
