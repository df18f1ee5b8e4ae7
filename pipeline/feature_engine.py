"""Runs the feature SQL (`pipeline.feature_sql`) on DuckDB, out of core, and turns the result into snapshots.

Pure helpers: the as-of grid (`asof_grid`), evaluation days and the feature
dictionary (`feature_dictionary`). `compute_snapshots` is the one entry point the stage, the tests and the
benchmarks call; Spark runs the same statements through `run_statements_spark`.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import PipelineError
from pipeline.feature_sql import (
    AGING_BUCKETS,
    EXPERT_COLUMNS,
    INVOICE_KEYS,
    LATE_BUCKETS,
    MASTER_HISTORY_SQL,
    SETTLEMENT_OUTPUTS,
    SETTLEMENT_TABLES,
    build_feature_sql,
    feature_windows,
    roll_rate_sql,
    settlement_sql,
    vintage_sql,
)
from pipeline.io import atomic_path

EPOCH = pd.Timestamp("1970-01-01")
TABLES = ("customers", "invoices", "payments", "claims")
PROTECTED = ("protected_sex", "protected_marital_status", "protected_age", "protected_education")
LABELS = ("good", "bad", "indeterminate", "immature", "in_default")


def to_day(ts: pd.Timestamp) -> int:
    """Day number since 1970-01-01 (the unit the SQL works in)."""
    return int((pd.Timestamp(ts).normalize() - EPOCH).days)


def from_day(days: pd.Series) -> pd.Series:
    """Day numbers back to ``datetime64[ns]`` dates."""
    return pd.to_datetime(days.astype("int64"), unit="D")


def _shift_months(t: pd.Timestamp, months: int) -> pd.Timestamp:
    """``t`` moved by whole months; a month-end date stays a month end (2024-02-29 − 12m = 2023-02-28)."""
    shifted = t + pd.DateOffset(months=months)
    return shifted + pd.offsets.MonthEnd(0) if t.is_month_end else shifted


def as_of_dates(params: Mapping[str, Any], data_cutoff: pd.Timestamp) -> list[pd.Timestamp]:
    """As-of dates from ``as_of: {start, end, freq}``; a missing end means the data cut-off."""
    spec = params.get("as_of") or {}
    end = pd.Timestamp(spec.get("end") or data_cutoff)
    start = pd.Timestamp(spec.get("start") or end)
    dates = list(pd.date_range(start, end, freq=spec.get("freq", "ME")))
    if not dates:
        raise PipelineError(
            f"params.yaml features.as_of: no dates between {start.date()} and {end.date()}"
        )
    return dates


def asof_grid(
    dates: list[pd.Timestamp], params: Mapping[str, Any], data_cutoff: pd.Timestamp
) -> pd.DataFrame:
    """One row per as-of date: day number, window start days, end of the performance window, maturity."""
    perf = int(params.get("label", {}).get("performance_window_months", 12))
    rows = []
    for t in dates:
        row: dict[str, Any] = {"as_of_day": to_day(t)}
        for w in feature_windows(params):
            row[f"start_day_{w}"] = to_day(_shift_months(t, -w))
        perf_end = _shift_months(t, perf)
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


def _connect(params: Mapping[str, Any], temp_dir: str | None):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{params.get('memory_limit', '4GB')}'")
    con.execute(f"SET threads = {int(params.get('threads', 2))}")
    con.execute(f"SET temp_directory = '{temp_dir or tempfile.gettempdir()}'")
    con.execute("SET preserve_insertion_order = false")
    return con


# customer-master columns the snapshot carries; absent ones (a ledger without them) are read as null
OPTIONAL_CUSTOMER_COLUMNS = {
    "onboarding_date": "DATE",
    "competitor_share": "DOUBLE",
    "credit_limit": "DOUBLE",
    "net_worth": "DOUBLE",
    "annual_turnover": "DOUBLE",
    "source_default_flag": "BIGINT",
    "protected_sex": "VARCHAR",
    "protected_marital_status": "VARCHAR",
    "protected_age": "BIGINT",
    "protected_education": "VARCHAR",
    **{c: "BIGINT" for c in EXPERT_COLUMNS[:6]},
    "expert_approver": "VARCHAR",
    "expert_reason": "VARCHAR",
    "expert_date": "DATE",
}


def _register(con, name: str, source: pd.DataFrame | Path) -> None:
    if isinstance(source, pd.DataFrame):
        con.register(f"{name}_df", source)
        relation = f"{name}_df"
    else:
        relation = f"read_parquet('{Path(source).as_posix()}')"
    extra = ""
    if name == "customers":
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}
        extra = "".join(
            f", CAST(NULL AS {t}) AS {c}"
            for c, t in OPTIONAL_CUSTOMER_COLUMNS.items()
            if c not in present
        )
    con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT *{extra} FROM {relation}")


def data_cutoff_of(con) -> pd.Timestamp:
    """Latest event date in the ledger (invoices, payments, claims, write-offs)."""
    value = con.execute("""SELECT GREATEST(
        (SELECT MAX(invoice_date) FROM invoices), (SELECT MAX(write_off_date) FROM invoices),
        (SELECT MAX(payment_date) FROM payments), (SELECT MAX(claim_date) FROM claims))""").fetchall()[
        0
    ][0]
    if value is None:
        raise PipelineError("invoices.parquet: no invoices; the features stage needs at least one")
    return pd.Timestamp(value).normalize()


def last_uses(
    statements: list[tuple[str, str]], keep: tuple[str, ...] = ()
) -> dict[int, list[str]]:
    """For each statement index, the temp tables no later statement reads, directly or through a view
    (safe to drop once it has run). Dropping them keeps DuckDB's working set to what is still needed, so a
    memory limit spills less."""
    names = [n for n, _ in statements]
    is_view = [" TEMP VIEW " in sql for _, sql in statements]
    last: dict[str, int] = {}
    for k in range(len(statements) - 1, -1, -1):
        pattern = re.compile(rf"\b{names[k]}\b")
        readers = [j for j in range(k + 1, len(statements)) if pattern.search(statements[j][1])]
        last[names[k]] = max((last[names[j]] if is_view[j] else j for j in readers), default=k)
    drops: dict[int, list[str]] = {}
    for k, name in enumerate(names[:-1]):
        if not is_view[k] and name not in keep:
            drops.setdefault(last[name], []).append(name)
    return drops


def run_statements(con, statements: list[tuple[str, str]], keep: tuple[str, ...] = ()) -> str:
    """Run every statement but the last on DuckDB, dropping temp tables after their last reader; return
    the last one (the snapshot SELECT) for the caller to fetch or COPY."""
    drops = last_uses(statements, keep)
    for k, (_, sql) in enumerate(statements[:-1]):
        con.execute(sql)
        for name in drops.get(k, []):
            con.execute(f"DROP TABLE {name}")
    return statements[-1][1]


ANALYSIS_INPUTS = ("cust_keys", "inv_settled", "open_balance")


def compute_settlement(
    tables: Mapping[str, pd.DataFrame | Path],
    params: Mapping[str, Any],
    out_dir: Path,
    temp_dir: str | None = None,
) -> dict[str, int]:
    """Settle the ledger once: allocation of payments, FIFO pool, settlement day and open-amount inputs.

    Writes one Parquet file per `SETTLEMENT_TABLES` name into ``out_dir`` (each streamed by DuckDB ``COPY``)
    and returns their row counts. `compute_snapshots` reads them back
    (``tables`` given those names) instead of settling again, so every as-of grid and experiment reuses one
    settlement. The files go through `pipeline.io.atomic_path`, so a killed stage leaves the previous
    complete settlement."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = _connect(params, temp_dir)
    counts: dict[str, int] = {}
    try:
        for name in ("customers", "invoices", "payments"):
            if name not in tables:
                raise PipelineError(f"settle: canonical table '{name}' is missing")
            _register(con, name, tables[name])
        for _, sql in settlement_sql("duckdb"):
            con.execute(sql)
        con.execute(f"CREATE TEMP TABLE invoice_keys AS {INVOICE_KEYS}")
        for name, select in SETTLEMENT_OUTPUTS.items():
            # through pipeline.io: committed with the stage's other outputs and recorded in its manifest
            with atomic_path(out_dir / f"{name}.parquet") as tmp:
                con.execute(f"COPY ({select}) TO '{tmp.as_posix()}' (FORMAT parquet)")
                counts[name] = int(
                    con.execute(
                        f"SELECT COUNT(*) FROM read_parquet('{tmp.as_posix()}')"
                    ).fetchall()[0][0]
                )
    finally:
        con.close()
    return counts


