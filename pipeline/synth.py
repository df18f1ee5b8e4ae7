"""Synthetic B2B receivables ledger with a known, time-varying probability of default per customer.

The generator is the ground truth the pipeline is checked against: every customer has a latent risk path
``z_i(m)`` that drives, with noise, everything an analyst can observe (payment delays, claims, competitor
share, expert scores) and, without noise, the monthly default hazard. So the conditional 12-month PD of
each customer at each month end is known exactly and written to ``truth``.

Model (per customer ``i``, month ``m`` counted from ``start``; constants in `LedgerModel`):

- **Onboarding**: a share of the book is on board in the first month, the rest join uniformly over the
  period (cohorts for vintage analysis). Invoices start at onboarding; no ledger history before ``start``.
- **Risk path**: ``z_i(m) = z0_i + d_i·min(years on book, drift_years) + c(m)``: a standard-normal level
  ``z0_i``, a customer trend ``d_i ~ N(0, drift_sd)`` per year (improving or deteriorating customers) that
  stops after ``drift_years``, and a portfolio cycle ``c(m) = cycle_amplitude·sin(2πm / cycle_months)``.
- **Default**: monthly hazard ``h_i(m) = exp(a + b·z_i(m))``, constant within a calendar month; the
  default time ``τ_i`` solves ``H_i(τ) = E_i`` with ``E_i ~ Exp(1)`` and ``H_i`` the cumulative hazard
  from onboarding. The conditional true PD at month end ``t``, given ``τ_i > t``, is
  ``1 − exp(−(H_i(t + 12 months) − H_i(t + lag_i)))``: a defaulter stops paying ``lag_i = terms + 90``
  days (plus up to a month) before ``τ``, so one still paying at ``t`` cannot default before
  ``t + lag_i``; one that has stopped paying defaults for certain (PD 1). So the truth is the PD given the
  risk path and the payment state at ``t``; it moves with both. The first unpaid invoice reaches 90 days
  beyond terms around ``τ``; deliveries stop 60 days after the first missed due date. ``default_date`` in truth is the day the first invoice left unpaid reaches 90 days beyond terms
  (the ledger's bad event), null when that is after the period; ``payments_stopped_date`` is the last day
  the defaulter paid anything (null when after the period): between the two the default has in effect
  happened but the ledger does not show it yet. A share of defaulters is written off
  (``invoices.write_off_date`` on every unpaid invoice) some months after default.
- **Invoices**: Poisson count per month (customer rate), lognormal amounts around a customer size,
  net terms 30/45/60 days per customer.
- **Payments**: days beyond terms = customer offset + slope x risk at the invoice date + invoice noise +
  an occasional slow payment (more often when risk is high), capped at 75 days for customers who do not
  default.
  Some invoices are paid in two instalments; some customers send unallocated cash (``invoice_id`` null,
  allocated FIFO downstream). Allocated payments of an invoice sum to at most its amount (exactly its
  amount once settled). Nothing is dated after the period end: later payments do not exist yet.
- **Claims**: claims/deductions paid out to the customer, more frequent for risky customers.
- **Customer master**: segment, region, size measures, competitor share (higher for risky customers;
  missing for some) and the six Delphi expert scores (1–5, 5 = strongest; noisy signals of ``−z0``) with
  approver, reason and date for the customers the panel reviewed.
- **Truth** (``truth`` table): one row per customer and month end from onboarding while the customer
  still pays (a customer that has stopped paying has in effect defaulted, though the ledger shows it
  only months later) within the period: ``customer_id``, ``month_end``, ``true_pd_12m`` (the PD of the
  ledger's default event in the next 12 months, as above), ``default_date``, ``payments_stopped_date``.

Everything is vectorised numpy, generated in fixed blocks of customers, each from its own seed
(`numpy.random.SeedSequence([seed, block])`), so the output is identical for a given seed whatever the
chunking of the writer, and the CLI streams blocks to disk so 1M customers fit in memory.

CLI: ``python -m pipeline.synth --customers N --months M --seed S --out DIR [--format csv|parquet]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.domain import PipelineError
from pipeline.schemas import COLUMNS
from pipeline.synth_credit_file import CREDIT_FILE_TABLE_NAMES, STREAM, credit_file_block

DEFAULT_SEED = 20261129  # params.yaml base.seed
BLOCK = 50_000  # customers per generation block (fixed: part of the seed contract)
TABLE_NAMES = ("customers", "invoices", "payments", "claims", "truth", *CREDIT_FILE_TABLE_NAMES)
NEVER_DAY = np.iinfo(np.int64).max // 4  # "no default within the simulated horizon"
HORIZON_MONTHS = 12  # the truth's PD horizon: the hazard is simulated this far past the period
DAYS_PER_MONTH = 365.25 / 12
SEGMENTS = np.array(
    ["manufacturing", "wholesale", "retail", "construction", "services"], dtype=object
)
REGIONS = np.array(["East", "North", "South", "Central", "West"], dtype=object)
CLAIM_REASONS = np.array(
    ["quality", "short_delivery", "price_difference", "damaged_goods", "late_delivery"],
    dtype=object,
)
APPROVERS = np.array(["Li Wei", "Zhang Min", "Wang Fang", "Chen Jie"], dtype=object)
EXPERT_REASONS = np.array(
    ["Delphi panel: onboarding review", "Delphi panel: annual review", "Delphi panel: site visit"],
    dtype=object,
)
EXPERT_COLS = ["character", "capacity", "capital", "collateral", "conditions", "coverage"]


@dataclass(frozen=True)
class LedgerModel:
    """The generator's constants (documented in the module docstring)."""

    hazard_intercept: float = -5.3  # log monthly hazard at z = 0
    hazard_slope: float = 1.0  # per unit of latent risk
    drift_sd: float = 0.25  # customer risk trend per year on book (standard deviation)
    drift_years: float = 3.0  # the trend stops after this many years on book
    cycle_amplitude: float = 0.25  # portfolio-wide risk cycle
    cycle_months: float = 48.0
    initial_book_share: float = 0.3  # customers on board in the first month
    invoices_per_month: float = 1.0  # mean Poisson rate across customers
    invoice_size_median: float = 20_000.0  # CNY
    terms_days: tuple[int, ...] = (30, 45, 60)
    terms_probs: tuple[float, ...] = (0.5, 0.3, 0.2)
    dbt_intercept: float = 1.0  # mean days beyond terms at z = 0
    dbt_slope: float = 6.0  # days per unit of latent risk
    dbt_customer_sd: float = 1.0
    slow_payment_prob: float = 0.04  # at z = 0; doubles per unit of risk
    slow_payment_mean_days: float = 18.0
    max_dbt_survivor: int = 75  # never 90+ days beyond terms without defaulting
    partial_prob: float = 0.08
    unallocated_customer_share: float = 0.08
    claim_prob: float = 0.02  # per invoice at z = 0; rises with risk
    write_off_share: float = 0.5  # of defaulters
    competitor_missing_share: float = 0.15
    expert_reviewed_share: float = 0.6


