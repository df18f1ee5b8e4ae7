"""Data sufficiency: is there enough history and enough bads for a result to mean anything?

Pure functions on the snapshots and samples frames, called by small hooks in the features, train,
evaluate and calibrate stages. The train stage writes ``reports/<ds>/train/sufficiency.json``: bads and goods
per sample and segment, months of history, snapshots per customer, and every warning raised.

Stages *warn* below the minimums in `MINIMUMS` (a result exists but is fragile) and *stop* with a
`PipelineError` where a result would be meaningless (no out-of-time rows, one outcome only, no as-of
date in the data). Every message names the params key to change and, where the data tells, the value
``python -m pipeline.onboard`` would choose.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.domain import SNAPSHOT_KEYS, PipelineError
from pipeline.snapshot_io import same_keys

if TYPE_CHECKING:
    from pipeline.params.train import SplitParams

log = logging.getLogger("pipeline.sufficiency")

# Stated minimums (warnings below them). Rules of thumb for a small-ledger scorecard: a WoE bin needs a
# handful of bads, a validation AUC on fewer than ~20 bads has a confidence interval wider than ±0.1, and
# a grade's PD is only testable with a few bads in it.
MINIMUMS: dict[str, int] = {
    "bads_train": 50,
    "goods_train": 200,
    "bads_calibration": 20,
    "bads_oot": 20,
    "goods_oot": 50,
    "months_of_history_out_of_time": 18,
    "bads_per_grade": 3,
}
# a bad definition is "supported" when at least this many customers reach it
MIN_BAD_CUSTOMERS = 30
OOT_SHARE = 1 / 3
# the as-of grid starts at the 6th month end of the ledger: a 6-month window of history is complete
LEAD_MONTH_ENDS = 5


def month_ends_between(start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    """Month ends from ``start``'s month to ``end`` inclusive (end itself if it is a month end)."""
    return list(pd.date_range(pd.Timestamp(start) + pd.offsets.MonthEnd(0), end, freq="ME"))


def suggest_oot_start(matured_as_of: Sequence[pd.Timestamp]) -> pd.Timestamp | None:
    """The out-of-time start onboard chooses: the last third (at least one) of the as-of dates whose
    outcome has matured, leaving at least one for development; None when fewer than two."""
    dates = sorted(
        pd.Timestamp(d) for d in pd.unique(pd.Series(list(matured_as_of), dtype=object))
    )
    if len(dates) < 2:
        return None
    n_oot = min(max(1, round(len(dates) * OOT_SHARE)), len(dates) - 1)
    return dates[-n_oot]


def suggest_as_of(
    first_invoice: pd.Timestamp,
    data_cutoff: pd.Timestamp,
    windows: Sequence[int],
    performance_months: int,
) -> dict[str, str]:
    """The as-of grid onboard chooses: month ends from the ledger's 6th month end (earlier when that
    would leave fewer than two as-of dates with a matured outcome) to the data cut-off."""
    ends = month_ends_between(first_invoice, data_cutoff)
    cutoff = str(pd.Timestamp(data_cutoff).date())
    if not ends:
        return {"start": cutoff, "end": cutoff, "freq": "ME"}
    start = ends[min(LEAD_MONTH_ENDS, len(ends) - 1)]
    matured = [t for t in ends if t + pd.DateOffset(months=performance_months) <= data_cutoff]
    if matured and start > matured[0] and len([t for t in matured if t >= start]) < 2:
        start = matured[0]
    return {"start": str(start.date()), "end": str(ends[-1].date()), "freq": "ME"}


def _segment(frame: pd.DataFrame) -> pd.Series:
    if "segment" in frame.columns:
        return frame["segment"].astype("string").fillna("excluded")
    return pd.Series("all", index=frame.index, dtype="string")


