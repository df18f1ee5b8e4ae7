"""The credit file (客户信用档案): customer-attribute history, its validation on ingest, and the per-customer view.

A customer's attributes (credit limit, competitor share, net worth, turnover, segment, region, the six 6C
expert scores) change over its life. The ``customer_history`` table holds one row per *version*: the
attribute set valid on ``[valid_from, valid_to)`` (``valid_to`` null = still current), with the approver,
approval date and reason of the change. Features read each attribute as it stood at the as-of date, so a
limit cut or a panel downgrade made after t never reaches a snapshot at t.

Ingest rules (per row, then per customer timeline):

- per row: customer exists in the accepted master, ``valid_from`` present, ``valid_to`` after
  ``valid_from``, every date on or before the data cut-off (``future_date``), shares in [0, 1], money
  >= 0, expert scores 1–5;
- per customer: no two versions starting the same day (``duplicate_id``), no version starting before the
  previous one ends (``version_overlap``), no day between one version's end and the next one's start
  (``version_gap``). A timeline that breaks is quarantined whole (the offending row with its rule, its
  siblings as ``history_broken``): a partial timeline cannot be trusted point in time, so the customer
  falls back to the master as a single version, like a customer without history.

A customer without (valid) history gets one version from the master, valid from onboarding (or the first
invoice, if earlier) with no end; the ingest report lists which attributes therefore have no history.
Rows read = accepted + quarantined, per table, as for every canonical table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from pipeline.adapters.files import open_table
from pipeline.delphi import agreement_summary, merge_panels, panel_agreement
from pipeline.domain import SNAPSHOT_KEYS
from pipeline.io import write_parquet
from pipeline.quarantine import rule_counts
from pipeline.schemas import (
    COLUMNS,
    EXPERT_SCORES,
    HISTORY_ATTRIBUTES,
    REQUIRED,
    conform,
    parse_schema,
    validate,
)

CREDIT_FILE_TABLES = ("customer_history", "expert_scores", "platform")
CRITERIA = tuple(c.removeprefix("expert_") for c in EXPERT_SCORES)
META = ["_source_file", "_source_row"]
QUARANTINE_META = [*META, "_rule", "_column", "_reason"]
MASTER_VERSION_REASON = "customer master (no history): one version from onboarding"
TIMELINE_RULES = ("duplicate_id", "version_overlap", "version_gap", "history_broken")


# --------------------------------------------------------------------------- row rules
def _not_future(cutoff: pd.Timestamp | None) -> list[pa.Check]:
    if cutoff is None:
        return []
    return [pa.Check(lambda s: s.isna() | (s <= cutoff), name="future_date")]


def _exists(ids: pd.Index) -> pa.Check:
    ids = pd.Index(ids).unique()
    return pa.Check(
        lambda s: pd.Series(ids.get_indexer(s) >= 0, index=s.index), name="customer_exists"
    )


def _in_range(lo: float | None = None, hi: float | None = None) -> pa.Check:
    def ok(s: pd.Series) -> pd.Series:
        good = s.isna()
        inside = pd.Series(True, index=s.index)
        if lo is not None:
            inside &= s >= lo
        if hi is not None:
            inside &= s <= hi
        return good | inside.fillna(False)

    return pa.Check(ok, name="in_range")


def row_rules(
    table: str, customer_ids: pd.Index, cutoff: pd.Timestamp | None
) -> pa.DataFrameSchema:
    """Per-row rules of a credit-file table (frame already coerced by `schemas.parse_schema`)."""
    cols: dict[str, pa.Column] = {}
    for column, kind in COLUMNS[table].items():
        checks = _not_future(cutoff) if kind == "date" else []
        cols[column] = pa.Column(
            nullable=column not in REQUIRED[table], checks=checks, required=False
        )
    cols["customer_id"].checks.append(_exists(customer_ids))
    wide: list[pa.Check] = []
    if table == "customer_history":
        cols["competitor_share"].checks.append(_in_range(0, 1))
        for c in ("credit_limit", "net_worth", "annual_turnover"):
            cols[c].checks.append(_in_range(0))
        for c in EXPERT_SCORES:
            cols[c].checks.append(_in_range(1, 5))
        wide.append(
            pa.Check(
                lambda df: ~(df["valid_to"] <= df["valid_from"]).fillna(False),
                name="valid_to_after_from",
            )
        )
    elif table == "expert_scores":
        cols["score"].checks.append(_in_range(1, 5))
        cols["round"].checks.append(_in_range(1))
        cols["criterion"].checks.append(pa.Check.isin(list(CRITERIA), name="in_range"))
    elif table == "platform":
        cols["rating"].checks.append(_in_range(1, 5))
        for c in ("transactions", "refunds", "complaints"):
            cols[c].checks.append(_in_range(0))
        wide.append(
            pa.Check(
                lambda df: ~(df["refunds"] > df["transactions"]).fillna(False),
                name="refunds_within_transactions",
            )
        )
    return pa.DataFrameSchema(cols, checks=wide, strict=False)


# --------------------------------------------------------------------------- timeline rules
def timeline_failures(history: pd.DataFrame) -> pd.DataFrame:
    """Quarantine reasons (index → ``_rule, _column, _reason``) for broken customer timelines.

    ``history`` holds versions that passed the row rules. Versions are ordered by customer and
    ``valid_from``; each is compared with the one before it. Every version of a customer whose timeline
    breaks is rejected: the offending ones with their rule, the others as ``history_broken``.
    """
    if history.empty:
        return pd.DataFrame(columns=["_rule", "_column", "_reason"])
    h = history.sort_values(["customer_id", "valid_from"], kind="stable")
    same = h["customer_id"].eq(h["customer_id"].shift())
    prev_from = h["valid_from"].shift()
    prev_to = h["valid_to"].shift()
    dup = same & h["valid_from"].eq(prev_from)
    overlap = same & ~dup & (prev_to.isna() | (prev_to > h["valid_from"]))
    gap = same & ~dup & prev_to.notna() & (prev_to < h["valid_from"])

    def fmt(s: pd.Series) -> pd.Series:
        return s.dt.strftime("%Y-%m-%d").fillna("open")

    rows = []
    for mask, rule, text in (
        (dup, "duplicate_id", "a version of this customer already starts on valid_from="),
        (overlap, "version_overlap", "previous version still valid (valid_to="),
        (gap, "version_gap", "previous version ended (valid_to="),
    ):
        if mask.any():
            sub = h[mask]
            if rule == "duplicate_id":
                reason = text + fmt(sub["valid_from"])
            else:
                reason = (
                    text
                    + fmt(prev_to[mask])
                    + ") but this one starts valid_from="
                    + fmt(sub["valid_from"])
                )
            rows.append(
                pd.DataFrame(
                    {"_rule": rule, "_column": "valid_from", "_reason": f"{rule}(" + reason + ")"},
                    index=sub.index,
                )
            )
    if not rows:
        return pd.DataFrame(columns=["_rule", "_column", "_reason"])
    bad = pd.concat(rows)
    bad = bad[~bad.index.duplicated(keep="first")]
    broken = h["customer_id"].isin(h.loc[bad.index, "customer_id"]) & ~h.index.isin(bad.index)
    sib = h[broken]
    siblings = pd.DataFrame(
        {
            "_rule": "history_broken",
            "_column": "customer_id",
            "_reason": "history_broken(customer_id="
            + sib["customer_id"].astype(str)
            + ": another version of this customer breaks the timeline)",
        },
        index=sib.index,
    )
    return pd.concat([bad, siblings]).sort_index()


def duplicate_failures(frame: pd.DataFrame, keys: list[str], column: str) -> pd.DataFrame:
    """Rows repeating an earlier row's ``keys`` (first kept), as quarantine reasons."""
    dup = frame.duplicated(keys, keep="first")
    sub = frame[dup]
    return pd.DataFrame(
        {
            "_rule": "duplicate_id",
            "_column": column,
            "_reason": "duplicate_id(" + "/".join(keys) + " repeats an earlier row)",
        },
        index=sub.index,
    )