def _month_starts(start: str, n_months: int) -> np.ndarray:
    """First day (int days since epoch) of each month of the period, plus the month after the end."""
    first = np.datetime64(pd.Timestamp(start).strftime("%Y-%m"), "M")
    return (first + np.arange(n_months + 1)).astype("datetime64[D]").astype(np.int64)


def _to_dates(days: np.ndarray) -> np.ndarray:
    """Int days since epoch (NaT where negative) → datetime64[ns]."""
    out = days.astype("datetime64[D]").astype("datetime64[ns]")
    out[days < 0] = np.datetime64("NaT")
    return out


def _ids(prefix: str, numbers: np.ndarray, width: int = 0) -> np.ndarray:
    """String keys such as ``C0001`` (object array; ``width`` = zero padding)."""
    text = numbers.astype(str) if width == 0 else np.char.zfill(numbers.astype(str), width)
    return np.char.add(prefix, text).astype(object)


def _cents_to_amount(cents: np.ndarray) -> np.ndarray:
    return cents.astype(np.float64) / 100.0


def risk_path(
    z0: np.ndarray, trend: np.ndarray, on_month: np.ndarray, n_months: int, model: LedgerModel
) -> np.ndarray:
    """Latent risk ``z_i(m)`` per customer (rows) and calendar month ``m`` (columns): level + capped
    trend on book + portfolio cycle (module docstring)."""
    m = np.arange(n_months)
    years = np.clip((m[None, :] - on_month[:, None]) / 12.0, 0.0, model.drift_years)
    cycle = model.cycle_amplitude * np.sin(2.0 * np.pi * m / model.cycle_months)
    return z0[:, None] + trend[:, None] * years + cycle[None, :]