def sample_counts(snapshots: pd.DataFrame, samples: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows, customers, bads and goods per sample and segment (outcome rows only count as bad/good)."""
    keys = SNAPSHOT_KEYS
    columns = ["is_bad", *(["segment"] if "segment" in snapshots else [])]
    if same_keys(samples, snapshots):  # train's samples: read off by position, no join on the keys
        frame = samples[[*keys, "sample"]].reset_index(drop=True)
        for c in columns:
            frame[c] = snapshots[c].to_numpy()
    else:
        frame = samples[[*keys, "sample"]].merge(snapshots[[*keys, *columns]], on=keys, how="left")
    frame["segment"] = _segment(frame)
    out = []
    for (sample, segment), part in frame.groupby(["sample", "segment"], sort=True):
        y = part["is_bad"]
        out.append(
            {
                "sample": str(sample),
                "segment": str(segment),
                "rows": int(len(part)),
                "customers": int(part["customer_id"].nunique()),
                "bads": int((y == 1).sum()),
                "goods": int((y == 0).sum()),
            }
        )
    return out


def totals_by_sample(counts: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """``sample -> {rows, bads, goods}`` summed over segments."""
    out: dict[str, dict[str, int]] = {}
    for row in counts:
        t = out.setdefault(row["sample"], {"rows": 0, "bads": 0, "goods": 0})
        for k in t:
            t[k] += row[k]
    return out


def history(snapshots: pd.DataFrame) -> dict[str, Any]:
    """As-of span, months of history with an outcome, and snapshots per customer."""
    dates = pd.to_datetime(snapshots["as_of_date"])
    has_outcome = snapshots["is_bad"].notna()
    outcome_dates = sorted(dates[has_outcome].unique())
    per_customer = snapshots.groupby("customer_id").size()

    def months(ds: list) -> int:
        if not ds:
            return 0
        a, b = pd.Timestamp(ds[0]), pd.Timestamp(ds[-1])
        return (b.year - a.year) * 12 + b.month - a.month + 1

    return {
        "first_as_of": str(dates.min().date()) if len(dates) else None,
        "last_as_of": str(dates.max().date()) if len(dates) else None,
        "as_of_dates": int(dates.nunique()),
        "as_of_dates_with_outcome": len(outcome_dates),
        "months_of_history_with_outcome": months(outcome_dates),
        "first_as_of_with_outcome": str(pd.Timestamp(outcome_dates[0]).date())
        if outcome_dates
        else None,
        "last_as_of_with_outcome": str(pd.Timestamp(outcome_dates[-1]).date())
        if outcome_dates
        else None,
        "snapshots_per_customer": {
            "mean": float(per_customer.mean()) if len(per_customer) else 0.0,
            "median": float(per_customer.median()) if len(per_customer) else 0.0,
            "max": int(per_customer.max()) if len(per_customer) else 0,
        },
        "customers": int(per_customer.size),
    }


def suggest_bad_days(
    snapshots: pd.DataFrame, current: int, min_customers: int = MIN_BAD_CUSTOMERS
) -> int | None:
    """The highest days-beyond-terms threshold (of 90, 60, 30, 15) that at least ``min_customers``
    customers reach in their snapshots' 12-month worst lateness; None when none does."""
    col = next(
        (c for c in ("days_beyond_terms_max_12m", "worst_days_past_due") if c in snapshots), None
    )
    if col is None:
        return None
    worst = snapshots.groupby("customer_id")[col].max()
    for days in (90, 60, 30, 15):
        if days <= current and int((worst >= days).sum()) >= min_customers:
            return days
    return None


def sufficiency_report(
    snapshots: pd.DataFrame,
    samples: pd.DataFrame,
    split: SplitParams,
    n_grades: int | None = None,
) -> dict[str, Any]:
    """The sufficiency report (counts, history, minimums, warnings); pure, raises nothing."""
    counts = sample_counts(snapshots, samples)
    totals = totals_by_sample(counts)
    hist = history(snapshots)
    method = split.method
    warnings: list[str] = []

    def get(sample: str, what: str) -> int:
        return totals.get(sample, {}).get(what, 0)

    checks = [
        ("bads_train", get("train", "bads"), "train", "bads"),
        ("goods_train", get("train", "goods"), "train", "goods"),
        ("bads_calibration", get("calibration", "bads"), "calibration", "bads"),
        ("bads_oot", get("oot", "bads"), "oot", "bads"),
        ("goods_oot", get("oot", "goods"), "oot", "goods"),
    ]
    for key, value, sample, what in checks:
        if value < MINIMUMS[key]:
            warnings.append(
                f"{sample} sample: {value} {what} (< {MINIMUMS[key]}); results on it are fragile — "
                "lengthen the history or loosen features.label (bad definition)"
            )
    if (
        method == "out_of_time"
        and hist["months_of_history_with_outcome"] < MINIMUMS["months_of_history_out_of_time"]
    ):
        warnings.append(
            f"only {hist['months_of_history_with_outcome']} months of as-of dates with a matured outcome "
            f"(< {MINIMUMS['months_of_history_out_of_time']}); the out-of-time test covers a short period"
        )
    if n_grades:
        cal_bads = get("calibration", "bads")
        if cal_bads < MINIMUMS["bads_per_grade"] * n_grades:
            fit = max(2, min(n_grades, cal_bads // MINIMUMS["bads_per_grade"]))
            warnings.append(
                f"calibration sample: {cal_bads} bads for {n_grades} grades (< "
                f"{MINIMUMS['bads_per_grade']} per grade); set calibrate.n_grades: {fit}"
            )
    return {
        "method": method,
        "minimums": dict(MINIMUMS),
        "history": hist,
        "by_sample": totals,
        "by_sample_and_segment": counts,
        "warnings": warnings,
    }


def check_samples(
    snapshots: pd.DataFrame,
    samples: pd.DataFrame,
    split: SplitParams,
    n_grades: int | None = None,
    dataset: str = "<ds>",
) -> dict[str, Any]:
    """The report, with its warnings logged; a `PipelineError` where a fit or test would be meaningless."""
    report = sufficiency_report(snapshots, samples, split, n_grades)
    totals = report["by_sample"]
    method = report["method"]
    oot = totals.get("oot", {"bads": 0, "goods": 0})
    if oot["bads"] + oot["goods"] == 0:
        raise no_oot_error(snapshots, split.oot_start, dataset)
    train = totals.get("train", {"bads": 0, "goods": 0})
    if train["bads"] == 0 or train["goods"] == 0:
        raise one_outcome_error(snapshots, "train", train)
    if method == "out_of_time" and (oot["bads"] == 0 or oot["goods"] == 0):
        raise one_outcome_error(snapshots, "oot", oot, split)
    for w in report["warnings"]:
        log.warning("sufficiency: %s", w)
    return report


def matured_dates(snapshots: pd.DataFrame) -> list[pd.Timestamp]:
    """As-of dates with at least one good or bad outcome."""
    d = pd.to_datetime(snapshots.loc[snapshots["is_bad"].notna(), "as_of_date"])
    return sorted(pd.Timestamp(x) for x in d.unique())


def no_oot_error(
    snapshots: pd.DataFrame, oot_start: str | None, dataset: str = "<ds>"
) -> PipelineError:
    """No out-of-time row with an outcome: name ``train.split.oot_start`` (now ``oot_start``) and
    the value that fits."""
    dates = matured_dates(snapshots)
    current = oot_start
    if not dates:
        return PipelineError(
            "no snapshot has a matured outcome (every as-of date is within "
            "features.label.performance_window_months of the data cut-off, or no label); move "
            "features.as_of.start earlier or shorten features.label.performance_window_months — "
            f"`python -m pipeline.onboard data/raw/{dataset}/ --force` derives both"
        )
    suggestion = suggest_oot_start(dates)
    span = f"{dates[0].date()}..{dates[-1].date()}"
    fix = (
        f'set train.split.oot_start: "{suggestion.date()}" (the value onboard would choose)'
        if suggestion is not None
        else "only one as-of date has an outcome: use train.split.method: stratified_holdout"
    )
    return PipelineError(
        f"params.yaml train.split.oot_start = {current!r}: no out-of-time rows with an outcome "
        f"(as-of dates with a matured outcome run {span}); {fix}"
    )


def one_outcome_error(
    snapshots: pd.DataFrame,
    sample: str,
    counts: dict[str, int],
    split: SplitParams | None = None,
) -> PipelineError:
    """A sample with only goods or only bads: name the label settings (or the split) and a value."""
    if counts.get("bads", 0) == 0:
        days = suggest_bad_days(snapshots, 90)
        hint = (
            f"features.label.bad_days_beyond_terms: {days} (a non-default proxy definition; "
            "onboard proposes it when the default yields too few bads)"
            if days is not None
            else "a lower features.label.material_amount or bad_days_beyond_terms"
        )
        return PipelineError(
            f"{sample} sample: {counts.get('goods', 0)} goods and no bads — the bad definition "
            f"(features.label.bad_days_beyond_terms, material_amount, material_share) is never met; "
            f"try {hint}"
        )
    if split is not None:
        return PipelineError(
            f"{sample} sample: no goods ({counts.get('bads', 0)} bads); move train.split.oot_start "
            f'(now {split.oot_start!r}) to "{suggest_oot_start(matured_dates(snapshots)).date()}"'
        )
    return PipelineError(
        f"{sample} sample: no goods ({counts.get('bads', 0)} bads); raise "
        "features.label.bad_days_beyond_terms or features.label.material_amount"
    )


def warn_label(
    metrics: dict[str, Any],
    *,
    source: str,
    material_amount: float,
    bad_days_beyond_terms: int,
    median_amount: float | None,
) -> list[str]:
    """Warnings for a label with no bads or no goods (bad rate nan, 0 or 1), naming the materiality
    (``source``, ``material_amount``, ``bad_days_beyond_terms``: the ``features.label`` settings)."""
    counts = metrics.get("label_counts", {})
    bads, goods = int(counts.get("bad", 0)), int(counts.get("good", 0))
    if source != "ledger" or (bads and goods):
        return []
    material = material_amount
    proposal = ""
    if median_amount:
        proposal = f" (onboard would choose {propose_material_amount(median_amount):g} for a median invoice of {median_amount:,.2f})"
    if bads == 0:
        return [
            f"no bad outcome among {goods} goods (bad rate {'nan' if not goods else 0}): "
            f"features.label.material_amount = {material} may exceed this ledger's invoices{proposal}; "
            f"or lower features.label.bad_days_beyond_terms (now {bad_days_beyond_terms})"
        ]
    return [
        f"no good outcome among {bads} bads: the bad definition is met by everyone; raise "
        "features.label.bad_days_beyond_terms or features.label.material_amount"
    ]


def propose_material_amount(median_invoice: float) -> float:
    """Materiality relative to the ledger: 0.5% of the median invoice, rounded to 1-2-5 (one digit)."""
    if not np.isfinite(median_invoice) or median_invoice <= 0:
        return 0.0
    raw = 0.005 * median_invoice
    exp = np.floor(np.log10(raw))
    mant = raw / 10**exp
    step = min((1, 2, 5, 10), key=lambda m: abs(np.log(mant / m)))
    return float(round(step * 10**exp, 10))


def _calibration_rows(scored: pd.DataFrame) -> pd.DataFrame:
    return scored[(scored["sample"] == "calibration") & scored["is_bad"].notna()]


def grades_that_fit(bads: int, n_grades: int) -> int:
    """The largest number of grades (2..n_grades) with at least ``bads_per_grade`` bads each."""
    return int(max(2, min(n_grades, bads // MINIMUMS["bads_per_grade"])))


def warn_grades(scored: pd.DataFrame, n_grades: int) -> list[str]:
    """Warn (and return the warnings) when the calibration sample has too few bads for
    ``n_grades`` grades (``calibrate.n_grades``)."""
    cal = _calibration_rows(scored)
    bads = int((cal["is_bad"] == 1).sum())
    out = []
    if bads < MINIMUMS["bads_per_grade"] * n_grades:
        out.append(
            f"calibration sample: {len(cal)} rows and {bads} bads for {n_grades} grades (< "
            f"{MINIMUMS['bads_per_grade']} bads per grade): grade PDs rest on a handful of defaults; "
            f"set calibrate.n_grades: {grades_that_fit(bads, n_grades)}"
        )
    for w in out:
        log.warning("sufficiency: %s", w)
    return out


def explain_grade_failure(
    exc: PipelineError,
    scored: pd.DataFrame,
    *,
    n_grades: int,
    method: str,
    isotonic_min_sample: int,
    central_tendency: Any,
    pd_floor: float,
) -> PipelineError:
    """Re-word a master-scale failure with its real cause: too few distinct calibrated PDs (isotonic
    plateaus), too few distinct scores, or too few bads — and the setting that fixes it. The keyword
    arguments are the ``calibrate`` settings of the failed run."""
    if "master scale" not in str(exc):
        return exc
    from pipeline.calibration import fit_calibrator

    cal = _calibration_rows(scored)
    score = cal["score"].to_numpy(dtype=float)
    y = cal["is_bad"].astype(int).to_numpy()
    try:
        calibrator = fit_calibrator(
            score,
            y,
            method=method,
            isotonic_min_sample=int(isotonic_min_sample),
            central_tendency=central_tendency,
            pd_floor=float(pd_floor),
        )
    except PipelineError:
        return exc
    n_pd = int(np.unique(np.round(calibrator.predict_pd(score), 12)).size)
    n_scores = int(np.unique(score).size)
    bads = int(y.sum())
    causes = []
    if n_pd < n_grades:
        kind = getattr(calibrator, "kind", method)
        causes.append(
            f"the {kind} calibrator gives only {n_pd} distinct PDs on the calibration sample"
            + (" (isotonic plateaus: set calibrate.method: platt)" if kind == "isotonic" else "")
        )
    if n_scores < n_grades:
        causes.append(f"the scorecard gives only {n_scores} distinct scores")
    if bads < MINIMUMS["bads_per_grade"] * n_grades:
        causes.append(f"the calibration sample has {bads} bads in {len(cal)} rows")
    if not causes:
        return exc
    fit = min(grades_that_fit(bads, n_grades), max(2, n_pd), max(2, n_scores))
    return PipelineError(
        f"calibrate: cannot cut {n_grades} grades with strictly rising PDs: {'; '.join(causes)}; "
        f"set calibrate.n_grades: {fit} (grades the data supports) [{exc}]"
    )


def ledger_facts(tables: dict[str, Any], memory_limit: str = "1GB") -> dict[str, Any]:
    """First invoice date, latest event date and median invoice amount of the canonical tables
    (for the features stage's hooks), computed by DuckDB over the Parquet files within ``memory_limit``
    so the invoices never pass through pandas. The median is DuckDB's (the mean of the two middle
    amounts for an even count, as pandas)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute("SET threads = 1")

        def scan(name: str) -> str:
            return f"read_parquet('{Path(tables[name]).as_posix()}')"

        first, last_invoice, median = con.execute(
            f"SELECT MIN(invoice_date), MAX(invoice_date), MEDIAN(amount) FROM {scan('invoices')}"
        ).fetchone()
        last = [last_invoice]
        for name, col in (("payments", "payment_date"), ("claims", "claim_date")):
            if name in tables:
                last.append(con.execute(f"SELECT MAX({col}) FROM {scan(name)}").fetchone()[0])
    finally:
        con.close()
    last = [pd.Timestamp(x) for x in last if x is not None and pd.notna(x)]
    return {
        "first_invoice": pd.Timestamp(first) if first is not None else None,
        "last_event": max(last) if last else None,
        "median_amount": float(median) if median is not None else None,
    }


def check_as_of_grid(
    facts: dict[str, Any],
    *,
    start: str | None,
    end: str | None,
    freq: str,
    data_cutoff: str | None,
    performance_months: int,
) -> None:
    """Stop before the SQL when the as-of grid (``features.as_of``: ``start``, ``end``, ``freq``)
    yields no date inside the ledger (first invoice .. ``features.data_cutoff`` or the last event)."""
    if facts.get("first_invoice") is None:
        return
    cutoff = pd.Timestamp(data_cutoff or facts["last_event"])
    end_date = pd.Timestamp(end or cutoff)
    start_date = pd.Timestamp(start or end_date)
    dates = pd.date_range(start_date, end_date, freq=freq)
    inside = [d for d in dates if facts["first_invoice"] <= d <= cutoff]
    if len(inside):
        return
    fit = suggest_as_of(facts["first_invoice"], cutoff, (), int(performance_months))
    raise PipelineError(
        f"params.yaml features.as_of: no as-of date between {start_date.date()} and {end_date.date()} falls "
        f"inside the ledger ({facts['first_invoice'].date()}..{cutoff.date()}); set "
        f'datasets.<ds>.features.as_of: {{start: "{fit["start"]}", end: "{fit["end"]}", freq: ME}} '
        "(the grid onboard would choose)"
    )
