"""The credit-management cycle exports written by the publish stage: limit review and customer value.

`publish_credit_cycle` reads the snapshots (the last ``limit_review.months`` month ends), the published
bundle (to grade them), the canonical invoices and the credit file, and writes into exports/<ds>/:

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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline import customer_value as cv
from pipeline import limit_review as lr
from pipeline.config import Paths
from pipeline.io import write_csv, write_json
from pipeline.score import score_customers

log = logging.getLogger("pipeline.credit_cycle")
VALUE_COLUMNS = (
    "tenure_months",
    "competitor_share",
    "late_invoice_share_12m",
    "invoice_count_12m",
)


def bundle_letters(bundle: dict[str, Any]) -> list[str]:
    """Letter grades of the master scale, best first."""
    seen: list[str] = []
    for g in bundle["master_scale"]["grades"]:
        if g["letter_grade"] not in seen:
            seen.append(g["letter_grade"])
    return seen


def read_recent_snapshots(path: Path, months: int) -> pd.DataFrame:
    """Snapshot rows of the last ``months`` as-of dates only (the file is never read whole)."""
    dates = pq.read_table(path, columns=["as_of_date"]).column(0).unique().to_pandas()
    keep = sorted(pd.to_datetime(dates))[-months:]
    table = pq.read_table(path, filters=[("as_of_date", ">=", keep[0].to_pydatetime())])
    return table.to_pandas()


def value_inputs(
    last: pd.DataFrame,
    scored: pd.DataFrame,
    invoices: pd.DataFrame,
    segment: pd.Series,
    p: dict[str, Any],
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
        act, segment.reindex(s.index).fillna("unknown"), int(p["min_segment_customers"])
    ).reindex(s.index)
    return frame


def publish_credit_cycle(bundle: dict[str, Any], paths: Paths, params: dict[str, Any]) -> dict:
    """Write the limit review and customer-value exports (module docstring); return the summary."""
    p_rev, p_val = params["limit_review"], params["customer_value"]
    letters = bundle_letters(bundle)
    lr.check_params(p_rev, letters)
    cv.check_params(p_val)
    snaps = read_recent_snapshots(paths.processed / "snapshots.parquet", int(p_rev["months"]))
    review = lr.limit_review(bundle, snaps, p_rev)
    source = paths.raw / p_rev["overrides"] if p_rev.get("overrides") else None
    review = lr.apply_overrides(review, lr.read_overrides(source), p_rev, str(source))

    out = paths.exports
    write_csv(review, out / "limit_review.csv")
    write_csv(lr.approval_authority_table(p_rev, letters), out / "approval_authority.csv")
    summary: dict[str, Any] = {"limit_review": lr.review_summary(review)}
    panels_path = paths.interim / "delphi_panels.parquet"
    if panels_path.is_file():  # per-customer panel agreement, for the credit committee
        panels = pd.read_parquet(panels_path)
        write_csv(panels, out / "delphi_agreement.csv")
        summary["delphi_not_converged"] = sorted(
            panels.loc[~panels["converged"].astype(bool), "customer_id"].astype(str).unique()
        )
    missing = [c for c in VALUE_COLUMNS if c not in snaps.columns]
    if missing or not (paths.interim / "invoices.parquet").is_file():
        summary["customer_value"] = (
            f"not computed: snapshots lack {missing}" if missing else "not computed: no invoices"
        )
        log.warning("customer value %s", summary["customer_value"])
        write_json(summary, out / "credit_cycle.json")
        return summary
    t = snaps["as_of_date"].max()
    last = snaps[snaps["as_of_date"] == t].reset_index(drop=True)
    scored = score_customers(bundle, last)
    invoices = pd.read_parquet(
        paths.interim / "invoices.parquet",
        columns=["customer_id", "invoice_date", "due_date", "amount"],
    )
    segment = _segments_at(paths, t)
    frame = value_inputs(last, scored, invoices, segment, p_val)
    values = cv.customer_value(frame, p_val)
    letter = pd.Series(scored["letter_grade"].astype(str).to_numpy(), index=last["customer_id"])
    letter = letter.where(last.set_index("customer_id").get("label") != "in_default", "D")
    grid = cv.value_grid(values, letter, p_val)
    grid.insert(0, "as_of_date", t)
    grid.insert(1, "segment", segment.reindex(grid.index).to_numpy())
    cells = cv.grid_counts(grid, p_val)
    strategy = cv.strategy_table(grid, p_val, letters)

    write_csv(grid.reset_index(), out / "customer_value.csv")
    write_csv(cells, out / "value_loyalty_grid.csv")
    write_csv(strategy, out / "value_grade_strategy.csv")
    summary |= {
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
    write_json(summary, out / "credit_cycle.json")
    log.info("limit review: %s", summary["limit_review"].get("last_month_by_action"))
    return summary


def _segments_at(paths: Paths, t: pd.Timestamp) -> pd.Series:
    """Each customer's segment as it stood at ``t`` (credit file), else the master's."""
    hist_path = paths.interim / "customer_history.parquet"
    cust = pd.read_parquet(paths.interim / "customers.parquet", columns=["customer_id", "segment"])
    seg = cust.set_index("customer_id")["segment"]
    if hist_path.is_file():
        from pipeline.credit_file import attributes_as_of

        h = pd.read_parquet(hist_path)
        keys = pd.DataFrame({"customer_id": seg.index, "as_of_date": t})
        at = attributes_as_of(h, keys).set_index("customer_id")["segment"]
        seg = at.where(at.notna(), seg)
    return seg
