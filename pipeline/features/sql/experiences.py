"""Block 3, experiences: payment behaviour per customer and as-of date over the trailing windows.

- **Days beyond terms (DBT) at t** of an invoice issued by t: settled by t -> settled day - due day;
  open and past due at t -> t - due day (aged at t); open and not yet due -> unknown (not an experience).
- **Windows** ``w`` months: events dated in (t - w months, t]; the start dates are computed in Python
  (``asof_grid``'s ``start_day_<w>``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.features.sql.common import (
    LATE_BUCKETS,
    Statements,
    bucket_sql,
    cents_sql,
    day_sql,
    paydex_sql,
)


def claims_payments_sql(dialect: str, windows: Sequence[int]) -> list[tuple[str, str]]:
    """``claims_agg`` (claims count and amount per window) and ``pay_agg`` (cash received, payment
    counts and delays per window, last payment day) per customer and as-of date."""
    wmax = max(windows)
    day = lambda col: day_sql(col, dialect)  # noqa: E731
    out = Statements(dialect)
    add = out.add
    add(
        "claims_agg",
        "SELECT c.ck, g.as_of_day,\n  "
        + ",\n  ".join(
            f"SUM(CASE WHEN c.claim_day > g.start_day_{w} THEN 1 ELSE 0 END) AS n_claims_{w},\n  "
            f"SUM(CASE WHEN c.claim_day > g.start_day_{w} THEN c.amount_cents ELSE 0 END) AS claim_cents_{w}"
            for w in windows
        )
        + f"""
FROM (SELECT k.ck, {day("c.claim_date")} AS claim_day, {cents_sql("c.amount")} AS amount_cents
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
    return list(out)


def experience_rows_sql(
    dialect: str, windows: Sequence[int], paydex_floor: float
) -> list[tuple[str, str]]:
    """``experiences``: one row per invoice and as-of date whose invoice date falls in the largest window,
    with its DBT at t, PAYDEX-style points, late bucket and invoice-date band; ``experiences_due``: one
    row per invoice and as-of date whose due date falls in it, with its due-date band and write-off flag."""
    wmax = max(windows)
    floor = paydex_floor
    out = Statements(dialect)
    add = out.add
    # one range join, every window filtered inside
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
    # invoice-dated measures: pairs whose invoice date falls in the largest window (inv_band < 9)
    add(
        "experiences_raw",
        f"""SELECT g.as_of_day, i.ck, i.invoice_day, i.amount_cents, i.settled_day, i.due_day,
  CASE WHEN i.settled_day <= g.as_of_day THEN i.settled_day - i.due_day
       WHEN i.due_day < g.as_of_day THEN g.as_of_day - i.due_day END AS dbt, {inv_band} AS inv_band
FROM inv_settled i JOIN asof_grid g
  ON i.invoice_day > g.start_day_{wmax} AND i.invoice_day <= g.as_of_day AND i.due_day > g.start_day_{wmax}""",
    )
    late_bucket = (
        "CASE "
        + " ".join(
            f"WHEN {bucket_sql('dbt', lo, hi)} THEN {k + 1}"
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
    # due-dated measures (collection): pairs whose due date falls in the largest window (due_band < 9)
    add(
        "experiences_due",
        f"""SELECT g.as_of_day, i.ck, i.amount_cents,
  CAST(i.write_off_day <= g.as_of_day AS INTEGER) AS written_off, {due_band} AS due_band
FROM inv_settled i JOIN asof_grid g
  ON i.due_day > g.start_day_{wmax} AND i.due_day <= g.as_of_day AND i.invoice_day <= g.as_of_day""",
    )
    return list(out)


def experience_aggregates_sql(dialect: str, windows: Sequence[int]) -> list[tuple[str, str]]:
    """``exp_bands`` (plain sums per band: invoice-dated rows carry ``due_band`` 9, due-dated rows
    ``inv_band`` 9) and one ``exp_agg_<w>`` per window (the bands cumulated)."""
    wmax = max(windows)
    out = Statements(dialect)
    add = out.add
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
    # the invoice-dated and the due-dated measures group separately (fewer, narrower groups); one
    # table keeps stage 2 unchanged: an invoice-dated row has due_band 9, a due-dated row inv_band 9
    null_due = [f"CAST(NULL AS BIGINT) AS {n}" for n in due_sums]
    null_inv = [f"CAST(NULL AS BIGINT) AS {n}" for n in band_sums]
    null_inv += [f"CAST(NULL AS BIGINT) AS {n}" for n in (*band_max, "last_key", "last_late_day")]
    # BIGINT sums (exact for any ledger in cents): DuckDB's default HUGEINT sums are slow to re-sum
    inv_aggs = [f"CAST(SUM({e}) AS BIGINT) AS {n}" for n, e in band_sums.items()]
    inv_aggs += [f"MAX({e}) AS {n}" for n, e in band_max.items()]
    inv_aggs += [
        "MAX(CAST(invoice_day AS BIGINT) * 100000 + dbt + 50000) AS last_key",
        "MAX(CASE WHEN settled_day <= as_of_day AND settled_day > due_day THEN settled_day END) AS last_late_day",
    ]
    add(
        "exp_bands",
        "SELECT ck, as_of_day, inv_band, 9 AS due_band,\n  "
        + ",\n  ".join(inv_aggs + null_due)
        + "\nFROM experiences GROUP BY ck, as_of_day, inv_band\nUNION ALL\n"
        + "SELECT ck, as_of_day, 9 AS inv_band, due_band,\n  "
        + ",\n  ".join(
            null_inv + [f"CAST(SUM({e}) AS BIGINT) AS {n}" for n, e in due_sums.items()]
        )
        + "\nFROM experiences_due GROUP BY ck, as_of_day, due_band",
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
    return list(out)