def compute_snapshots(
    tables: Mapping[str, pd.DataFrame | Path],
    params: Mapping[str, Any],
    temp_dir: str | None = None,
    with_analysis: bool = False,
    out_path: Path | None = None,
) -> dict[str, Any]:
    """Snapshots (labelled, keyed by ``customer_id``, ``as_of_date``) from the canonical tables on DuckDB.

    ``tables`` maps customers/invoices/payments/claims (and optionally truth) to DataFrames or Parquet paths.
    Returns ``{"snapshots", "data_cutoff", "grid"}`` plus, with ``with_analysis``, ``vintage_events`` (per
    customer first invoice / first bad day) and ``buckets`` (worst ageing bucket per customer and month end).
    With ``out_path`` the snapshot table is streamed to that Parquet file by DuckDB (never held in Python
    memory) and ``snapshots`` is the path; otherwise it is a DataFrame.
    """
    con = _connect(params, temp_dir)
    try:
        for name in TABLES:
            if name not in tables:
                raise PipelineError(f"features: canonical table '{name}' is missing")
            _register(con, name, tables[name])
        with_truth = tables.get("truth") is not None
        if with_truth:
            _register(con, "truth", tables["truth"])
        if tables.get("customer_history") is not None:
            _register(con, "customer_history", tables["customer_history"])
        else:
            con.execute(f"CREATE OR REPLACE VIEW customer_history AS {MASTER_HISTORY_SQL}")
        settled = all(tables.get(name) is not None for name in SETTLEMENT_TABLES)
        if settled:
            for name in SETTLEMENT_TABLES:
                _register(con, name, tables[name])
        cutoff = (
            pd.Timestamp(params["data_cutoff"])
            if params.get("data_cutoff")
            else data_cutoff_of(con)
        )
        dates = as_of_dates(params, cutoff)
        grid = asof_grid(dates, params, cutoff)
        first = pd.Timestamp(
            con.execute("SELECT MIN(invoice_date) FROM invoices").fetchall()[0][0]
        )
        months = (
            roll_rate_months(first, cutoff, int(params.get("roll_rate_months", 24)))
            if with_analysis
            else []
        )
        con.register("asof_grid", grid)
        con.register("eval_days", eval_days(grid, months))
        try:
            statements = build_feature_sql(dict(params), "duckdb", with_truth, settled)
        except ValueError as exc:
            raise PipelineError(str(exc)) from exc
        snapshot_sql = run_statements(con, statements, ANALYSIS_INPUTS if with_analysis else ())
        result: dict[str, Any] = {"data_cutoff": cutoff, "grid": grid}
        if with_analysis:
            result["vintage_events"] = con.execute(vintage_sql(dict(params))).df()
            buckets = con.execute(roll_rate_sql()).df()
            month_days = {to_day(m) for m in months}
            result["buckets"] = buckets[buckets["eval_day"].isin(month_days)].reset_index(
                drop=True
            )
            result["roll_months"] = months
        if out_path is not None:
            con.execute(f"COPY ({snapshot_sql}) TO '{Path(out_path).as_posix()}' (FORMAT parquet)")
            result["snapshots"] = Path(out_path)
        else:
            result["snapshots"] = finish_snapshots(con.execute(snapshot_sql).df())
    finally:
        con.close()
    return result


