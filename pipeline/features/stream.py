"""The snapshot table post-processed in batches of whole customers and written by a streamed Parquet writer.

The feature SQL writes the snapshots to Parquet (ordered by customer and as-of date); this module reads
them back in batches of whole customers sized from ``base.memory_budget``, appends the platform features
(`pipeline.features.platform`, per customer point in time) and the rule grades (`pipeline.rules`, per
row), tallies the grading and label reports (counts and sums, exact across batches) and writes the result.

The writer has two passes so that the file does not depend on the batch size: each graded batch goes to
a temporary part; the parts' schemas are unified (a column that is null in one batch and text in another
is text; null only when null in every batch, as pyarrow infers for the whole table) and the parts are
rewritten into row groups of `ROW_GROUP_ROWS` rows (pyarrow's default for a table written at once). The
output is byte-identical to ``pipeline.io.write_parquet`` of the whole table whenever a row group fits
the budget (with a smaller budget the row groups are smaller; the content is the same).
"""

from __future__ import annotations

import logging
import resource
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.domain import PipelineError
from pipeline.features.duckdb_engine import connect, finish_snapshots
from pipeline.features.platform import add_platform_features
from pipeline.features.report import label_tally
from pipeline.io import atomic_path
from pipeline.params.features import FeaturesParams
from pipeline.params.rules import RulesParams
from pipeline.rules import grade, grading_tally, merge_tallies

log = logging.getLogger("pipeline.features")

