"""The as-of grid: day numbers, as-of dates, window starts, performance-window ends and maturity.

The SQL works in integer day numbers since 1970-01-01; window starts are whole months before the as-of
date (a month end stays a month end), computed here once so both engines see the same grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from pipeline.domain import PipelineError
from pipeline.params.features import AsOfParams

EPOCH = pd.Timestamp("1970-01-01")


def to_day(ts: pd.Timestamp) -> int:
    """Day number since 1970-01-01 (the unit the SQL works in)."""
    return int((pd.Timestamp(ts).normalize() - EPOCH).days)


def from_day(days: pd.Series) -> pd.Series:
    """Day numbers back to ``datetime64[ns]`` dates."""
    return pd.to_datetime(days.astype("int64"), unit="D")


def shift_months(t: pd.Timestamp, months: int) -> pd.Timestamp:
    """``t`` moved by whole months; a month-end date stays a month end (2024-02-29 − 12m = 2023-02-28)."""
    shifted = t + pd.DateOffset(months=months)
    return shifted + pd.offsets.MonthEnd(0) if t.is_month_end else shifted


def as_of_dates(as_of: AsOfParams, data_cutoff: pd.Timestamp) -> list[pd.Timestamp]:
    """As-of dates from ``features.as_of``; a missing end means the data cut-off."""
    end = pd.Timestamp(as_of.end or data_cutoff)
    start = pd.Timestamp(as_of.start or end)
    dates = list(pd.date_range(start, end, freq=as_of.freq))
    if not dates:
        raise PipelineError(
            f"params.yaml features.as_of: no dates between {start.date()} and {end.date()}"
        )
    return dates


def asof_grid(
    dates: list[pd.Timestamp],
    windows: Sequence[int],
    performance_months: int,
    data_cutoff: pd.Timestamp,
) -> pd.DataFrame:
    """One row per as-of date: day number, window start days, end of the performance window, maturity."""
    rows = []
    for t in dates:
        row: dict[str, Any] = {"as_of_day": to_day(t)}
        for w in windows:
            row[f"start_day_{w}"] = to_day(shift_months(t, -w))
        perf_end = shift_months(t, performance_months)
        row["perf_end_day"] = to_day(perf_end)
        row["mature"] = bool(perf_end <= data_cutoff)
        rows.append(row)
    grid = pd.DataFrame(rows)
    return grid.astype({c: "int32" for c in grid.columns if c != "mature"})


def eval_days(grid: pd.DataFrame, roll_months: list[pd.Timestamp]) -> pd.DataFrame:
    """Every day an open balance is needed: as-of dates, window starts (CEI) and roll-rate month ends."""
    cols = [c for c in grid.columns if c == "as_of_day" or c.startswith("start_day_")]
    days = set(grid[cols].to_numpy().ravel().tolist()) | {to_day(d) for d in roll_months}
    return pd.DataFrame({"eval_day": sorted(days)}, dtype="int32")


def roll_rate_months(
    first: pd.Timestamp, cutoff: pd.Timestamp, n_months: int
) -> list[pd.Timestamp]:
    """The last ``n_months`` month ends up to the cut-off, not before the first invoice's month."""
    ends = pd.date_range(first + pd.offsets.MonthEnd(0), cutoff, freq="ME")
    return list(ends[-n_months:])