def cumulative_hazard(hazard: np.ndarray, on_day: np.ndarray, months: np.ndarray) -> np.ndarray:
    """``H[i, k]``: default hazard accumulated from onboarding to the first day of month ``k``.

    ``hazard[i, m]`` is the monthly hazard of month ``m`` (a rate per `DAYS_PER_MONTH` days, constant
    within the calendar month); ``months`` the first day of every month plus the day after the last
    (``len(months) == hazard.shape[1] + 1``). Nothing accrues before onboarding."""
    start = np.maximum(months[None, :-1], on_day[:, None])
    exposed = np.clip(months[None, 1:] - start, 0, None)
    steps = hazard * exposed / DAYS_PER_MONTH
    return np.concatenate([np.zeros((len(hazard), 1)), np.cumsum(steps, axis=1)], axis=1)


def default_day_from_hazard(
    cum_hazard: np.ndarray,
    hazard: np.ndarray,
    on_day: np.ndarray,
    months: np.ndarray,
    draw: np.ndarray,
) -> np.ndarray:
    """Day the cumulative hazard first reaches ``draw`` (an Exp(1) variate per customer): the default
    time of a piecewise-constant hazard; `NEVER_DAY` when beyond the last month of ``months``."""
    n_months = hazard.shape[1]
    month = np.minimum((cum_hazard[:, 1:] <= draw[:, None]).sum(axis=1), n_months)
    rows = np.arange(len(draw))
    inside = month < n_months
    j = np.where(inside, month, 0)
    begin = np.maximum(months[j], on_day)
    offset = (draw - cum_hazard[rows, j]) / hazard[rows, j] * DAYS_PER_MONTH
    day = begin + np.floor(offset).astype(np.int64)
    return np.where(inside, np.minimum(day, months[j + 1] - 1), NEVER_DAY)


def conditional_pd(cum_hazard: np.ndarray, horizon_months: int = 12) -> np.ndarray:
    """``PD[i, e]`` = P(default in the ``horizon_months`` after the end of month ``e`` | alive then) =
    1 − exp(−(H(end of e + horizon) − H(end of e))); columns e = 0 … K − 1 − horizon for K + 1 month
    starts in ``cum_hazard``."""
    k = cum_hazard.shape[1] - 1 - horizon_months
    if k < 1:
        raise PipelineError(f"synth: the hazard needs more than {horizon_months} months")
    return -np.expm1(
        -(cum_hazard[:, 1 + horizon_months : k + 1 + horizon_months] - cum_hazard[:, 1 : k + 1])
    )


def cumulative_hazard_at(
    cum_hazard: np.ndarray,
    hazard: np.ndarray,
    on_day: np.ndarray,
    months: np.ndarray,
    rows: np.ndarray,
    day: np.ndarray,
) -> np.ndarray:
    """``H`` of customer ``rows[j]`` at the start of ``day[j]`` (linear within a month: the hazard is
    constant there); days up to the day after the last month of ``months``."""
    k = np.clip(np.searchsorted(months, day, side="right") - 1, 0, hazard.shape[1] - 1)
    start = np.maximum(months[k], on_day[rows])
    return cum_hazard[rows, k] + hazard[rows, k] * np.clip(day - start, 0, None) / DAYS_PER_MONTH


def conditional_pd_given_payment_state(
    cum_hazard: np.ndarray,
    hazard: np.ndarray,
    on_day: np.ndarray,
    months: np.ndarray,
    tau: np.ndarray,
    stop: np.ndarray,
    lag: np.ndarray,
    rows: np.ndarray,
    month: np.ndarray,
    horizon_months: int = HORIZON_MONTHS,
) -> np.ndarray:
    """True 12-month PD at the end of ``month`` for customer ``rows`` (pairs), given its risk path and
    payment state then and that its default event has not happened.

    A customer still paying at t cannot default before ``t + lag`` (it stops paying ``lag`` days before
    the event), so PD = 1 − exp(−(H(t + horizon) − H(t + lag))) (0 when ``t + lag`` is past the horizon).
    A customer that has stopped paying defaults for certain: PD = 1 when its event falls within the
    horizon (always, as ``lag`` is at most terms + 120 days)."""
    t = months[month + 1]  # the first instant after the month end
    end = months[month + 1 + horizon_months]
    earliest = np.minimum(t + lag[rows], end)
    h_end = cumulative_hazard_at(cum_hazard, hazard, on_day, months, rows, end)
    h_earliest = cumulative_hazard_at(cum_hazard, hazard, on_day, months, rows, earliest)
    paying = -np.expm1(-(h_end - h_earliest))
    stopped = stop[rows] < t
    return np.where(stopped, (tau[rows] < end).astype(float), paying)


