"""Vintage and roll-rate analysis: the evidence for the performance window and the bad threshold.

Vintage: cumulative bad rate by months since first invoice, per onboarding cohort (quarter of the first
invoice); a customer counts at month m only if the data cut-off lies at least m months after its first
invoice. Bad event: the first day a material invoice (absolute materiality) reaches the bad DBT threshold,
or the first write-off. Roll rates: month-to-month transitions between the worst ageing bucket of each
customer's open balance (``no_balance`` when nothing is open).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.features.grid import from_day, to_day
from pipeline.io import save_figure

BUCKET_ORDER = ["no_balance", "current", "1_30", "31_60", "61_90", "90p"]
DAYS_PER_MONTH = 30.4375


def vintage_table(
    events: pd.DataFrame, cutoff: pd.Timestamp, max_months: int = 24
) -> pd.DataFrame:
    """Cumulative bad rate by ``months_on_book`` for each cohort and for ``all``.

    A cohort's point at month m uses the whole cohort and is shown only once every member has been on
    book for m months (so the curve never mixes populations). ``all`` is the Kaplan–Meier estimate over
    the customers still observed at each month (``customers`` = those at risk).
    ``events``: customer_id, first_invoice_day, first_dbt_bad_day, first_write_off_day (day numbers).
    """
    ev = events.copy()
    bad_day = ev[["first_dbt_bad_day", "first_write_off_day"]].min(axis=1)
    months_to_bad = np.ceil((bad_day - ev["first_invoice_day"]) / DAYS_PER_MONTH).clip(lower=1)
    observed = (to_day(cutoff) - ev["first_invoice_day"]) / DAYS_PER_MONTH
    first = from_day(ev["first_invoice_day"])
    ev["cohort"] = first.dt.year.astype(str) + "Q" + first.dt.quarter.astype(str)
    rows = []
    survival = 1.0
    for m in range(1, max_months + 1):
        at_risk = (observed >= m) & ~(months_to_bad < m)
        if not (observed >= m).any():
            break
        new_bad = at_risk & (months_to_bad == m)
        n = int(at_risk.sum())
        if n:
            survival *= 1.0 - new_bad.sum() / n
        rows.append(("all", m, n, int(new_bad.sum()), 1.0 - survival))
        for cohort in sorted(ev["cohort"].unique()):
            member = ev["cohort"] == cohort
            if observed[member].min() >= m:
                k = int((member & (months_to_bad <= m)).sum())
                rows.append((cohort, m, int(member.sum()), k, k / int(member.sum())))
    return pd.DataFrame(
        rows, columns=["cohort", "months_on_book", "customers", "bad", "cumulative_bad_rate"]
    )


def roll_rate_table(
    buckets: pd.DataFrame, customers_first_day: pd.Series, months: list[pd.Timestamp]
) -> pd.DataFrame:
    """Transition counts and rates from the bucket at month m to month m + 1 (customers already invoiced at m)."""
    days = [to_day(m) for m in months]
    if len(days) < 2:
        return pd.DataFrame(columns=["from_bucket", "to_bucket", "count", "rate"])
    panel = buckets.pivot(index="customer_id", columns="eval_day", values="bucket")
    panel = panel.reindex(index=customers_first_day.index, columns=days)
    first = customers_first_day.to_numpy()
    counts = pd.DataFrame(0, index=BUCKET_ORDER, columns=BUCKET_ORDER, dtype="int64")
    for d0, d1 in zip(days, days[1:], strict=False):
        active = first <= d0
        frm = panel[d0].fillna("no_balance")[active]
        to = panel[d1].fillna("no_balance")[active]
        counts = counts.add(
            pd.crosstab(frm, to).reindex(index=BUCKET_ORDER, columns=BUCKET_ORDER, fill_value=0),
            fill_value=0,
        )
    return _rates(counts)


def _rates(counts: pd.DataFrame) -> pd.DataFrame:
    """Long table of a from × to count matrix with the row rates."""
    long = counts.stack().rename("count").reset_index()
    long.columns = ["from_bucket", "to_bucket", "count"]
    totals = long.groupby("from_bucket")["count"].transform("sum")
    long["rate"] = np.where(totals > 0, long["count"] / totals.where(totals > 0, 1), np.nan)
    return long


def copy_analysis(con, vintage: str, month_days: set[int], out_dir: Path, result: dict) -> None:
    """Write the ``vintage_events`` query and the month-end ``buckets`` (`roll_rate_sql` at
    ``month_days``) as Parquet files in ``out_dir`` on the DuckDB connection ``con``; their paths go
    into ``result``. Both grow with the customers (buckets: customers × months), so at scale they stay
    on disk and `analysis_tables` aggregates them there."""
    from pipeline.features.sql import roll_rate_sql

    out_dir.mkdir(parents=True, exist_ok=True)
    days = ", ".join(str(d) for d in sorted(month_days)) or "NULL"
    buckets = f"SELECT * FROM ({roll_rate_sql()}) b WHERE eval_day IN ({days})"
    for name, sql in (("vintage_events", vintage), ("buckets", buckets)):
        result[name] = out_dir / f"{name}.parquet"
        con.execute(f"COPY ({sql}) TO '{result[name].as_posix()}' (FORMAT parquet)")


def _files(paths: Path | list[Path]) -> str:
    items = paths if isinstance(paths, list) else [paths]
    return "[" + ", ".join(f"'{Path(p).as_posix()}'" for p in items) + "]"


def roll_rate_counts_sql(buckets: str, events: str, months: list[pd.Timestamp]) -> str:
    """`roll_rate_table`'s transition counts in SQL over Parquet ``buckets`` and ``events`` (DuckDB
    file lists): for consecutive month ends d0, d1 and every customer invoiced by d0, its bucket at d0
    and at d1 (``no_balance`` without a row)."""
    days = [to_day(m) for m in months]
    pairs = ", ".join(f"({a}, {b})" for a, b in zip(days, days[1:], strict=False))
    return f"""WITH pairs(d0, d1) AS (VALUES {pairs}),