SNAPSHOT_INT_PREFIXES = (
    "invoice_count_",
    "claims_count_",
    "days_beyond_terms_max_",
    "payment_count_",
    "payment_delay_max_",
)
SNAPSHOT_INT_COLUMNS = (
    "overdue_invoice_count",
    "worst_days_past_due",
    "days_beyond_terms_last_invoice",
    "days_since_last_late_payment",
    "days_since_last_payment",
)


def finish_snapshots(raw: pd.DataFrame) -> pd.DataFrame:
    """Pandas dtypes of the SQL snapshot table: nanosecond dates, string ids, nullable Int64 counts and
    days, nullable Int8 ``is_bad`` (the same whichever engine produced it)."""
    frame = raw
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).astype("datetime64[ns]")
    frame["customer_id"] = frame["customer_id"].astype("str")
    frame["label"] = frame["label"].astype("str")
    frame["is_bad"] = frame["is_bad"].astype("Int8")
    ints = [c for c in frame.columns if c.startswith(SNAPSHOT_INT_PREFIXES)]
    for col in [*ints, *SNAPSHOT_INT_COLUMNS]:
        frame[col] = frame[col].astype("Int64")
    return frame


# --------------------------------------------------------------------------- feature dictionary
RULE_COLUMNS = {
    "grade_net_collection": (
        "Rule indicator grade A–D from net_collection_rate (pipeline.rules)",
        "grade",
    ),
    "grade_payment_timing": ("Rule indicator grade A–D from the payment-timing measure", "grade"),
    "grade_competitor_share": ("Rule indicator grade A–D from competitor_share", "grade"),
    "rule_subgrade": ("The three indicator letters in that order, '-' for a missing one", "grade"),
    "rule_grade": ("Seed's rule-based grade A/B/C/D/UNDEFINED", "grade"),
    "rule_grade_basis": ("three_indicators or two_indicators", "text"),
    "rule_grade_reason": (
        "Why the rule grade is what it is (completion used, veto, undefined)",
        "text",
    ),
    "expert_score": ("Weighted 6C/Delphi expert score", "score 1–5"),
    "overlay_notches": ("Notches applied by the expert overlay (+ = upgrade)", "notches"),
    "final_grade": ("Rule grade after the bounded expert overlay", "grade"),
    "override_reason": ("Reason recorded for an overlay override", "text"),
    "override_approver": ("Approver of an overlay override", "text"),
    "override_date": ("Date of an overlay override", "date"),
}