# --------------------------------------------------------------------------- master fallback
def history_from_master(
    customers: pd.DataFrame, first_invoice: pd.Series | None = None
) -> pd.DataFrame:
    """One open-ended version per customer from the master, valid from onboarding (or the first invoice,
    if earlier; from the start of the data when neither is known)."""
    start = customers["onboarding_date"]
    if first_invoice is not None and len(first_invoice):
        first = customers["customer_id"].map(first_invoice)
        start = start.where(start.notna() & ~(first < start), first)
    out = pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "valid_from": start,
            "valid_to": pd.NaT,
            **{c: customers[c] for c in HISTORY_ATTRIBUTES},
            "approver": customers.get("expert_approver"),
            "approval_date": customers.get("expert_date"),
            "change_reason": MASTER_VERSION_REASON,
        }
    )
    return conform(out, "customer_history")


def attribute_history_summary(history: pd.DataFrame) -> dict[str, Any]:
    """Per attribute: customers whose value changed at least once across versions (nulls count as a
    value). Attributes no customer's value ever changes are listed as without history."""
    changed: dict[str, int] = {}
    if history.empty:
        return {
            "customers_with_changes": {},
            "attributes_without_history": list(HISTORY_ATTRIBUTES),
        }
    h = history.sort_values(["customer_id", "valid_from"], kind="stable")
    same = h["customer_id"].eq(h["customer_id"].shift())
    for c in HISTORY_ATTRIBUTES:
        cur, prev = h[c].astype(object), h[c].shift().astype(object)
        differs = ~((cur == prev) | (cur.isna() & prev.isna()))
        changed[c] = int(h.loc[same & differs, "customer_id"].nunique())
    return {
        "customers_with_changes": changed,
        "attributes_without_history": [c for c in HISTORY_ATTRIBUTES if changed[c] == 0],
    }


