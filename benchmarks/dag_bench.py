"""Whole-DAG benchmark: every stage's wall time and peak memory at N customers, against the memory budget.

    .venv/bin/python -m benchmarks.dag_bench --customers 100k [--months 24] [--budget 6GB] [--compare-unlimited]

A scratch project (``CREDIT_PIPELINE_ROOT``) gets this repository's params.yaml with the synthetic dataset's
grid fitted to the generated ledger (``pipeline.synth``: months from ``--start``; as-of month ends from the
6th month, out of time from the 10th) and ``base.memory_budget`` set to ``--budget``. Each stage runs as
``python -m pipeline.<stage>`` in its own subprocess; its peak is that process's maximum resident set
(``os.wait4``), so the verdict per stage is peak <= budget. ``--compare-unlimited`` runs the DAG a second
time with a budget no stage can reach (and DuckDB limits to match) and checks that every model, metric,
report and Parquet output is the same: a budget changes how a stage works, never what it produces.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import PY, fmt, parse_size, run_child  # noqa: E402
from pipeline.params.base import size_bytes  # noqa: E402

STAGES = (
    "ingest",
    "settle",
    "features",
    "train",
    "evaluate",
    "calibrate",
    "validate",
    "publish",
    "monitor",
)
UNLIMITED = "1000GB"
STAMP = [  # code stamps, digests, the budget settings and the fit-row cap derived from the budget
    (re.compile(r"\d+\.\d+\.\d+\+[0-9a-f]{12}"), "VERSION"),
    (re.compile(r"[0-9a-f]{64}"), "HASH"),
    (re.compile(r'"(memory_budget|memory_limit)": "[^"]*"'), r'"\1": "BUDGET"'),
    (re.compile(r'"max_rows": \d+'), '"max_rows": CAP'),  # whether it binds stays compared
    (re.compile(r"fit rows capped at \d+"), "fit rows capped at CAP"),
]


def month_end(start: str, months: int) -> str:
    return str((pd.Timestamp(start) + pd.offsets.MonthEnd(months)).date())


def scratch_params(start: str, months: int, budget: str, duckdb_limit: str | None) -> dict:
    """This repository's params with the synthetic grid fitted to a ``months``-month ledger from ``start``."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["base"]["memory_budget"] = budget
    block = params["datasets"]["synthetic"]
    params["datasets"] = {"synthetic": block}
    block["ingest"]["data_cutoff"] = month_end(start, months)
    block["features"]["as_of"] = {
        "start": month_end(start, 6),
        "end": month_end(start, months),
        "freq": "ME",
    }
    block["train"]["split"]["oot_start"] = month_end(start, 10)
    if duckdb_limit:
        for stage in ("settle", "features"):
            params[stage]["memory_limit"] = duckdb_limit
    return params


def run_dag(root: Path, stages: tuple[str, ...], timeout: float) -> dict[str, dict]:
    """Each stage in its own subprocess on the scratch project; stops at the first failure."""
    out = {}
    for stage in stages:
        out[stage] = run_child(
            [PY, "-m", f"pipeline.{stage}", "--dataset", "synthetic"],
            env={"CREDIT_PIPELINE_ROOT": str(root), "MPLBACKEND": "Agg"},
            timeout=timeout,
        )
        if not out[stage]["ok"]:
            print(f"[{stage}] failed: {out[stage].get('error', '')[-800:]}", file=sys.stderr)
            break
    return out


def _masked(text: str) -> str:
    for pattern, repl in STAMP:
        text = pattern.sub(repl, text)
    return text


def output_differences(a: Path, b: Path) -> list[str]:
    """Outputs of two runs of the DAG that differ: Parquet by content, text with code stamps masked;
    manifests (which record paths and timings) and PNG charts (rendered from the compared tables) skipped."""
    diffs = []
    for folder in (
        "data/interim",
        "data/quarantine",
        "data/processed",
        "models",
        "metrics",
        "exports",
        "reports",
        "monitoring",
    ):
        for path in sorted((a / folder).rglob("*")):
            rel = path.relative_to(a)
            other = b / rel
            if (
                not path.is_file()
                or path.name == "manifest.json"
                or path.suffix in (".png", ".xlsx")
            ):
                continue
            if not other.is_file():
                diffs.append(f"missing in second run: {rel}")
            elif path.suffix == ".parquet":
                left, right = pd.read_parquet(path), pd.read_parquet(other)
                if not left.equals(right):
                    diffs.append(f"content differs: {rel}")
            elif _masked(path.read_bytes().decode("utf-8", "replace")) != _masked(
                other.read_bytes().decode("utf-8", "replace")
            ):
                diffs.append(f"text differs: {rel}")
    return diffs