def feature_dictionary(params: Mapping[str, Any], columns: list[str]) -> pd.DataFrame:
    """One row per snapshot column that is a feature or a carried attribute (keys and labels excluded)."""
    scoring_windows = {int(w) for w in params.get("windows_months", [3, 6, 12])}
    rows: list[tuple[str, str, Any, str, str, bool]] = [
        (
            "exposure",
            "Open receivable balance at the as-of date (issued, not settled or written off, less "
            "partial payments)",
            None,
            "currency",
            "numeric",
            False,
        ),
        (
            "avg_monthly_invoiced",
            "Invoiced amount over the last 12 months / min(12, months on book): the size "
            "measure for limit bands",
            12,
            "currency",
            "numeric",
            False,
        ),
    ]
    for name, lo, hi in AGING_BUCKETS:
        what = (
            "not yet due"
            if name == "current"
            else f"{lo}–{hi} days past due"
            if hi
            else f"over {lo - 1} days past due"
        )
        rows.append(
            (
                f"open_balance_{name}",
                f"Open balance at the as-of date {what} (ageing by due date)",
                None,
                "currency",
                "numeric",
                True,
            )
        )
    rows += [
        (
            "overdue_share",
            "Past-due share of the open balance at the as-of date",
            None,
            "ratio",
            "numeric",
            True,
        ),
        (
            "overdue_invoice_count",
            "Open invoices past due at the as-of date",
            None,
            "count",
            "numeric",
            True,
        ),
        (
            "worst_days_past_due",
            "Days past due of the oldest past-due open invoice at the as-of date (0 if none)",
            None,
            "days",
            "numeric",
            True,
        ),
    ]
    for w in feature_windows(params):
        s = w in scoring_windows
        exp = f"over invoices issued in the last {w} months that are settled or past due at the as-of date"
        rows += [
            (
                f"invoice_count_{w}m",
                f"Invoices issued in the last {w} months",
                w,
                "count",
                "numeric",
                s,
            ),
            (
                f"invoiced_amount_{w}m",
                f"Amount invoiced in the last {w} months",
                w,
                "currency",
                "numeric",
                s,
            ),
            (
                f"days_beyond_terms_mean_{w}m",
                f"Mean days beyond terms (paid − due, or as-of − due if open) {exp}",
                w,
                "days",
                "numeric",
                s,
            ),
            (
                f"days_beyond_terms_wavg_{w}m",
                f"Amount-weighted mean days beyond terms {exp}",
                w,
                "days",
                "numeric",
                s,
            ),
            (
                f"days_late_wavg_{w}m",
                f"Amount-weighted mean lateness, max(0, days beyond terms) (early payment counts as "
                f"0, never offsets a late one) {exp}",
                w,
                "days",
                "numeric",
                s,
            ),
            (
                f"days_beyond_terms_max_{w}m",
                f"Worst days beyond terms {exp}",
                w,
                "days",
                "numeric",
                s,
            ),
            (
                f"late_invoice_share_{w}m",
                f"Share of invoices with days beyond terms > 0 {exp}",
                w,
                "ratio",
                "numeric",
                s,
            ),
        ]
        for b, lo, hi in LATE_BUCKETS:
            rng = f"{lo}–{hi}" if hi else f"over {lo - 1}"
            rows.append(
                (
                    f"late_amount_share_{b}_{w}m",
                    f"Share of amount {rng} days beyond terms {exp}",
                    w,
                    "ratio",
                    "numeric",
                    s,
                )
            )
        rows += [
            (
                f"paydex_{w}m",
                "Internal PAYDEX-style index (not D&B's): amount-weighted points of days beyond terms "
                f"(anchors −30→100, 0→80, 30→50, 120→20, then 3 days per point to the floor) {exp}",
                w,
                "points 1–100",
                "numeric",
                s,
            ),
            (
                f"net_collection_rate_{w}m",
                f"(Receivable due − claims paid out − written off) / receivable due; "
                f"receivable due = invoices with due date in the last {w} months (up to the as-of date), claims "
                f"dated in the window, write-offs of those invoices by the as-of date",
                w,
                "ratio",
                "numeric",
                s,
            ),
            (
                f"claims_count_{w}m",
                f"Claims/deductions paid out dated in the last {w} months",
                w,
                "count",
                "numeric",
                s,
            ),
            (
                f"claims_rate_{w}m",
                f"Claims amount / amount invoiced, last {w} months",
                w,
                "ratio",
                "numeric",
                s,
            ),
            (
                f"payment_ratio_{w}m",
                f"Cash received (all payments dated in the window) / amount invoiced, last {w} "
                "months",
                w,
                "ratio",
                "numeric",
                s,
            ),
            (
                f"payment_count_{w}m",
                f"Payments received in the last {w} months",
                w,
                "count",
                "numeric",
                s,
            ),
            (
                f"payment_delay_max_{w}m",
                f"Worst payment delay (payment date − due date of the invoice it pays, "
                f"allocated payments incl. partial ones) over payments dated in the last {w} months",
                w,
                "days",
                "numeric",
                s,
            ),
            (
                f"payment_delay_mean_{w}m",
                f"Mean payment delay over allocated payments dated in the last {w} months",
                w,
                "days",
                "numeric",
                s,
            ),
            (
                f"dso_{w}m",
                f"Days sales outstanding: open balance at as-of / amount invoiced in the last {w} months "
                "× days in the window",
                w,
                "days",
                "numeric",
                s,
            ),
            (
                f"best_possible_dso_{w}m",
                f"Best possible DSO: not-yet-due balance / amount invoiced in the last {w} "
                "months × days in the window",
                w,
                "days",
                "numeric",
                s,
            ),
            (
                f"average_days_delinquent_{w}m",
                "Average days delinquent = DSO − best possible DSO",
                w,
                "days",
                "numeric",
                s,
            ),
            (
                f"cei_{w}m",
                "Collection effectiveness index, total-period credit sales convention: (open balance at "
                f"window start + invoiced − open at as-of) / (open at start + invoiced − not-yet-due at as-of) × 100, "
                f"last {w} months",
                w,
                "percent",
                "numeric",
                s,
            ),
            (
                f"largest_invoice_share_{w}m",
                f"Largest invoice / amount invoiced, last {w} months (concentration)",
                w,
                "ratio",
                "numeric",
                s,
            ),
        ]
    wmin, wmax = min(feature_windows(params)), max(feature_windows(params))
    rows += [
        (
            "days_beyond_terms_trend",
            f"days_beyond_terms_wavg_{wmin}m − days_beyond_terms_wavg_{wmax}m "
            "(positive = paying later recently)",
            wmax,
            "days",
            "numeric",
            True,
        ),
        (
            "days_beyond_terms_last_invoice",
            f"Days beyond terms of the latest invoice (by invoice date, worst on "
            f"ties) settled or past due at the as-of date, within the last {wmax} months",
            wmax,
            "days",
            "numeric",
            True,
        ),
        (
            "days_since_last_late_payment",
            f"Days since the last invoice paid after its due date (invoices of the "
            f"last {wmax} months; missing when none)",
            wmax,
            "days",
            "numeric",
            True,
        ),
        (
            "days_since_last_payment",
            f"Days since the last payment of any kind (payments of the last {wmax} "
            "months; missing when none)",
            wmax,
            "days",
            "numeric",
            True,
        ),
        (
            "tenure_months",
            "Months since the earlier of the onboarding date and the first invoice",
            None,
            "months",
            "numeric",
            True,
        ),
        (
            "competitor_share",
            "Share of competitors' products in what the customer sells, as it stood at the as-of "
            "date (customer_history version valid then)",
            None,
            "ratio",
            "numeric",
            True,
        ),
        (
            "credit_limit",
            "Credit limit as it stood at the as-of date (customer_history)",
            None,
            "currency",
            "numeric",
            True,
        ),
        (
            "net_worth",
            "Net worth as reported in the version valid at the as-of date (customer_history)",
            None,
            "currency",
            "numeric",
            True,
        ),
        (
            "annual_turnover",
            "Annual turnover as reported in the version valid at the as-of date (customer_history)",
            None,
            "currency",
            "numeric",
            True,
        ),
        (
            "net_worth_previous",
            "Net worth of the version before the one valid at the as-of date (suspend trigger input)",
            None,
            "currency",
            "numeric",
            False,
        ),
        (
            "attributes_valid_from",
            "Start of the customer_history version the attribute columns come from (null: the "
            "master's single version, valid since the start of the data)",
            None,
            "date",
            "categorical",
            False,
        ),
        (
            "utilisation",
            "Exposure at the as-of date / credit limit",
            None,
            "ratio",
            "numeric",
            True,
        ),
        *[
            (
                p,
                "Protected attribute, carried for fairness reports only; never a model input",
                None,
                "category",
                "categorical",
                False,
            )
            for p in PROTECTED
        ],
        *[
            (
                c,
                f"6C/Delphi panel {c.removeprefix('expert_')} score 1–5 as it stood at the as-of date, carried "
                "for the rule-grade overlay; never a model input",
                None,
                "score 1–5",
                "numeric",
                False,
            )
            for c in EXPERT_COLUMNS[:6]
        ],
        (
            "expert_approver",
            "Approver of the customer_history version valid at the as-of date",
            None,
            "text",
            "categorical",
            False,
        ),
        (
            "expert_reason",
            "Reason recorded with the customer_history version valid at the as-of date",
            None,
            "text",
            "categorical",
            False,
        ),
        (
            "expert_date",
            "Date of the expert assessment; the overlay applies only on or after it",
            None,
            "date",
            "categorical",
            False,
        ),
        (
            "source_default_flag",
            "Outcome given by the source (UCI's default next month); label only",
            None,
            "flag",
            "categorical",
            False,
        ),
        (
            "written_off_amount_to_date",
            "Amount of the customer's invoices written off on or before the as-of date (any date); "
            "above 0 puts the snapshot in the in_default label, never a model input",
            None,
            "currency",
            "numeric",
            False,
        ),
        (
            "true_pd",
            "Generator's conditional 12-month PD at the as-of date, given the customer still pays "
            "(synthetic data only; NaN when the truth has no row); for validation, never a model input",
            12,
            "probability",
            "numeric",
            False,
        ),
        (
            "segment",
            "Observation segment at the as-of date: delinquent (a material open invoice at or beyond "
            "features.segments.delinquent_days_beyond_terms), current, or empty when already in "
            "default (outside the observation population); routes validation, never a model input",
            None,
            "segment",
            "categorical",
            False,
        ),
    ]
    rows += [
        (c, d, None, u, "categorical" if u != "notches" and u != "score 1–5" else "numeric", False)
        for c, (d, u) in RULE_COLUMNS.items()
    ]
    table = pd.DataFrame(
        rows, columns=["feature", "definition", "window_months", "unit", "dtype", "scoring"]
    )
    table["window_months"] = table["window_months"].astype("Int64")
    if params.get("label", {}).get("source") == "customer_flag":
        table.loc[table["feature"] == "source_default_flag", "definition"] += " (the label here)"
    return table[table["feature"].isin(columns)].reset_index(drop=True)
