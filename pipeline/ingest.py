"""Stage ingest: raw sources → validated canonical tables, quarantined rows and a report.

``python -m pipeline.ingest --dataset NAME`` reads data/raw/<NAME>/ through the source named in
params (``canonical`` files or an adapter), streams every table in chunks, validates it
(`pipeline.ledger`: customers → invoices → payments → claims, so cross-table rules see only
accepted rows), and writes

- data/interim/<NAME>/<table>.parquet (+ truth.parquet passed through when raw truth.csv exists),
- data/quarantine/<NAME>/<table>.parquet: rejected rows as text + ``_source_file, _source_row,
  _rule, _column, _reason``,
- reports/<NAME>/ingest/ingest.json (per table: rows and amounts read = accepted + quarantined, reasons,
  unknown columns dropped) and metrics/<NAME>/ingest.json (the counts).

Rows keep their source order (file, row); duplicate ids keep the first row and quarantine the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.adapters import ADAPTERS
from pipeline.config import Paths, log, progress, run_stage, stage_argparser
from pipeline.credit_file import ingest_credit_file
from pipeline.currency import read_fx_table
from pipeline.domain import LEDGER_TABLES, PipelineError
from pipeline.io import write_json, write_parquet
from pipeline.ledger import read_truth, validate_table
from pipeline.params.ingest import IngestParams, load_ingest
from pipeline.quarantine import unreconciled_message
from pipeline.schemas import NUMBER_RULES, RuleContext


def _learn_from(table: str, good: pd.DataFrame, ctx: RuleContext) -> None:
    """What the later tables' cross-table rules need from an accepted table."""
    if table == "customers":
        ctx.customer_ids = pd.Index(good["customer_id"])
    if table == "invoices":
        ctx.invoices = good.set_index("invoice_id")[["customer_id", "invoice_date"]]
        ctx.invoice_amount = good.set_index("invoice_id")["amount"]
        ctx.paid = pd.Series(dtype=float)
        if ctx.new_invoice_currency:
            ctx.invoice_currency = pd.concat(ctx.new_invoice_currency)


def validate_ledger(
    raw_dir: Path, params: IngestParams, report: dict[str, Any]
) -> tuple[dict[str, tuple[pd.DataFrame, pd.DataFrame]], RuleContext]:
    """Every ledger table through its adapter and the rules; counts go into ``report``."""
    fx = read_fx_table(raw_dir / params.fx_rates, params.currency) if params.fx_rates else None
    sources, report["adapter_notes"] = ADAPTERS[params.source](raw_dir, params)
    ctx = RuleContext(data_cutoff=params.cutoff)
    outputs = {}
    for table in LEDGER_TABLES:
        ctx.seen_ids = set()
        chunks = progress(sources[table].chunks(), f"ingest {table}", unit="chunk")
        good, bad, counts = validate_table(sources[table], table, ctx, params, fx, chunks)
        log.info(
            "ingest %s: %d read, %d accepted, %d quarantined",
            table,
            counts["rows_read"],
            counts["rows_accepted"],
            counts["rows_quarantined"],
        )
        outputs[table] = (good, bad)
        report["tables"][table] = counts
        _learn_from(table, good, ctx)
    return outputs, ctx


def run_ingest(
    raw_dir: Path,
    interim_dir: Path,
    quarantine_dir: Path,
    report_path: Path,
    metrics_path: Path,
    params: IngestParams,
) -> dict[str, Any]:
    """Ingest ``raw_dir`` with the ingest ``params``; write every output; return the report.

    Stops with PipelineError (exit 2, nothing written) when a table does not reconcile."""
    raw_dir, interim_dir, quarantine_dir = Path(raw_dir), Path(interim_dir), Path(quarantine_dir)
    report: dict[str, Any] = {
        "source": params.source,
        "data_cutoff": params.data_cutoff,
        "currency": params.currency,
        "fx_rates": params.fx_rates,
        "date_format": params.date_format,
        "number_rules": NUMBER_RULES,
        "adapter_notes": {},
        "tables": {},
    }
    outputs, ctx = validate_ledger(raw_dir, params, report)
    customers = outputs["customers"][0]
    first_invoice = ctx.invoices.groupby("customer_id")["invoice_date"].min()
    report["tables"].update(  # optional credit-file tables (pipeline.credit_file)
        ingest_credit_file(
            raw_dir,
            interim_dir,
            quarantine_dir,
            customers,
            first_invoice,
            ctx.data_cutoff,
            files=params.files,
            column_map=params.column_map,
            chunksize=params.chunksize,
            encoding=params.encoding,
            date_format=params.date_format,
            max_iqr=params.delphi.max_iqr,
        )
    )
    report["reconciled"] = all(t["reconciled"] for t in report["tables"].values())
    message = unreconciled_message(report)
    if message:
        raise PipelineError(message)
    for table, (good, bad) in outputs.items():
        write_parquet(good, interim_dir / f"{table}.parquet")
        write_parquet(bad, quarantine_dir / f"{table}.parquet")
    report["truth"] = _passthrough_truth(raw_dir, interim_dir, params)
    report["outputs"] = {
        f"{kind}/{table}.parquet": len(frame)
        for table, pair in outputs.items()
        for kind, frame in zip(("interim", "quarantine"), pair, strict=True)
    }
    write_json(report, Path(report_path))
    write_json(_metrics(report), Path(metrics_path))
    return report


def _metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The row and amount counts of every table (metrics/<ds>/ingest.json)."""
    return {
        t: {
            k: v
            for k, v in c.items()
            if k.startswith(("rows_", "amount_")) and not isinstance(v, dict)
        }
        for t, c in report["tables"].items()
    }


def _passthrough_truth(
    raw_dir: Path, interim_dir: Path, params: IngestParams
) -> dict[str, Any] | None:
    """Copy raw truth.csv (the generator's PD) to interim/truth.parquet; a bad row is fatal."""
    target = interim_dir / "truth.parquet"
    path = raw_dir / "truth.csv"
    if not path.exists():
        target.unlink(missing_ok=True)
        return None
    truth = read_truth(path, params)
    write_parquet(truth, target)
    return {"rows": len(truth), "file": path.name}


def main() -> None:
    args = stage_argparser(
        "ingest", "Validate raw files into canonical Parquet tables"
    ).parse_args()
    paths = Paths(args.dataset)
    params = load_ingest(args.dataset)
    run_ingest(
        paths.raw,
        paths.interim,
        paths.quarantine,
        paths.stage_dir("ingest") / "ingest.json",
        paths.metrics / "ingest.json",
        params,
    )


if __name__ == "__main__":
    run_stage(main, "ingest")
