"""Benchmark: the features stage (DuckDB SQL) against the straightforward pandas baseline.

    .venv/bin/python benchmarks/features_bench.py --customers 100000 --months 24 --as-of 12

Generates a canonical ledger (vectorised, seeded) into a scratch directory, then runs each engine in its own
subprocess and prints wall time and peak resident memory (ru_maxrss of that subprocess) as a table. The
DuckDB engine streams the labelled snapshot table to Parquet (what the stage keeps); the pandas baseline only
builds its DataFrame, so writing is counted against DuckDB alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def generate(
    n_customers: int, months: int, invoices_per_month: float, seed: int, start: str = "2023-01-01"
) -> dict[str, pd.DataFrame]:
    """A canonical ledger: Poisson invoices per customer-month, risk-driven delays, partial and unallocated
    payments, claims and write-offs."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    cid = np.array([f"c{i:07d}" for i in range(n_customers)], dtype=object)
    risk = rng.beta(1.2, 8, n_customers)
    customers = pd.DataFrame(
        {
            "customer_id": cid,
            "onboarding_date": t0 + pd.to_timedelta(rng.integers(0, 90, n_customers), unit="D"),
            "competitor_share": rng.uniform(0, 1, n_customers),
            "credit_limit": rng.choice([np.nan, 50_000.0], n_customers),
            "protected_sex": "F",
            "protected_marital_status": "single",
            "protected_education": "university",
            "protected_age": pd.array(rng.integers(20, 70, n_customers), dtype="Int64"),
            "source_default_flag": pd.array([pd.NA] * n_customers, dtype="Int64"),
        }
    )
    counts = rng.poisson(invoices_per_month * months, n_customers)
    owner = np.repeat(np.arange(n_customers), counts)
    n = len(owner)
    issued = t0 + pd.to_timedelta(rng.integers(0, months * 30, n), unit="D")
    terms = rng.choice([30, 45, 60], n)
    amount = np.round(rng.lognormal(7, 1, n), 2) + 1
    late = rng.uniform(size=n) < risk[owner] * 2
    delay = rng.integers(-10, 10, n) + late * rng.integers(5, 150, n)
    write_off = rng.uniform(size=n) < risk[owner] * 0.05
    inv_id = np.char.add("i", np.arange(n).astype(str)).astype(object)
    due = issued + pd.to_timedelta(terms, unit="D")
    invoices = pd.DataFrame(
        {
            "invoice_id": inv_id,
            "customer_id": cid[owner],
            "invoice_date": issued,
            "due_date": due,
            "amount": amount,
            "currency": "CNY",
            "write_off_date": pd.Series(due + pd.to_timedelta(120, unit="D")).where(write_off),
        }
    )
    paid = ~write_off
    pay_date = np.maximum(issued, due + pd.to_timedelta(delay, unit="D"))[paid]
    split = rng.uniform(size=paid.sum()) < 0.1
    first_part = np.round(amount[paid] * np.where(split, 0.5, 1.0), 2)
    link = np.where(rng.uniform(size=paid.sum()) < 0.1, None, inv_id[paid])
    pays = [
        pd.DataFrame(
            {
                "payment_id": np.char.add("p", np.arange(paid.sum()).astype(str)).astype(object),
                "customer_id": cid[owner][paid],
                "invoice_id": link,
                "payment_date": pay_date - pd.to_timedelta(np.where(split, 0, 0), unit="D"),
                "amount": first_part,
            }
        )
    ]
    rest = amount[paid][split] - first_part[split]
    pays.append(
        pd.DataFrame(
            {
                "payment_id": np.char.add("q", np.arange(split.sum()).astype(str)).astype(object),
                "customer_id": cid[owner][paid][split],
                "invoice_id": inv_id[paid][split],
                "payment_date": pay_date[split] + pd.to_timedelta(15, unit="D"),
                "amount": np.round(rest, 2),
            }
        )
    )
    payments = pd.concat(pays, ignore_index=True)
    payments = payments[payments["amount"] > 0]
    has_claim = rng.uniform(size=n) < 0.02
    claims = pd.DataFrame(
        {
            "claim_id": np.char.add("k", np.arange(has_claim.sum()).astype(str)).astype(object),
            "invoice_id": inv_id[has_claim],
            "customer_id": cid[owner][has_claim],
            "claim_date": issued[has_claim] + pd.to_timedelta(20, unit="D"),
            "amount": np.round(amount[has_claim] * 0.1, 2) + 0.01,
            "reason": "quality",
        }
    )
    for frame in (invoices, payments, claims, customers):
        for col in frame.columns:
            if col.endswith("_date"):
                frame[col] = pd.to_datetime(frame[col]).astype("datetime64[ns]")
    return {"customers": customers, "invoices": invoices, "payments": payments, "claims": claims}


