"""Stage `settle`: the ledger's settlement, computed once per ledger and reused by every features run.

Reads data/interim/<ds>/{customers,invoices,payments}.parquet; allocates payments to invoices (direct
payments by their running total, unallocated cash FIFO by invoice date), fixes each invoice's settlement day
and keeps what open balances need later (partial payments, the running FIFO pool). Writes
data/processed/<ds>/settlement/{settled_invoices,settled_payments,settled_partial,settled_pool}.parquet.

Settlement is causal in time and independent of the as-of grid, windows and label definition, so a
`dvc exp` that changes feature params re-runs `features` only. Params: the `settle` block (DuckDB
``memory_limit``, within 75% of ``base.memory_budget``, ``threads``, ``temp_directory``). The SQL lives in
`pipeline.features.sql.settlement`, the runner in `pipeline.features.duckdb_engine`.
"""

from __future__ import annotations

import logging
import tempfile

from pipeline.config import Paths, require_files, run_stage, stage_argparser
from pipeline.features.duckdb_engine import compute_settlement
from pipeline.io import write_json
from pipeline.params import load
from pipeline.params.base import BaseParams, check_duckdb_limit
from pipeline.params.settle import SettleParams

log = logging.getLogger("pipeline.settle")
INPUTS = ("customers", "invoices", "payments")


def main() -> None:
    args = stage_argparser(
        "settle", "Payment allocation and settlement day per invoice."
    ).parse_args()
    ds = args.dataset
    paths, params = Paths(ds), load(SettleParams, "settle", ds)
    check_duckdb_limit("settle", params.memory_limit, load(BaseParams, "base", ds).budget_bytes)
    tables = {name: paths.interim / f"{name}.parquet" for name in INPUTS}
    require_files(tables, f"run `python -m pipeline.ingest --dataset {ds}` first")
    with tempfile.TemporaryDirectory(prefix="settle_spill_") as spill:
        counts = compute_settlement(
            tables, params, paths.processed / "settlement", params.temp_directory or spill
        )
    write_json({"rows": counts}, paths.metrics / "settle.json")
    log.info("settlement: %s", counts)


if __name__ == "__main__":
    run_stage(main, "settle")
