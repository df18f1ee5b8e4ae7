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

from pipeline.calibration import calibrator_from_dict
from pipeline.config import PipelineError, run_stage
from pipeline.io import write_csv
from pipeline.policy import customer_limits, limit_action
from pipeline.scorecard import load_card, score_frame

log = logging.getLogger("pipeline.score")
BUNDLE_KEYS = ("calibration", "master_scale", "policy")
MAX_ERRORS_SHOWN = 3


def load_bundle(path: Path | str) -> dict:
    """Read a published bundle (a card plus calibration, master scale and policy)."""
    bundle = load_card(path)
    missing = [k for k in BUNDLE_KEYS if k not in bundle]
    if missing:
        raise PipelineError(
            f"{path}: keys {missing} missing: this is a training card, not a published bundle; "
            "use exports/<dataset>/scorecard.json written by the publish stage"
        )
    return bundle


def read_input(path: Path | str) -> pd.DataFrame:
    """CSV (all columns read as text, converted per feature) or Parquet."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: input file not found")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() in (".csv", ".txt"):
            return pd.read_csv(path, dtype=str, keep_default_na=True, encoding="utf-8-sig")
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: cannot read the file ({exc})") from None
    raise PipelineError(f"{path}: unknown input type '{path.suffix}' (use .csv or .parquet)")


def _numeric(values: pd.Series, name: str, errors: dict[int, str]) -> np.ndarray:
    """Float column; text that is not a number adds to the row's error and becomes NaN."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64").to_numpy(na_value=np.nan)
    coerced = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy(na_value=np.nan)
    suspect = np.flatnonzero(np.isnan(coerced) & values.notna().to_numpy())
    for i in suspect:
        if str(values.iloc[i]).strip():
            msg = f"column {name}: {str(values.iloc[i])[:40]!r} is not a number"
            errors[int(i)] = f"{errors[int(i)]}; {msg}" if int(i) in errors else msg
    return coerced


def clean_inputs(
    card: dict, X: pd.DataFrame, size_columns: list[str]
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Numeric features and size columns as floats, plus the errors by row position."""
    errors: dict[int, str] = {}
    columns: dict[str, object] = {}  # built first, framed once (no per-column frame copies)
    for feat in card["features"]:
        name = feat["name"]
        if name not in X.columns:
            continue
        columns[name] = (
            _numeric(X[name], name, errors)
            if feat["dtype"] == "numeric"
            else X[name].astype(object).to_numpy()
        )
    for name in size_columns:
        if name in X.columns and name not in columns:
            columns[name] = _numeric(X[name], name, errors)
    return pd.DataFrame(columns, index=X.index), errors


def score_customers(bundle: dict, X: pd.DataFrame) -> pd.DataFrame:
    """Per row: score, calibrated PD, grade, limit (binding constraint), credit period, review
    cycle, behaviour-trigger action, top reason codes with text, and ``error``."""
    policy = bundle["policy"]
    size_col = policy.get("size_measure", "avg_monthly_invoiced")
    extra = [
        size_col,
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
    ]
    clean, errors = clean_inputs(bundle, X, extra)
    scored = score_frame(bundle, clean)

    grades = pd.DataFrame(bundle["master_scale"]["grades"])
    mins = pd.to_numeric(grades["score_min"]).to_numpy(float)[:-1]
    idx = np.searchsorted(-mins, -scored["score"].to_numpy(float), side="left")
    calibrator = calibrator_from_dict(bundle["calibration"]["parameters"])
    letter_codes, letter_names = pd.factorize(grades["letter_grade"])
    letter = pd.Categorical.from_codes(letter_codes[idx], letter_names)
    grade_pd = grades["pd"].to_numpy(float)[idx]

    cols: dict[str, object] = {}  # built first, framed once
    if "customer_id" in X.columns:
        cols["customer_id"] = X["customer_id"].array
    cols["score"] = scored["score"].astype("Int64").array
    cols["pd"] = calibrator.predict_pd(scored["score"].to_numpy(float))
    cols["pd_model"] = scored["pd_model"].to_numpy()
    cols["grade"] = pd.Categorical.from_codes(idx, grades["grade"].astype(str))
    cols["letter_grade"] = letter
    cols["grade_pd"] = grade_pd

    def col(name: str):
        return clean[name].to_numpy(float) if name in clean else None

    limits = customer_limits(
        letter,
        grade_pd,
        col(size_col) if size_col in clean else np.full(len(X), np.nan),
        policy,
        col("net_worth"),
        col("annual_turnover"),
    )
    actions = limit_action(clean, policy)
    cols["limit"] = limits["limit"].to_numpy()
    cols["limit_binding"] = limits["binding"].array
    cols["limit_action"] = actions["limit_action"].array
    cols["recommended_limit"] = np.floor(cols["limit"] * actions["limit_multiplier"].to_numpy())
    for key in ("credit_period_days", "review_months"):
        per_grade = grades["letter_grade"].map(policy[key]).to_numpy(float)
        cols[key] = pd.array(per_grade, dtype="Int64")[idx]  # convert per grade, then pick
    texts = {f["reason_code"]: f.get("reason_text") for f in bundle["features"]}
    top_n = bundle.get("reason_codes", {}).get("top_n", 4)
    for k in range(1, top_n + 1):
        codes = scored[f"reason_{k}"]
        cols[f"reason_{k}"] = codes.to_numpy()
        cols[f"reason_text_{k}"] = codes.map(texts).to_numpy()
    out = pd.DataFrame(cols, index=X.index)
    error = np.full(len(X), None, dtype=object)
    if errors:
        rows = np.fromiter(errors, dtype=np.int64)
        error[rows] = [f"row {r}: {errors[r]}" for r in rows]
        out.iloc[rows, [out.columns.get_loc(c) for c in out.columns if c != "customer_id"]] = None
    out["error"] = error
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