def _risk_and_default(
    rng: np.random.Generator, n: int, horizon: np.ndarray, n_months: int, m: LedgerModel
) -> SimpleNamespace:
    """Latent level, onboarding, risk path, hazard and default timing of ``n`` customers."""
    months = horizon[: n_months + 1]
    z = rng.standard_normal(n)
    on_month = np.where(
        rng.random(n) < m.initial_book_share, 0, rng.integers(0, max(n_months - 2, 1), n)
    )
    month_len = months[on_month + 1] - months[on_month]
    on_day = months[on_month] + (rng.random(n) * month_len).astype(np.int64)
    trend = m.drift_sd * rng.standard_normal(n)
    z_path = risk_path(z, trend, on_month, n_months + HORIZON_MONTHS, m)
    hazard = np.exp(m.hazard_intercept + m.hazard_slope * z_path)  # per month
    cum_hazard = cumulative_hazard(hazard, on_day, horizon)
    tau = default_day_from_hazard(cum_hazard, hazard, on_day, horizon, rng.exponential(1.0, n))
    terms = np.asarray(m.terms_days)[rng.choice(len(m.terms_days), n, p=m.terms_probs)]
    lag = terms + 90 + rng.integers(0, 31, n)  # from the last payment to the default event
    stop = np.maximum(tau - lag, on_day)  # last day anything is paid
    hold = stop + terms + 60  # deliveries stop: 60 days after the first missed due date (roughly)
    return SimpleNamespace(
        n=n,
        months=months,
        horizon=horizon,
        n_months=n_months,
        end_day=months[-1] - 1,
        z=z,
        on_month=on_month,
        on_day=on_day,
        z_path=z_path,
        hazard=hazard,
        cum_hazard=cum_hazard,
        tau=tau,
        terms=terms,
        lag=lag,
        stop=stop,
        hold=hold,
    )


def _invoices(rng: np.random.Generator, c: SimpleNamespace, m: LedgerModel) -> SimpleNamespace:
    """Customer behaviour parameters and the invoices: Poisson count per customer-month from
    onboarding until deliveries stop, plus a defaulter's last (unpaid) delivery."""
    n, n_months, months = c.n, c.n_months, c.months
    c.rate = m.invoices_per_month * rng.gamma(4.0, 0.25, n)
    c.log_size = np.log(m.invoice_size_median) + 0.9 * rng.standard_normal(n)
    c.dbt_offset = m.dbt_intercept + m.dbt_customer_sd * rng.standard_normal(n)
    c.unallocated = rng.random(n) < m.unallocated_customer_share
    counts = rng.poisson(c.rate[:, None], (n, n_months))
    month_idx = np.arange(n_months)
    counts[month_idx[None, :] < c.on_month[:, None]] = 0
    counts[months[None, :-1] > c.hold[:, None]] = 0
    inv_cust = np.repeat(np.arange(n), counts.sum(axis=1))
    inv_month = np.repeat(np.tile(month_idx, n), counts.ravel())
    lo = np.maximum(months[inv_month], c.on_day[inv_cust])
    hi = months[inv_month + 1]
    inv_day = lo + (rng.random(len(inv_cust)) * (hi - lo)).astype(np.int64)
    # a defaulter's last delivery, shortly after it stops paying: the invoice that goes unpaid
    last = np.flatnonzero(c.stop < c.end_day)
    inv_cust = np.concatenate([inv_cust, last])
    inv_day = np.concatenate([inv_day, c.stop[last] + rng.integers(1, 31, len(last))])
    keep = inv_day <= np.minimum(c.hold[inv_cust], c.end_day)
    inv_cust, inv_day = inv_cust[keep], inv_day[keep]
    order = np.lexsort((inv_day, inv_cust))
    inv = SimpleNamespace(cust=inv_cust[order], day=inv_day[order])
    inv.n = len(inv.cust)
    inv.due_day = inv.day + c.terms[inv.cust]
    inv.z = c.z_path[inv.cust, np.searchsorted(months, inv.day, side="right") - 1]
    return inv


