"""Point-in-time feature definitions as SQL, rendered for DuckDB or Spark SQL from one definition.

The features stage (DuckDB) and the Spark engine run the statements returned by `build_feature_sql`
unchanged; only `_day` (date -> day number) differs between the dialects. Every date is turned into an
integer day number once, at the bottom, so all later arithmetic (days beyond terms, ageing, windows) is
integer arithmetic that both engines evaluate identically. Money is summed in integer cents (exact).

Inputs (views registered by the caller): ``customers``, ``invoices``, ``payments``, ``claims`` (canonical
tables), ``asof_grid`` (one row per as-of date: ``as_of_day``, ``start_day_<w>`` per window,
``perf_end_day``, ``mature``) and ``eval_days`` (``eval_day``: every date at which open balances are needed:
as-of dates, window starts, month ends for roll rates). ``truth`` is optional.

Conventions (stated once, used everywhere):

- **Settlement.** Payments carrying an ``invoice_id`` settle that invoice on the day their running total
  reaches its amount. Unallocated cash (``invoice_id`` null) is applied FIFO, oldest invoice first (invoice
  date, then due date, then invoice id): an invoice is settled by the pool on the first day the customer's
  cumulative unallocated cash reaches the cumulative amount of its invoices up to and including this one.
  The earlier of the two days wins, never before the invoice date. With one payment term per customer the
  order equals "FIFO by due date"; ordering by invoice date keeps the rule point in time (an invoice issued
  after t can never move ahead of one issued before t).
- **Days beyond terms (DBT) at t** of an invoice issued by t: settled by t → settled day − due day;
  open and past due at t → t − due day (aged at t); open and not yet due → unknown (not an experience).
- **Windows** ``w`` months: events dated in (t − w months, t]; the start dates are computed in Python.
- **Open balance at d**: invoices issued ≤ d, not settled and not written off by d, less partial payments
  made by d (direct partial payments plus the customer's FIFO pool share). Ageing is by due date:
  current = not yet due (d ≤ due day), then 1–30, 31–60, 61–90, 90+ days past due (upper edge inclusive).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EXPERT_COLUMNS = (
    "expert_character",
    "expert_capacity",
    "expert_capital",
    "expert_collateral",
    "expert_conditions",
    "expert_coverage",
    "expert_approver",
    "expert_reason",
    "expert_date",
)
NEVER = 100_000_000  # day number meaning "not (yet) happened"; keeps comparisons free of NULLs
DIALECTS = ("duckdb", "spark")

# internal PAYDEX-style weighting key: (days beyond terms, points), linear in between (domain.md §1.2)
PAYDEX_ANCHORS: tuple[tuple[int, int], ...] = (
    (-30, 100),
    (-20, 90),
    (0, 80),
    (15, 70),
    (22, 60),
    (30, 50),
    (60, 40),
    (90, 30),
    (120, 20),
)
LATE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("1_30", 1, 30),
    ("31_60", 31, 60),
    ("61_90", 61, 90),
    ("90p", 91, None),
)
AGING_BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    ("current", None, 0),
    ("1_30", 1, 30),
    ("31_60", 31, 60),
    ("61_90", 61, 90),
    ("90p", 91, None),
)


def feature_windows(params: dict[str, Any]) -> list[int]:
    """Windows computed: the configured ones plus 12 months (the rule inputs always need 12 months)."""
    return sorted(set(int(w) for w in params.get("windows_months", [3, 6, 12])) | {12})


def paydex_points(dbt: float, floor: float = 1.0) -> float:
    """Points of one experience on the internal PAYDEX-style key (1–100; 3 days per point beyond DBT 120)."""
    anchors = PAYDEX_ANCHORS
    if dbt <= anchors[0][0]:
        return float(anchors[0][1])
    for (d0, p0), (d1, p1) in zip(anchors, anchors[1:], strict=False):
        if dbt <= d1:
            return p0 + (dbt - d0) * (p1 - p0) / (d1 - d0)
    return max(float(floor), anchors[-1][1] - (dbt - anchors[-1][0]) / 3.0)


def collection_effectiveness_index(
    beginning_ar: float,
    credit_sales: float,
    ending_ar: float,
    ending_current_ar: float,
    n_months: int = 1,
    convention: str = "total_sales",
) -> float:
    """CEI in percent. ``total_sales`` (the pipeline's convention) uses the period's total credit sales;
    ``monthly_average`` divides the sales by ``n_months`` (the creditguru variant)."""
    sales = credit_sales if convention == "total_sales" else credit_sales / n_months
    return 100.0 * (beginning_ar + sales - ending_ar) / (beginning_ar + sales - ending_current_ar)


# --------------------------------------------------------------------------- dialect helpers
def _day(expr: str, dialect: str) -> str:
    """Day number (days since 1970-01-01) of a date/timestamp column; NULL stays NULL."""
    if dialect == "duckdb":
        return f"CAST(date_diff('day', DATE '1970-01-01', CAST({expr} AS DATE)) AS INTEGER)"
    return f"datediff(CAST({expr} AS DATE), DATE '1970-01-01')"


def _create(name: str, select: str, dialect: str, materialize: bool = True) -> str:
    """An intermediate result: a DuckDB temp table when reused (else a view); always a Spark temp view
    (the Spark runner caches the ones listed in `MATERIALIZED`)."""
    if dialect == "duckdb" and materialize:
        return f"CREATE OR REPLACE TEMP TABLE {name} AS\n{select}"
    return f"CREATE OR REPLACE TEMP VIEW {name} AS\n{select}"


def _row_id(dialect: str) -> str:
    """A unique integer per row, used only as a join key (its values never reach the output)."""
    return "ROW_NUMBER() OVER ()" if dialect == "duckdb" else "monotonically_increasing_id()"


MATERIALIZED = (
    "cust_keys",
    "inv",
    "first_invoice",
    "write_off_agg",
    "pay",
    "direct_run",
    "pool",
    "inv_settled",
    "open_pairs",
    "open_balance",
    "exp_bands",
    "exp_agg_*",
    "claims_agg",
    "pay_agg",
    "perf_agg",
)


def is_materialized(name: str) -> bool:
    """Whether an intermediate is stored (DuckDB temp table, Spark cache) rather than a view; ``*`` in
    `MATERIALIZED` stands for a window length."""
    return name in MATERIALIZED or any(
        m.endswith("*") and name.startswith(m[:-1]) for m in MATERIALIZED
    )


def _cents(expr: str) -> str:
    return f"CAST(ROUND({expr} * 100) AS BIGINT)"


def _money(expr: str) -> str:
    return f"CAST({expr} AS DOUBLE) / 100.0"


def _ratio(num: str, den: str) -> str:
    return f"CASE WHEN {den} > 0 THEN CAST({num} AS DOUBLE) / CAST({den} AS DOUBLE) END"


PAYDEX_SCALE = (
    84  # LCM of the anchor slopes' denominators: points x 84 is an integer for integer DBT
)


def paydex_sql(dbt: str, floor: float) -> str:
    """The PAYDEX-style key x `PAYDEX_SCALE` as an exact integer CASE expression over an integer DBT.

    Integer points keep the amount-weighted sums exact, so both engines and every run agree to the bit."""
    k = PAYDEX_SCALE
    parts = [f"WHEN {dbt} <= {PAYDEX_ANCHORS[0][0]} THEN {PAYDEX_ANCHORS[0][1] * k}"]
    for (d0, p0), (d1, p1) in zip(PAYDEX_ANCHORS, PAYDEX_ANCHORS[1:], strict=False):
        step = (p1 - p0) * k // (d1 - d0)
        parts.append(f"WHEN {dbt} <= {d1} THEN {p0 * k} + ({dbt} - ({d0})) * ({step})")
    d_last, p_last = PAYDEX_ANCHORS[-1]
    tail = f"{p_last * k} - ({dbt} - {d_last}) * {k // 3}"
    floor_k = int(round(float(floor) * k))
    parts.append(f"ELSE CASE WHEN {tail} < {floor_k} THEN {floor_k} ELSE {tail} END")
    return "CAST(CASE " + " ".join(parts) + " END AS BIGINT)"


def cei_sql(beginning: str, sales: str, ending: str, ending_current: str) -> str:
    """CEI in percent, total-period credit sales convention; NULL when nothing was collectable."""
    den = f"({beginning} + {sales} - {ending_current})"
    return f"CASE WHEN {den} > 0 THEN 100.0 * CAST({beginning} + {sales} - {ending} AS DOUBLE) / {den} END"


def _bucket_cond(expr: str, lo: int | None, hi: int | None) -> str:
    conds = ([f"{expr} >= {lo}"] if lo is not None else []) + (
        [f"{expr} <= {hi}"] if hi is not None else []
    )
    return " AND ".join(conds)


# --------------------------------------------------------------------------- statements
SETTLEMENT_TABLES = ("settled_invoices", "settled_payments", "settled_partial", "settled_pool")
SETTLEMENT_OUTPUTS = {
    "settled_invoices": """SELECT k.customer_id, m.sik AS ik, i.invoice_day, i.due_day, i.amount_cents,
  i.write_off_day, i.settled_day, CAST(i.queue_before_cents AS BIGINT) AS queue_before_cents
FROM inv_settled i JOIN cust_keys k ON i.ck = k.ck JOIN invoice_keys m ON i.ik = m.ik
ORDER BY k.customer_id, m.sik""",
    "settled_payments": """SELECT k.customer_id, p.pay_day, p.amount_cents, p.due_day
FROM pay p JOIN cust_keys k ON p.ck = k.ck ORDER BY k.customer_id, p.pay_day, p.amount_cents, p.due_day""",
    "settled_partial": """SELECT k.customer_id, m.sik AS ik, p.pay_day, p.amount_cents
FROM partial_pay p JOIN inv_settled i ON p.ik = i.ik JOIN cust_keys k ON i.ck = k.ck
JOIN invoice_keys m ON p.ik = m.ik ORDER BY k.customer_id, m.sik, p.pay_day, p.amount_cents""",
    "settled_pool": """SELECT k.customer_id, p.pay_day, CAST(p.pool_cents AS BIGINT) AS pool_cents
FROM pool p JOIN cust_keys k ON p.ck = k.ck ORDER BY k.customer_id, p.pay_day, p.pool_cents""",
}
"""The settlement, stored once per ledger (stage `settle`): one SELECT per table over the statements of
`settlement_sql` plus `INVOICE_KEYS`. Every table carries ``customer_id`` so that it splits by customer like
the ledger; rows are ordered and the invoice key follows the invoice id, so the files are byte-stable."""
INVOICE_KEYS = "SELECT ik, ROW_NUMBER() OVER (ORDER BY invoice_id) AS sik FROM inv"


def settlement_sql(dialect: str) -> list[tuple[str, str]]:
    """The settlement statements: integer keys, direct allocation, FIFO pool, settlement day per invoice.

    Settlement is a property of the ledger, causal in time and independent of the as-of grid, so the
    `settle` stage runs these once and `build_feature_sql(..., settled=True)` reads the stored result."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")
    day = lambda col: _day(col, dialect)  # noqa: E731
    out: list[tuple[str, str]] = []

    def add(name: str, select: str) -> None:
        out.append((name, _create(name, select, dialect, is_materialized(name))))

    # integer keys: customers get a dense key, invoices a row id; strings are joined once, here
    add(
        "cust_keys",
        "SELECT customer_id, ROW_NUMBER() OVER (ORDER BY customer_id) AS ck FROM customers",
    )
    add(
        "inv",
        f"""SELECT {_row_id(dialect)} AS ik, i.invoice_id, k.ck, {day("i.invoice_date")} AS invoice_day,
  {day("i.due_date")} AS due_day, {_cents("i.amount")} AS amount_cents,
  COALESCE({day("i.write_off_date")}, {NEVER}) AS write_off_day
FROM invoices i JOIN cust_keys k ON i.customer_id = k.customer_id""",
    )
    add(
        "pay",
        f"""SELECT p.payment_id, k.ck, i.ik, i.due_day, i.amount_cents AS invoice_cents,
  p.invoice_id IS NULL AS unallocated, {day("p.payment_date")} AS pay_day, {_cents("p.amount")} AS amount_cents
FROM payments p JOIN cust_keys k ON p.customer_id = k.customer_id
LEFT JOIN inv i ON p.invoice_id = i.invoice_id""",
    )
    # direct allocation: running total per invoice
    add(
        "direct_run",
        """SELECT ik, pay_day, amount_cents, invoice_cents,
  SUM(amount_cents) OVER (PARTITION BY ik ORDER BY pay_day, payment_id
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run_cents
FROM pay WHERE ik IS NOT NULL""",
    )
    add(
        "direct_settled",
        """SELECT ik, MIN(CASE WHEN run_cents >= invoice_cents THEN pay_day END) AS direct_day
FROM direct_run GROUP BY ik""",
    )
    add(
        "partial_pay",
        """SELECT ik, pay_day, amount_cents FROM direct_run WHERE run_cents < invoice_cents""",
    )
    # FIFO pool of unallocated cash
    add(
        "pool",
        """SELECT ck, pay_day,
  SUM(amount_cents) OVER (PARTITION BY ck ORDER BY pay_day, payment_id
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS pool_cents
FROM pay WHERE unallocated""",
    )
    add(
        "queue",
        """SELECT ik, ck,
  SUM(amount_cents) OVER (PARTITION BY ck ORDER BY invoice_day, due_day, invoice_id
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS queue_cents
FROM inv WHERE ck IN (SELECT ck FROM pool)""",
    )
    add(
        "pool_settled",
        """SELECT ik, queue_cents, pool_day FROM (
  SELECT ik, kind, queue_cents,
    MIN(pay_day) OVER (PARTITION BY ck ORDER BY v, kind
                       ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS pool_day
  FROM (SELECT ck, queue_cents AS v, 0 AS kind, ik, queue_cents, CAST(NULL AS INTEGER) AS pay_day
        FROM queue
        UNION ALL
        SELECT ck, pool_cents AS v, 1 AS kind, CAST(NULL AS BIGINT) AS ik,
               CAST(NULL AS BIGINT) AS queue_cents, pay_day FROM pool) s
) t WHERE kind = 0""",
    )
    settled = f"""GREATEST(i.invoice_day, LEAST(COALESCE(d.direct_day, {NEVER}), COALESCE(q.pool_day, {NEVER})))"""
    add(
        "inv_settled",
        f"""SELECT i.ik, i.ck, i.invoice_day, i.due_day, i.amount_cents, i.write_off_day,
  CASE WHEN d.direct_day IS NULL AND q.pool_day IS NULL THEN {NEVER} ELSE {settled} END AS settled_day,
  q.queue_cents - i.amount_cents AS queue_before_cents
FROM inv i LEFT JOIN direct_settled d ON i.ik = d.ik
LEFT JOIN pool_settled q ON i.ik = q.ik""",
    )

    return out


