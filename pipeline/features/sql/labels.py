"""Block 4, labels: the performance window, the label, the observation segment, and the vintage events.

Good / bad is decided over the performance window (t, perf_end]: bad when a material invoice reaches the
bad days-beyond-terms threshold or an invoice is written off; indeterminate when a material invoice passes
the good threshold; in_default when the customer already met the bad definition at t; immature when the
window runs past the data cut-off. Materiality: above ``material_amount`` and above ``material_share`` of
the exposure.
"""

from __future__ import annotations

from pipeline.domain import SEGMENTS
from pipeline.features.sql.common import NEVER, Statements, day_sql

LABEL_INPUTS = (
    "mature",
    "default_at_asof",
    "delinquent_at_asof",
    "perf_written_off",
    "perf_bad_dbt",
    "perf_over_good",
)
"""Select-list columns the label is computed from; dropped from the snapshot table."""
__all__ = ["LABEL_INPUTS", "SEGMENTS"]


def performance_sql(dialect: str, bad_dbt: int, good_dbt: int) -> list[tuple[str, str]]:
    """``perf_agg`` per customer and as-of date: the largest invoice that reached the bad and the good
    threshold inside the performance window, and whether an invoice was written off in it."""
    out = Statements(dialect)
    add = out.add
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
    return list(out)


def label_input_columns_sql(material_cents: int, material_share: float) -> list[str]:
    """The `LABEL_INPUTS` select-list entries of the assembled snapshot (aliases of its joins)."""
    mat_cents, mat_share = material_cents, material_share
    return [
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


def labelled_snapshots_sql(
    features: str, names: list[str], label_source: str, dialect: str, with_truth: bool
) -> str:
    """Keys, ``label``, ``is_bad`` (1 bad, 0 good, else NULL) and ``segment`` (`segment_sql`) first, then
    the features; the label inputs are dropped. With ``with_truth``, ``true_pd`` last: the ``truth`` view's
    conditional 12-month PD at the as-of date (its ``month_end`` row), NULL when the truth has no row
    for that customer and date (not yet on board, or its default event already happened)."""
    case = label_sql(label_source)
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
        f"LEFT JOIN truth t ON s.customer_id = t.customer_id AND {day_sql('t.month_end', dialect)} = s.as_of_day"
        if with_truth
        else ""
    )
    return f"""SELECT s.customer_id, {as_of_date} AS as_of_date, s.label_ AS label,
  CAST(CASE s.label_ WHEN 'bad' THEN 1 WHEN 'good' THEN 0 END AS TINYINT) AS is_bad,
  s.segment_ AS segment, {rest}{truth}
FROM (SELECT *, {segment_sql()} AS segment_ FROM (SELECT *, {case} AS label_ FROM ({features}) f) l) s {join}
ORDER BY s.customer_id, s.as_of_day"""


def vintage_sql(bad_dbt: int, material_cents: int) -> str:
    """Per customer: first invoice day and the first day of a bad event (material 90+ DBT or write-off).

    Uses the absolute materiality only (the relative one needs an exposure date). Runs after
    `build_feature_sql`'s statements (reads ``inv_settled``)."""
    mat_cents = material_cents
    return f"""SELECT k.customer_id, MIN(invoice_day) AS first_invoice_day,
  MIN(CASE WHEN amount_cents > {mat_cents} AND LEAST(settled_day, write_off_day) >= due_day + {bad_dbt}
           THEN due_day + {bad_dbt} END) AS first_dbt_bad_day,
  MIN(CASE WHEN write_off_day < {NEVER} THEN write_off_day END) AS first_write_off_day
FROM inv_settled i JOIN cust_keys k ON i.ck = k.ck GROUP BY k.customer_id ORDER BY k.customer_id"""
