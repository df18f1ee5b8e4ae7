"""Block 1, settlement: payments allocated to invoices and each invoice's settlement day.

- **Settlement.** Payments carrying an ``invoice_id`` settle that invoice on the day their running total
  reaches its amount. Unallocated cash (``invoice_id`` null) is applied FIFO, oldest invoice first (invoice
  date, then due date, then invoice id): an invoice is settled by the pool on the first day the customer's
  cumulative unallocated cash reaches the cumulative amount of its invoices up to and including this one.
  The earlier of the two days wins, never before the invoice date. With one payment term per customer the
  order equals "FIFO by due date"; ordering by invoice date keeps the rule point in time (an invoice issued
  after t can never move ahead of one issued before t).

Settlement is causal in time and independent of the as-of grid, so the ``settle`` stage stores it once
(`SETTLEMENT_OUTPUTS`) and every features run reads it back (`settled_sql`).
"""

from __future__ import annotations

from pipeline.features.sql.common import NEVER, Statements, cents_sql, day_sql, row_id_sql

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
    `settle` stage runs these once and `settled_sql` reads the stored result back."""
    day = lambda col: day_sql(col, dialect)  # noqa: E731
    out = Statements(dialect)
    add = out.add

    # integer keys: customers get a dense key, invoices a row id; strings are joined once, here
    add(
        "cust_keys",
        "SELECT customer_id, ROW_NUMBER() OVER (ORDER BY customer_id) AS ck FROM customers",
    )
    add(
        "inv",
        f"""SELECT {row_id_sql(dialect)} AS ik, i.invoice_id, k.ck, {day("i.invoice_date")} AS invoice_day,
  {day("i.due_date")} AS due_day, {cents_sql("i.amount")} AS amount_cents,
  COALESCE({day("i.write_off_date")}, {NEVER}) AS write_off_day
FROM invoices i JOIN cust_keys k ON i.customer_id = k.customer_id""",
    )
    add(
        "pay",
        f"""SELECT p.payment_id, k.ck, i.ik, i.due_day, i.amount_cents AS invoice_cents,
  p.invoice_id IS NULL AS unallocated, {day("p.payment_date")} AS pay_day, {cents_sql("p.amount")} AS amount_cents
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

    return list(out)


def settled_sql(dialect: str) -> list[tuple[str, str]]:
    """The intermediates `settlement_sql` would compute, read from the stored `SETTLEMENT_TABLES` views
    (the ``settle`` stage's output) instead."""
    out = Statements(dialect)
    out.add(
        "cust_keys",
        "SELECT customer_id, ROW_NUMBER() OVER (ORDER BY customer_id) AS ck FROM customers",
    )
    out.add(
        "inv_settled",
        """SELECT s.ik, k.ck, s.invoice_day, s.due_day, s.amount_cents, s.write_off_day, s.settled_day,
  s.queue_before_cents FROM settled_invoices s JOIN cust_keys k ON s.customer_id = k.customer_id""",
    )
    out.add(
        "pay",
        """SELECT k.ck, s.pay_day, s.amount_cents, s.due_day
FROM settled_payments s JOIN cust_keys k ON s.customer_id = k.customer_id""",
    )
    out.add("partial_pay", "SELECT ik, pay_day, amount_cents FROM settled_partial")
    out.add(
        "pool",
        """SELECT k.ck, s.pay_day, s.pool_cents
FROM settled_pool s JOIN cust_keys k ON s.customer_id = k.customer_id""",
    )
    return list(out)