def _settlement(
    rng: np.random.Generator, c: SimpleNamespace, inv: SimpleNamespace, m: LedgerModel
) -> SimpleNamespace:
    """Invoice amounts, settlement days (capped at ``max_dbt_survivor`` days beyond terms) and the
    payment rows: the final (or only) payment plus the first instalment of partial payments."""
    dbt_mean = c.dbt_offset[inv.cust] + m.dbt_slope * inv.z
    slow_prob = np.clip(m.slow_payment_prob * 2.0**inv.z, 0, 0.5)
    partial_prob = np.clip(m.partial_prob * 1.5**inv.z, 0, 0.5)
    inv.claim_prob = np.clip(m.claim_prob * 2.2**inv.z, 0, 0.5)
    inv.cents = np.maximum(
        np.rint(np.exp(c.log_size[inv.cust] + 0.5 * rng.standard_normal(inv.n)) * 100), 100
    ).astype(np.int64)
    noise = rng.standard_normal(inv.n) * (2.0 + 0.3 * np.maximum(dbt_mean, 0))
    slow = (rng.random(inv.n) < slow_prob) * rng.exponential(m.slow_payment_mean_days, inv.n)
    dbt = np.rint(dbt_mean + noise + slow).astype(np.int64)
    dbt = np.clip(dbt, -c.terms[inv.cust], m.max_dbt_survivor)
    inv.pay_day = np.maximum(inv.due_day + dbt, inv.day)
    partial = rng.random(inv.n) < partial_prob
    first_day = inv.day + (rng.random(inv.n) * (inv.pay_day - inv.day)).astype(np.int64)
    first_cents = np.rint(inv.cents * rng.uniform(0.2, 0.8, inv.n)).astype(np.int64)
    first_cents = np.clip(first_cents, 1, inv.cents - 1)
    p_inv = np.concatenate([np.arange(inv.n), np.flatnonzero(partial)])
    p_day = np.concatenate([inv.pay_day, first_day[partial]])
    p_cents = np.concatenate(
        [np.where(partial, inv.cents - first_cents, inv.cents), first_cents[partial]]
    )
    p_cust = inv.cust[p_inv]
    paid = (p_day <= c.stop[p_cust]) & (p_day <= c.end_day)
    p_inv, p_day, p_cents, p_cust = p_inv[paid], p_day[paid], p_cents[paid], p_cust[paid]
    porder = np.lexsort((p_inv, p_day, p_cust))
    return SimpleNamespace(
        inv=p_inv[porder], day=p_day[porder], cents=p_cents[porder], cust=p_cust[porder]
    )


def _ledger_defaults(
    rng: np.random.Generator,
    c: SimpleNamespace,
    inv: SimpleNamespace,
    pay: SimpleNamespace,
    m: LedgerModel,
) -> None:
    """Defaults as the ledger sees them (the first invoice never paid in full reaches 90 days
    beyond terms) and write-offs of a share of defaulters: sets ``c.default_day``, ``inv.wo``."""
    settled_cents = np.bincount(pay.inv, weights=pay.cents, minlength=inv.n).astype(np.int64)
    unpaid = (settled_cents < inv.cents) & (inv.pay_day > c.stop[inv.cust])
    first_unpaid_due = np.full(c.n, np.iinfo(np.int64).max)
    np.minimum.at(first_unpaid_due, inv.cust[unpaid], inv.due_day[unpaid])
    end_day = c.end_day
    c.default_day = np.where(first_unpaid_due + 90 <= end_day, first_unpaid_due + 90, -1)
    written_off = (c.default_day >= 0) & (rng.random(c.n) < m.write_off_share)
    wo_day = np.where(written_off, c.default_day + rng.integers(30, 181, c.n), -1)
    wo_day = np.where(wo_day <= end_day, wo_day, -1)
    inv.wo = np.where(unpaid & (wo_day[inv.cust] >= 0), np.maximum(wo_day[inv.cust], inv.day), -1)


