"""Stage ingest: raw sources → validated canonical tables, quarantined rows and a report.

``python -m pipeline.ingest --dataset NAME`` reads data/raw/<NAME>/ through the source named in
params (``canonical`` files or an adapter), streams every table in chunks, validates it with
`pipeline.schemas` (customers → invoices → payments → claims, so cross-table rules see only
accepted rows), and writes

- data/interim/<NAME>/<table>.parquet (+ truth.parquet passed through when raw truth.csv exists),
- data/quarantine/<NAME>/<table>.parquet: rejected rows as text + ``_source_file, _source_row,
  _rule, _column, _reason``,
- reports/<NAME>/ingest.json (per table: rows and amounts read = accepted + quarantined, reasons,
  unknown columns dropped) and metrics/<NAME>/ingest.json (the counts).

Rows keep their source order (file, row); duplicate ids keep the first row and quarantine the rest.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.adapters import ADAPTERS
from pipeline.adapters.files import open_table
from pipeline.config import (
    Paths,
    PipelineError,
    log,
    progress,
    run_stage,
    stage_argparser,
    stage_params,
)
from pipeline.credit_file import ingest_credit_file
from pipeline.io import write_json, write_parquet
from pipeline.schemas import (
    AMOUNT,
    COLUMNS,
    KEYS,
    REQUIRED,
    TABLES,
    RuleContext,
    conform,
    empty_table,
    parse_schema,
    rules_schema,
    validate,
    with_invoice_lookup,
)

META = ["_source_file", "_source_row"]
QUARANTINE_META = [*META, "_rule", "_column", "_reason"]


def _finite_sum(values: pd.Series) -> tuple[float, int]:
    """Exact (fsum) total of the finite numeric values, and the count of values that are not."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(x)
    return math.fsum(x[ok]), int((~ok).sum())