def build_feature_sql(
    params: dict[str, Any], dialect: str, with_truth: bool = False, settled: bool = False
) -> list[tuple[str, str]]:
    """Ordered ``(name, sql)`` statements; the last one, ``snapshots``, is a SELECT of the labelled snapshot
    table ordered by customer and as-of date.

    ``params`` is the features stage block (windows, label definition, PAYDEX floor); ``with_truth`` joins
    the optional ``truth`` view's ``true_pd_12m`` as ``true_pd`` (synthetic data). With ``settled`` the
    settlement is read from the `SETTLEMENT_TABLES` views (the `settle` stage's output) instead of being
    computed from the payments.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")
    windows = feature_windows(params)
    wmax = max(windows)
    label = params.get("label", {})
    bad_dbt = int(label.get("bad_days_beyond_terms", 90))
    good_dbt = int(label.get("good_max_days_beyond_terms", 30))
    mat_cents = int(round(float(label.get("material_amount", 0.0)) * 100))
    mat_share = float(label.get("material_share", 0.0))
    floor = float(params.get("paydex_floor", 1))
    seg_dbt = delinquent_threshold(params)
    day = lambda col: _day(col, dialect)  # noqa: E731
    out: list[tuple[str, str]] = []

    def add(name: str, select: str) -> None:
        out.append((name, _create(name, select, dialect, is_materialized(name))))

    if settled:
        add(
            "cust_keys",
            "SELECT customer_id, ROW_NUMBER() OVER (ORDER BY customer_id) AS ck FROM customers",
        )
        add(
            "inv_settled",
            """SELECT s.ik, k.ck, s.invoice_day, s.due_day, s.amount_cents, s.write_off_day, s.settled_day,
  s.queue_before_cents FROM settled_invoices s JOIN cust_keys k ON s.customer_id = k.customer_id""",
        )
        add(
            "pay",
            """SELECT k.ck, s.pay_day, s.amount_cents, s.due_day