def _claims(rng: np.random.Generator, c: SimpleNamespace, inv: SimpleNamespace) -> SimpleNamespace:
    """Claims/deductions: more frequent for risky customers; 90% linked to their invoice."""
    has_claim = rng.random(inv.n) < inv.claim_prob
    c_inv = np.flatnonzero(has_claim)
    c_day = inv.day[c_inv] + rng.integers(5, 61, len(c_inv))
    c_cents = np.maximum(
        np.rint(inv.cents[c_inv] * rng.uniform(0.02, 0.15, len(c_inv))), 1
    ).astype(np.int64)
    c_reason = CLAIM_REASONS[rng.integers(0, len(CLAIM_REASONS), len(c_inv))]
    c_linked = rng.random(len(c_inv)) < 0.9
    c_ok = c_day <= c.end_day
    return SimpleNamespace(
        inv=c_inv[c_ok],
        day=c_day[c_ok],
        cents=c_cents[c_ok],
        reason=c_reason[c_ok],
        linked=c_linked[c_ok],
    )


def _master_values(rng: np.random.Generator, c: SimpleNamespace, m: LedgerModel) -> dict:
    """Competitor share, size measures and the six expert scores (noisy signals of the level)."""
    n, z = c.n, c.z
    comp_zero = rng.random(n) < 1.0 / (1.0 + np.exp(0.3 + 1.0 * z))
    comp_mean = 1.0 / (1.0 + np.exp(1.3 - 0.6 * z))
    comp = np.round(rng.beta(2.0 * comp_mean / (1 - comp_mean), 2.0), 2)
    comp = np.where(comp_zero, 0.0, np.clip(comp, 0.01, 1.0))
    comp[rng.random(n) < m.competitor_missing_share] = np.nan
    monthly = c.rate * np.exp(c.log_size + 0.125)
    turnover = np.round(12 * monthly * np.exp(1.0 + 0.5 * rng.standard_normal(n)), -3)
    net_worth = np.round(turnover * np.exp(-1.2 - 0.3 * z + 0.5 * rng.standard_normal(n)), -3)
    reviewed = rng.random(n) < m.expert_reviewed_share
    expert = {
        f"expert_{e}": pd.array(
            np.where(
                reviewed, np.clip(np.rint(3.0 - 0.8 * z + rng.standard_normal(n)), 1, 5), np.nan
            ),
            dtype="Int64",
        )
        for e in EXPERT_COLS
    }
    expert_day = np.where(reviewed, np.minimum(c.on_day + rng.integers(0, 31, n), c.end_day), -1)
    return {
        "competitor_share": comp,
        "credit_limit": np.round(2 * monthly, -3),
        "net_worth": net_worth,
        "annual_turnover": turnover,
        "expert": expert,
        "reviewed": reviewed,
        "expert_day": expert_day,
    }


