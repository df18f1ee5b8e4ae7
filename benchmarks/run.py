"""Benchmarks: wall time and peak memory of every stage at several ledger sizes, side by side with baselines.

    .venv/bin/python benchmarks/run.py [--sizes 10k,100k,1M] [--quick] [--target-invoices 10M] [--dvc]
                                       [--dag-sizes 100k,1M]

Every measured step runs in its own subprocess; peak memory is that process's maximum resident set
(``os.wait4`` rusage, so peaks are per step). Steps per size (synthetic generator, `pipeline.synth`):
ingest, features, train (the stage modules on a scratch project root via ``CREDIT_PIPELINE_ROOT``), and the
baselines on the same data: features on DuckDB vs the straightforward pandas implementation
(`benchmarks.pandas_features`), our binning + scorecard fit vs OptBinning's BinningProcess + Scorecard
(`benchmarks.train_bench`; toad's combiner only if toad is installed), scoring from the JSON card in Python
vs the SQL export in DuckDB. ``--target-invoices`` runs the features target (10M invoices x 12 as-of dates);
``--dvc`` times ``dvc repro`` and a no-op ``dvc repro`` in a scratch copy of the repository. Prints a table
with the targets marked met/missed and writes benchmarks/out/results.json. ``--dag-sizes`` runs the whole DAG
per size (`benchmarks.dag_bench`: every stage's seconds and peak memory against ``base.memory_budget``, and the
outputs of the budgeted run against an unlimited one at the sizes listed in ``--dag-compare``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
PY = sys.executable
CUSTOMER_CHUNKS = 8
TARGETS = {  # name: (comparison, bound, unit)
    "features_10M_seconds": ("<=", 20.0, "s"),
    "features_10M_peak_gb": ("<=", 3.0, "GB"),
    "features_speedup_vs_pandas": (">=", 8.0, "x"),
    "train_ratio_vs_optbinning": ("<=", 1.3, "x"),
    "scoring_python_rows_per_s": (">=", 2e6, "rows/s"),
    "scoring_sql_to_table_rows_per_s": (">=", 5e6, "rows/s"),
    "dvc_noop_seconds": ("<=", 3.0, "s"),
    "dag_stage_peak_gb": ("<=", 6.0, "GB"),  # base.memory_budget default
    "dag_output_differences": ("<=", 0, "files"),
}


def parse_size(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if text[-1] in "km" else text) * mult)


def run_child(
    cmd: list[str], env: dict | None = None, cwd: Path = ROOT, timeout: float | None = None
) -> dict:
    """Run ``cmd`` in a subprocess: wall seconds, its own peak RSS in GB (``os.wait4`` rusage, so per step, not
    the cumulative RUSAGE_CHILDREN maximum) and the last JSON line it printed."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as fout, tempfile.TemporaryFile("w+") as ferr:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=fout, stderr=ferr
        )
        deadline = None if timeout is None else t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline and time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read(), ferr.read()
    result: dict = {
        "ok": proc.returncode == 0,
        "seconds": seconds,
        "peak_gb": usage.ru_maxrss
        * 1024
        / 1e9,  # KiB -> GB of 10^9 bytes, base.memory_budget's unit
    }
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            try:
                result["child"] = json.loads(line)
                break
            except json.JSONDecodeError:
                pass
    if proc.returncode:
        result["error"] = (err or out)[-1500:]
    return result


