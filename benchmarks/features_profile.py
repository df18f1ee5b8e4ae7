"""Per-statement profile of the features SQL on DuckDB (wall and process CPU seconds per statement).

    .venv/bin/python benchmarks/features_profile.py DATA_DIR [--memory-limit 2.7GB]

``DATA_DIR`` holds the canonical Parquet tables written by `benchmarks.features_bench.generate`
(customers, invoices, payments, claims) and, optionally, a ``settlement/`` folder written by the bench's
``settle`` engine (then the features read it, as the stage does). The grid is the bench's: 12 month-end
as-of dates over 24 months. CPU seconds are the ones to compare on a shared machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--memory-limit", default="2.7GB")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import pipeline.features.duckdb_engine as engine
    from benchmarks.features_bench import bench_params, typed_params
    from pipeline.features.sql import SETTLEMENT_TABLES

    timings: list[tuple[str, float, float]] = []

    def timed_run(con, statements, keep=()):
        drops = engine.last_uses(statements, keep)
        for k, (name, sql) in enumerate(statements[:-1]):
            wall, cpu = time.perf_counter(), time.process_time()
            con.execute(sql)
            for table in drops.get(k, []):
                con.execute(f"DROP TABLE {table}")
            timings.append((name, time.perf_counter() - wall, time.process_time() - cpu))
        return statements[-1][1]

    engine.run_statements = timed_run
    params = bench_params(24, 12)
    params["memory_limit"] = args.memory_limit
    data = args.data
    tables = {k: data / f"{k}.parquet" for k in ("customers", "invoices", "payments", "claims")}
    if (data / "settlement").is_dir():
        tables.update({k: data / "settlement" / f"{k}.parquet" for k in SETTLEMENT_TABLES})
    (data / "spill").mkdir(exist_ok=True)
    wall, cpu = time.perf_counter(), time.process_time()
    engine.compute_snapshots(
        tables,
        typed_params(params),
        temp_dir=str(data / "spill"),
        out_path=data / "snapshots_profile.parquet",
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    timings.append(
        ("assembly + Parquet", wall - sum(t[1] for t in timings), cpu - sum(t[2] for t in timings))
    )
    print(f"{'statement':24} {'wall s':>8} {'cpu s':>8}")
    for name, w, c in timings:
        print(f"{name:24} {w:8.2f} {c:8.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"{'total':24} {wall:8.2f} {cpu:8.2f}   peak {peak:.2f} GB")


if __name__ == "__main__":
    main()
