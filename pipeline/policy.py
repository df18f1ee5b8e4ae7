"""Credit policy maths: limits, credit period, review cycle, triggers, terms NPV, dunning.

Pure functions on arrays and frames; every number comes from the typed ``publish`` parameters
(`pipeline.params.publish.LimitPolicy`, `DunningParams`), checked once at stage start.
Methods follow docs/methodology.md §5:

- limit = min(need, capacity caps, expected-loss cap), the binding constraint named:
  need = monthly sales x credit period (months) x grade factor (the Chinese practice formula
  授信额度 = 月均销售额 x 信用期 x 风险修正系数); capacity caps = share of net worth and of annual
  turnover by grade, applied only when the customer master has them; expected-loss cap =
  EL budget / (PD x LGD) (EL = PD x LGD x EAD solved for EAD).
- credit terms: Ross-Westerfield-Jordan marginal NPV of switching from cash to credit terms.
- collections: an escalation ladder keyed by grade x days past due x amount band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.domain import LETTER_GRADES, PipelineError
from pipeline.params.publish import DunningParams, LimitPolicy, Triggers

CONSTRAINTS = ("need", "net_worth_cap", "turnover_cap", "expected_loss_cap")


# ------------------------------------------------------------------------------- grades & bands
def letter_pds(grades: list[dict]) -> dict[str, float]:
    """PD per letter grade from grade_cutoffs ``grades``: count-weighted mean of its grades' PDs
    (plain mean when no counts)."""
    frame = pd.DataFrame(grades)
    out: dict[str, float] = {}
    for letter, g in frame.groupby("letter_grade", sort=False):
        w = pd.to_numeric(g.get("count", pd.Series(0, index=g.index))).fillna(0).to_numpy(float)
        p = g["pd"].to_numpy(float)
        out[str(letter)] = float(np.average(p, weights=w) if w.sum() > 0 else p.mean())
    return out


def size_band_labels(edges: Sequence[float]) -> list[str]:
    """Readable labels of the half-open size bands ``[edge_i, edge_i+1)``, the last one open."""

    def fmt(v: float) -> str:
        return f"{v:.0f}"

    labels = [f"[{fmt(a)}, {fmt(b)})" for a, b in zip(edges[:-1], edges[1:], strict=False)]
    return labels + [f"[{fmt(edges[-1])}, inf)"]


def size_band(size: Any, edges: Sequence[float]) -> np.ndarray:
    """Index of each size's band ``[edge_i, edge_i+1)``; -1 if missing or below the first edge.
    ``edges`` rise strictly (``publish.size_bands``, checked by `PublishParams`)."""
    x = np.asarray(size, dtype=float)
    idx = np.searchsorted(np.asarray(edges, float), x, side="right") - 1
    idx[np.isnan(x)] = -1
    return idx.astype(np.int64)


def band_statistics(size: Any, edges: Sequence[float]) -> pd.DataFrame:
    """Per size band: bounds, customer count and the typical (median) monthly sales; an empty band
    takes its midpoint (the open last band its lower edge)."""
    x = np.asarray(size, dtype=float)
    idx = size_band(x, edges)
    rows = []
    for i, label in enumerate(size_band_labels(edges)):
        lower = float(edges[i])
        upper = float(edges[i + 1]) if i + 1 < len(edges) else None
        inside = x[idx == i]
        if inside.size:
            typical, basis = float(np.median(inside)), "median"
        else:
            typical = lower if upper is None else (lower + upper) / 2
            basis = "lower edge (empty band)" if upper is None else "midpoint (empty band)"
        rows.append(
            {
                "size_band": label,
                "size_min": lower,
                "size_max": upper,
                "customers": int(inside.size),
                "typical_monthly_sales": typical,
                "typical_basis": basis,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------- limits
def _per_letter(policy: LimitPolicy, key: str, letters: Any) -> np.ndarray:
    table = getattr(policy, key)
    codes, uniques = pd.factorize(letters)
    unknown = sorted(str(u) for u in uniques if u not in table)
    if unknown:
        raise PipelineError(f"params.yaml publish.{key}: no value for letter grades {unknown}")
    values = np.array([float(table[u]) for u in uniques] + [np.nan], dtype=float)
    return values[codes]  # code -1 (missing grade) picks the NaN


def customer_limits(
    letter_grade: Any,
    pd_: Any,
    monthly_sales: Any,
    policy: LimitPolicy,
    net_worth: Any = None,
    annual_turnover: Any = None,
) -> pd.DataFrame:
    """Limit per customer = min(need, net-worth cap, turnover cap, expected-loss cap).

    need = monthly sales x credit period / days per month x grade factor (no sales history: 0,
    new customers start on cash); caps on net worth and turnover apply only where given (> 0);
    EL cap = el_budget / (PD x LGD). Returns the four amounts (NaN = not applicable), ``limit``
    (floored to whole currency units) and ``binding`` (the smallest; ties in the order of
    CONSTRAINTS).
    """
    letters = (
        letter_grade
        if isinstance(letter_grade, pd.Categorical)
        else np.asarray(letter_grade, dtype=object)
    )
    n = len(letters)
    period = _per_letter(policy, "credit_period_days", letters)
    factor = _per_letter(policy, "grade_factor", letters)
    sales = np.asarray(monthly_sales, dtype=float)
    need = (
        np.where(np.isnan(sales) | (sales < 0), 0.0, sales)
        * period
        / policy.days_per_month
        * factor
    )

    def cap(values: Any, key: str) -> np.ndarray:
        if values is None:
            return np.full(n, np.nan)
        v = np.asarray(values, dtype=float)
        return np.where(v > 0, v * _per_letter(policy, key, letters), np.nan)

    pd_arr = np.asarray(pd_, dtype=float)
    with np.errstate(divide="ignore"):
        el_cap = np.where(pd_arr > 0, policy.el_budget / (pd_arr * policy.lgd), np.inf)
    caps = np.column_stack(
        [need, cap(net_worth, "net_worth_share"), cap(annual_turnover, "turnover_share"), el_cap]
    )
    filled = np.where(np.isnan(caps), np.inf, caps)
    which = np.argmin(filled, axis=1)
    limit = np.floor(np.take_along_axis(filled, which[:, None], axis=1)[:, 0] + 1e-9)
    no_grade = np.isnan(period)
    limit[no_grade] = np.nan
    binding = pd.Categorical.from_codes(np.where(no_grade, -1, which), CONSTRAINTS)
    return pd.DataFrame(
        {
            "need": need,
            "net_worth_cap": caps[:, 1],
            "turnover_cap": caps[:, 2],
            "expected_loss_cap": el_cap,
            "limit": limit,
            "binding": binding,
        }
    )


def limit_table(pds: dict[str, float], bands: pd.DataFrame, policy: LimitPolicy) -> pd.DataFrame:
    """Letter grade x size band: need, EL cap, limit and binding constraint at the band's typical
    monthly sales. Capacity caps depend on each customer's own net worth and turnover, so the
    table states the rule and per-customer limits (pipeline.score) apply it."""
    rows = []
    for letter in [g for g in LETTER_GRADES if g in pds] + sorted(set(pds) - set(LETTER_GRADES)):
        for band in bands.itertuples(index=False):
            lim = customer_limits([letter], [pds[letter]], [band.typical_monthly_sales], policy)
            r = lim.iloc[0]
            rows.append(
                {
                    "letter_grade": letter,
                    "size_band": band.size_band,
                    "size_min": band.size_min,
                    "size_max": band.size_max,
                    "typical_monthly_sales": band.typical_monthly_sales,
                    "pd": pds[letter],
                    "credit_period_days": policy.credit_period_days[letter],
                    "grade_factor": policy.grade_factor[letter],
                    "need": r.need,
                    "expected_loss_cap": r.expected_loss_cap,
                    "limit": r.limit,
                    "binding": r.binding,
                    "capacity_rule": (
                        f"also <= {policy.net_worth_share[letter]:.0%} of net worth and "
                        f"<= {policy.turnover_share[letter]:.0%} of annual turnover when known"
                    ),
                }
            )
    return pd.DataFrame(rows)


# -------------------------------------------------------------------------- policy per grade
def trigger_texts(triggers: Triggers) -> dict[str, str]:
    """The behaviour triggers in words."""
    r, c, s = triggers.raise_, triggers.cut, triggers.suspend
    return {
        "raise": (
            f"raise by {r.step:.0%} when late invoice share (12m) <= "
            f"{r.max_late_invoice_share:.0%}, sales growth (3m annualised vs 12m) >= "
            f"{r.min_sales_growth:.0%} and tenure >= {r.min_tenure_months} months"
        ),
        "cut": (
            f"cut by {c.step:.0%} when an invoice >= {c.min_largest_invoice_share:.0%} "
            f"of 3m sales and worst days beyond terms (3m) >= {c.min_days_beyond_terms}"
        ),
        "suspend": (
            f"suspend (cash in advance until review) when net worth falls >= "
            f"{s.min_net_worth_drop:.0%}, days beyond terms trend >= "
            f"{s.min_days_beyond_terms_trend} days or worst days past due >= "
            f"{s.min_worst_days_past_due}"
        ),
    }


def credit_policy_table(policy: LimitPolicy) -> pd.DataFrame:
    """Per letter grade: credit period, review cycle, grade factor, capacity shares, triggers."""
    texts = trigger_texts(policy.triggers)
    rows = []
    for g, period in policy.credit_period_days.items():
        rows.append(
            {
                "letter_grade": g,
                "credit_period_days": period,
                "terms": f"net {period}" if period > 0 else "cash in advance",
                "review_months": policy.review_months[g],
                "grade_factor": policy.grade_factor[g],
                "net_worth_share": policy.net_worth_share[g],
                "turnover_share": policy.turnover_share[g],
                "trigger_raise": texts["raise"],
                "trigger_cut": texts["cut"],
                "trigger_suspend": texts["suspend"],
            }
        )
    return pd.DataFrame(rows)


def limit_action(frame: pd.DataFrame, triggers: Triggers) -> pd.DataFrame:
    """Behaviour trigger per row: ``suspend`` > ``cut`` > ``raise`` > ``keep``, with the limit
    multiplier and the trigger that fired. A trigger whose inputs are absent does not fire."""
    n = len(frame)

    def col(name: str) -> np.ndarray:
        if name not in frame.columns:
            return np.full(n, np.nan)
        return pd.to_numeric(frame[name], errors="coerce").to_numpy(float, na_value=np.nan)

    s, c, r = triggers.suspend, triggers.cut, triggers.raise_
    with np.errstate(invalid="ignore", divide="ignore"):
        nw_prev, nw = col("net_worth_previous"), col("net_worth")
        nw_drop = (nw_prev - nw) / nw_prev
        suspend = (
            (nw_drop >= s.min_net_worth_drop)
            | (col("days_beyond_terms_trend") >= s.min_days_beyond_terms_trend)
            | (col("worst_days_past_due") >= s.min_worst_days_past_due)
        )
        cut = (col("largest_invoice_share_3m") >= c.min_largest_invoice_share) & (
            col("days_beyond_terms_max_3m") >= c.min_days_beyond_terms
        )
        growth = col("invoiced_amount_3m") * 4 / col("invoiced_amount_12m") - 1
        raise_ = (
            (col("late_invoice_share_12m") <= r.max_late_invoice_share)
            & (growth >= r.min_sales_growth)
            & (col("tenure_months") >= r.min_tenure_months)
        )
    action = pd.Categorical.from_codes(
        np.select([suspend, cut, raise_], [0, 1, 2], 3), ["suspend", "cut", "raise", "keep"]
    )
    multiplier = np.select([suspend, cut, raise_], [0.0, 1 - c.step, 1 + r.step], 1.0)
    return pd.DataFrame(
        {"limit_action": action, "limit_multiplier": multiplier}, index=frame.index
    )


# ---------------------------------------------------------------------------- credit terms
def credit_terms_npv(
    price: float,
    unit_cost: float,
    quantity: float,
    new_quantity: float,
    monthly_rate: float,
    discount: float = 0.0,
    default_rate: float = 0.0,
) -> dict[str, float]:
    """NPV of switching from cash sales to one period's credit (Ross-Westerfield-Jordan).

    ``price`` P is the cash price; credit customers pay P' = P / (1 - d) one period later and a
    share π defaults. Switching costs this period's cash receipts P·Q plus the variable cost of the
    extra units v·(Q' - Q) and changes the perpetual monthly cash flow by
    (P'(1 - π) - v)·Q' - (P - v)·Q:

        NPV = -[P·Q + v·(Q' - Q)] + [(P'(1 - π) - v)·Q' - (P - v)·Q] / R

    With d = π = 0 this is -[P·Q + v·ΔQ] + (P - v)·ΔQ / R; with Q' = Q it is
    -P·Q + P'·Q·(d - π) / R (docs/methodology.md §5.3). Also returns the break-even sales change ΔQ (NPV = 0)
    and, at unchanged sales, the break-even default rate π = d - R·(1 - d).
    """
    if monthly_rate <= 0 or not 0 <= discount < 1 or not 0 <= default_rate <= 1:
        raise PipelineError(
            f"credit_terms_npv: need monthly_rate > 0, 0 <= discount < 1, 0 <= default_rate <= 1 "
            f"(got {monthly_rate}, {discount}, {default_rate})"
        )
    p_credit = price / (1 - discount)
    net_credit = p_credit * (1 - default_rate)
    cost = price * quantity + unit_cost * (new_quantity - quantity)
    flow = (net_credit - unit_cost) * new_quantity - (price - unit_cost) * quantity
    gain = flow / monthly_rate
    denom = (net_credit - unit_cost) / monthly_rate - unit_cost
    numer = price * quantity - (net_credit - price) * quantity / monthly_rate
    return {
        "npv": gain - cost,
        "switch_cost": cost,
        "monthly_benefit": gain * monthly_rate,
        "credit_price": p_credit,
        "break_even_quantity_change": numer / denom if denom > 0 else math.inf,
        "break_even_default_rate": discount - monthly_rate * (1 - discount),
    }


# ---------------------------------------------------------------------------------- dunning
def _bands(edges: Sequence[float], unit: str) -> list[str]:
    labels = [
        f"{a:g}-{b - 1:g} {unit}" if unit == "days" else f"[{a:,.0f}, {b:,.0f})"
        for a, b in zip(edges[:-1], edges[1:], strict=False)
    ]
    return labels + [f"{edges[-1]:g}+ {unit}" if unit == "days" else f"[{edges[-1]:,.0f}, inf)"]


def dunning_table(d: DunningParams) -> pd.DataFrame:
    """Collection strategy: grade x days-past-due band x amount band -> action and wait time.

    The ladder step is the days-past-due band (capped at the last step), escalated by the grade's
    and the amount band's steps; the wait shrinks by the grade's multiplier; deliveries are held
    from ``stop_shipment_from_step``.
    """
    ladder, waits = d.ladder, d.wait_days
    dpd_labels = _bands(d.dpd_bands, "days")
    amt_labels = _bands(d.amount_bands, "amount")
    rows = []
    for grade, g_up in d.grade_escalation.items():
        for i, dpd in enumerate(dpd_labels):
            for j, amt in enumerate(amt_labels):
                step = min(
                    min(i, len(ladder) - 1) + g_up + d.amount_escalation[j], len(ladder) - 1
                )
                rows.append(
                    {
                        "letter_grade": grade,
                        "dpd_band": dpd,
                        "dpd_min": d.dpd_bands[i],
                        "amount_band": amt,
                        "amount_min": d.amount_bands[j],
                        "step": step,
                        "action": ladder[step],
                        "wait_days": int(math.ceil(waits[step] * d.wait_multiplier[grade])),
                        "hold_shipments": step >= d.stop_shipment_from_step,
                    }
                )
    return pd.DataFrame(rows)
