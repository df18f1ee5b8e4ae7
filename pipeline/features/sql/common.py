"""Shared pieces of the feature SQL: constants, the PAYDEX-style key, CEI, and the dialect helpers.

One definition renders for DuckDB or Spark SQL; only `day_sql` (date -> day number) differs between the
dialects. Every date is turned into an integer day number once, at the bottom, so all later arithmetic
(days beyond terms, ageing, windows) is integer arithmetic both engines evaluate identically. Money is
summed in integer cents (exact).
"""

from __future__ import annotations

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

# internal PAYDEX-style weighting key: (days beyond terms, points), linear in between (docs/methodology.md §1.2)
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
def day_sql(expr: str, dialect: str) -> str:
    """Day number (days since 1970-01-01) of a date/timestamp column; NULL stays NULL."""
    if dialect == "duckdb":
        return f"CAST(date_diff('day', DATE '1970-01-01', CAST({expr} AS DATE)) AS INTEGER)"
    return f"datediff(CAST({expr} AS DATE), DATE '1970-01-01')"


def create_sql(name: str, select: str, dialect: str, materialize: bool = True) -> str:
    """An intermediate result: a DuckDB temp table when reused (else a view); always a Spark temp view
    (the Spark runner caches the ones listed in `MATERIALIZED`)."""
    if dialect == "duckdb" and materialize:
        return f"CREATE OR REPLACE TEMP TABLE {name} AS\n{select}"
    return f"CREATE OR REPLACE TEMP VIEW {name} AS\n{select}"


def row_id_sql(dialect: str) -> str:
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


def cents_sql(expr: str) -> str:
    return f"CAST(ROUND({expr} * 100) AS BIGINT)"


def money_sql(expr: str) -> str:
    return f"CAST({expr} AS DOUBLE) / 100.0"


def ratio_sql(num: str, den: str) -> str:
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


def bucket_sql(expr: str, lo: int | None, hi: int | None) -> str:
    conds = ([f"{expr} >= {lo}"] if lo is not None else []) + (
        [f"{expr} <= {hi}"] if hi is not None else []
    )
    return " AND ".join(conds)


def check_dialect(dialect: str) -> None:
    """Refuse a dialect the definitions are not rendered for."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")


class Statements(list):
    """Ordered ``(name, sql)`` statements of one dialect; `add` wraps a SELECT as a DuckDB temp table
    (when `is_materialized`) or a temp view."""

    def __init__(self, dialect: str) -> None:
        check_dialect(dialect)
        super().__init__()
        self.dialect = dialect

    def add(self, name: str, select: str) -> None:
        self.append((name, create_sql(name, select, self.dialect, is_materialized(name))))