FROM settled_payments s JOIN cust_keys k ON s.customer_id = k.customer_id""",
        )
        add("partial_pay", "SELECT ik, pay_day, amount_cents FROM settled_partial")
        add(
            "pool",
            """SELECT k.ck, s.pay_day, s.pool_cents
FROM settled_pool s JOIN cust_keys k ON s.customer_id = k.customer_id""",
        )
    else:
        out.extend(settlement_sql(dialect))
    # customer attributes as they stood: one row per version, valid on [from_day, to_day)
    add("customer_versions", customer_versions_sql(dialect))
    # ---- open balances at every evaluation day
    add(
        "open_pairs",
        """SELECT e.eval_day, i.ck, i.ik, i.due_day, i.amount_cents, i.queue_before_cents
FROM inv_settled i JOIN eval_days e
  ON e.eval_day >= i.invoice_day AND e.eval_day < LEAST(i.settled_day, i.write_off_day)""",
    )
    add(
        "pool_at_eval",
        """SELECT ck, eval_day, pool_cents FROM (
  SELECT ck, eval_day, kind,
    MAX(pool_cents) OVER (PARTITION BY ck ORDER BY d, kind
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS pool_cents
  FROM (SELECT DISTINCT ck, eval_day AS d, 1 AS kind, eval_day, CAST(NULL AS BIGINT) AS pool_cents
        FROM open_pairs WHERE queue_before_cents IS NOT NULL
        UNION ALL
        SELECT ck, pay_day AS d, 0 AS kind, CAST(NULL AS INTEGER) AS eval_day, pool_cents FROM pool) s
) t WHERE kind = 1""",
    )
    pool_share = (
        "LEAST(o.amount_cents, GREATEST(0, COALESCE(pe.pool_cents, 0) - o.queue_before_cents))"
    )
    add(
        "open_items",
        f"""SELECT o.eval_day, o.ck, o.due_day, o.amount_cents,
  o.amount_cents - LEAST(o.amount_cents, COALESCE(pp.paid_cents, 0)
                         + CASE WHEN o.queue_before_cents IS NULL THEN 0 ELSE {pool_share} END) AS open_cents
FROM open_pairs o
LEFT JOIN (SELECT x.ik, x.eval_day, SUM(p.amount_cents) AS paid_cents
           FROM open_pairs x JOIN partial_pay p ON x.ik = p.ik AND p.pay_day <= x.eval_day
           GROUP BY x.ik, x.eval_day) pp
  ON o.ik = pp.ik AND o.eval_day = pp.eval_day
LEFT JOIN pool_at_eval pe ON o.ck = pe.ck AND o.eval_day = pe.eval_day""",
    )
    dpd = "(eval_day - due_day)"
    aging = ",\n  ".join(
        f"SUM(CASE WHEN {_bucket_cond(dpd, lo, hi)} THEN open_cents ELSE 0 END) AS aging_{name}_cents"
        for name, lo, hi in AGING_BUCKETS
    )
    add(
        "open_balance",
        f"""SELECT ck, eval_day, SUM(open_cents) AS exposure_cents,
  {aging},
  SUM(CASE WHEN {dpd} > 0 AND open_cents > 0 THEN 1 ELSE 0 END) AS overdue_count,
  MAX(CASE WHEN open_cents > 0 THEN {dpd} END) AS worst_days_past_due,
  MAX(CASE WHEN open_cents > 0 AND {dpd} >= {bad_dbt} THEN amount_cents END) AS default_cents,
  MAX(CASE WHEN open_cents > 0 AND {dpd} >= {seg_dbt} THEN amount_cents END) AS delinquent_cents
FROM open_items GROUP BY ck, eval_day""",
    )
    add(
        "first_invoice",
        "SELECT ck, MIN(invoice_day) AS first_invoice_day FROM inv_settled GROUP BY ck",
    )
    # ---- write-offs on or before t (any date): a written-off customer is already in default at t
    add(
        "write_off_agg",
        """SELECT i.ck, g.as_of_day, SUM(i.amount_cents) AS wo_to_date_cents
FROM inv_settled i JOIN asof_grid g ON i.write_off_day <= g.as_of_day AND i.invoice_day <= g.as_of_day
GROUP BY i.ck, g.as_of_day""",
    )

    add(
        "claims_agg",
        "SELECT c.ck, g.as_of_day,\n  "
        + ",\n  ".join(
            f"SUM(CASE WHEN c.claim_day > g.start_day_{w} THEN 1 ELSE 0 END) AS n_claims_{w},\n  "
            f"SUM(CASE WHEN c.claim_day > g.start_day_{w} THEN c.amount_cents ELSE 0 END) AS claim_cents_{w}"
            for w in windows
        )
        + f"""
FROM (SELECT k.ck, {day("c.claim_date")} AS claim_day, {_cents("c.amount")} AS amount_cents
      FROM claims c JOIN cust_keys k ON c.customer_id = k.customer_id) c
JOIN asof_grid g ON c.claim_day > g.start_day_{wmax} AND c.claim_day <= g.as_of_day
GROUP BY c.ck, g.as_of_day""",
    )
    pay_aggs = []
    for w in windows:
        pw = f"p.pay_day > g.start_day_{w}"
        pay_aggs += [
            f"SUM(CASE WHEN {pw} THEN p.amount_cents ELSE 0 END) AS paid_cents_{w}",
            f"SUM(CASE WHEN {pw} THEN 1 ELSE 0 END) AS n_pay_{w}",
            f"MAX(CASE WHEN {pw} THEN p.pay_day - p.due_day END) AS pay_delay_max_{w}",
            f"SUM(CASE WHEN {pw} THEN p.pay_day - p.due_day END) AS pay_delay_sum_{w}",
            f"SUM(CASE WHEN {pw} AND p.due_day IS NOT NULL THEN 1 ELSE 0 END) AS n_alloc_pay_{w}",
        ]
    pay_aggs.append("MAX(p.pay_day) AS last_pay_day")
    add(
        "pay_agg",
        "SELECT p.ck, g.as_of_day,\n  "
        + ",\n  ".join(pay_aggs)
        + f"""
FROM pay p
JOIN asof_grid g ON p.pay_day > g.start_day_{wmax} AND p.pay_day <= g.as_of_day
GROUP BY p.ck, g.as_of_day""",
    )

    # ---- label: performance window (t, perf_end]
    s_bad = f"GREATEST(g.as_of_day + 1, i.due_day + {bad_dbt})"
    s_good = f"GREATEST(g.as_of_day + 1, i.due_day + {good_dbt})"
    end = "LEAST(i.settled_day, i.write_off_day)"
    add(
        "perf_agg",
        f"""SELECT i.ck, g.as_of_day,
  MAX(CASE WHEN {s_bad} <= g.perf_end_day AND {end} >= {s_bad} THEN i.amount_cents END) AS bad_cents,
  MAX(CASE WHEN {s_good} <= g.perf_end_day AND {end} >= {s_good} THEN i.amount_cents END) AS worse_cents,
  MAX(CASE WHEN i.write_off_day > g.as_of_day AND i.write_off_day <= g.perf_end_day THEN 1 ELSE 0 END) AS written_off
FROM (SELECT * FROM inv_settled WHERE LEAST(settled_day, write_off_day) - due_day >= {min(good_dbt, bad_dbt)}
      OR write_off_day < {NEVER}) i
JOIN asof_grid g ON LEAST(i.settled_day, i.write_off_day) > g.as_of_day AND i.due_day + {good_dbt} <= g.perf_end_day
GROUP BY i.ck, g.as_of_day""",
    )

    # ---- invoice experiences per as-of date (one range join, every window filtered inside)
    # nested windows -> disjoint bands: band k = (start of window k, start of window k-1]; 9 = in no window
    inv_band = (
        "CASE "
        + " ".join(f"WHEN i.invoice_day > g.start_day_{w} THEN {k}" for k, w in enumerate(windows))
        + " ELSE 9 END"
    )
    due_band = (
        "CASE WHEN i.due_day > g.as_of_day THEN 9 "
        + " ".join(f"WHEN i.due_day > g.start_day_{w} THEN {k}" for k, w in enumerate(windows))
        + " ELSE 9 END"
    )
    add(
        "experiences_raw",
        f"""SELECT g.as_of_day, i.ck, i.invoice_day, i.due_day, i.amount_cents, i.settled_day,
  CAST(i.write_off_day <= g.as_of_day AS INTEGER) AS written_off,
  CASE WHEN i.settled_day <= g.as_of_day THEN i.settled_day - i.due_day
       WHEN i.due_day < g.as_of_day THEN g.as_of_day - i.due_day END AS dbt,
  {inv_band} AS inv_band, {due_band} AS due_band
FROM inv_settled i JOIN asof_grid g ON i.due_day > g.start_day_{wmax} AND i.invoice_day <= g.as_of_day""",
    )
    late_bucket = (
        "CASE "
        + " ".join(
            f"WHEN {_bucket_cond('dbt', lo, hi)} THEN {k + 1}"
            for k, (_, lo, hi) in enumerate(LATE_BUCKETS)
        )
        + " ELSE 0 END"
    )
    add(
        "experiences",
        f"""SELECT *, CAST(dbt IS NOT NULL AS INTEGER) AS obs, {paydex_sql("dbt", floor)} AS paydex_points,
  {late_bucket} AS late_bucket
FROM experiences_raw""",
    )
    # stage 1: plain aggregates per band (no per-window conditions), stage 2: cumulate the bands per window
    band_sums = {
        "n_inv": "1",
        "inv_cents": "amount_cents",
        "n_obs": "obs",
        "obs_cents": "amount_cents * obs",
        "dbt_sum": "dbt",
        "dbt_wsum": "CAST(dbt AS BIGINT) * amount_cents",
        "late_days_wsum": "CASE WHEN dbt > 0 THEN CAST(dbt AS BIGINT) * amount_cents ELSE 0 END",
        "n_late": "CAST(dbt > 0 AS INTEGER)",
        "paydex_wsum": "amount_cents * paydex_points",
        **{
            f"late_{b}_cents": f"amount_cents * CAST(late_bucket = {k + 1} AS INTEGER)"
            for k, (b, _, _) in enumerate(LATE_BUCKETS)
        },
    }
    band_max = {"max_inv_cents": "amount_cents", "dbt_max": "dbt"}
    due_sums = {"due_cents": "amount_cents", "wo_cents": "amount_cents * written_off"}
    stage1 = [f"SUM({e}) AS {n}" for n, e in {**band_sums, **due_sums}.items()]
    stage1 += [f"MAX({e}) AS {n}" for n, e in band_max.items()]
    stage1 += [
        "MAX(CAST(invoice_day AS BIGINT) * 100000 + dbt + 50000) AS last_key",
        "MAX(CASE WHEN settled_day <= as_of_day AND settled_day > due_day THEN settled_day END) AS last_late_day",
    ]
    add(
        "exp_bands",
        "SELECT ck, as_of_day, inv_band, due_band,\n  "
        + ",\n  ".join(stage1)
        + "\nFROM experiences GROUP BY ck, as_of_day, inv_band, due_band",
    )
    # stage 2: one narrow table per window (a single wide one outgrows the memory limit at scale)
    for k, w in enumerate(windows):
        ib, db = f"inv_band <= {k}", f"due_band <= {k}"
        aggs = [
            f"SUM(CASE WHEN {ib} THEN {n} END) AS {n}"
            if n in ("dbt_sum", "dbt_wsum", "late_days_wsum", "paydex_wsum")
            else f"COALESCE(SUM(CASE WHEN {ib} THEN {n} END), 0) AS {n}"
            for n in band_sums
        ]
        aggs += [f"MAX(CASE WHEN {ib} THEN {n} END) AS {n}" for n in band_max]
        aggs += [f"COALESCE(SUM(CASE WHEN {db} THEN {n} END), 0) AS {n}" for n in due_sums]
        if w == wmax:
            aggs += [
                f"MAX(CASE WHEN {ib} THEN {n} END) AS {n}" for n in ("last_key", "last_late_day")
            ]
        add(
            f"exp_agg_{w}",
            "SELECT ck, as_of_day,\n  "
            + ",\n  ".join(aggs)
            + f"\nFROM exp_bands WHERE LEAST(inv_band, due_band) <= {k} GROUP BY ck, as_of_day",
        )

    # ---- assemble one row per customer x as-of date
    cols: list[str] = [
        "cu.customer_id",
        "b.as_of_day",
        _money("COALESCE(ob.exposure_cents, 0)") + " AS exposure",
        _money("COALESCE(e12.inv_cents, 0)")
        + " / CAST(LEAST(12, CAST(CEIL((b.as_of_day - b.first_invoice_day + 1) / 30.4375) AS INTEGER)) AS DOUBLE)"
        " AS avg_monthly_invoiced",
    ]
    for name, _, _ in AGING_BUCKETS:
        cols.append(_money(f"COALESCE(ob.aging_{name}_cents, 0)") + f" AS open_balance_{name}")
    cols += [
        _ratio(
            "COALESCE(ob.exposure_cents, 0) - COALESCE(ob.aging_current_cents, 0)",
            "ob.exposure_cents",
        )
        + " AS overdue_share",
        "COALESCE(ob.overdue_count, 0) AS overdue_invoice_count",
        "GREATEST(COALESCE(ob.worst_days_past_due, 0), 0) AS worst_days_past_due",
    ]
    for w in windows:
        inv_c, due_c = f"COALESCE(e{w}.inv_cents, 0)", f"COALESCE(e{w}.due_cents, 0)"
        days = f"CAST(b.as_of_day - b.start_day_{w} AS DOUBLE)"
        cols += [
            f"COALESCE(e{w}.n_inv, 0) AS invoice_count_{w}m",
            _money(inv_c) + f" AS invoiced_amount_{w}m",
            _ratio(f"e{w}.dbt_sum", f"e{w}.n_obs") + f" AS days_beyond_terms_mean_{w}m",
            _ratio(f"e{w}.dbt_wsum", f"e{w}.obs_cents") + f" AS days_beyond_terms_wavg_{w}m",
            _ratio(f"e{w}.late_days_wsum", f"e{w}.obs_cents") + f" AS days_late_wavg_{w}m",
            f"e{w}.dbt_max AS days_beyond_terms_max_{w}m",
            _ratio(f"e{w}.n_late", f"e{w}.n_obs") + f" AS late_invoice_share_{w}m",
        ]
        cols += [
            _ratio(f"e{w}.late_{b}_cents", f"e{w}.obs_cents") + f" AS late_amount_share_{b}_{w}m"
            for b, _, _ in LATE_BUCKETS
        ]
        cols += [
            _ratio(f"e{w}.paydex_wsum", f"e{w}.obs_cents * {PAYDEX_SCALE}") + f" AS paydex_{w}m",
            _ratio(f"{due_c} - COALESCE(c.claim_cents_{w}, 0) - COALESCE(e{w}.wo_cents, 0)", due_c)
            + f" AS net_collection_rate_{w}m",
            f"COALESCE(c.n_claims_{w}, 0) AS claims_count_{w}m",
            _ratio(f"COALESCE(c.claim_cents_{w}, 0)", inv_c) + f" AS claims_rate_{w}m",
            _ratio(f"COALESCE(p.paid_cents_{w}, 0)", inv_c) + f" AS payment_ratio_{w}m",
            f"COALESCE(p.n_pay_{w}, 0) AS payment_count_{w}m",
            f"p.pay_delay_max_{w} AS payment_delay_max_{w}m",
            _ratio(f"p.pay_delay_sum_{w}", f"p.n_alloc_pay_{w}") + f" AS payment_delay_mean_{w}m",
            _ratio(f"COALESCE(ob.exposure_cents, 0) * {days}", inv_c) + f" AS dso_{w}m",
            _ratio(f"COALESCE(ob.aging_current_cents, 0) * {days}", inv_c)
            + f" AS best_possible_dso_{w}m",
            _ratio(
                f"(COALESCE(ob.exposure_cents, 0) - COALESCE(ob.aging_current_cents, 0)) * {days}",
                inv_c,
            )
            + f" AS average_days_delinquent_{w}m",
            cei_sql(
                f"COALESCE(os{w}.exposure_cents, 0)",
                inv_c,
                "COALESCE(ob.exposure_cents, 0)",
                "COALESCE(ob.aging_current_cents, 0)",
            )
            + f" AS cei_{w}m",
            _ratio(f"e{w}.max_inv_cents", inv_c) + f" AS largest_invoice_share_{w}m",
        ]
    wmin = min(windows)
    cols += [
        f"days_beyond_terms_wavg_{wmin}m_x - days_beyond_terms_wavg_{wmax}m_x AS days_beyond_terms_trend",
        f"CAST(e{wmax}.last_key - CAST(FLOOR(e{wmax}.last_key / 100000.0) AS BIGINT) * 100000 - 50000 AS INTEGER)"
        " AS days_beyond_terms_last_invoice",
        f"b.as_of_day - e{wmax}.last_late_day AS days_since_last_late_payment",
        "b.as_of_day - p.last_pay_day AS days_since_last_payment",
        "CAST(b.as_of_day - b.tenure_start_day AS DOUBLE) / 30.4375 AS tenure_months",
        "cv.competitor_share",
        "cv.credit_limit",
        _ratio("COALESCE(ob.exposure_cents, 0)", "cv.credit_limit * 100") + " AS utilisation",
        "cv.net_worth",
        "cv.annual_turnover",
        "cv.net_worth_previous",
        "cv.attributes_valid_from",
        "cu.protected_sex",
        "cu.protected_marital_status",
        "cu.protected_age",
        "cu.protected_education",
        "cu.source_default_flag",
        *[f"cv.{c}" for c in EXPERT_COLUMNS],
        _money("COALESCE(wo.wo_to_date_cents, 0)") + " AS written_off_amount_to_date",
        # label inputs
        "b.mature",
        # already in default at t: a material open invoice at the bad DBT threshold, or a write-off by t
        f"CASE WHEN (ob.default_cents > {mat_cents} AND ob.default_cents > {mat_share} * ob.exposure_cents) "
        "OR COALESCE(wo.wo_to_date_cents, 0) > 0 THEN 1 ELSE 0 END AS default_at_asof",
        # already seriously behind at t (not yet in default): the delinquent segment
        f"CASE WHEN ob.delinquent_cents > {mat_cents} AND ob.delinquent_cents > {mat_share} * ob.exposure_cents "
        "THEN 1 ELSE 0 END AS delinquent_at_asof",
        "COALESCE(pa.written_off, 0) AS perf_written_off",
        f"CASE WHEN pa.bad_cents > {mat_cents} AND pa.bad_cents > {mat_share} * COALESCE(ob.exposure_cents, 0) "
        "THEN 1 ELSE 0 END AS perf_bad_dbt",
        f"CASE WHEN pa.worse_cents > {mat_cents} AND pa.worse_cents > {mat_share} * COALESCE(ob.exposure_cents, 0) "
        "THEN 1 ELSE 0 END AS perf_over_good",
    ]
    # the trend needs the two weighted means; repeat their expressions instead of nesting selects
    trend_parts = {w: _ratio(f"e{w}.dbt_wsum", f"e{w}.obs_cents") for w in (wmin, wmax)}
    cols = [
        c.replace(f"days_beyond_terms_wavg_{wmin}m_x", f"({trend_parts[wmin]})").replace(
            f"days_beyond_terms_wavg_{wmax}m_x", f"({trend_parts[wmax]})"
        )
        for c in cols
    ]
    starts = "\n".join(
        f"LEFT JOIN open_balance os{w} ON b.ck = os{w}.ck AND b.start_day_{w} = os{w}.eval_day"
        for w in windows
    )
    exp_joins = "\n".join(
        f"LEFT JOIN exp_agg_{w} e{w} ON b.ck = e{w}.ck AND b.as_of_day = e{w}.as_of_day"
        for w in windows
    )
    onboard = day("cu0.onboarding_date")
    features = f"""SELECT {", ".join(cols)}
FROM (SELECT f.ck, f.first_invoice_day, g.*,
        CASE WHEN {onboard} IS NOT NULL AND {onboard} < f.first_invoice_day THEN {onboard}
             ELSE f.first_invoice_day END AS tenure_start_day
      FROM first_invoice f JOIN cust_keys k0 ON f.ck = k0.ck JOIN customers cu0 ON k0.customer_id = cu0.customer_id
      JOIN asof_grid g ON f.first_invoice_day <= g.as_of_day) b
JOIN cust_keys k ON b.ck = k.ck JOIN customers cu ON k.customer_id = cu.customer_id
LEFT JOIN customer_versions cv ON b.ck = cv.ck AND cv.from_day <= b.as_of_day AND b.as_of_day < cv.to_day
{exp_joins}
LEFT JOIN open_balance ob ON b.ck = ob.ck AND b.as_of_day = ob.eval_day
{starts}
LEFT JOIN claims_agg c ON b.ck = c.ck AND b.as_of_day = c.as_of_day
LEFT JOIN pay_agg p ON b.ck = p.ck AND b.as_of_day = p.as_of_day
LEFT JOIN perf_agg pa ON b.ck = pa.ck AND b.as_of_day = pa.as_of_day
LEFT JOIN write_off_agg wo ON b.ck = wo.ck AND b.as_of_day = wo.as_of_day"""
    out.append(
        (
            "snapshots",
            labelled_snapshots_sql(
                features, [_alias(c) for c in cols], label, dialect, with_truth
            ),
        )
    )
    return out


# the customer master as one open-ended version per customer, when no customer_history table is given
MASTER_HISTORY_SQL = """SELECT customer_id, CAST(NULL AS DATE) AS valid_from, CAST(NULL AS DATE) AS valid_to,
  competitor_share, credit_limit, net_worth, annual_turnover, expert_character, expert_capacity,
  expert_capital, expert_collateral, expert_conditions, expert_coverage, expert_approver AS approver,
  expert_date AS approval_date, expert_reason AS change_reason
FROM customers"""


def customer_versions_sql(dialect: str) -> str:
    """Versions of the ``customer_history`` view keyed by ``ck`` with day numbers (a null ``valid_from``
    = since the start of the data; a null ``valid_to`` = still current), and the net worth of the version
    before (``net_worth_previous``, the suspend trigger's comparison). The expert approver, reason and
    date are the version's approver, change reason and approval date (never after ``valid_from``)."""
    day = lambda col: _day(col, dialect)  # noqa: E731
    experts = ", ".join(f"h.{c}" for c in EXPERT_COLUMNS[:6])
    return f"""SELECT k.ck, COALESCE({day("h.valid_from")}, -{NEVER}) AS from_day,
  COALESCE({day("h.valid_to")}, {NEVER}) AS to_day, h.valid_from AS attributes_valid_from,
  h.competitor_share, h.credit_limit, h.net_worth, h.annual_turnover,
  LAG(h.net_worth) OVER (PARTITION BY k.ck ORDER BY h.valid_from) AS net_worth_previous,
  {experts}, h.approver AS expert_approver, h.change_reason AS expert_reason,
  h.approval_date AS expert_date
FROM customer_history h JOIN cust_keys k ON h.customer_id = k.customer_id"""


LABEL_INPUTS = ("mature", "default_at_asof", "perf_written_off", "perf_bad_dbt", "perf_over_good")


LABEL_INPUTS = (
    "mature",
    "default_at_asof",
    "delinquent_at_asof",
    "perf_written_off",
    "perf_bad_dbt",
    "perf_over_good",
)
SEGMENTS = ("current", "delinquent")


def delinquent_threshold(params: dict[str, Any]) -> int:
    """``features.segments.delinquent_days_beyond_terms``: days beyond terms from which an open material
    invoice puts a customer not (yet) in default into the *delinquent* segment (default 31: the roll-rate
    report's point of no return, docs/validation.md). Must lie in [1, bad_days_beyond_terms)."""
    seg = params.get("segments") or {}
    value = seg.get("delinquent_days_beyond_terms", 31)
    bad = int((params.get("label") or {}).get("bad_days_beyond_terms", 90))
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < bad:
        raise ValueError(
            "params.yaml features.segments.delinquent_days_beyond_terms: need an integer in "
            f"[1, {bad}) (below the bad threshold), got {value!r}"
        )
    return value


def segment_sql() -> str:
    """The observation segment at t: NULL for customers already in default (excluded from the observation
    population), ``delinquent`` for customers with a material open invoice at or beyond the delinquency
    threshold, else ``current``. Reads the ``label_`` computed by `label_sql`."""
    return """CASE WHEN label_ = 'in_default' THEN NULL WHEN delinquent_at_asof = 1 THEN 'delinquent'
  ELSE 'current' END"""


def label_sql(source: str) -> str:
    """The label as a CASE over the label inputs (``source_default_flag`` for ``customer_flag``).

    ledger: in_default when the customer already meets the bad definition at t (``default_at_asof``: a
    material open invoice at or beyond the bad DBT threshold, or any write-off on or before t): such accounts
    are not part of the scoring population, whatever happens next. Else immature when the window runs past
    the data cut-off; else bad when a material invoice reached the bad DBT threshold or an invoice was
    written off in the window; else indeterminate when a material invoice reached the good threshold; else
    good. customer_flag: source_default_flag 1 bad, 0 good, null indeterminate (the source defines the
    population, so ``default_at_asof`` is not used).
    """
    if source == "ledger":
        return """CASE WHEN default_at_asof = 1 THEN 'in_default' WHEN NOT mature THEN 'immature'
  WHEN perf_bad_dbt = 1 OR perf_written_off = 1 THEN 'bad' WHEN perf_over_good = 1 THEN 'indeterminate'
  ELSE 'good' END"""
    if source == "customer_flag":
        return """CASE WHEN source_default_flag IS NULL THEN 'indeterminate'
  WHEN source_default_flag = 1 THEN 'bad' ELSE 'good' END"""
    raise ValueError(
        f"params.yaml features.label.source: '{source}' is not ledger or customer_flag"
    )


def _alias(column: str) -> str:
    """Output name of a select-list entry (``expr AS name`` or ``table.name``)."""
    return column.rsplit(" AS ", 1)[-1].rsplit(".", 1)[-1].strip()


def labelled_snapshots_sql(
    features: str, names: list[str], label: dict[str, Any], dialect: str, with_truth: bool
) -> str:
    """Keys, ``label``, ``is_bad`` (1 bad, 0 good, else NULL) and ``segment`` (`segment_sql`) first, then
    the features; the label inputs are dropped. With ``with_truth``, ``true_pd`` last: the ``truth`` view's
    conditional 12-month PD at the as-of date (its ``month_end`` row), NULL when the truth has no row
    for that customer and date (not yet on board, or its default event already happened)."""
    case = label_sql(str(label.get("source", "ledger")))
    as_of_date = (
        "CAST(DATE '1970-01-01' + s.as_of_day AS DATE)"
        if dialect == "duckdb"
        else "date_add(DATE '1970-01-01', s.as_of_day)"
    )
    rest = ", ".join(
        f"s.{n}" for n in names if n not in ("customer_id", "as_of_day", *LABEL_INPUTS)
    )
    truth = ", t.true_pd_12m AS true_pd" if with_truth else ""
    join = (
        f"LEFT JOIN truth t ON s.customer_id = t.customer_id AND {_day('t.month_end', dialect)} = s.as_of_day"
        if with_truth
        else ""
    )
    return f"""SELECT s.customer_id, {as_of_date} AS as_of_date, s.label_ AS label,
  CAST(CASE s.label_ WHEN 'bad' THEN 1 WHEN 'good' THEN 0 END AS TINYINT) AS is_bad,
  s.segment_ AS segment, {rest}{truth}
FROM (SELECT *, {segment_sql()} AS segment_ FROM (SELECT *, {case} AS label_ FROM ({features}) f) l) s {join}
ORDER BY s.customer_id, s.as_of_day"""


def vintage_sql(params: dict[str, Any]) -> str:
    """Per customer: first invoice day and the first day of a bad event (material 90+ DBT or write-off).

    Uses the absolute materiality only (the relative one needs an exposure date). Runs after
    `build_feature_sql`'s statements (reads ``inv_settled``)."""
    label = params.get("label", {})
    bad_dbt = int(label.get("bad_days_beyond_terms", 90))
    mat_cents = int(round(float(label.get("material_amount", 0.0)) * 100))
    return f"""SELECT k.customer_id, MIN(invoice_day) AS first_invoice_day,
  MIN(CASE WHEN amount_cents > {mat_cents} AND LEAST(settled_day, write_off_day) >= due_day + {bad_dbt}
           THEN due_day + {bad_dbt} END) AS first_dbt_bad_day,
  MIN(CASE WHEN write_off_day < {NEVER} THEN write_off_day END) AS first_write_off_day
FROM inv_settled i JOIN cust_keys k ON i.ck = k.ck GROUP BY k.customer_id ORDER BY k.customer_id"""


def roll_rate_sql() -> str:
    """Worst ageing bucket of each customer's open balance at each evaluation day (reads ``open_balance``)."""
    conds = " ".join(
        f"WHEN worst_days_past_due {('<= ' + str(hi)) if hi is not None else '>= 0'} THEN '{name}'"
        for name, _, hi in AGING_BUCKETS
    )
    return f"""SELECT k.customer_id, eval_day,
  CASE WHEN exposure_cents <= 0 OR worst_days_past_due IS NULL THEN 'no_balance' {conds} END AS bucket
FROM open_balance o JOIN cust_keys k ON o.ck = k.ck ORDER BY k.customer_id, eval_day"""


def window_names(windows: Sequence[int]) -> list[str]:
    """Column suffixes of the windows, e.g. ``['3m', '6m', '12m']``."""
    return [f"{w}m" for w in windows]
