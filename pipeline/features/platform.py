"""E-commerce platform indicators: point-in-time features and a rule-style platform grade.

The optional ``platform`` table holds one row per customer and month (``period`` = the month end):
rating score 1–5, transactions, refunds, complaints. A month is known at its month end, so a snapshot at
``t`` reads the rows with ``period <= t`` only.

Features at ``t`` (null when the customer has no platform row in the window; the card's missing bin):

- ``platform_rating_3m``: transaction-weighted mean rating of the last 3 months (plain mean when no
  transactions), ``platform_rating_trend``: that minus the 12-month figure (negative = deteriorating);
- ``platform_transactions_3m`` and ``platform_transactions_trend`` (3-month count × 4 / 12-month count − 1);
- ``platform_refund_rate_6m`` and ``platform_complaint_rate_6m``: rates with small-count handling,
  shrunk toward a stated prior: (events + k·prior) / (transactions + k), so a customer with 3 transactions
  and 1 refund is not rated as a 33% refunder (k = ``prior_transactions``);
- ``platform_months_12m``: months with platform data in the last 12.

``grade_platform`` is a rule-style indicator beside the seed's three (collection, timing, competitor
share): A when rating ≥ a.min_rating and both rates ≤ the A maxima, else B, C by their thresholds, else D;
null without platform data. It is reported, not combined into the rule grade.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.params.features import PlatformGrade, PlatformParams

FEATURES: tuple[str, ...] = (
    "platform_rating_3m",
    "platform_rating_trend",
    "platform_transactions_3m",
    "platform_transactions_trend",
    "platform_refund_rate_6m",
    "platform_complaint_rate_6m",
    "platform_months_12m",
    "grade_platform",
)
"""Columns appended to the snapshots; their definitions are in sql/dictionary.yaml (added_by: platform)."""


def platform_features(
    platform: pd.DataFrame, keys: pd.DataFrame, params: PlatformParams
) -> pd.DataFrame:
    """Feature columns (module docstring) aligned with ``keys`` (``customer_id``, ``as_of_date``);
    ``params`` is ``features.platform``."""
    p = params
    k = keys[["customer_id", "as_of_date"]].reset_index(drop=True).assign(_row=lambda d: d.index)
    out = pd.DataFrame(index=k.index, columns=list(FEATURES), dtype=float)
    out["grade_platform"] = None
    if platform.empty:
        return out
    plat = platform[["customer_id", "period", "rating", "transactions", "refunds", "complaints"]]
    m = k[k["customer_id"].isin(plat["customer_id"])].merge(plat, on="customer_id")
    age = (m["as_of_date"].dt.year - m["period"].dt.year) * 12 + (
        m["as_of_date"].dt.month - m["period"].dt.month
    )
    m = m[(m["period"] <= m["as_of_date"]) & (age < 12)].assign(_age=age)
    if m.empty:
        return out
    tx = m["transactions"].astype(float)
    m = m.assign(
        _tx=tx,
        _rw=m["rating"] * tx,
        _rt=m["rating"].notna() & (tx > 0),
        _ref=m["refunds"].astype(float),
        _cmp=m["complaints"].astype(float),
    )

    def agg(months: int) -> pd.DataFrame:
        w = m[m["_age"] < months]
        g = w.groupby("_row")
        res = pd.DataFrame(
            {
                "tx": g["_tx"].sum(),
                "rw": g["_rw"].sum(),
                "rating_mean": g["rating"].mean(),
                "ref": g["_ref"].sum(),
                "cmp": g["_cmp"].sum(),
                "months": g["period"].nunique(),
            }
        )
        wtx = w[w["_rt"]].groupby("_row")["_tx"].sum().reindex(res.index).fillna(0)
        res["rating"] = np.where(wtx > 0, res["rw"] / wtx.where(wtx > 0), res["rating_mean"])
        return res

    a3, a6, a12 = agg(3), agg(6), agg(12)
    kk = p.prior_transactions
    out.loc[a3.index, "platform_rating_3m"] = a3["rating"]
    out.loc[a3.index, "platform_transactions_3m"] = a3["tx"]
    out.loc[a12.index, "platform_months_12m"] = a12["months"]
    r12 = a12["rating"].reindex(a3.index)
    out.loc[a3.index, "platform_rating_trend"] = a3["rating"] - r12
    t12 = a12["tx"].reindex(a3.index)
    out.loc[a3.index, "platform_transactions_trend"] = np.where(
        t12 > 0, a3["tx"] * 4 / t12.where(t12 > 0) - 1, np.nan
    )
    out.loc[a6.index, "platform_refund_rate_6m"] = (a6["ref"] + kk * p.prior_refund_rate) / (
        a6["tx"] + kk
    ).where(a6["tx"] + kk > 0)
    out.loc[a6.index, "platform_complaint_rate_6m"] = (a6["cmp"] + kk * p.prior_complaint_rate) / (
        a6["tx"] + kk
    ).where(a6["tx"] + kk > 0)
    out["grade_platform"] = platform_grade(out, p.grade_thresholds)
    for c in FEATURES:
        if c != "grade_platform":
            out[c] = out[c].astype(float)
    return out


def platform_grade(f: pd.DataFrame, thresholds: dict[str, PlatformGrade]) -> pd.Series:
    """A/B/C/D from rating (3 months) and refund / complaint rates (6 months); null without data."""
    rating = f["platform_rating_3m"].astype(float)
    refund = f["platform_refund_rate_6m"].astype(float)
    complaint = f["platform_complaint_rate_6m"].astype(float)
    grade = pd.Series("D", index=f.index, dtype=object)
    for g in ("C", "B", "A"):
        t = thresholds[g]
        ok = (
            (rating >= t.min_rating)
            & (refund <= t.max_refund_rate)
            & (complaint <= t.max_complaint_rate)
        )
        grade[ok] = g
    grade[rating.isna() & refund.isna()] = None
    return grade


def add_platform_features(
    snapshots: pd.DataFrame, platform: pd.DataFrame, params: PlatformParams
) -> pd.DataFrame:
    """``snapshots`` with the platform columns appended (same rows, same order)."""
    f = platform_features(platform, snapshots, params)
    return pd.concat([snapshots.reset_index(drop=True), f.reset_index(drop=True)], axis=1)