def bench_params(months: int, n_as_of: int, start: str = "2023-01-01") -> dict:
    end = pd.Timestamp(start) + pd.DateOffset(months=months) + pd.offsets.MonthEnd(0)
    first = end - pd.DateOffset(months=n_as_of - 1) + pd.offsets.MonthEnd(0)
    return {
        "windows_months": [3, 6, 12],
        "as_of": {"start": str(first.date()), "end": str(end.date()), "freq": "ME"},
        "data_cutoff": str(end.date()),
        "memory_limit": "2.7GB",
        "threads": 2,
        "label": {
            "source": "ledger",
            "performance_window_months": 12,
            "bad_days_beyond_terms": 90,
            "good_max_days_beyond_terms": 30,
            "material_amount": 100.0,
            "material_share": 0.01,
        },
    }


def typed_params(params: dict):
    """The bench's ``features`` overrides over params.yaml's block, as the typed `FeaturesParams`."""
    from pipeline.config import deep_merge, load_params
    from pipeline.params import build
    from pipeline.params.features import FeaturesParams

    return build(FeaturesParams, deep_merge(load_params(ROOT)["features"], params), "features")


def typed_settle_params(params: dict):
    """params.yaml's ``settle`` block with the bench's memory limit and threads, as `SettleParams`."""
    from pipeline.config import load_params
    from pipeline.params import build
    from pipeline.params.settle import SettleParams

    resources = {k: params[k] for k in ("memory_limit", "threads") if k in params}
    return build(SettleParams, {**load_params(ROOT)["settle"], **resources}, "settle")


def _child(engine: str, data: Path, params_json: str) -> None:
    """Run one engine in this process and print seconds, peak RSS and rows as JSON."""
    sys.path.insert(0, str(ROOT))
    params = json.loads(params_json)
    names = ("customers", "invoices", "payments", "claims")
    t0 = time.perf_counter()
    if engine == "settle":
        from pipeline.features.duckdb_engine import compute_settlement

        rows = compute_settlement(
            {k: data / f"{k}.parquet" for k in names},
            typed_settle_params(params),
            data / "settlement",
            temp_dir=str(data / "spill"),
        )["settled_invoices"]
    elif engine in ("duckdb", "duckdb_settled"):
        import pyarrow.parquet as pq

        from pipeline.features.duckdb_engine import compute_snapshots
        from pipeline.features.sql import SETTLEMENT_TABLES

        tables = {k: data / f"{k}.parquet" for k in names}
        if engine == "duckdb_settled":  # the settle stage's output, written by the "settle" engine
            tables.update({k: data / "settlement" / f"{k}.parquet" for k in SETTLEMENT_TABLES})
        out = compute_snapshots(
            tables,
            typed_params(params),
            temp_dir=str(data / "spill"),
            out_path=data / f"snapshots_{engine}.parquet",
        )["snapshots"]
        rows = pq.ParquetFile(out).metadata.num_rows
    else:
        from benchmarks.pandas_features import pandas_features

        rows = len(
            pandas_features({k: pd.read_parquet(data / f"{k}.parquet") for k in names}, params)
        )
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(
        json.dumps(
            {
                "engine": engine,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_gb": peak,
                "rows": rows,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--as-of", type=int, default=12)
    ap.add_argument("--invoices-per-month", type=float, default=4.0)
    ap.add_argument(
        "--engines",
        default="duckdb,pandas",
        help="duckdb (settles inside), settle then duckdb_settled (reads the stored settlement), pandas",
    )
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), args.child[2])
        return
    params = bench_params(args.months, args.as_of)
    with tempfile.TemporaryDirectory(prefix="features_bench_") as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        tables = generate(args.customers, args.months, args.invoices_per_month, seed=20261129)
        for name, frame in tables.items():
            frame.to_parquet(data / f"{name}.parquet", index=False)
        sizes = {k: len(v) for k, v in tables.items()}
        del tables
        print(f"generated {sizes} in {time.perf_counter() - t0:.1f} s")
        results = []
        for engine in args.engines.split(","):
            out = subprocess.run(
                [sys.executable, __file__, "--child", engine, str(data), json.dumps(params)],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            if out.returncode:
                print(out.stderr[-3000:])
                continue
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"\n{'engine':8} {'seconds':>9} {'cpu s':>9} {'peak GB':>8} {'rows':>10}")
    for r in results:
        print(
            f"{r['engine']:8} {r['seconds']:9.1f} {r['cpu_seconds']:9.1f} {r['peak_gb']:8.2f} {r['rows']:10d}"
        )
    if len(results) == 2:
        d, p = results
        print(
            f"pandas / duckdb: time {p['seconds'] / d['seconds']:.1f}x, "
            f"cpu {p['cpu_seconds'] / d['cpu_seconds']:.1f}x, peak memory {p['peak_gb'] / d['peak_gb']:.1f}x"
        )


if __name__ == "__main__":
    main()
