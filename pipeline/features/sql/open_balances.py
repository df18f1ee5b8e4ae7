"""Block 2, open balances: what is open, and how far past due, at every evaluation day.

**Open balance at d**: invoices issued <= d, not settled and not written off by d, less partial payments
made by d (direct partial payments plus the customer's FIFO pool share). Ageing is by due date:
current = not yet due (d <= due day), then 1-30, 31-60, 61-90, 90+ days past due (upper edge inclusive).
Evaluation days (``eval_days``) are the as-of dates, the window starts (CEI) and the roll-rate month ends.
"""

from __future__ import annotations

from pipeline.features.sql.common import AGING_BUCKETS, Statements, bucket_sql


def open_balance_sql(dialect: str, bad_dbt: int, delinquent_dbt: int) -> list[tuple[str, str]]:
    """``open_balance`` per customer and evaluation day (exposure, ageing buckets, worst days past due,
    the largest open invoice at the bad and the delinquent threshold), ``first_invoice`` per customer and
    ``write_off_agg`` (written off on or before each as-of date). Reads ``inv_settled``, ``pool``,
    ``partial_pay``, ``eval_days`` and ``asof_grid``."""
    seg_dbt = delinquent_dbt
    out = Statements(dialect)
    add = out.add
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
        f"SUM(CASE WHEN {bucket_sql(dpd, lo, hi)} THEN open_cents ELSE 0 END) AS aging_{name}_cents"
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

    return list(out)


def roll_rate_sql() -> str:
    """Worst ageing bucket of each customer's open balance at each evaluation day (reads ``open_balance``)."""
    conds = " ".join(
        f"WHEN worst_days_past_due {('<= ' + str(hi)) if hi is not None else '>= 0'} THEN '{name}'"
        for name, _, hi in AGING_BUCKETS
    )
    return f"""SELECT k.customer_id, eval_day,
  CASE WHEN exposure_cents <= 0 OR worst_days_past_due IS NULL THEN 'no_balance' {conds} END AS bucket
FROM open_balance o JOIN cust_keys k ON o.ck = k.ck ORDER BY k.customer_id, eval_day"""