def master_mismatches(history: pd.DataFrame, customers: pd.DataFrame) -> dict[str, int]:
    """Customers whose master value differs from their current (open-ended) version, per attribute."""
    current = history[history["valid_to"].isna()].drop_duplicates("customer_id", keep="last")
    m = customers.set_index("customer_id").reindex(current["customer_id"])
    cur = current.set_index("customer_id")
    out = {}
    for c in HISTORY_ATTRIBUTES:
        a, b = cur[c].astype(object), m[c].astype(object)
        same = (a == b) | (a.isna() & b.isna())
        out[c] = int((~same.astype(bool)).sum())
    return out


# --------------------------------------------------------------------------- ingest of the optional tables
def _read(
    path: Path, table: str, column_map: Mapping[str, str] | None, chunksize: int, encoding: str
) -> tuple[pd.DataFrame, Any]:
    src = open_table(
        path,
        table,
        list(COLUMNS[table]),
        REQUIRED[table],
        column_map=dict(column_map) if column_map is not None else None,
        chunksize=chunksize,
        encoding=encoding,
        allow_no_rows=True,
    )
    parts = [c for c in src.chunks() if not c.empty]
    frame = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=[*COLUMNS[table], *META])
    )
    return frame, src


def validate_table(
    raw: pd.DataFrame,
    table: str,
    customer_ids: pd.Index,
    cutoff: pd.Timestamp | None,
    date_format: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accepted canonical rows, quarantined rows as text with reasons) of one credit-file table.

    ``raw`` is the source as text with ``_source_file``/``_source_row``; ``customer_ids`` the accepted
    customer master."""
    raw = raw.reset_index(drop=True)
    meta = raw.reindex(columns=META)
    data = raw.drop(columns=[c for c in META if c in raw])
    parsed, bad_parse = validate(data, parse_schema(table, date_format), table)
    parsed = conform(parsed, table)
    checked, bad_rules = validate(parsed, row_rules(table, customer_ids, cutoff), table)
    ok = parsed.loc[checked.index]
    if table == "customer_history":
        bad_rows = timeline_failures(ok)
    elif table == "expert_scores":
        bad_rows = duplicate_failures(
            ok.assign(_panel=ok["panel_id"].fillna("")),
            ["_panel", "customer_id", "expert", "round", "criterion"],
            "criterion",
        )
    else:
        bad_rows = duplicate_failures(ok, ["customer_id", "period"], "period")
    reasons = pd.concat([bad_parse, bad_rules, bad_rows]).sort_index()
    ok = ok.drop(index=bad_rows.index)
    text = data.loc[reasons.index].reindex(columns=list(COLUMNS[table])).astype("string")
    bad = text.join(meta.loc[reasons.index]).join(reasons)
    bad = bad.reindex(columns=[*COLUMNS[table], *QUARANTINE_META])
    for c in [*COLUMNS[table], "_source_file", "_rule", "_column", "_reason"]:
        bad[c] = bad[c].astype("string")
    bad["_source_row"] = pd.to_numeric(bad["_source_row"]).astype("int64")
    order = ["customer_id", "valid_from"] if table == "customer_history" else ["customer_id"]
    ok = ok.sort_values(order, kind="stable").reset_index(drop=True)
    return ok, bad.reset_index(drop=True)


def _counts(
    src_files: list[str], n_read: int, good: pd.DataFrame, bad: pd.DataFrame
) -> dict[str, Any]:
    counts = {
        "files": src_files,
        "rows_read": n_read,
        "rows_accepted": len(good),
        "rows_quarantined": len(bad),
        **rule_counts(bad),
    }
    counts["reconciled"] = n_read == len(good) + len(bad)
    return counts


def _absent(table: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """An absent optional table: no rows accepted or quarantined."""
    good = conform(pd.DataFrame(index=pd.RangeIndex(0)), table)
    bad = pd.DataFrame(columns=[*COLUMNS[table], *QUARANTINE_META]).astype("string")
    bad["_source_row"] = bad["_source_row"].astype("int64")
    counts = _counts([], 0, good, bad)
    counts["source"] = "absent"
    return good, bad, counts


def ingest_credit_file(
    raw_dir: Path,
    interim_dir: Path,
    quarantine_dir: Path,
    customers: pd.DataFrame,
    first_invoice: pd.Series | None,
    cutoff: pd.Timestamp | None,
    *,
    files: Mapping[str, str],
    column_map: Mapping[str, Mapping[str, str]],
    chunksize: int,
    encoding: str,
    date_format: str,
    max_iqr: float,
) -> dict[str, dict[str, Any]]:
    """Validate the optional credit-file tables found under ``raw_dir``; write interim and quarantine
    Parquet for each (empty tables when absent) and return their ingest-report entries.

    ``files`` names each table's source file (params ``ingest.files``: every table of
    `CREDIT_FILE_TABLES`), ``column_map``, ``chunksize``, ``encoding`` and ``date_format`` read it as
    the ledger tables are read, ``max_iqr`` is the Delphi convergence rule (``ingest.delphi.max_iqr``).
    ``customer_history.parquet`` always covers every accepted customer: validated versions, else one
    version from the master (column ``version_source`` says which), with each Delphi panel's consensus
    merged in as a version change on its date (`pipeline.delphi`); ``delphi_panels.parquet`` holds the
    per-panel consensus and agreement (IQR per criterion, Kendall's W, converged)."""
    ids = pd.Index(customers["customer_id"])
    report: dict[str, dict[str, Any]] = {}
    accepted: dict[str, pd.DataFrame] = {}
    for table in CREDIT_FILE_TABLES:
        path = Path(raw_dir) / files[table]
        if path.exists():
            mapping = column_map[table] if table in column_map else None
            raw, src = _read(path, table, mapping, chunksize, encoding)
            good, bad = validate_table(raw, table, ids, cutoff, date_format)
            counts = _counts(src.files, len(raw), good, bad)
            counts["unknown_columns_dropped"] = list(src.unknown_columns)
        else:
            good, bad, counts = _absent(table)
        accepted[table] = good
        write_parquet(bad, Path(quarantine_dir) / f"{table}.parquet")
        report[table] = counts
    tables, extra = assemble_credit_file(accepted, customers, first_invoice, max_iqr)
    for table, lines in extra.items():
        report[table].update(lines)
    for name, frame in tables.items():
        write_parquet(frame, Path(interim_dir) / f"{name}.parquet")
    return report


def assemble_credit_file(
    accepted: dict[str, pd.DataFrame],
    customers: pd.DataFrame,
    first_invoice: pd.Series | None,
    max_iqr: float,
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, Any]]]:
    """The interim credit-file tables from the ``accepted`` rows of each: the history completed from
    the master with each Delphi panel's consensus merged in, the other tables as accepted, and the
    panels' agreement (``delphi_panels``); plus the report lines they add per table."""
    history, extra = complete_history(accepted["customer_history"], customers, first_invoice)
    panels = panel_agreement(accepted["expert_scores"], max_iqr)
    history, applied = merge_panels(history, panels)
    extra["delphi_panels_applied"] = applied
    tables = {**accepted, "customer_history": history, "delphi_panels": panels}
    return tables, {
        "customer_history": extra,
        "expert_scores": {"agreement": agreement_summary(panels)},
    }


