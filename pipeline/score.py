"""Score new customers with a published bundle: score, PD, grade, limit, credit period, reasons.

``python -m pipeline.score --card exports/<ds>/scorecard.json --input new_customers.csv
[--output scored.csv]`` (also ``credit-score``). Reads only the bundle and the input. A row whose
values cannot be scored gets a message in ``error`` and empty results; the batch never stops for
one bad row, and the output has one row per input row, in input order.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.card import calibrated_pd, clean_inputs, score_frame
from pipeline.card import load_bundle as _load_bundle
from pipeline.card.routing import ROUTE_COLUMN, all_features, cards, is_routed
from pipeline.config import run_stage
from pipeline.domain import SEGMENTS, PipelineError
from pipeline.io import write_csv
from pipeline.params.publish import LimitPolicy, policy_from_bundle
from pipeline.policy import customer_limits, limit_action
from pipeline.snapshot_io import batch_rows, map_batches

log = logging.getLogger("pipeline.score")
MAX_ERRORS_SHOWN = 3
# inputs the policy reads besides the size measure (limits, behaviour triggers)
POLICY_INPUTS = (
    "net_worth",
    "annual_turnover",
    "net_worth_previous",
    "late_invoice_share_12m",
    "invoiced_amount_3m",
    "invoiced_amount_12m",
    "tenure_months",
    "largest_invoice_share_3m",
    "days_beyond_terms_max_3m",
    "days_beyond_terms_trend",
    "worst_days_past_due",
)


def load_bundle(path: Path | str) -> dict:
    """Read a published bundle (a card plus calibration, master scale and policy), checked against
    its JSON Schema and content hash (`pipeline.card.load_bundle`)."""
    return _load_bundle(path)


def read_input(path: Path | str) -> pd.DataFrame:
    """CSV (all columns read as text, converted per feature) or Parquet."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: input file not found")
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            _unique_header(list(pq.ParquetFile(path).schema_arrow.names), path)
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".txt"):
            header = pd.read_csv(path, nrows=0, encoding="utf-8-sig", dtype=str)
            raw_names = _raw_header(path)
            _unique_header(raw_names if raw_names is not None else list(header.columns), path)
            from pipeline.adapters.files import _MarkControlBytes

            # NUL bytes read as a control character (a value, not an early end of the field)
            return pd.read_csv(
                _MarkControlBytes(path), dtype=str, keep_default_na=True, encoding="utf-8-sig"
            )
    except pd.errors.EmptyDataError:
        raise PipelineError(f"{path}: row 1, rule not_empty: the file has no header row") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise PipelineError(
            f"{path}: cannot read the file ({' '.join(str(exc).split())[:200]})"
        ) from None
    raise PipelineError(f"{path}: unknown input type '{path.suffix}' (use .csv or .parquet)")


def _raw_header(path: Path) -> list[str] | None:
    """The CSV header as written (pandas renames a repeated name to ``name.1``)."""
    import csv

    with path.open(encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh), None)


def _unique_header(names: list[str], path: Path) -> None:
    seen: set[str] = set()
    for name in names:
        key = str(name).strip()
        if key in seen:
            raise PipelineError(
                f"{path}: row 1, column {key}, rule unique_header: the column appears twice; "
                "one of them would be scored as the other"
            )
        seen.add(key)


def score_customers(bundle: dict, X: pd.DataFrame) -> pd.DataFrame:
    """Per row: score, calibrated PD, grade, limit (binding constraint), credit period, review
    cycle, behaviour-trigger action, top reason codes with text, and ``error``."""
    policy = policy_from_bundle(bundle["policy"])
    size_col = policy.size_measure
    clean, errors = clean_inputs(bundle, X, [size_col, *POLICY_INPUTS])
    scored = score_frame(bundle, clean)
    grades = pd.DataFrame(bundle["master_scale"]["grades"])
    mins = pd.to_numeric(grades["score_min"]).to_numpy(float)[:-1]
    idx = np.searchsorted(-mins, -scored["score"].to_numpy(float), side="left")

    cols: dict[str, object] = {}  # built first, framed once
    if "customer_id" in X.columns:
        cols["customer_id"] = X["customer_id"].array
    cols["score"] = scored["score"].astype("Int64").array
    cols["pd"] = calibrated_pd(
        bundle["calibration"]["parameters"], scored["score"].to_numpy(float)
    )
    cols["pd_model"] = scored["pd_model"].to_numpy()
    cols["grade"] = pd.Categorical.from_codes(idx, grades["grade"].astype(str))
    letter_codes, letter_names = pd.factorize(grades["letter_grade"])
    cols["letter_grade"] = pd.Categorical.from_codes(letter_codes[idx], letter_names)
    cols["grade_pd"] = grades["pd"].to_numpy(float)[idx]
    cols.update(_policy_columns(policy, clean, cols, size_col, len(X)))
    for key in ("credit_period_days", "review_months"):
        per_grade = grades["letter_grade"].map(dict(getattr(policy, key))).to_numpy(float)
        cols[key] = pd.array(per_grade, dtype="Int64")[idx]  # convert per grade, then pick
    cols.update(_reason_columns(bundle, scored))
    out = pd.DataFrame(cols, index=X.index)
    error = np.full(len(X), None, dtype=object)
    if errors:
        rows = np.fromiter(errors, dtype=np.int64)
        error[rows] = [f"row {r}: {errors[r]}" for r in rows]
        out.iloc[rows, [out.columns.get_loc(c) for c in out.columns if c != "customer_id"]] = None
    out["error"] = error
    return out