def _customers_frame(
    rng: np.random.Generator,
    c: SimpleNamespace,
    cust_no: np.ndarray,
    id_width: int,
    m: LedgerModel,
) -> pd.DataFrame:
    """The customer master table."""
    n = c.n
    v = _master_values(rng, c, m)
    reviewed = v["reviewed"]
    none = np.full(n, None, dtype=object)
    return pd.DataFrame(
        {
            "customer_id": c.cust_id,
            "name": _ids("Customer ", cust_no, id_width),
            "segment": SEGMENTS[rng.integers(0, len(SEGMENTS), n)],
            "region": REGIONS[rng.integers(0, len(REGIONS), n)],
            "onboarding_date": _to_dates(c.on_day),
            "group_id": np.where(rng.random(n) < 0.1, _ids("G", cust_no // 7, id_width), None),
            "competitor_share": v["competitor_share"],
            "credit_limit": v["credit_limit"],
            "net_worth": v["net_worth"],
            "annual_turnover": v["annual_turnover"],
            **v["expert"],
            "expert_approver": np.where(
                reviewed, APPROVERS[rng.integers(0, len(APPROVERS), n)], None
            ),
            "expert_reason": np.where(
                reviewed, EXPERT_REASONS[rng.integers(0, len(EXPERT_REASONS), n)], None
            ),
            "expert_date": _to_dates(v["expert_day"]),
            "source_default_flag": pd.array([pd.NA] * n, dtype="Int64"),
            "protected_sex": none,
            "protected_marital_status": none,
            "protected_age": pd.array([pd.NA] * n, dtype="Int64"),
            "protected_education": none,
        }
    )


def _ledger_frames(
    c: SimpleNamespace, inv: SimpleNamespace, pay: SimpleNamespace, cl: SimpleNamespace
) -> dict[str, pd.DataFrame]:
    """Invoices, payments and claims tables (ids numbered within the block)."""
    cust_id = c.cust_id
    invoices = pd.DataFrame(
        {
            "invoice_no": np.arange(inv.n),
            "customer_id": cust_id[inv.cust],
            "invoice_date": _to_dates(inv.day),
            "due_date": _to_dates(inv.due_day),
            "amount": _cents_to_amount(inv.cents),
            "currency": "CNY",
            "write_off_date": _to_dates(inv.wo),
        }
    )
    payments = pd.DataFrame(
        {
            "customer_id": cust_id[pay.cust],
            "invoice_no": np.where(c.unallocated[pay.cust], -1, pay.inv),
            "payment_date": _to_dates(pay.day),
            "amount": _cents_to_amount(pay.cents),
        }
    )
    claims = pd.DataFrame(
        {
            "invoice_no": np.where(cl.linked, cl.inv, -1),
            "customer_id": cust_id[inv.cust[cl.inv]],
            "claim_date": _to_dates(cl.day),
            "amount": _cents_to_amount(cl.cents),
            "reason": cl.reason,
        }
    ).sort_values(["customer_id", "claim_date", "invoice_no"], kind="stable")
    return {"invoices": invoices, "payments": payments, "claims": claims}


def _truth_frame(c: SimpleNamespace) -> pd.DataFrame:
    """Conditional 12-month PD at every month end the customer is on board and still paying."""
    month_end = c.months[1:] - 1
    alive_until = np.minimum(c.stop, np.where(c.default_day >= 0, c.default_day, NEVER_DAY))
    alive = (c.on_day[:, None] <= month_end[None, :]) & (month_end[None, :] < alive_until[:, None])
    t_cust, t_month = np.nonzero(alive)
    true_pd = conditional_pd_given_payment_state(
        c.cum_hazard, c.hazard, c.on_day, c.horizon, c.tau, c.stop, c.lag, t_cust, t_month
    )
    stopped = np.where(c.stop <= c.end_day, c.stop, -1)
    return pd.DataFrame(
        {
            "customer_id": c.cust_id[t_cust],
            "month_end": _to_dates(month_end[t_month]),
            "true_pd_12m": true_pd,
            "default_date": _to_dates(c.default_day[t_cust]),
            "payments_stopped_date": _to_dates(stopped[t_cust]),
        }
    )


def _block(
    rng: np.random.Generator,
    first_customer: int,
    n: int,
    months: np.ndarray,
    id_width: int,
    model: LedgerModel,
) -> dict[str, pd.DataFrame]:
    """All five tables for customers ``first_customer … first_customer + n − 1`` (invoice/payment/claim
    ids are numbered within the block and renumbered by the caller). ``months``: the month starts of
    the period and of the truth horizon after it. The random draws happen in a fixed order (the
    helpers below, in turn), which is part of the seed contract."""
    n_months = len(months) - 1 - HORIZON_MONTHS
    c = _risk_and_default(rng, n, months, n_months, model)
    cust_no = np.arange(first_customer, first_customer + n)
    c.cust_id = _ids("C", cust_no, id_width)
    inv = _invoices(rng, c, model)
    pay = _settlement(rng, c, inv, model)
    _ledger_defaults(rng, c, inv, pay, model)
    claims = _claims(rng, c, inv)
    customers = _customers_frame(rng, c, cust_no, id_width, model)
    return {
        "customers": customers,
        **_ledger_frames(c, inv, pay, claims),
        "truth": _truth_frame(c),
        # per customer, for the credit-file generator only (not written)
        "risk": pd.DataFrame(
            {
                "customer_id": c.cust_id,
                "latent_risk": c.z,
                "default_date": _to_dates(c.default_day),
            }
        ),
    }


def _number(frame: pd.DataFrame, table: str, prefix: str, offsets: dict[str, int]) -> pd.DataFrame:
    """Give a block's rows global keys (``I…``, ``P…``, ``K…``) and resolve ``invoice_no`` → ``invoice_id``."""
    out = frame.reset_index(drop=True)
    key = {"invoices": "invoice_id", "payments": "payment_id", "claims": "claim_id"}[table]
    out[key] = _ids(prefix, np.arange(len(out)) + offsets[table] + 1)
    if "invoice_no" in out:
        no = out.pop("invoice_no").to_numpy()
        inv = _ids("I", no + offsets["invoices"] + 1)
        out["invoice_id"] = np.where(no >= 0, inv, None)
    return out[list(COLUMNS[table])]


def iter_blocks(
    n_customers: int,
    n_months: int,
    start: str = "2023-01-01",
    seed: int = DEFAULT_SEED,
    model: LedgerModel | None = None,
) -> Iterator[dict[str, pd.DataFrame]]:
    """The ledger in blocks of `BLOCK` customers (canonical tables, global keys), for streaming writers."""
    if n_customers < 1 or n_months < 1:
        raise PipelineError(
            f"synth: need at least 1 customer and 1 month (got {n_customers}, {n_months})"
        )
    model = model or LedgerModel()
    months = _month_starts(start, n_months + HORIZON_MONTHS)
    width = max(4, len(str(n_customers)))
    offsets = {"invoices": 0, "payments": 0, "claims": 0}
    for b, first in enumerate(range(0, n_customers, BLOCK)):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, b])))
        raw = _block(rng, first + 1, min(BLOCK, n_customers - first), months, width, model)
        out = {"customers": raw["customers"], "truth": raw["truth"]}
        # credit file (attribute history, Delphi panels, platform) on its own stream
        cf_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, b, STREAM])))
        period_end = int(months[n_months] - 1)
        out.update(credit_file_block({**out, "risk": raw["risk"]}, period_end, cf_rng))
        for table, prefix in (("invoices", "I"), ("payments", "P"), ("claims", "K")):
            out[table] = _number(raw[table], table, prefix, offsets)
        for table in offsets:
            offsets[table] += len(raw[table])
        yield out