# ----------------------------------------------------------------------------------- child steps
def child_scoring(card_path: str, data_path: str, n_rows: int) -> None:
    """Score ``n_rows`` snapshot rows (tiled) with the JSON card in Python and with the SQL export in DuckDB.

    SQL input is a DuckDB table with the snapshot keys and the card's characteristics, as in the business
    system that runs the export. Each SQL figure is the best of three full passes of the export as
    published: aggregated in the query (nothing kept); written to a new table with the keys, points per
    characteristic, score and PD (a scoring job's result table: the projection over the export's SELECT,
    which DuckDB pushes down, so the input characteristics are not copied); and written with every column
    the export returns (the input's columns too)."""
    import duckdb
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    from pipeline.card import load_card, score_frame
    from pipeline.card.routing import all_features, scoring_columns
    from pipeline.exports import DIALECTS, SQL_INPUT_TABLE, scorecard_sql, sql_identifier

    card = load_card(card_path)
    names = [f["name"] for f in all_features(card)]
    keys = ["customer_id", "as_of_date"]
    base = pd.read_parquet(data_path, columns=keys + scoring_columns(card))
    X = base.iloc[np.resize(np.arange(len(base)), n_rows)].reset_index(drop=True)
    inputs = X[scoring_columns(card)]  # the frame a caller hands over; its copy is not scoring
    t = time.perf_counter()
    py = score_frame(card, inputs)
    t_py = time.perf_counter() - t
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.register("tiled", X)
    con.execute(f"CREATE TABLE {SQL_INPUT_TABLE} AS SELECT * FROM tiled")
    con.unregister("tiled")
    sql = scorecard_sql(card)
    q = lambda name: sql_identifier(name, DIALECTS["duckdb"])  # noqa: E731
    result = ", ".join([*keys, *(q("points__" + n) for n in names), "score", "pd_model"])

    def best(statement: str) -> float:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            con.execute(statement).fetchall()
            times.append(time.perf_counter() - t)
        return min(times)

    t_sql = best(f"SELECT SUM(score), SUM(pd_model) FROM ({sql})")
    t_all = best(f"CREATE OR REPLACE TEMP TABLE scored AS {sql}")
    t_table = best(f"CREATE OR REPLACE TEMP TABLE scored AS SELECT {result} FROM ({sql})")
    sql_scores = con.execute("SELECT score FROM scored").fetchnumpy()["score"]
    agree = bool(np.array_equal(np.sort(sql_scores), np.sort(py["score"].to_numpy())))
    print(
        json.dumps(
            {
                "rows": n_rows,
                "features": len(names),
                "python_s": t_py,
                "sql_s": t_sql,
                "python_rows_per_s": n_rows / t_py,
                "sql_rows_per_s": n_rows / t_sql,
                "sql_to_table_rows_per_s": n_rows / t_table,
                "sql_to_table_all_columns_rows_per_s": n_rows / t_all,
                "agree": agree,
            }
        )
    )


def child_train(n_rows: int, n_features: int) -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.train_bench import bench_fit

    result = bench_fit(n_rows, n_features, seed=0)
    try:
        import toad  # noqa: F401  (only if already installed; never a dependency)

        from benchmarks.train_bench import benchmark_frame

        X, y = benchmark_frame(n_rows, n_features, 0)
        t = time.perf_counter()
        toad.transform.Combiner().fit(
            X.assign(target=y), y="target", method="dt", min_samples=0.05
        )
        result["toad_dt_combiner_s"] = time.perf_counter() - t
    except ImportError:
        result["toad_dt_combiner_s"] = None
    print(json.dumps(result))


# ----------------------------------------------------------------------------------- orchestration
def scratch_project(root: Path, n_customers: int, months: int) -> dict:
    """A project root with this repo's params.yaml and a synthetic raw ledger (CSV) of ``n_customers``."""
    (root / "data" / "raw" / "synthetic").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    return run_child(
        [
            PY,
            "-m",
            "pipeline.synth",
            "--customers",
            str(n_customers),
            "--months",
            str(months),
            "--out",
            str(root / "data" / "raw" / "synthetic"),
            "--format",
            "csv",
        ]
    )


def stage(root: Path, name: str, timeout: float) -> dict:
    return run_child(
        [PY, "-m", f"pipeline.{name}", "--dataset", "synthetic"],
        env={"CREDIT_PIPELINE_ROOT": str(root)},
        timeout=timeout,
    )


