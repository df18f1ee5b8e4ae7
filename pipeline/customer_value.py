"""Customer value, lifetime value, loyalty, the six-cell value–loyalty grid and the value × grade strategy.

Managing credit together with customer value: a customer worth much to us earns more limit and service
than its grade alone would give; a customer worth little is not worth a risky limit.

**Annual value** (the 12 months up to the review date ``t``; money in the ledger's currency):

    sales            = invoiced in (t − 12 months, t]
    gross margin     = gross_margin_rate × sales
    carrying cost    = cost_of_capital × sales × (agreed terms + max(days beyond terms, 0)) / 365
                       (the receivable carried at the credit period actually taken)
    collection cost  = collection_cost_rate × sales + collection_cost_per_late_invoice × late invoices
    expected loss    = PD × LGD × average receivable (= sales × days carried / 365)
    annual value     = gross margin − carrying cost − collection cost − expected loss

**Lifetime value** over ``horizon_years`` H with annual retention r and discount rate d (end-of-year
cash flows): CLV = annual value × Σ_{k=1..H} r^(k−1) / (1 + d)^k. Retention is estimated from the ledger:
of the customers that bought in the 12 months before ``t − 12 months``, the share that bought again in
the last 12 months (by customer segment when the segment has ``min_segment_customers``, else the
portfolio figure).

**Loyalty** in [0, 1] = mean of tenure (months / ``full_tenure_months``, capped at 1), purchase
regularity (share of the last 12 months with an invoice) and share of wallet (1 − competitor share; a
missing share counts as ``missing_share_of_wallet``). Levels: high ≥ ``loyalty_high``, medium ≥
``loyalty_medium``, else low.

**Grid**: value high (CLV at or above the ``grid_value_quantile`` of the book) / low × loyalty high /
medium / low = six cells, each with its strategy (params ``grid_strategy``). **Value tier × credit grade**:
tiers by CLV quantiles (``tier_quantiles``: low below the first, medium, high from the second) crossed
with the letter grade give grow / keep / secure / exit (params ``grade_strategy``).
"""

from __future__ import annotations

from typing import get_args

import numpy as np
import pandas as pd

from pipeline.card.scoring import value_codes
from pipeline.params.publish import GRID_VALUE, LOYALTY, TIERS, CustomerValueParams, Strategy

STRATEGIES: tuple[str, ...] = get_args(Strategy)
LEDGER_MONTHS = 24
"""Months of invoices before the value date `ledger_activity` reads: the last year (sales, activity,
terms) and the year before it (retention)."""