ev AS (SELECT customer_id, first_invoice_day FROM read_parquet({events})),
b AS (SELECT customer_id, eval_day, bucket FROM read_parquet({buckets}))
SELECT COALESCE(b0.bucket, 'no_balance') AS from_bucket, COALESCE(b1.bucket, 'no_balance') AS to_bucket,
  COUNT(*) AS n
FROM ev JOIN pairs p ON ev.first_invoice_day <= p.d0
LEFT JOIN b b0 ON b0.customer_id = ev.customer_id AND b0.eval_day = p.d0
LEFT JOIN b b1 ON b1.customer_id = ev.customer_id AND b1.eval_day = p.d1
GROUP BY ALL"""


def analysis_tables(
    result: dict, vintage_months: int, memory_limit: str, temp_dir: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The vintage and roll-rate tables from the SQL's analysis inputs: DataFrames (Spark) or Parquet
    files (DuckDB, `copy_analysis`: the roll-rate counts are aggregated by DuckDB, the vintage reads
    one row of three day numbers per customer)."""
    events, buckets, months = result["vintage_events"], result["buckets"], result["roll_months"]
    if isinstance(events, pd.DataFrame):
        first = events.set_index("customer_id")["first_invoice_day"]
        return (
            vintage_table(events, result["data_cutoff"], vintage_months),
            roll_rate_table(buckets, first, months),
        )
    from pipeline.features.duckdb_engine import connect

    con = connect(memory_limit, 1, temp_dir)
    try:
        con.execute("SET preserve_insertion_order = true")
        events_df = con.execute(
            "SELECT first_invoice_day, first_dbt_bad_day, first_write_off_day "
            f"FROM read_parquet({_files(events)}) ORDER BY customer_id"
        ).df()
        if len(months) < 2:
            rolls = roll_rate_table(pd.DataFrame(), pd.Series(dtype="int64"), months)
        else:
            n = con.execute(roll_rate_counts_sql(_files(buckets), _files(events), months)).df()
            counts = n.pivot(index="from_bucket", columns="to_bucket", values="n")
            counts = counts.reindex(index=BUCKET_ORDER, columns=BUCKET_ORDER).fillna(0)
            counts.index.name, counts.columns.name = "from_bucket", "to_bucket"
            rolls = _rates(counts.astype("int64"))
    finally:
        con.close()
    return vintage_table(events_df, result["data_cutoff"], vintage_months), rolls


def plot_vintage(table: pd.DataFrame, path: Path, dataset: str) -> None:
    """Cumulative bad rate curves per cohort (the 'all' curve bold)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    for cohort, grp in table.groupby("cohort", sort=True):
        bold = cohort == "all"
        ax.plot(
            grp["months_on_book"],
            100 * grp["cumulative_bad_rate"],
            lw=2.5 if bold else 1,
            color="black" if bold else None,
            alpha=1 if bold else 0.7,
            label=cohort,
        )
    ax.set_title(
        f"Vintage analysis ({dataset}): cumulative bad rate by months since first invoice"
    )
    ax.set_xlabel("Months since first invoice (months on book)")
    ax.set_ylabel("Cumulative bad rate (%)")
    ax.grid(alpha=0.3)
    ax.legend(title="Onboarding cohort", fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, metadata={"Software": None})
    plt.close(fig)


def plot_roll_rates(table: pd.DataFrame, path: Path, dataset: str) -> None:
    """Heat map of month-to-month transition rates between ageing buckets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mat = table.pivot(index="from_bucket", columns="to_bucket", values="rate").reindex(
        index=BUCKET_ORDER, columns=BUCKET_ORDER
    )
    fig, ax = plt.subplots(figsize=(7.5, 6), dpi=110)
    im = ax.imshow(100 * mat.fillna(0).to_numpy(), cmap="Blues", vmin=0, vmax=100)
    for i in range(len(BUCKET_ORDER)):
        for j in range(len(BUCKET_ORDER)):
            v = mat.iat[i, j]
            ax.text(
                j,
                i,
                "–" if pd.isna(v) else f"{100 * v:.1f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if (not pd.isna(v) and v > 0.6) else "black",
            )
    ax.set_xticks(range(len(BUCKET_ORDER)), BUCKET_ORDER, rotation=30)
    ax.set_yticks(range(len(BUCKET_ORDER)), BUCKET_ORDER)
    ax.set_xlabel("Bucket next month (days past due)")
    ax.set_ylabel("Bucket this month (days past due)")
    ax.set_title(f"Roll rates ({dataset}): month-to-month transitions (% of row)")
    fig.colorbar(im, ax=ax, label="Transition rate (%)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, metadata={"Software": None})
    plt.close(fig)
