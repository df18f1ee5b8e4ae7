"""The onboarding command: read the raw folder, profile it, derive and write the block
(``python -m pipeline.onboard data/raw/<name>/`` or ``credit-onboard``)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline.config import PROJ_ROOT, deep_merge
from pipeline.domain import PipelineError
from pipeline.onboard.block import flow_text, insert_block, render_block
from pipeline.onboard.columns import (
    ALIAS_INDEX,
    DATE_FORMATS,
    ISO_FORMATS,
    UCI_COLUMNS,
    choose_source,
    classify_table,
    detect_date_format,
    normalise,
    propose_column_map,
)
from pipeline.onboard.derive import Derived, derive_settings
from pipeline.onboard.profile import (
    choose_cutoff,
    invoice_lateness,
    lateness_profile,
    profile_ledger,
)
from pipeline.params.ingest import IngestParams, onboard_defaults, profiling_params, project_params


def _read_head(path: Path, encoding: str, n: int = 12) -> list[str]:
    out = []
    with path.open(encoding=encoding, errors="replace") as fh:
        for _ in range(n):
            line = fh.readline()
            if not line:
                break
            out.append(line.rstrip("\r\n"))
    return out


def header_row(lines: list[str]) -> int:
    """0-based line of the header: the first of the leading lines with the most recognised names."""
    best, at = -1, 0
    for i, line in enumerate(lines):
        cells = [c.strip().strip('"') for c in line.split(",")]
        hits = sum(normalise(c) in ALIAS_INDEX for c in cells) + (
            10 if UCI_COLUMNS <= set(cells) else 0
        )
        if hits > best:
            best, at = hits, i
    return at


def scan_files(raw_dir: Path) -> list[dict[str, Any]]:
    """Profile each CSV/Parquet file: encoding, header row, header, rows, proposed map, table."""
    from pipeline.adapters.files import detect_encoding

    out = []
    for path in sorted(Path(raw_dir).iterdir()):
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq", ".txt") or path.name in (
            "truth.csv",
            "fx_rates.csv",
        ):
            continue
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(path)
            headers, enc, hdr, rows = (
                list(meta.schema_arrow.names),
                "parquet",
                0,
                meta.metadata.num_rows,
            )
        else:
            enc = detect_encoding(path)
            head = _read_head(path, enc)
            hdr = header_row(head)
            headers = list(pd.read_csv(path, nrows=0, encoding=enc, skiprows=hdr).columns)
            with path.open("rb") as fh:
                rows = sum(1 for _ in fh) - 1 - hdr
        mapping = propose_column_map(headers)
        out.append(
            {
                "name": path.name,
                "encoding": enc,
                "header_row": hdr + 1,
                "rows": rows,
                "headers": headers,
                "column_map": mapping,
                "unmapped": [h for h in headers if h not in mapping],
                "table": classify_table(headers, set(mapping.values())),
            }
        )
    if not out:
        raise PipelineError(f"{raw_dir}: no CSV or Parquet files to onboard")
    return out


def _date_columns(files: list[dict[str, Any]], raw_dir: Path) -> pd.Series:
    """Every value of every mapped date column in the text files (to detect the date format)."""
    vals = []
    for f in files:
        cols = [h for h, c in f["column_map"].items() if c.endswith("_date")]
        if not cols or f["encoding"] == "parquet":
            continue
        df = pd.read_csv(
            raw_dir / f["name"],
            usecols=cols,
            dtype=str,
            encoding=f["encoding"],
            skiprows=f["header_row"] - 1,
        )
        vals.extend(df[c] for c in cols)
    return pd.concat(vals, ignore_index=True) if vals else pd.Series(dtype=str)


def load_ledger(raw_dir: Path, ingest: IngestParams) -> dict[str, pd.DataFrame]:
    """The canonical tables through the ingest stage's own adapter (typed; unparseable values
    dropped — the profile is a sketch, ingest does the validation)."""
    from pipeline.adapters import ADAPTERS
    from pipeline.schemas import COLUMNS, DATE

    sources, _ = ADAPTERS[ingest.source](Path(raw_dir), ingest)
    out = {}
    for table, src in sources.items():
        parts = [c for c in src.chunks() if len(c)]
        frame = (
            pd.concat(parts, ignore_index=True)
            if parts
            else pd.DataFrame(columns=list(COLUMNS[table]))
        )
        for col, kind in COLUMNS[table].items():
            if col not in frame:
                continue
            if kind == DATE and not pd.api.types.is_datetime64_any_dtype(frame[col]):
                frame[col] = pd.to_datetime(frame[col], format=ingest.date_format, errors="coerce")
            elif kind in ("float64", "Int64"):
                frame[col] = pd.to_numeric(frame[col], errors="coerce")
            elif kind == "str":
                frame[col] = frame[col].astype("string")
        out[table] = frame
    inv = out["invoices"]
    out["invoices"] = inv.dropna(subset=["customer_id", "invoice_date", "due_date", "amount"])
    out["invoices"] = out["invoices"][out["invoices"]["amount"] > 0]
    for t, c in (("payments", "payment_date"), ("claims", "claim_date")):
        if t in out and len(out[t]):
            out[t] = out[t].dropna(subset=[c, "amount"])
    return out


def onboard(
    raw_dir: Path, currency: str | None = None, params: dict[str, Any] | None = None
) -> tuple[Derived, dict]:
    """Profile ``raw_dir`` and derive its settings against ``params`` (the whole params.yaml; None:
    the project's); returns (derived, profile report)."""
    files = scan_files(raw_dir)
    plan = choose_source(files)
    if (Path(raw_dir) / "fx_rates.csv").is_file():
        plan["fx_rates"] = "fx_rates.csv"
    if any(f["header_row"] > 1 for f in files):
        bad = [f["name"] for f in files if f["header_row"] > 1]
        raise PipelineError(
            f"{raw_dir}: the header is not on line 1 of {bad}; delete the title lines above it "
            "(ingest reads the header from line 1)"
        )
    date_values = _date_columns(files, raw_dir)
    fmt, candidates = detect_date_format(date_values)
    if date_values.notna().any() and fmt is None:
        raise PipelineError(
            f"{raw_dir}: dates in none of the formats {DATE_FORMATS}; set ingest.date_format"
        )
    defaults = onboard_defaults(project_params() if params is None else params)
    block = deep_merge(defaults.ingest, {k: v for k, v in plan.items() if k != "missing"})
    block["date_format"] = fmt if fmt and fmt not in ISO_FORMATS else "ISO8601"
    tables = load_ledger(raw_dir, profiling_params(block))
    prof = profile_ledger(tables)
    cutoff, _ = choose_cutoff(prof["last_event"])
    late = invoice_lateness(tables, cutoff)
    derived = derive_settings(plan, prof, late, tables, fmt, currency, defaults)
    if len(candidates) > 1 and not set(candidates) <= ISO_FORMATS:
        derived.checks.append(
            f"date order ambiguous: {' and '.join(candidates)} both parse every date; chose {fmt}"
        )
    for m in plan.get("missing", []):
        derived.checks.append(f"missing: {m}")
    for f in files:
        if f["unmapped"] and f["table"] != "uci_panel":
            derived.checks.append(
                f"{f['name']}: columns not used: {', '.join(map(str, f['unmapped']))}"
            )
    report = {
        "files": files,
        "plan": plan,
        "date_format": fmt,
        "date_format_candidates": candidates,
        "ledger": prof,
        "lateness": lateness_profile(late),
    }
    return derived, report


def summary(name: str, d: Derived, report: dict[str, Any]) -> str:
    """The one-screen summary: files, ledger, lateness, derived settings, what to check."""
    p, lt = report["ledger"], report["lateness"]
    cur = d.block["ingest"]["currency"]
    lines = [f"onboard {name}: source {d.block['ingest']['source']}"]
    for f in report["files"]:
        lines.append(
            f"  {f['name']}: {f['rows']:,} rows, {f['encoding']}, header line {f['header_row']}, "
            f"table {f['table']}, {len(f['column_map'])}/{len(f['headers'])} columns mapped"
        )
    lines += [
        f"  dates {p['first_invoice'].date()}..{p['last_event'].date()} ({p['months_of_history']} months), "
        f"format {report['date_format']}",
        f"  {p['customers']:,} customers, {p['invoices']:,} invoices, {p['payments']:,} payments, {p['claims']:,} claims",
        f"  invoice amount median {p['amount']['median']:,.2f} (p5 {p['amount']['p05']:,.2f}, p95 "
        f"{p['amount']['p95']:,.2f}) {cur}; currencies {p['currencies'] or 'none in the file'}",
        "  lateness (share of invoices): "
        + ", ".join(f"{k} {v:.1%}" for k, v in lt["invoice_share"].items())
        + f"; customers reaching 30/60/90 days: {lt['customers_reaching']['30']}/"
        f"{lt['customers_reaching']['60']}/{lt['customers_reaching']['90']}",
        "settings written (params.yaml datasets." + name + "):",
    ]
    for path, note in d.comments.items():
        node: Any = d.block
        for k in path.split("."):
            node = node[k]
        shown = flow_text(node)
        if len(shown) > 70:
            shown = (
                f"{{{len(node)} entries, see the block}}"
                if isinstance(node, dict)
                else shown[:67] + "..."
            )
        lines.append(f"  {path} = {shown}  # {note}")
    lines.append("check before `dvc repro`:")
    lines += [f"  - {c}" for c in d.checks] or ["  - nothing flagged"]
    lines.append(f"next: dvc repro publish@{name}   (or `dvc repro` for every dataset)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="credit-onboard",
        description="Profile data/raw/<name>/ and write its datasets.<name> block.",
    )
    parser.add_argument("raw_dir", type=Path, help="the dataset's raw folder, data/raw/<name>/")
    parser.add_argument("--name", help="dataset name (default: the folder name)")
    parser.add_argument("--currency", help="ISO currency of the amounts when the files do not say")
    parser.add_argument(
        "--force", action="store_true", help="replace an existing datasets.<name> block"
    )
    parser.add_argument(
        "--params", type=Path, default=None, help="params file (default: the project's)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the block, write nothing")
    args = parser.parse_args(argv)
    try:
        raw = args.raw_dir.resolve()
        if not raw.is_dir():
            raise PipelineError(
                f"{args.raw_dir}: not a folder; put the ledger files in data/raw/<name>/"
            )
        name = args.name or raw.name
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            raise PipelineError(
                f"dataset name {name!r}: use letters, digits and _ (it names folders and stages)"
            )
        params_path = args.params or (PROJ_ROOT / "params.yaml")
        text = params_path.read_text(encoding="utf-8")
        project = yaml.safe_load(text) or {}
        if name in (project.get("datasets") or {}) and not args.force and not args.dry_run:
            raise PipelineError(
                f"params.yaml: datasets.{name} already exists; rerun with --force to replace it"
            )
        derived, report = onboard(raw, args.currency, project)
        when = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
        block = render_block(
            name, derived, f"derived by credit-onboard on {when}; review the comments"
        )
        new_text = insert_block(text, name, block, force=args.force)
        check = yaml.safe_load(new_text)["datasets"][name]
        if check != derived.block:
            raise PipelineError(
                f"onboard: the rendered block for {name} does not read back as derived (bug)"
            )
        print(summary(name, derived, report))
        if args.dry_run:
            print("\n" + block)
            return 0
        tmp = params_path.with_suffix(".yaml.tmp")
        tmp.write_text(new_text, encoding="utf-8")
        tmp.replace(params_path)
        return 0
    except PipelineError as exc:
        print(f"[onboard] ERROR: {exc}", file=sys.stderr)
        return 2