ROW_GROUP_ROWS = 1024 * 1024
"""Rows per row group of the output: pyarrow's default when a whole table is written at once."""
VECTOR = 2048
"""DuckDB's vector size: batches are read in whole vectors."""
WORKING_FACTOR = 8
"""Peak memory of grading one batch over the batch's own size (copies in the platform join, the rule
grading and the Arrow conversion; measured at 20k and 100k customers)."""
BATCH_SHARE = 0.5
"""Share of ``base.memory_budget`` a batch's working set may take (the rest: the interpreter, libraries
and the reader)."""


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def batch_rows(budget_bytes: int, row_bytes: float) -> int:
    """Rows per batch: `BATCH_SHARE` of the budget over `WORKING_FACTOR` times a row's size in pandas,
    in whole DuckDB vectors (at least one)."""
    rows = BATCH_SHARE * budget_bytes / (WORKING_FACTOR * max(row_bytes, 1.0))
    return max(VECTOR, int(rows) // VECTOR * VECTOR)


def _customer_split(frame: pd.DataFrame) -> int:
    """Index where the last customer of ``frame`` (ordered by customer) starts."""
    ids = frame["customer_id"].to_numpy()
    return int(np.argmax(ids == ids[-1]))


def _check_order(batch: pd.DataFrame, previous: Any) -> Any:
    """Fail unless rows run by customer and as-of date (the SQL's order, relied on for whole-customer
    batches); returns the batch's last customer."""
    ids = batch["customer_id"].to_numpy(dtype=object)
    days = batch["as_of_date"].to_numpy()
    ordered = (ids[1:] > ids[:-1]) | ((ids[1:] == ids[:-1]) & (days[1:] > days[:-1]))
    if not ordered.all() or (previous is not None and len(ids) and ids[0] <= previous):
        raise PipelineError(
            "features: the snapshot SQL did not return rows ordered by customer_id, as_of_date"
        )
    return ids[-1] if len(ids) else previous


def parquet_batches(
    path: Path, budget_bytes: int, params: FeaturesParams, temp_dir: str | None
) -> Iterator[pd.DataFrame]:
    """Batches of whole customers from the snapshot Parquet, in file order, with the pandas dtypes of
    `duckdb_engine.finish_snapshots` (read by DuckDB, so types convert exactly as a direct query)."""
    reader_mib = max(budget_bytes // 8, 2**28) // 2**20  # a reader holds a few row groups
    con = connect(f"{reader_mib}MiB", 1, temp_dir)
    try:
        con.execute("SET preserve_insertion_order = true")
        con.execute(f"SELECT * FROM read_parquet('{Path(path).as_posix()}')")
        carry = con.fetch_df_chunk(1)
        if carry.empty:
            yield finish_snapshots(carry)
            return
        row_bytes = carry.memory_usage(deep=True).sum() / len(carry)
        rows = batch_rows(budget_bytes, row_bytes)
        while True:
            chunk = con.fetch_df_chunk(rows // VECTOR)
            if chunk.empty:
                break
            frame = pd.concat([carry, chunk], ignore_index=True)
            cut = _customer_split(frame) if len(frame) >= rows else 0
            if cut == 0:  # too few rows yet, or one customer: read on
                carry = frame
                continue
            yield finish_snapshots(frame.iloc[:cut].reset_index(drop=True))
            carry = frame.iloc[cut:].reset_index(drop=True)
        yield finish_snapshots(carry)
    finally:
        con.close()


def frame_batches(frame: pd.DataFrame, budget_bytes: int) -> Iterator[pd.DataFrame]:
    """Batches of whole customers of an in-memory snapshot table (the Spark engine's result)."""
    if frame.empty:
        yield frame
        return
    row_bytes = frame.iloc[:VECTOR].memory_usage(deep=True).sum() / min(len(frame), VECTOR)
    rows = batch_rows(budget_bytes, row_bytes)
    ids = frame["customer_id"].to_numpy()
    start = 0
    while start < len(frame):
        end = min(start + rows, len(frame))
        while end < len(frame) and ids[end] == ids[end - 1]:
            end += 1
        yield frame.iloc[start:end].reset_index(drop=True)
        start = end


def grade_batch(
    batch: pd.DataFrame, platform: Path | None, params: FeaturesParams, rules_params: RulesParams
) -> pd.DataFrame:
    """One batch with the platform features (when ``platform`` is given) and the rule grades appended."""
    if platform is not None and len(batch):
        first, last = batch["customer_id"].iloc[0], batch["customer_id"].iloc[-1]
        rows = pd.read_parquet(
            platform, filters=[("customer_id", ">=", first), ("customer_id", "<=", last)]
        )
        batch = add_platform_features(batch, rows, params.platform)
    graded = grade(batch, rules_params)
    if len(graded) != len(batch):
        raise PipelineError("pipeline.rules.grade changed the number of snapshot rows")
    new_cols = [c for c in graded.columns if c not in batch.columns]
    return pd.concat(
        [batch.reset_index(drop=True), graded[new_cols].reset_index(drop=True)], axis=1
    )


def _row_group_rows(budget_bytes: int, arrow_row_bytes: float) -> int:
    """`ROW_GROUP_ROWS`, or fewer when a row group (held twice while written) would pass
    `BATCH_SHARE` of the budget."""
    fit = BATCH_SHARE * budget_bytes / (2 * max(arrow_row_bytes, 1.0))
    return int(min(ROW_GROUP_ROWS, max(VECTOR, int(fit) // VECTOR * VECTOR)))


def _rewrite(parts: list[Path], schema: pa.Schema, tmp: Path, group_rows: int) -> None:
    """The parts, cast to ``schema``, as one Parquet file in row groups of ``group_rows`` rows."""
    with pq.ParquetWriter(tmp, schema, compression="zstd", write_statistics=True) as writer:
        pending: list[pa.Table] = []
        held = written = 0
        for part in parts:
            for rb in pq.ParquetFile(part).iter_batches(batch_size=64 * VECTOR):
                pending.append(pa.Table.from_batches([rb]).cast(schema))
                held += rb.num_rows
                while held >= group_rows:
                    table = pa.concat_tables(pending)
                    writer.write_table(table.slice(0, group_rows).combine_chunks())
                    pending, held = [table.slice(group_rows)], held - group_rows
                    written += group_rows
        if held or not written:
            rest = pa.concat_tables(pending) if pending else schema.empty_table()
            writer.write_table(rest.combine_chunks())


def stream_snapshots(
    batches: Iterator[pd.DataFrame],
    out: Path,
    budget_bytes: int,
    platform: Path | None,
    params: FeaturesParams,
    rules_params: RulesParams,
) -> dict[str, Any]:
    """Grade every batch, write the snapshots to ``out`` (atomically, two passes: module docstring) and
    return ``{"columns", "grading", "labels"}`` (the merged `grading_tally` and `label_tally`)."""
    grading = labels = None
    columns: list[str] = []
    previous = None
    with tempfile.TemporaryDirectory(prefix="features_parts_", dir=params.temp_directory) as tmp:
        parts: list[Path] = []
        schemas: list[pa.Schema] = []
        arrow_row_bytes = 0.0
        for batch in batches:
            previous = _check_order(batch, previous)
            graded = grade_batch(batch, platform, params, rules_params)
            del batch
            columns = list(graded.columns)
            grading = merge_tallies(grading, grading_tally(graded))
            labels = merge_tallies(labels, label_tally(graded))
            table = pa.Table.from_pandas(graded, preserve_index=False).replace_schema_metadata(
                None
            )
            del graded
            arrow_row_bytes = max(arrow_row_bytes, table.nbytes / max(table.num_rows, 1))
            parts.append(Path(tmp) / f"part_{len(parts):05d}.parquet")
            pq.write_table(table, parts[-1], compression="lz4")
            schemas.append(table.schema)
            del table
        log.info(
            "graded %d rows in %d batches of whole customers; peak memory so far %.2f GB",
            labels["rows"] if labels else 0,
            len(parts),
            peak_rss_bytes() / 1e9,
        )
        try:
            schema = pa.unify_schemas(schemas)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise PipelineError(
                f"features: snapshot batches disagree on column types: {exc}"
            ) from exc
        with atomic_path(out) as target:
            _rewrite(parts, schema, target, _row_group_rows(budget_bytes, arrow_row_bytes))
    return {"columns": columns, "grading": grading, "labels": labels}
