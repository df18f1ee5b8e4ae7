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

Memory: the ledger tables are streamed both ways: accepted and quarantined rows go chunk by chunk to
Parquet streams (`pipeline.io.ParquetStream`, completed only when every table reconciles), and the
cross-table rules keep compact exact key sets (`pipeline.schemas.KeySet`, `InvoiceLookup`): about 68
bytes per accepted invoice and 32 per payment. The optional credit-file tables go through in ranges of
customers sized from ``base.memory_budget`` (`pipeline.credit_file_ranges`: every credit-file rule is
per customer); the customer master is still held whole.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pipeline.adapters import ADAPTERS
from pipeline.config import Paths, log, progress, run_stage, stage_argparser
from pipeline.credit_file_ranges import ingest_credit_file_ranges
from pipeline.currency import read_fx_table
from pipeline.domain import LEDGER_TABLES, PipelineError
from pipeline.io import parquet_stream, write_json
from pipeline.ledger import Learner, read_truth, validate_table
from pipeline.params import load
from pipeline.params.base import BaseParams
from pipeline.params.ingest import IngestParams, load_ingest
from pipeline.quarantine import TableSink, quarantine_schema, unreconciled_message
from pipeline.schemas import NUMBER_RULES, KeySet, RuleContext, arrow_schema, text_columns


def validate_ledger(
    raw_dir: Path,
    interim_dir: Path,
    quarantine_dir: Path,
    params: IngestParams,
    report: dict[str, Any],
    outputs: ExitStack,
) -> Learner:
    """Every ledger table through its adapter and the rules, streamed into ``outputs`` (Parquet
    streams, completed when the caller's stack closes); counts go into ``report``."""
    fx = read_fx_table(raw_dir / params.fx_rates, params.currency) if params.fx_rates else None
    sources, report["adapter_notes"] = ADAPTERS[params.source](raw_dir, params)
    ctx = RuleContext(data_cutoff=params.cutoff)
    learner = Learner(ctx)
    for table in LEDGER_TABLES:
        ctx.seen_ids = KeySet()
        accepted = outputs.enter_context(
            parquet_stream(
                interim_dir / f"{table}.parquet", arrow_schema(table), text_columns(table)
            )
        )
        rejected = outputs.enter_context(
            parquet_stream(quarantine_dir / f"{table}.parquet", quarantine_schema(table))
        )
        sink = TableSink(table, accepted, rejected, learner.chunk(table))
        chunks = progress(sources[table].chunks(), f"ingest {table}", unit="chunk")
        counts = validate_table(sources[table], table, ctx, params, fx, sink, chunks)
        log.info(
            "ingest %s: %d read, %d accepted, %d quarantined",
            table,
            counts["rows_read"],
            counts["rows_accepted"],
            counts["rows_quarantined"],
        )
        report["tables"][table] = counts
        accepted.close()  # frees the last row group now; moved into place when `outputs` closes
        rejected.close()
        report["outputs"].update(
            {
                f"interim/{table}.parquet": accepted.rows,
                f"quarantine/{table}.parquet": rejected.rows,
            }
        )
        learner.table_done(table)
    return learner


def run_ingest(
    raw_dir: Path,
    interim_dir: Path,
    quarantine_dir: Path,
    report_path: Path,
    metrics_path: Path,
    params: IngestParams,
    budget_bytes: int | None = None,
) -> dict[str, Any]:
    """Ingest ``raw_dir`` with the ingest ``params``; write every output; return the report.

    ``budget_bytes`` (``base.memory_budget``; None: in one piece) sizes the credit-file ranges. Stops
    with PipelineError (exit 2, nothing written) when a table does not reconcile."""
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
        "outputs": {},
    }
    with ExitStack() as outputs:  # the ledger's Parquet streams, completed only if all reconciles
        learner = validate_ledger(raw_dir, interim_dir, quarantine_dir, params, report, outputs)
        first_invoice = learner.first_invoice()
        learner.release()
        report["tables"].update(  # optional credit-file tables (pipeline.credit_file)
            ingest_credit_file_ranges(
                raw_dir,
                interim_dir,
                quarantine_dir,
                learner.customers,
                first_invoice,
                learner.ctx.data_cutoff,
                files=params.files,
                column_map=params.column_map,
                chunksize=params.chunksize,
                encoding=params.encoding,
                date_format=params.date_format,
                max_iqr=params.delphi.max_iqr,
                budget_bytes=budget_bytes,
            )
        )
        report["reconciled"] = all(t["reconciled"] for t in report["tables"].values())
        message = unreconciled_message(report)
        if message:
            raise PipelineError(message)
    report["truth"] = _passthrough_truth(raw_dir, interim_dir, params)
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
    with parquet_stream(target, arrow_schema("truth"), text_columns("truth")) as out:
        for chunk in read_truth(path, params):
            out.write(chunk)
    return {"rows": out.rows, "file": path.name}


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
        load(BaseParams, "base", args.dataset).budget_bytes,
    )


if __name__ == "__main__":
    run_stage(main, "ingest")