def complete_history(
    history: pd.DataFrame, customers: pd.DataFrame, first_invoice: pd.Series | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validated versions plus one master version for each customer without any; and the report lines."""
    has = customers["customer_id"].isin(history["customer_id"])
    fallback = history_from_master(customers[~has], first_invoice)
    full = pd.concat(
        [history.assign(version_source="history"), fallback.assign(version_source="master")],
        ignore_index=True,
    )
    full = full.sort_values(["customer_id", "valid_from"], kind="stable", na_position="first")
    full = full.reset_index(drop=True)
    summary = attribute_history_summary(full)
    return full, {
        "customers_with_history": int(has.sum()),
        "customers_single_version_from_master": int((~has).sum()),
        "versions_written": len(full),
        "attributes_with_history": summary["customers_with_changes"],
        "attributes_without_history": summary["attributes_without_history"],
        "master_differs_from_current_version": master_mismatches(history, customers[has]),
        "note": "versions are valid on [valid_from, valid_to); features read the version valid at the "
        "as-of date",
    }


# --------------------------------------------------------------------------- point-in-time lookup
def attributes_as_of(history: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    """The version valid at each ``keys`` row (``customer_id``, ``as_of_date``): attributes as they stood.

    Reference implementation of the SQL join the features stage runs (used by the credit-file view and
    the tests): a version applies on ``[valid_from, valid_to)``; no version → nulls."""
    k = keys[SNAPSHOT_KEYS].reset_index(drop=True).assign(_row=lambda d: d.index)
    h = history.copy()
    h["_from"] = h["valid_from"].fillna(pd.Timestamp.min)
    m = pd.merge_asof(
        k.sort_values("as_of_date"),
        h.sort_values("_from"),
        left_on="as_of_date",
        right_on="_from",
        by="customer_id",
        direction="backward",
    )
    stale = m["valid_to"].notna() & (m["valid_to"] <= m["as_of_date"])
    cols = [c for c in h.columns if c not in ("customer_id", "_from")]
    m.loc[stale, cols] = np.nan
    return m.sort_values("_row").drop(columns=["_row", "_from"]).reset_index(drop=True)


# --------------------------------------------------------------------------- the per-customer credit file
VIEW_BEHAVIOUR = (
    "exposure",
    "overdue_share",
    "days_beyond_terms_wavg_12m",
    "days_beyond_terms_max_12m",
    "late_invoice_share_12m",
    "cei_3m",
    "worst_days_past_due",
    "invoiced_amount_12m",
)


def open_items(invoices: pd.DataFrame, payments: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    """Invoices open at ``t`` with the open amount and days past due: direct payments first, then the
    customer's unallocated cash FIFO by invoice date (the feature SQL's settlement rule); written-off
    invoices are not open."""
    inv = invoices[(invoices["invoice_date"] <= t)].copy()
    inv = inv[~(inv["write_off_date"] <= t)].sort_values(
        ["invoice_date", "due_date", "invoice_id"]
    )
    pay = payments[payments["payment_date"] <= t]
    direct = pay[pay["invoice_id"].notna()].groupby("invoice_id")["amount"].sum()
    inv["open"] = (inv["amount"] - inv["invoice_id"].map(direct).fillna(0)).clip(lower=0)
    pool = float(pay.loc[pay["invoice_id"].isna(), "amount"].sum())
    before = inv["open"].cumsum() - inv["open"]
    inv["open"] = (inv["open"] - (pool - before).clip(lower=0)).clip(lower=0).round(2)
    inv = inv[inv["open"] > 0.005]
    inv["days_past_due"] = (t - inv["due_date"]).dt.days.clip(lower=0)
    return inv[["invoice_id", "invoice_date", "due_date", "amount", "open", "days_past_due"]]


GRADE_COLUMNS = (
    "as_of_date",
    "label",
    "rule_grade",
    "final_grade",
    "overlay_notches",
    "grade_platform",
)
OVERRIDE_COLUMNS = (
    "as_of_date",
    "rule_grade",
    "final_grade",
    "overlay_notches",
    "override_reason",
    "override_approver",
    "override_date",
)


def _read_customer(path: Path, customer_id: str, **kw: Any) -> pd.DataFrame:
    """The rows of ``customer_id`` in a Parquet or CSV stage output; empty when the file is absent."""
    if not Path(path).is_file():
        return pd.DataFrame()
    frame = pd.read_parquet(path, **kw) if str(path).endswith(".parquet") else pd.read_csv(path)
    if "customer_id" not in frame:
        return frame
    return frame[frame["customer_id"].astype(str) == customer_id]


def _columns(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """The columns of ``names`` that ``frame`` has (empty frame when none)."""
    cols = [c for c in names if c in frame]
    return frame[cols].reset_index(drop=True) if cols else pd.DataFrame()


def _grade_overrides(snaps: pd.DataFrame) -> pd.DataFrame:
    """Snapshot rows where the final grade was moved off the rule or model grade."""
    if "overlay_notches" not in snaps:
        return pd.DataFrame()
    moved = snaps[snaps["overlay_notches"].fillna(0) != 0]
    return moved[[c for c in OVERRIDE_COLUMNS if c in snaps]].reset_index(drop=True)


def _limit_history(history: pd.DataFrame) -> pd.DataFrame:
    """The versions where the credit limit changed, with approver and reason."""
    limits = history[["valid_from", "valid_to", "credit_limit", "approver", "change_reason"]]
    return limits[limits["credit_limit"].ne(limits["credit_limit"].shift())].reset_index(drop=True)


def credit_file_view(customer_id: str, paths: Any) -> dict[str, Any]:
    """Everything the credit file holds on one customer, read from the stage outputs of ``paths``
    (`config.Paths`): identity, attribute history, Delphi panels, grade history, limit history, payment
    behaviour, open items, overrides and limit reviews. Missing outputs give empty sections."""
    customers = _read_customer(paths.interim / "customers.parquet", customer_id)
    if customers.empty:
        raise KeyError(f"customer {customer_id} is not in {paths.interim / 'customers.parquet'}")
    history = _read_customer(paths.interim / "customer_history.parquet", customer_id)
    history = history.sort_values("valid_from")
    snaps = _read_customer(
        paths.processed / "snapshots.parquet",
        customer_id,
        filters=[("customer_id", "==", customer_id)],
    )
    snaps = snaps.sort_values("as_of_date") if not snaps.empty else snaps
    t = snaps["as_of_date"].max() if not snaps.empty else pd.Timestamp.today().normalize()
    invoices = _read_customer(paths.interim / "invoices.parquet", customer_id)
    payments = _read_customer(paths.interim / "payments.parquet", customer_id)
    panels = _read_customer(paths.interim / "delphi_panels.parquet", customer_id)
    reviews = _read_customer(paths.exports / "limit_review.csv", customer_id)
    value = _read_customer(paths.exports / "customer_value.csv", customer_id)
    return {
        "identity": customers.iloc[0][
            ["customer_id", "name", "segment", "region", "onboarding_date", "group_id"]
        ].to_dict(),
        "attribute_history": history.reset_index(drop=True),
        "delphi_panels": panels.reset_index(drop=True),
        "grade_history": _columns(snaps, GRADE_COLUMNS),
        "limit_history": _limit_history(history),
        "payment_behaviour": _columns(snaps, ("as_of_date", *VIEW_BEHAVIOUR)),
        "open_items": open_items(invoices, payments, t) if not invoices.empty else pd.DataFrame(),
        "overrides": _grade_overrides(snaps),
        "limit_reviews": reviews.reset_index(drop=True),
        "value": value.reset_index(drop=True),
        "as_of": t,
    }
