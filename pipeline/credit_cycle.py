"""The credit-management cycle exports written by the publish stage: limit review and customer value.

`read_cycle_inputs` (the I/O edge) reads the snapshots (the last ``limit_review.months`` month ends, one
month at a time and only the columns the cycle uses: `cycle_columns`), the canonical invoices of the
ledger window before the last month end, the customer master and the credit file's segment history;
`credit_cycle` (pure) grades them with the published bundle, scoring in slices sized from
``base.memory_budget``, and returns the tables the publish stage writes into exports/<ds>/:

- ``limit_review.csv``: proposals (keep / raise / cut / suspend, trigger, proposed limit, approver role)
  with the final decision (an override with approver and reason when one is recorded);
- ``approval_authority.csv``: letter grade × exposure band × size of change → role;
- ``customer_value.csv``: per customer at the last month end: value, lifetime value, loyalty, grid cell
  and strategy, value tier and value × grade strategy;
- ``value_loyalty_grid.csv`` (six cells) and ``value_grade_strategy.csv`` (tier × grade);
- ``delphi_agreement.csv``: per customer and panel, the consensus, IQR per criterion, Kendall's W and
  whether the panel converged (customers whose panel did not converge are listed in the summary);
- ``credit_cycle.json``: the counts the note quotes (proposals by action and approver, grid counts,
  retention).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline import customer_value as cv
from pipeline import limit_review as lr
from pipeline.card.routing import scoring_columns
from pipeline.credit_file import attributes_as_of
from pipeline.domain import SNAPSHOT_KEYS
from pipeline.params.publish import PublishParams, policy_from_bundle
from pipeline.score import POLICY_INPUTS, score_in_slices
from pipeline.snapshot_io import present, read_rows

if TYPE_CHECKING:  # the application layer, for the I/O edge's signature only
    from pipeline.config import Paths

log = logging.getLogger("pipeline.credit_cycle")
VALUE_COLUMNS = (
    "tenure_months",
    "competitor_share",
    "late_invoice_share_12m",
    "invoice_count_12m",
)
REVIEW_COLUMNS = (
    "customer_id",
    "as_of_date",
    "label",
    "credit_limit",
    "exposure",
    "attributes_valid_from",
    "days_beyond_terms_wavg_12m",
)
"""Snapshot columns the limit review and customer value read besides what the bundle scores: keys,
default label, limit on file, exposure, the credit-file version date (scheduled reviews) and the
days beyond terms (carrying cost)."""
INVOICE_COLUMNS = ["customer_id", "invoice_date", "due_date", "amount"]
HISTORY_COLUMNS = ["customer_id", "valid_from", "valid_to", "segment"]
"""Credit-file columns `segments_at` reads (the segment as it stood at the value date)."""


@dataclass(frozen=True)
class SnapshotMonths:
    """The recent month ends of the snapshots, handed out one month at a time (the limit review
    holds one review date's rows, never the whole window): the review ``dates`` (oldest first), the
    ``columns`` there are, and ``month(d)``: the rows as of ``d`` in file order, indexed 0..n-1."""

    dates: list[pd.Timestamp]
    columns: list[str]
    month: Callable[[pd.Timestamp], pd.DataFrame]

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return (self.month(d) for d in self.dates)


@dataclass(frozen=True)
class CycleInputs:
    """What the credit cycle reads: recent snapshots (a frame in memory, or `SnapshotMonths` read
    from the file a month at a time) and the optional ledger and credit-file tables (None when the
    file is absent). ``invoices`` may be a function reading the ledger window when customer value
    needs it, after the limit review (the stage's reads), so the two are never held together."""

    snapshots: pd.DataFrame | SnapshotMonths
    invoices: pd.DataFrame | Callable[[], pd.DataFrame | None] | None
    customers: pd.DataFrame | None
    history: pd.DataFrame | None
    panels: pd.DataFrame | None
    overrides: pd.DataFrame | None
    overrides_source: str


# --------------------------------------------------------------------------- I/O edge
def cycle_columns(bundle: dict[str, Any]) -> list[str]:
    """The snapshot columns the credit cycle reads: `REVIEW_COLUMNS`, `VALUE_COLUMNS` and what
    `score.score_customers` reads with the bundle (card features, size measure, limit and
    behaviour-trigger inputs)."""
    size = policy_from_bundle(bundle["policy"]).size_measure
    return [*REVIEW_COLUMNS, *VALUE_COLUMNS, size, *POLICY_INPUTS, *scoring_columns(bundle)]


def months_in_memory(frame: pd.DataFrame, months: int) -> SnapshotMonths:
    """The last ``months`` as-of dates of a snapshot frame held in memory."""
    dates = [pd.Timestamp(d) for d in np.sort(frame["as_of_date"].unique())[-months:]]
    return SnapshotMonths(
        dates,
        list(frame.columns),
        lambda d: frame[frame["as_of_date"] == d].reset_index(drop=True),
    )


def recent_snapshot_months(path: Path, months: int, columns: list[str]) -> SnapshotMonths:
    """The last ``months`` as-of dates of the snapshot file, each month read on demand in batches
    (`snapshot_io.read_rows`): only its rows and only the ``columns`` the file has, with the dtypes
    of a full read."""
    as_of = pq.read_table(path, columns=["as_of_date"]).column(0).to_numpy()
    keep = list(pd.to_datetime(np.unique(as_of[~np.isnat(as_of)]))[-months:])
    columns = present(path, columns, SNAPSHOT_KEYS, "credit cycle input contract")

    def month(d: pd.Timestamp) -> pd.DataFrame:
        return read_rows(path, columns, as_of == pd.Timestamp(d).to_datetime64())

    return SnapshotMonths(keep, columns, month)


def read_ledger_window(path: Path, t: pd.Timestamp) -> pd.DataFrame | None:
    """The invoices `customer_value.ledger_activity` reads at the value date ``t``: dated within
    `customer_value.LEDGER_MONTHS` months up to ``t`` (filtered at read time; None without a ledger)."""
    if not path.is_file():
        return None
    start = pd.Timestamp(t) - pd.DateOffset(months=cv.LEDGER_MONTHS)
    window = [
        ("invoice_date", ">", start.to_pydatetime()),
        ("invoice_date", "<=", pd.Timestamp(t).to_pydatetime()),
    ]
    return pd.read_parquet(
        path, columns=INVOICE_COLUMNS, filters=window, read_dictionary=["customer_id"]
    )  # ids as a categorical: one string per customer, not per invoice


def _optional(path: Path, **kw: Any) -> pd.DataFrame | None:
    return pd.read_parquet(path, **kw) if path.is_file() else None


def read_cycle_inputs(paths: Paths, params: PublishParams, bundle: dict[str, Any]) -> CycleInputs:
    """Read the credit cycle's inputs from the stage outputs of ``paths``: the snapshot columns
    `cycle_columns` names, the invoices of the ledger window before the last month end, and the
    credit file's segment history."""
    p_rev = params.limit_review
    source = paths.raw / p_rev.overrides if p_rev.overrides else None
    snapshots = recent_snapshot_months(
        paths.processed / "snapshots.parquet", p_rev.months, cycle_columns(bundle)
    )
    ledger = paths.interim / "invoices.parquet"
    invoices = (
        partial(read_ledger_window, ledger, snapshots.dates[-1]) if ledger.is_file() else None
    )
    customers = None
    if invoices is not None:
        customers = pd.read_parquet(
            paths.interim / "customers.parquet", columns=["customer_id", "segment"]
        )
    return CycleInputs(
        snapshots=snapshots,
        invoices=invoices,
        customers=customers,
        history=_optional(paths.interim / "customer_history.parquet", columns=HISTORY_COLUMNS),
        panels=_optional(paths.interim / "delphi_panels.parquet"),
        overrides=lr.read_overrides(source),
        overrides_source=str(source),
    )


# --------------------------------------------------------------------------- pure
def bundle_letters(bundle: dict[str, Any]) -> list[str]:
    """Letter grades of the master scale, best first."""
    seen: list[str] = []
    for g in bundle["master_scale"]["grades"]:
        if g["letter_grade"] not in seen:
            seen.append(g["letter_grade"])
    return seen


def segments_at(
    customers: pd.DataFrame, history: pd.DataFrame | None, t: pd.Timestamp
) -> pd.Series:
    """Each customer's segment as it stood at ``t`` (credit file), else the master's."""
    seg = customers.set_index("customer_id")["segment"]
    if history is not None:
        keys = pd.DataFrame({"customer_id": seg.index, "as_of_date": t})
        at = attributes_as_of(history, keys).set_index("customer_id")["segment"]
        seg = at.where(at.notna(), seg)
    return seg


def value_inputs(
    last: pd.DataFrame,
    scored: pd.DataFrame,
    invoices: pd.DataFrame,
    segment: pd.Series,
    min_segment_customers: int,
) -> pd.DataFrame:
    """Per-customer inputs of `customer_value.customer_value` at the last month end."""
    t = pd.Timestamp(last["as_of_date"].max())
    act = cv.ledger_activity(invoices, t)
    s = last.set_index("customer_id")
    pd_ = pd.Series(scored["pd"].to_numpy(float), index=last["customer_id"])
    in_default = s.get("label", pd.Series("", index=s.index)) == "in_default"
    pd_ = pd_.where(~in_default.reindex(pd_.index, fill_value=False), 1.0)
    late = (s.get("late_invoice_share_12m") * s.get("invoice_count_12m")).astype(float)
    frame = pd.DataFrame(
        {
            "sales_12m": act["sales_12m"].reindex(s.index),
            "active_months_12m": act["active_months_12m"].reindex(s.index),
            "terms_days": act["terms_days"].reindex(s.index),
            "late_invoices_12m": late,
            "days_beyond_terms": s.get("days_beyond_terms_wavg_12m"),
            "pd": pd_.reindex(s.index),
            "tenure_months": s["tenure_months"],
            "competitor_share": s["competitor_share"],
        },
        index=s.index,
    )
    frame["retention"] = cv.retention_rates(
        act, segment.reindex(s.index).fillna("unknown"), min_segment_customers
    ).reindex(s.index)
    return frame


def review_tables(
    bundle: dict[str, Any],
    inputs: CycleInputs,
    params: PublishParams,
    budget_bytes: int | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Limit review proposals with their final decisions, the approval-authority table and the
    Delphi panel agreement; and their summary."""
    p_rev = params.limit_review
    review = lr.limit_review(bundle, inputs.snapshots, params.triggers, p_rev, budget_bytes)
    review = lr.apply_overrides(review, inputs.overrides, p_rev, inputs.overrides_source)
    tables = {
        "limit_review.csv": review,
        "approval_authority.csv": lr.approval_authority_table(p_rev, bundle_letters(bundle)),
    }
    summary: dict[str, Any] = {"limit_review": lr.review_summary(review)}
    panels = inputs.panels
    if panels is not None:  # per-customer panel agreement, for the credit committee
        tables["delphi_agreement.csv"] = panels
        summary["delphi_not_converged"] = sorted(
            panels.loc[~panels["converged"].astype(bool), "customer_id"].astype(str).unique()
        )
    return tables, summary


def value_tables(
    bundle: dict[str, Any],
    inputs: CycleInputs,
    params: PublishParams,
    budget_bytes: int | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Customer value, the value-loyalty grid and the value x grade strategy at the last month end;
    and their summary."""
    p_val = params.customer_value
    t = inputs.snapshots.dates[-1]
    last = inputs.snapshots.month(t)
    scored = score_in_slices(bundle, last, budget_bytes)
    segment = segments_at(inputs.customers, inputs.history, t)
    invoices = inputs.invoices() if callable(inputs.invoices) else inputs.invoices
    frame = value_inputs(last, scored, invoices, segment, p_val.min_segment_customers)
    del invoices
    values = cv.customer_value(frame, p_val)
    letter = pd.Series(scored["letter_grade"].astype(str).to_numpy(), index=last["customer_id"])
    letter = letter.where(last.set_index("customer_id").get("label") != "in_default", "D")
    grid = cv.value_grid(values, letter, p_val)
    grid.insert(0, "as_of_date", t)
    grid.insert(1, "segment", segment.reindex(grid.index).to_numpy())
    cells = cv.grid_counts(grid, p_val)
    strategy = cv.strategy_table(grid, p_val, bundle_letters(bundle))
    summary = {
        "value_as_of": str(pd.Timestamp(t).date()),
        "customers_valued": len(grid),
        "grid_counts": {f"{r.value}|{r.loyalty}": int(r.customers) for r in cells.itertuples()},
        "value_grade_counts": {
            f"{r.value_tier}|{r.letter_grade}|{r.strategy}": int(r.customers)
            for r in strategy.itertuples()
        },
        "retention_portfolio": float(np.nanmedian(frame["retention"])) if len(frame) else None,
        "lifetime_value_total": float(grid["lifetime_value"].sum()),
    }
    tables = {
        "customer_value.csv": grid.reset_index(),
        "value_loyalty_grid.csv": cells,
        "value_grade_strategy.csv": strategy,
    }
    return tables, summary


def credit_cycle(
    bundle: dict[str, Any],
    inputs: CycleInputs,
    params: PublishParams,
    budget_bytes: int | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The credit-cycle tables (file name under exports/<ds>/ -> frame) and the summary written as
    ``credit_cycle.json`` (module docstring). Customer value needs the snapshots' value columns
    and the invoices; without them the summary says why it was not computed. Snapshots are scored
    in slices sized from ``budget_bytes`` (``base.memory_budget``; None: each month in one piece)."""
    if not isinstance(inputs.snapshots, SnapshotMonths):
        months = months_in_memory(inputs.snapshots, params.limit_review.months)
        inputs = replace(inputs, snapshots=months)
    tables, summary = review_tables(bundle, inputs, params, budget_bytes)
    missing = [c for c in VALUE_COLUMNS if c not in inputs.snapshots.columns]
    if missing or inputs.invoices is None:
        summary["customer_value"] = (
            f"not computed: snapshots lack {missing}" if missing else "not computed: no invoices"
        )
        log.warning("customer value %s", summary["customer_value"])
        return tables, summary
    values, value_summary = value_tables(bundle, inputs, params, budget_bytes)
    log.info("limit review: %s", summary["limit_review"].get("last_month_by_action"))
    return {**tables, **values}, summary | value_summary
