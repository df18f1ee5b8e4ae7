"""Profile of a canonical ledger for onboarding: sizes, dates, amounts, currencies, lateness
(days beyond terms with FIFO settlement) and the outcomes a bad definition would give."""

from __future__ import annotations

from typing import Any

import pandas as pd


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