def ledger_activity(invoices: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    """Per customer, from invoices dated ≤ t: sales and late invoices of the last 12 months, months with
    an invoice in the last 12, mean agreed terms, and whether it bought in the 12 months before that
    (only invoices dated within `LEDGER_MONTHS` months up to ``t`` count, so a reader may drop the rest).
    ``customer_id`` may be categorical (a ledger read with its ids as a dictionary); the result is the
    same, indexed by plain ids in order. Grouped on the customer codes of the year's rows, column by
    column, so no copy of the ledger is made."""
    codes, customers = value_codes(invoices["customer_id"])
    customers = np.asarray(customers, dtype=object)
    dates = invoices["invoice_date"].to_numpy()
    year_ago = t - pd.DateOffset(months=12)
    known = codes >= 0  # a missing id is no customer
    recent = known & (dates <= np.datetime64(t)) & (dates > np.datetime64(year_ago))
    prior = (
        known
        & (dates <= np.datetime64(year_ago))
        & (dates > np.datetime64(t - pd.DateOffset(months=LEDGER_MONTHS)))
    )
    by, day = codes[recent], dates[recent]
    terms = (invoices["due_date"].to_numpy()[recent] - day) / np.timedelta64(1, "D")
    out = pd.DataFrame(
        {
            "sales_12m": pd.Series(invoices["amount"].to_numpy()[recent]).groupby(by).sum(),
            "active_months_12m": pd.Series(day.astype("datetime64[M]")).groupby(by).nunique(),
            "terms_days": pd.Series(terms).groupby(by).mean(),
        }
    )
    out.index = pd.Index(customers[out.index], dtype=object)
    out = out.sort_index()
    prior_ids = pd.Index(customers[np.unique(codes[prior])])
    out["bought_prior_year"] = out.index.isin(prior_ids)
    prior_only = prior_ids.difference(out.index)
    extra = pd.DataFrame(
        {
            "sales_12m": 0.0,
            "active_months_12m": 0,
            "terms_days": np.nan,
            "bought_prior_year": True,
        },
        index=prior_only,
    )
    return pd.concat([out, extra]).rename_axis("customer_id")


def retention_rates(activity: pd.DataFrame, segment: pd.Series, min_customers: int) -> pd.Series:
    """Annual retention per customer: the segment's rate (bought in the prior year → bought again in the
    last year) when the segment has ``min_customers`` prior-year buyers, else the portfolio rate."""
    prior = activity[activity["bought_prior_year"]]
    kept = prior["sales_12m"] > 0
    portfolio = float(kept.mean()) if len(prior) else float("nan")
    seg = segment.reindex(prior.index)
    by_seg = kept.groupby(seg).agg(["mean", "size"])
    rate = by_seg["mean"].where(by_seg["size"] >= min_customers)
    return segment.map(rate).fillna(portfolio).rename("retention")


def customer_value(frame: pd.DataFrame, p: CustomerValueParams) -> pd.DataFrame:
    """Annual value, CLV, loyalty and their levels per customer.

    ``frame`` per customer: ``sales_12m``, ``active_months_12m``, ``terms_days``, ``late_invoices_12m``,
    ``days_beyond_terms`` (mean, may be NaN), ``pd``, ``retention``, ``tenure_months``,
    ``competitor_share``."""
    sales = frame["sales_12m"].fillna(0.0).to_numpy(float)
    days = frame["terms_days"].fillna(0).to_numpy(float) + np.maximum(
        frame["days_beyond_terms"].fillna(0).to_numpy(float), 0
    )
    receivable = sales * days / 365.0
    gm = p.gross_margin_rate * sales
    carry = p.cost_of_capital * receivable
    collect = p.collection_cost_rate * sales + p.collection_cost_per_late_invoice * frame[
        "late_invoices_12m"
    ].fillna(0).to_numpy(float)
    el = frame["pd"].fillna(1.0).to_numpy(float) * p.lgd * receivable
    annual = gm - carry - collect - el
    r = frame["retention"].to_numpy(float)
    d = p.discount_rate
    years = np.arange(1, p.horizon_years + 1)
    factor = (r[:, None] ** (years - 1)[None, :] / (1 + d) ** years[None, :]).sum(axis=1)
    clv = annual * factor
    tenure = np.clip(frame["tenure_months"].fillna(0).to_numpy(float) / p.full_tenure_months, 0, 1)
    regular = np.clip(frame["active_months_12m"].fillna(0).to_numpy(float) / 12.0, 0, 1)
    wallet = 1 - frame["competitor_share"].to_numpy(float)
    wallet = np.where(np.isnan(wallet), p.missing_share_of_wallet, wallet)
    loyalty = (tenure + regular + wallet) / 3.0
    level = np.select(
        [loyalty >= p.loyalty_high, loyalty >= p.loyalty_medium], ["high", "medium"], "low"
    )
    return pd.DataFrame(
        {
            "sales_12m": sales,
            "average_receivable": receivable,
            "gross_margin": gm,
            "carrying_cost": carry,
            "collection_cost": collect,
            "expected_loss": el,
            "annual_value": annual,
            "retention": r,
            "lifetime_factor": factor,
            "lifetime_value": clv,
            "tenure_score": tenure,
            "regularity_score": regular,
            "share_of_wallet": wallet,
            "loyalty_score": loyalty,
            "loyalty_level": level,
        },
        index=frame.index,
    )


def value_grid(
    values: pd.DataFrame, letter_grade: pd.Series, p: CustomerValueParams
) -> pd.DataFrame:
    """Grid cell and strategy, value tier and value × grade strategy per customer (a customer
    without a letter grade: ``exit``; a letter outside the strategy table: ``keep``)."""
    clv = values["lifetime_value"]
    cut = clv.quantile(p.grid_value_quantile)
    value_level = np.where(clv >= cut, "high", "low")
    q1, q2 = clv.quantile(p.tier_quantiles[0]), clv.quantile(p.tier_quantiles[1])
    tier = np.select([clv >= q2, clv >= q1], ["high", "medium"], "low")
    tier = np.where(clv <= 0, "low", tier)
    cell = (
        pd.Series(value_level, index=values.index)
        + "_value_"
        + values["loyalty_level"]
        + "_loyalty"
    )
    grade = letter_grade.reindex(values.index).astype(object)
    strategy = [
        "exit" if pd.isna(g) else p.grade_strategy[t][g] if g in p.grade_strategy[t] else "keep"
        for t, g in zip(tier, grade, strict=True)
    ]
    return values.assign(
        value_level=value_level,
        grid_cell=cell,
        grid_strategy=cell.map(dict(p.grid_strategy)),
        value_tier=tier,
        letter_grade=grade,
        credit_strategy=strategy,
    )


def grid_counts(grid: pd.DataFrame, p: CustomerValueParams) -> pd.DataFrame:
    """The six cells: customers, lifetime value and strategy (cells with no customer shown with 0)."""
    rows = []
    for v in GRID_VALUE:
        for loy in LOYALTY:
            cell = f"{v}_value_{loy}_loyalty"
            sub = grid[grid["grid_cell"] == cell]
            rows.append(
                {
                    "value": v,
                    "loyalty": loy,
                    "customers": len(sub),
                    "lifetime_value": float(sub["lifetime_value"].sum()),
                    "mean_annual_value": float(sub["annual_value"].mean()) if len(sub) else None,
                    "strategy": p.grid_strategy[cell],
                }
            )
    return pd.DataFrame(rows)


def strategy_table(grid: pd.DataFrame, p: CustomerValueParams, letters: list[str]) -> pd.DataFrame:
    """Value tier × letter grade: the strategy and how many customers sit in each cell."""
    rows = []
    for tier in TIERS:
        for g in letters:
            sub = grid[(grid["value_tier"] == tier) & (grid["letter_grade"] == g)]
            rows.append(
                {
                    "value_tier": tier,
                    "letter_grade": g,
                    "strategy": p.grade_strategy[tier][g] if g in p.grade_strategy[tier] else None,
                    "customers": len(sub),
                    "lifetime_value": float(sub["lifetime_value"].sum()),
                }
            )
    return pd.DataFrame(rows)