def ingest_table(
    source, table: str, ctx: RuleContext, date_format: str, currency: str
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Validate one table chunk by chunk; return (accepted rows, quarantined rows, counts)."""
    accepted, rejected = [], []
    sums = {"read": [], "accepted": [], "quarantined": []}
    unparsed = 0
    offset = 0
    key = KEYS[table]
    for chunk in progress(source.chunks(), f"ingest {table}", unit="chunk"):
        if chunk.empty:
            continue
        chunk = chunk.set_axis(pd.RangeIndex(offset, offset + len(chunk)))
        offset += len(chunk)
        meta = chunk[META]
        data = chunk.drop(columns=META)
        if table == "invoices" and "currency" not in data:
            data["currency"] = currency
        parsed, bad_parse = validate(data, parse_schema(table, date_format), table)
        parsed = conform(parsed, table)
        checked, bad_rules = validate(
            with_invoice_lookup(parsed, ctx.invoices), rules_schema(table, ctx), table
        )
        ok = parsed.loc[checked.index]
        ctx.seen_ids.update(ok[key])
        accepted.append(ok.join(meta))
        reasons = pd.concat([bad_parse, bad_rules]).sort_index()
        text = data.loc[reasons.index].astype("string")
        rejected.append(text.join(meta).join(reasons))
        if table in AMOUNT:
            total, n_bad = _finite_sum(data["amount"])
            sums["read"].append(total)
            unparsed += n_bad
            sums["accepted"].append(math.fsum(ok["amount"].to_numpy()))
            sums["quarantined"].append(_finite_sum(data.loc[reasons.index, "amount"])[0])
    good = _accepted_frame(accepted, table)
    bad = _quarantine_frame(rejected, table).sort_values([*META], kind="stable")
    counts: dict[str, Any] = {
        "files": source.files,
        "encoding": source.encoding,
        "rows_read": offset,
        "rows_accepted": len(good),
        "rows_quarantined": len(bad),
        "reasons": {str(k): int(v) for k, v in bad["_rule"].value_counts().sort_index().items()},
        "reasons_by_column": {
            f"{r}:{c}": int(n)
            for (r, c), n in bad.groupby(["_rule", "_column"]).size().sort_index().items()
        },
        "unknown_columns_dropped": list(source.unknown_columns),
    }
    if table in AMOUNT:
        counts.update(
            {
                "amount_read": math.fsum(sums["read"]),
                "amount_accepted": math.fsum(sums["accepted"]),
                "amount_quarantined": math.fsum(sums["quarantined"]),
                "amount_not_a_finite_number_rows": unparsed,
            }
        )
    counts["reconciled"] = _reconciled(counts)
    return good, bad, counts


def _accepted_frame(parts: list[pd.DataFrame], table: str) -> pd.DataFrame:
    """Accepted chunks as one canonical table in source order (file, row, key)."""
    if not parts:
        return empty_table(table)
    good = pd.concat(parts, ignore_index=True)
    parts.clear()  # free the chunks before any further copy
    in_order = good["_source_file"].nunique() == 1 and good["_source_row"].is_monotonic_increasing
    if not in_order:
        good = good.sort_values([*META, KEYS[table]], kind="stable", ignore_index=True)
    return good.drop(columns=META)


def _reconciled(c: dict[str, Any]) -> bool:
    rows = c["rows_read"] == c["rows_accepted"] + c["rows_quarantined"]
    if "amount_read" not in c:
        return rows
    gap = abs(c["amount_read"] - c["amount_accepted"] - c["amount_quarantined"])
    return rows and gap <= 1e-9 * max(1.0, abs(c["amount_read"]))


def _quarantine_frame(parts: list[pd.DataFrame], table: str) -> pd.DataFrame:
    """Rejected rows as text with every canonical column of the table (a fixed schema)."""
    columns = [*COLUMNS[table], *QUARANTINE_META]
    frame = pd.concat(parts) if parts else pd.DataFrame(columns=columns)
    out = frame.reindex(columns=columns)
    for c in [*COLUMNS[table], "_source_file", "_rule", "_column", "_reason"]:
        out[c] = out[c].astype("string")
    out["_source_row"] = out["_source_row"].astype("int64")
    return out


def run_ingest(
    raw_dir: Path,
    interim_dir: Path,
    quarantine_dir: Path,
    report_path: Path,
    metrics_path: Path,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Ingest ``raw_dir`` with the ingest ``params``; write every output; return the report."""
    source = params.get("source", "canonical")
    if source not in ADAPTERS:
        raise PipelineError(
            f"params.yaml: ingest.source '{source}' is unknown (known: {', '.join(ADAPTERS)})"
        )
    cutoff = params.get("data_cutoff")
    date_format = params.get("date_format") or "ISO8601"
    currency = params.get("currency") or params.get("base", {}).get("currency") or "CNY"
    sources, notes = ADAPTERS[source](Path(raw_dir), params)
    ctx = RuleContext(data_cutoff=pd.Timestamp(cutoff) if cutoff else None)
    report: dict[str, Any] = {
        "source": source,
        "data_cutoff": cutoff,
        "date_format": date_format,
        "adapter_notes": notes,
        "tables": {},
    }
    for table in TABLES:
        ctx.seen_ids = set()
        good, bad, counts = ingest_table(sources[table], table, ctx, date_format, currency)
        log.info(
            "ingest %s: %d read, %d accepted, %d quarantined",
            table,
            counts["rows_read"],
            counts["rows_accepted"],
            counts["rows_quarantined"],
        )
        write_parquet(good, Path(interim_dir) / f"{table}.parquet")
        write_parquet(bad, Path(quarantine_dir) / f"{table}.parquet")
        report["tables"][table] = counts
        if table == "customers":
            ctx.customer_ids = pd.Index(good["customer_id"])
            customers = good
        if table == "invoices":
            ctx.invoices = good.set_index("invoice_id")[["customer_id", "invoice_date"]]
    first_invoice = ctx.invoices.groupby("customer_id")["invoice_date"].min()
    report["tables"].update(  # optional credit-file tables (pipeline.credit_file)
        ingest_credit_file(
            raw_dir, interim_dir, quarantine_dir, params, customers, first_invoice,
            ctx.data_cutoff, date_format,
        )
    )
    report["truth"] = _passthrough_truth(Path(raw_dir), Path(interim_dir), params, date_format)
    report["reconciled"] = all(t["reconciled"] for t in report["tables"].values())
    write_json(report, Path(report_path))
    write_json(
        {
            t: {k: v for k, v in c.items() if k.startswith(("rows_", "amount_"))}
            for t, c in report["tables"].items()
        },
        Path(metrics_path),
    )
    return report


def _passthrough_truth(
    raw_dir: Path, interim_dir: Path, params: dict[str, Any], date_format: str
) -> dict[str, Any] | None:
    """Copy raw truth.csv (the generator's PD) to interim/truth.parquet; a bad row is fatal."""
    target = interim_dir / "truth.parquet"
    path = raw_dir / "truth.csv"
    if not path.exists():
        target.unlink(missing_ok=True)
        return None
    src = open_table(
        path,
        "truth",
        list(COLUMNS["truth"]),
        REQUIRED["truth"],
        chunksize=int(params.get("chunksize", 500_000)),
        encoding=params.get("encoding", "auto"),
    )
    parts = []
    for chunk in src.chunks():
        parsed, bad = validate(
            chunk.drop(columns=META), parse_schema("truth", date_format), "truth"
        )
        if len(bad):
            first = bad.iloc[0]
            raise PipelineError(
                f"{path}: row {chunk.loc[bad.index[0], '_source_row']}, column "
                f"{first['_column']}, rule {first['_rule']}: {first['_reason']}"
            )
        parts.append(conform(parsed, "truth"))
    truth = pd.concat(parts)
    write_parquet(truth, target)
    return {"rows": len(truth), "file": path.name}


def main() -> None:
    args = stage_argparser(
        "ingest", "Validate raw files into canonical Parquet tables"
    ).parse_args()
    paths = Paths(args.dataset)
    params = stage_params("ingest", args.dataset)
    run_ingest(
        paths.raw,
        paths.interim,
        paths.quarantine,
        paths.reports / "ingest.json",
        paths.metrics / "ingest.json",
        params,
    )


if __name__ == "__main__":
    run_stage(main, "ingest")