def features_pair(
    data: Path, n_as_of: int, months: int, engines: tuple[str, ...], timeout: float
) -> dict:
    """DuckDB engine vs the pandas baseline on the same canonical Parquet tables (features_bench's child)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.features_bench import bench_params

    params = bench_params(months - 1, n_as_of)
    params["memory_limit"] = (
        "2.5GB"  # DuckDB's share of the 3 GB peak target (the process adds ~0.4 GB)
    )
    (data / "spill").mkdir(exist_ok=True)
    params["customer_chunks"] = max(CUSTOMER_CHUNKS, 1)  # 0 = no chunked run (one pass)
    script = {"duckdb_chunked": [__file__, "--child", "features_chunked"]}
    return {
        e: run_child(
            [
                PY,
                *script.get(e, [str(ROOT / "benchmarks" / "features_bench.py"), "--child", e]),
                str(data),
                json.dumps(params),
            ],
            timeout=timeout,
        )
        for e in engines
    }


def child_features_chunked(data: Path, params_json: str) -> None:
    """The DuckDB engine split into ``customer_chunks`` customer chunks (`pipeline.features.chunked`)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.features_bench import typed_params
    from pipeline.features.chunked import compute_snapshots_chunked

    names = ("customers", "invoices", "payments", "claims")
    tables = {k: data / f"{k}.parquet" for k in names}
    import pyarrow.parquet as pq

    out = compute_snapshots_chunked(
        tables,
        typed_params(json.loads(params_json)),
        temp_dir=str(data / "spill"),
        out_path=data / "snapshots_chunked.parquet",
    )["snapshots"]
    print(json.dumps({"rows": pq.ParquetFile(out).metadata.num_rows}))


def dvc_repro(timeout: float) -> dict:
    """`dvc repro` then a no-op `dvc repro` in a scratch copy of the tracked files (never in the work tree)."""
    with tempfile.TemporaryDirectory(prefix="dvc_bench_") as tmp:
        files = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True
        ).stdout.split()
        for f in files:
            if (ROOT / f).is_file():
                (Path(tmp) / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / f, Path(tmp) / f)
        env = {"DVC_NO_ANALYTICS": "1", "PATH": f"{Path(PY).parent}:{os.environ['PATH']}"}
        dvc = str(Path(PY).parent / "dvc")
        subprocess.run(["git", "init", "-q"], cwd=tmp, check=False)
        if not (Path(tmp) / ".dvc").exists():
            subprocess.run([dvc, "init", "-q"], cwd=tmp, env={**os.environ, **env}, check=False)
        full = run_child([dvc, "repro"], env=env, cwd=Path(tmp), timeout=timeout)
        noop = (
            run_child([dvc, "repro"], env=env, cwd=Path(tmp), timeout=600)
            if full["ok"]
            else {"ok": False}
        )
    return {"full": full, "noop": noop}


