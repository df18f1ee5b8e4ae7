"""A frame checked against a card before scoring: numbers where the card expects numbers, inside
each characteristic's declared domain.

A value that cannot be scored (text in a numeric column, ±inf, a value outside the feature's
``domain``) becomes missing and adds a message to its row's error; the batch never stops for one
bad row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.card.routing import ROUTE_COLUMN, all_features, is_routed
from pipeline.domain import SEGMENTS

# policy inputs that are not characteristics: sizes and amounts cannot be negative
SIZE_DOMAIN = {
    "avg_monthly_invoiced": {"min": 0},
    "annual_turnover": {"min": 0},
    "invoiced_amount_3m": {"min": 0},
    "invoiced_amount_12m": {"min": 0},
    "tenure_months": {"min": 0},
    "late_invoice_share_12m": {"min": 0, "max": 1},
    "largest_invoice_share_3m": {"min": 0, "max": 1},
    "worst_days_past_due": {"min": 0},
}


def _add_error(errors: dict[int, str], i: int, msg: str) -> None:
    errors[i] = f"{errors[i]}; {msg}" if i in errors else msg


def checked_numbers(
    values: pd.Series, name: str, errors: dict[int, str], domain: dict | None = None
) -> np.ndarray:
    """Float column; text that is not a number, ±inf and values outside the characteristic's
    declared ``domain`` add to the row's error (the value becomes NaN)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        coerced = values.astype("float64").to_numpy(na_value=np.nan)
    else:
        coerced = (
            pd.to_numeric(values, errors="coerce").astype("float64").to_numpy(na_value=np.nan)
        )
        suspect = np.flatnonzero(np.isnan(coerced) & values.notna().to_numpy())
        for i in suspect:
            if str(values.iloc[i]).strip():
                _add_error(
                    errors, int(i), f"column {name}: {str(values.iloc[i])[:40]!r} is not a number"
                )
    coerced = coerced.copy()
    for i in np.flatnonzero(np.isinf(coerced)):
        _add_error(errors, int(i), f"column {name}: {coerced[i]} is not a finite number")
    coerced[np.isinf(coerced)] = np.nan
    lo = (domain or {}).get("min")
    hi = (domain or {}).get("max")
    with np.errstate(invalid="ignore"):
        outside = np.zeros(len(coerced), dtype=bool)
        if lo is not None:
            outside |= coerced < lo
        if hi is not None:
            outside |= coerced > hi
    for i in np.flatnonzero(outside):
        shown = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        _add_error(
            errors,
            int(i),
            f"column {name}: {coerced[i]:g} is outside its domain {shown} (rule domain)",
        )
    coerced[outside] = np.nan
    return coerced


def checked_segments(values: pd.Series, errors: dict[int, str]) -> np.ndarray:
    """The routing column as objects; a value that is no segment (a typo would silently route the
    row to the main card) adds to the row's error and becomes missing."""
    out = values.astype(object).to_numpy().copy()
    known = values.isna().to_numpy() | values.isin(SEGMENTS).to_numpy()
    for i in np.flatnonzero(~known):
        _add_error(
            errors,
            int(i),
            f"column {ROUTE_COLUMN}: {str(out[i])[:40]!r} is not a segment {list(SEGMENTS)} "
            "(rule segment)",
        )
        out[i] = None
    return out


def clean_inputs(
    card: dict, X: pd.DataFrame, size_columns: list[str]
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Numeric features and size columns as floats, plus the errors by row position."""
    errors: dict[int, str] = {}
    columns: dict[str, object] = {}  # built first, framed once (no per-column frame copies)
    for feat in all_features(card):
        name = feat["name"]
        if name not in X.columns:
            continue
        columns[name] = (
            checked_numbers(X[name], name, errors, feat.get("domain"))
            if feat["dtype"] == "numeric"
            else X[name].astype(object).to_numpy()
        )
    if is_routed(card) and ROUTE_COLUMN in X.columns:
        columns[ROUTE_COLUMN] = checked_segments(X[ROUTE_COLUMN], errors)
    for name in size_columns:
        if name in X.columns and name not in columns:
            columns[name] = checked_numbers(X[name], name, errors, SIZE_DOMAIN.get(name))
    return pd.DataFrame(columns, index=X.index), errors