SCORE_ROW_BYTES = 2048
"""Working bytes per row of `score_customers` (input copies, policy columns, reason texts) besides
24 per card feature: sizes the slices of `score_in_slices`."""


def score_in_slices(
    bundle: dict,
    X: pd.DataFrame,
    budget_bytes: int | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """`score_customers` of ``X`` run over slices sized from ``budget_bytes``
    (``base.memory_budget``; None: in one piece), keeping only ``columns`` of each slice's result
    (None: all). Scores, grades and limits are per row, so they equal a one-piece run; an error
    message numbers its row within the slice."""
    rows = len(X) or 1
    if budget_bytes is not None:
        rows = batch_rows(budget_bytes, SCORE_ROW_BYTES + 24 * len(all_features(bundle)))

    def part(piece: pd.DataFrame) -> pd.DataFrame:
        scored = score_customers(bundle, piece)
        return scored if columns is None else scored[columns]

    return map_batches(part, X, rows)


def _policy_columns(
    policy: LimitPolicy, clean: pd.DataFrame, cols: dict, size_col: str, n: int
) -> dict[str, object]:
    """Limit, its binding constraint, the behaviour-trigger action and the recommended limit."""

    def col(name: str):
        return clean[name].to_numpy(float) if name in clean else None

    limits = customer_limits(
        cols["letter_grade"],
        cols["grade_pd"],
        col(size_col) if size_col in clean else np.full(n, np.nan),
        policy,
        col("net_worth"),
        col("annual_turnover"),
    )
    actions = limit_action(clean, policy.triggers)
    limit = limits["limit"].to_numpy()
    return {
        "limit": limit,
        "limit_binding": limits["binding"].array,
        "limit_action": actions["limit_action"].array,
        "recommended_limit": np.floor(limit * actions["limit_multiplier"].to_numpy()),
    }


def _reason_columns(bundle: dict, scored: pd.DataFrame) -> dict[str, object]:
    """``reason_<k>`` codes and ``reason_text_<k>`` texts, best reason first."""
    texts = {f["reason_code"]: f.get("reason_text") for c in cards(bundle) for f in c["features"]}
    out: dict[str, object] = {}
    for k in range(1, bundle.get("reason_codes", {}).get("top_n", 4) + 1):
        codes = scored[f"reason_{k}"]
        out[f"reason_{k}"] = codes.to_numpy()
        out[f"reason_text_{k}"] = codes.map(texts).to_numpy()
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: score a CSV/Parquet file with a published bundle."""
    parser = argparse.ArgumentParser(prog="credit-score", description=__doc__.splitlines()[0])
    parser.add_argument("--card", required=True, help="exports/<dataset>/scorecard.json")
    parser.add_argument("--input", required=True, help="new customers, .csv or .parquet")
    parser.add_argument("--output", help="output CSV (default: <input>_scored.csv)")
    args = parser.parse_args(argv)

    def run() -> None:
        bundle = load_bundle(args.card)
        X = read_input(args.input)
        if is_routed(bundle) and ROUTE_COLUMN not in X.columns:
            raise PipelineError(
                f"{args.input}: row 1, column {ROUTE_COLUMN}: missing (rule routing: the card "
                f"scores each row by the card of its segment, {list(SEGMENTS)}); add the column"
            )
        out = score_customers(bundle, X)
        target = (
            Path(args.output)
            if args.output
            else Path(args.input).with_name(Path(args.input).stem + "_scored.csv")
        )
        write_csv(out, target)
        n_err = int(out["error"].notna().sum())  # row = 0-based position in the input
        log.info("scored %d rows (%d with errors) -> %s", len(out), n_err, target)
        for msg in out.loc[out["error"].notna(), "error"].head(MAX_ERRORS_SHOWN):
            log.warning("row error: %s", msg)

    run_stage(run, "score", atomic=False)


if __name__ == "__main__":
    main()
