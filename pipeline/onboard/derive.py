"""The ``datasets.<name>`` block derived from a profiled ledger (`derive_settings`): cut-off, as-of
grid, out-of-time start, windows, materiality, a bad definition the data supports, grades and the
currency, each with the reason it was chosen. Pure: no file access."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipeline.domain import PipelineError
from pipeline.onboard.columns import ISO_FORMATS
from pipeline.onboard.profile import choose_cutoff, estimate_outcomes
from pipeline.params.ingest import OnboardDefaults
from pipeline.sufficiency import (
    MIN_BAD_CUSTOMERS,
    grades_that_fit,
    month_ends_between,
    propose_material_amount,
    suggest_as_of,
    suggest_oot_start,
)

DEFAULT_WINDOWS = (3, 6, 12)
STAGES = ("ingest", "features", "train", "evaluate", "calibrate", "publish")
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