def scratch_project(
    root: Path, customers: int, months: int, start: str, params: dict, reuse: Path | None = None
) -> dict:
    """The scratch project: params and the synthetic raw ledger (generated, or linked from ``reuse``, a
    folder ``pipeline.synth`` wrote with the same customers, months and start)."""
    raw = root / "data" / "raw" / "synthetic"
    raw.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    if reuse is not None:
        for path in reuse.glob("*.csv"):
            (raw / path.name).symlink_to(path.resolve())
        return {"ok": True, "seconds": 0.0, "peak_gb": 0.0, "error": f"reused {reuse}"}
    return run_child(
        [
            PY,
            "-m",
            "pipeline.synth",
            "--customers",
            str(customers),
            "--months",
            str(months),
            "--start",
            start,
            "--out",
            str(raw),
            "--format",
            "csv",
        ]
    )


def copy_raw(src: Path, dst: Path, params: dict) -> None:
    shutil.copytree(src / "data" / "raw", dst / "data" / "raw", symlinks=True)
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def table(results: dict[str, dict], budget: str, label: str) -> list[str]:
    limit = size_bytes(budget) / 1e9
    lines = [
        f"| stage | {label} | seconds | peak GB | budget GB | verdict",
        "|---|---|---|---|---|---",
    ]
    for stage, r in results.items():
        verdict = "FAILED" if not r["ok"] else ("met" if r["peak_gb"] <= limit else "missed")
        lines.append(
            f"| {stage} | {label} | {fmt(r['seconds'], 1)} | {fmt(r['peak_gb'])} | "
            f"{fmt(limit)} | {verdict}"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", default="100k")
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--start", default="2024-01-01")
    ap.add_argument("--budget", default="6GB", help="base.memory_budget of the run")
    ap.add_argument(
        "--duckdb-limit", default=None, help="settle/features memory_limit (default: params.yaml)"
    )
    ap.add_argument("--compare-unlimited", action="store_true")
    ap.add_argument(
        "--raw",
        type=Path,
        default=None,
        help="link this pipeline.synth output instead of generating",
    )
    ap.add_argument("--timeout", type=float, default=4 * 3600)
    ap.add_argument(
        "--keep", type=Path, default=None, help="keep the scratch projects under this folder"
    )
    args = ap.parse_args()
    n = parse_size(args.customers)
    label = f"{n:,} cust"
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="dag_bench_"))
    tmp.mkdir(parents=True, exist_ok=True)
    report: dict = {"customers": n, "months": args.months, "budget": args.budget}
    try:
        budgeted = tmp / "budgeted"
        shutil.rmtree(budgeted, ignore_errors=True)
        params = scratch_params(args.start, args.months, args.budget, args.duckdb_limit)
        gen = scratch_project(budgeted, n, args.months, args.start, params, args.raw)
        print(f"synth: {fmt(gen['seconds'], 1)} s, {gen.get('error', 'ok')[-300:]}", flush=True)
        results = run_dag(budgeted, STAGES, args.timeout)
        lines = table(results, args.budget, label)
        report["stages"] = results
        if args.compare_unlimited and all(r["ok"] for r in results.values()):
            free = tmp / "unlimited"
            shutil.rmtree(free, ignore_errors=True)
            copy_raw(budgeted, free, scratch_params(args.start, args.months, UNLIMITED, "20GB"))
            unlimited = run_dag(free, STAGES, args.timeout)
            lines += table(unlimited, UNLIMITED, label + " unlimited")[2:]
            report["unlimited"] = unlimited
            report["differences"] = output_differences(budgeted, free)
            lines.append(
                f"\noutputs budgeted vs unlimited: {len(report['differences'])} differences"
                + "".join(f"\n  {d}" for d in report["differences"][:30])
            )
        snaps = budgeted / "data" / "processed" / "synthetic" / "snapshots.parquet"
        if snaps.exists():
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(snaps).metadata
            report["snapshot_rows"], report["snapshot_columns"] = meta.num_rows, meta.num_columns
        inv = budgeted / "data" / "interim" / "synthetic" / "invoices.parquet"
        if inv.exists():
            import pyarrow.parquet as pq

            report["invoices"] = pq.ParquetFile(inv).metadata.num_rows
        print(
            f"\n{label} x {args.months} months: {report.get('invoices', '?')} invoices, "
            f"{report.get('snapshot_rows', '?')} snapshot rows x {report.get('snapshot_columns', '?')} columns"
        )
        print("\n".join(lines))
        out = ROOT / "benchmarks" / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / f"dag_{n}.json").write_text(json.dumps(report, indent=2, default=str))
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
