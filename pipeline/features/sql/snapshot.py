"""The feature definition as SQL: the four blocks assembled into one labelled snapshot table.

`build_feature_sql` returns the statements the DuckDB runner (`pipeline.features.duckdb_engine`) and the
Spark runner (`pipeline.features.spark`) execute unchanged, from this one definition:

1. settlement (`pipeline.features.sql.settlement`), 2. open balances (`...sql.open_balances`),
3. experiences (`...sql.experiences`), 4. labels (`...sql.labels`); then the select list here.

Inputs (views registered by the caller): ``customers``, ``invoices``, ``payments``, ``claims`` (canonical
tables), ``customer_history`` (attribute versions), ``asof_grid`` (one row per as-of date: ``as_of_day``,
``start_day_<w>`` per window, ``perf_end_day``, ``mature``) and ``eval_days`` (``eval_day``: every date at
which open balances are needed). ``truth`` is optional. Each feature's definition, unit and direction is
in ``pipeline/features/sql/dictionary.yaml``; a test checks the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.features.sql.common import (
    AGING_BUCKETS,
    EXPERT_COLUMNS,
    LATE_BUCKETS,
    NEVER,
    PAYDEX_SCALE,
    Statements,
    cei_sql,
    day_sql,
    money_sql,
    ratio_sql,
)
from pipeline.features.sql.experiences import (
    claims_payments_sql,
    experience_aggregates_sql,
    experience_rows_sql,
)
from pipeline.features.sql.labels import (
    label_input_columns_sql,
    labelled_snapshots_sql,
    performance_sql,
)
from pipeline.features.sql.open_balances import open_balance_sql
from pipeline.features.sql.settlement import settled_sql, settlement_sql
from pipeline.params.features import FeaturesParams


def build_feature_sql(
    params: FeaturesParams, dialect: str, with_truth: bool = False, settled: bool = False
) -> list[tuple[str, str]]:
    """Ordered ``(name, sql)`` statements; the last one, ``snapshots``, is a SELECT of the labelled snapshot
    table ordered by customer and as-of date.

    ``with_truth`` joins the optional ``truth`` view's ``true_pd_12m`` as ``true_pd`` (synthetic data).
    With ``settled`` the settlement is read from the `SETTLEMENT_TABLES` views (the ``settle`` stage's
    output) instead of being computed from the payments.
    """
    windows, label = params.windows, params.label
    bad_dbt, good_dbt = label.bad_days_beyond_terms, label.good_max_days_beyond_terms
    out = Statements(dialect)
    out.extend(settled_sql(dialect) if settled else settlement_sql(dialect))
    # customer attributes as they stood: one row per version, valid on [from_day, to_day)
    out.add("customer_versions", customer_versions_sql(dialect))
    out.extend(open_balance_sql(dialect, bad_dbt, params.segments.delinquent_days_beyond_terms))
    out.extend(claims_payments_sql(dialect, windows))
    out.extend(performance_sql(dialect, bad_dbt, good_dbt))
    out.extend(experience_rows_sql(dialect, windows, params.paydex_floor))
    out.extend(experience_aggregates_sql(dialect, windows))
    cols = snapshot_columns_sql(windows, label.material_cents, label.material_share)
    names = [column_alias(c) for c in cols]
    features = features_select_sql(cols, windows, dialect)
    out.append(
        ("snapshots", labelled_snapshots_sql(features, names, label.source, dialect, with_truth))
    )
    return list(out)


def column_alias(column: str) -> str:
    """Output name of a select-list entry (``expr AS name`` or ``table.name``)."""
    return column.rsplit(" AS ", 1)[-1].rsplit(".", 1)[-1].strip()


def balance_columns_sql() -> list[str]:
    """Keys, exposure, size and the open balance by ageing bucket at the as-of date."""
    cols: list[str] = [
        "cu.customer_id",
        "b.as_of_day",
        money_sql("COALESCE(ob.exposure_cents, 0)") + " AS exposure",
        money_sql("COALESCE(e12.inv_cents, 0)")
        + " / CAST(LEAST(12, CAST(CEIL((b.as_of_day - b.first_invoice_day + 1) / 30.4375) AS INTEGER)) AS DOUBLE)"
        " AS avg_monthly_invoiced",
    ]
    for name, _, _ in AGING_BUCKETS:
        cols.append(money_sql(f"COALESCE(ob.aging_{name}_cents, 0)") + f" AS open_balance_{name}")
    cols += [
        ratio_sql(
            "COALESCE(ob.exposure_cents, 0) - COALESCE(ob.aging_current_cents, 0)",
            "ob.exposure_cents",
        )
        + " AS overdue_share",
        "COALESCE(ob.overdue_count, 0) AS overdue_invoice_count",
        "GREATEST(COALESCE(ob.worst_days_past_due, 0), 0) AS worst_days_past_due",
    ]
    return cols


def window_columns_sql(w: int) -> list[str]:
    """The features over the trailing ``w`` months (experiences, collection, payments, DSO, CEI)."""
    inv_c, due_c = f"COALESCE(e{w}.inv_cents, 0)", f"COALESCE(e{w}.due_cents, 0)"
    days = f"CAST(b.as_of_day - b.start_day_{w} AS DOUBLE)"
    cols: list[str] = [
        f"COALESCE(e{w}.n_inv, 0) AS invoice_count_{w}m",
        money_sql(inv_c) + f" AS invoiced_amount_{w}m",
        ratio_sql(f"e{w}.dbt_sum", f"e{w}.n_obs") + f" AS days_beyond_terms_mean_{w}m",
        ratio_sql(f"e{w}.dbt_wsum", f"e{w}.obs_cents") + f" AS days_beyond_terms_wavg_{w}m",
        ratio_sql(f"e{w}.late_days_wsum", f"e{w}.obs_cents") + f" AS days_late_wavg_{w}m",
        f"e{w}.dbt_max AS days_beyond_terms_max_{w}m",
        ratio_sql(f"e{w}.n_late", f"e{w}.n_obs") + f" AS late_invoice_share_{w}m",
    ]
    cols += [
        ratio_sql(f"e{w}.late_{b}_cents", f"e{w}.obs_cents") + f" AS late_amount_share_{b}_{w}m"
        for b, _, _ in LATE_BUCKETS
    ]
    cols += [
        ratio_sql(f"e{w}.paydex_wsum", f"e{w}.obs_cents * {PAYDEX_SCALE}") + f" AS paydex_{w}m",
        ratio_sql(f"{due_c} - COALESCE(c.claim_cents_{w}, 0) - COALESCE(e{w}.wo_cents, 0)", due_c)
        + f" AS net_collection_rate_{w}m",
        f"COALESCE(c.n_claims_{w}, 0) AS claims_count_{w}m",
        ratio_sql(f"COALESCE(c.claim_cents_{w}, 0)", inv_c) + f" AS claims_rate_{w}m",
        ratio_sql(f"COALESCE(p.paid_cents_{w}, 0)", inv_c) + f" AS payment_ratio_{w}m",
        f"COALESCE(p.n_pay_{w}, 0) AS payment_count_{w}m",
        f"p.pay_delay_max_{w} AS payment_delay_max_{w}m",
        ratio_sql(f"p.pay_delay_sum_{w}", f"p.n_alloc_pay_{w}") + f" AS payment_delay_mean_{w}m",
        ratio_sql(f"COALESCE(ob.exposure_cents, 0) * {days}", inv_c) + f" AS dso_{w}m",
        ratio_sql(f"COALESCE(ob.aging_current_cents, 0) * {days}", inv_c)
        + f" AS best_possible_dso_{w}m",
        ratio_sql(
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
        ratio_sql(f"e{w}.max_inv_cents", inv_c) + f" AS largest_invoice_share_{w}m",
    ]
    return cols


def snapshot_columns_sql(
    windows: Sequence[int], material_cents: int, material_share: float
) -> list[str]:
    """The snapshot's select list: balances, every window's features, trend and recency, the carried
    attributes, then the label inputs."""
    wmax = max(windows)
    cols = balance_columns_sql()
    for w in windows:
        cols += window_columns_sql(w)
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
        ratio_sql("COALESCE(ob.exposure_cents, 0)", "cv.credit_limit * 100") + " AS utilisation",
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
        money_sql("COALESCE(wo.wo_to_date_cents, 0)") + " AS written_off_amount_to_date",
    ]
    cols += label_input_columns_sql(material_cents, material_share)
    return cols


def features_select_sql(cols: list[str], windows: Sequence[int], dialect: str) -> str:
    """One row per customer x as-of date from the first invoice on: the select list over the joins."""
    day = lambda col: day_sql(col, dialect)  # noqa: E731
    wmin, wmax = min(windows), max(windows)
    # the trend needs the two weighted means; repeat their expressions instead of nesting selects
    trend_parts = {w: ratio_sql(f"e{w}.dbt_wsum", f"e{w}.obs_cents") for w in (wmin, wmax)}
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
    return features


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
    day = lambda col: day_sql(col, dialect)  # noqa: E731
    experts = ", ".join(f"h.{c}" for c in EXPERT_COLUMNS[:6])
    return f"""SELECT k.ck, COALESCE({day("h.valid_from")}, -{NEVER}) AS from_day,
  COALESCE({day("h.valid_to")}, {NEVER}) AS to_day, h.valid_from AS attributes_valid_from,
  h.competitor_share, h.credit_limit, h.net_worth, h.annual_turnover,
  LAG(h.net_worth) OVER (PARTITION BY k.ck ORDER BY h.valid_from) AS net_worth_previous,
  {experts}, h.approver AS expert_approver, h.change_reason AS expert_reason,
  h.approval_date AS expert_date
FROM customer_history h JOIN cust_keys k ON h.customer_id = k.customer_id"""