def verdict(name: str, value: float | None) -> str:
    if value is None:
        return "not measured"
    op, bound, _ = TARGETS[name]
    return "met" if (value <= bound if op == "<=" else value >= bound) else "MISSED"


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 1e4 else f"{x:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10k,100k", help="customers per ledger, e.g. 10k,100k,1M")
    ap.add_argument(
        "--months", type=int, default=36, help="ledger months (synthetic as-of grid needs 36)"
    )
    ap.add_argument("--quick", action="store_true", help="one small size, no 10M target, no dvc")
    ap.add_argument(
        "--target-invoices", default="10M", help="features target size in invoices (0 = skip)"
    )
    ap.add_argument(
        "--dvc",
        action="store_true",
        help="also time dvc repro and a no-op dvc repro (scratch copy)",
    )
    ap.add_argument("--scoring-rows", default="5M")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument(
        "--customer-chunks",
        type=int,
        default=8,
        help="also time the features target split into this many customer chunks (0 = skip)",
    )
    ap.add_argument(
        "--dag-sizes", default="", help="whole-DAG runs, e.g. 100k,1M (benchmarks.dag_bench)"
    )
    ap.add_argument(
        "--dag-compare", default="100k", help="sizes whose DAG run is compared to an unlimited one"
    )
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "features_chunked":
            child_features_chunked(Path(rest[0]), rest[1])
            return
        child_scoring(rest[0], rest[1], int(rest[2])) if kind == "scoring" else child_train(
            int(rest[0]), int(rest[1])
        )
        return
    sizes = (
        [2_000]
        if args.quick
        else [parse_size(s) for s in args.sizes.split(",") if s.strip() != "0"]
    )
    global CUSTOMER_CHUNKS
    CUSTOMER_CHUNKS = args.customer_chunks
    target_inv = 0 if args.quick else parse_size(args.target_invoices)
    scoring_rows = 500_000 if args.quick else parse_size(args.scoring_rows)
    OUT.mkdir(parents=True, exist_ok=True)
    rows, figures = [], {}
    load = os.getloadavg()[0]

    def row(step: str, size: str, r: dict, note: str = "") -> None:
        rows.append(
            (
                step,
                size,
                r.get("seconds"),
                r.get("peak_gb"),
                "ok" if r.get("ok") else "FAILED",
                note,
            )
        )
        if not r.get("ok"):
            print(f"[{step} {size}] failed: {r.get('error', '')[-600:]}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="bench_run_") as tmp:
        for n in sizes:
            label = f"{n:,} cust"
            root = Path(tmp) / f"p{n}"
            gen = scratch_project(root, n, args.months)
            row("synth (CSV)", label, gen)
            for name in ("ingest", "settle", "features", "train"):
                r = stage(root, name, args.timeout)
                row(f"stage {name}", label, r)
            snap = root / "data" / "processed" / "synthetic" / "snapshots.parquet"
            interim = root / "data" / "interim" / "synthetic"
            if interim.exists():
                pair = features_pair(interim, 12, args.months, ("duckdb", "pandas"), args.timeout)
                for engine, r in pair.items():
                    row(
                        f"features 12 as-of: {engine}",
                        label,
                        r,
                        f"{(r.get('child') or {}).get('rows', '?')} rows",
                    )
                if all(r.get("ok") for r in pair.values()):
                    figures[f"features_speedup_vs_pandas@{n}"] = (
                        pair["pandas"]["seconds"] / pair["duckdb"]["seconds"]
                    )
            n_rows = (
                len(__import__("pandas").read_parquet(snap, columns=["customer_id"]))
                if snap.exists()
                else n * 12
            )
            tr = run_child(
                [PY, __file__, "--child", "train", str(min(n_rows, 1_000_000)), "40"],
                timeout=args.timeout,
            )
            c = tr.get("child") or {}
            row(
                "fit: ours vs OptBinning",
                label,
                tr,
                f"{c.get('ours_fit_s')} s vs {c.get('optbinning_scorecard_fit_s')} s on {c.get('n_rows')} rows"
                + (
                    f"; toad dt {c['toad_dt_combiner_s']:.1f} s"
                    if c.get("toad_dt_combiner_s")
                    else ""
                ),
            )
            if c:
                figures[f"train_ratio_vs_optbinning@{n}"] = c["ratio_ours_over_optbinning"]
            card = root / "models" / "synthetic" / "scorecard.json"
            if card.exists() and snap.exists():
                sc = run_child(
                    [PY, __file__, "--child", "scoring", str(card), str(snap), str(scoring_rows)],
                    timeout=args.timeout,
                )
                c = sc.get("child") or {}
                row(
                    "scoring: Python vs SQL",
                    label,
                    sc,
                    f"{fmt(c.get('python_rows_per_s'))} vs {fmt(c.get('sql_rows_per_s'))} rows/s; into a "
                    f"table of keys, points, score, PD {fmt(c.get('sql_to_table_rows_per_s'))} (every "
                    f"column {fmt(c.get('sql_to_table_all_columns_rows_per_s'))}), agree={c.get('agree')}",
                )
                if c:
                    figures[f"scoring_python_rows_per_s@{n}"] = c["python_rows_per_s"]
                    figures[f"scoring_sql_to_table_rows_per_s@{n}"] = c["sql_to_table_rows_per_s"]
            shutil.rmtree(root, ignore_errors=True)
        if target_inv:
            data = Path(tmp) / "target"
            data.mkdir()
            n_cust = max(
                1, int(target_inv / 96)
            )  # features_bench generator: 4 invoices/month x 24 months
            gen = run_child(
                [
                    PY,
                    "-c",
                    (
                        "import sys; sys.path.insert(0, '.'); from pathlib import Path; "
                        "from benchmarks.features_bench import generate; "
                        f"t = generate({n_cust}, 24, 4.0, seed=20261129); "
                        f"[f.to_parquet(Path('{data}') / f'{{k}}.parquet', index=False) for k, f in t.items()]; "
                        "import json; print(json.dumps({k: len(v) for k, v in t.items()}))"
                    ),
                ]
            )
            row("generate target ledger", f"{fmt(target_inv)} inv", gen, str(gen.get("child")))
            # settle once (its own stage), then features reading it; beside them the one-pass run that
            # settles inside, and optionally the customer-chunked one
            engines = ("settle", "duckdb_settled", "duckdb") + (
                ("duckdb_chunked",) if CUSTOMER_CHUNKS > 1 else ()
            )
            pair = features_pair(data, 12, 25, engines, args.timeout)
            notes = {
                "settle": "settle stage: once per ledger",
                "duckdb_settled": "features stage: reads the settlement",
                "duckdb": "one pass, settles inside",
                "duckdb_chunked": f"{CUSTOMER_CHUNKS} customer chunks, settles inside",
            }
            for engine, r in pair.items():
                row(
                    f"features target x 12 as-of: {engine}",
                    f"{fmt(target_inv)} inv",
                    r,
                    notes[engine],
                )
                if r.get("ok") and engine != "settle":
                    figures[f"features_10M_seconds@{engine}"] = r["seconds"]
                    figures[f"features_10M_peak_gb@{engine}"] = r["peak_gb"]
        if args.dvc and not args.quick:
            d = dvc_repro(args.timeout)
            row("dvc repro (embedded data)", "repo", d["full"])
            row("dvc repro (no-op)", "repo", d["noop"])
            if d["noop"].get("ok"):
                figures["dvc_noop_seconds"] = d["noop"]["seconds"]

    dag_tables = []
    for size in filter(None, args.dag_sizes.split(",")):
        compare = size in args.dag_compare.split(",")
        cmd = [
            PY,
            "-m",
            "benchmarks.dag_bench",
            "--customers",
            size,
            "--timeout",
            str(args.timeout),
        ]
        dag = subprocess.run(
            cmd + ["--compare-unlimited"] * compare, cwd=ROOT, capture_output=True, text=True
        )
        dag_tables.append(dag.stdout.partition("\n")[2] or dag.stderr[-1500:])
        summary = (
            json.loads((OUT / f"dag_{parse_size(size)}.json").read_text())
            if dag.returncode == 0
            else {}
        )
        for stage_name, r in summary.get("stages", {}).items():
            figures[f"dag_stage_peak_gb@{size}:{stage_name}"] = r["peak_gb"]
        if compare and "differences" in summary:
            figures[f"dag_output_differences@{size}"] = len(summary["differences"])
    print(
        f"\nload average at start: {load:.1f} on {os.cpu_count()} cores (figures are wall times)\n"
    )
    for text in dag_tables:
        print(text)
    print(f"| {'step':34} | {'size':>14} | {'seconds':>8} | {'peak GB':>7} | status | note")
    print(f"|{'-' * 36}|{'-' * 16}|{'-' * 10}|{'-' * 9}|--------|------")
    for step, size, s, gb, ok, note in rows:
        print(f"| {step:34} | {size:>14} | {fmt(s, 1):>8} | {fmt(gb):>7} | {ok:6} | {note}")
    print("\n| target | measured | bound | verdict")
    print("|---|---|---|---")
    for name, (op, bound, unit) in TARGETS.items():
        keys = sorted(
            (k for k in figures if k.split("@")[0] == name),
            key=lambda k: (len(k), k),
        )
        if not keys:
            print(f"| {name} | - | {op} {fmt(bound)} {unit} | not measured")
        for k in keys:
            print(
                f"| {k} | {fmt(figures[k])} | {op} {fmt(bound)} {unit} | {verdict(name, figures[k])}"
            )
    (OUT / "results.json").write_text(
        json.dumps({"rows": rows, "figures": figures, "load": load}, indent=2)
    )


if __name__ == "__main__":
    main()