def generate_ledger(
    n_customers: int,
    n_months: int,
    start: str = "2023-01-01",
    seed: int = DEFAULT_SEED,
    model: LedgerModel | None = None,
) -> dict[str, pd.DataFrame]:
    """The synthetic ledger as canonical tables: customers, invoices, payments, claims, truth.

    Deterministic for a given seed. Months run from the month of ``start``; nothing is dated after the
    last day of the last month (the data cut-off).
    """
    parts: dict[str, list[pd.DataFrame]] = {t: [] for t in TABLE_NAMES}
    for block in iter_blocks(n_customers, n_months, start, seed, model):
        for table, frame in block.items():
            parts[table].append(frame)
    return {t: pd.concat(parts[t], ignore_index=True) for t in TABLE_NAMES}


CSV_FLOAT = {"truth": "%.4g"}


def write_csv_table(frame: pd.DataFrame, path: Path, table: str, header: bool = True) -> None:
    """Append one block of a table to a CSV (compact floats: amounts to the cent, ISO dates)."""
    frame.to_csv(
        path,
        mode="w" if header else "a",
        header=header,
        index=False,
        lineterminator="\n",
        float_format=CSV_FLOAT.get(table, "%.12g"),
        date_format="%Y-%m-%d",
    )


def write_ledger(
    out_dir: Path,
    n_customers: int,
    n_months: int,
    start: str = "2023-01-01",
    seed: int = DEFAULT_SEED,
    fmt: str = "csv",
) -> dict[str, int]:
    """Generate block by block and stream to ``out_dir/<table>.<fmt>``; returns row counts per table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {t: 0 for t in TABLE_NAMES}
    writers: dict[str, pq.ParquetWriter] = {}
    try:
        for i, block in enumerate(iter_blocks(n_customers, n_months, start, seed)):
            for table, frame in block.items():
                path = out_dir / f"{table}.{fmt}"
                if fmt == "csv":
                    write_csv_table(frame, path, table, header=i == 0)
                else:
                    arrow = pa.Table.from_pandas(
                        frame, preserve_index=False
                    ).replace_schema_metadata(None)
                    if table not in writers:
                        writers[table] = pq.ParquetWriter(path, arrow.schema, compression="zstd")
                    writers[table].write_table(arrow.cast(writers[table].schema))
                rows[table] += len(frame)
    finally:
        for writer in writers.values():
            writer.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.synth", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--months", type=int, required=True)
    parser.add_argument(
        "--start", default="2023-01-01", help="first month of the ledger (default 2023-01-01)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    rows = write_ledger(args.out, args.customers, args.months, args.start, args.seed, args.format)
    print(f"synth: wrote {rows} to {args.out} in {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    from pipeline.config import run_stage

    run_stage(main, "synth", atomic=False)
