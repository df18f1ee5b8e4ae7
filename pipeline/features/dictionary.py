"""The feature dictionary: ``sql/dictionary.yaml`` expanded for the computed windows.

One row per snapshot column that is a feature or a carried attribute: name, definition, window, unit,
dtype, whether it is a scoring candidate, and the expected direction of its relation to risk. The CSV the
stage writes keeps the columns the downstream stages read (`CSV_COLUMNS`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline.params.features import FeaturesParams

DICTIONARY_FILE = Path(__file__).resolve().parent / "sql" / "dictionary.yaml"
CSV_COLUMNS = ["feature", "definition", "window_months", "unit", "dtype", "scoring"]
DIRECTIONS = ("higher_is_riskier", "higher_is_safer", "none")


@cache
def dictionary_entries() -> tuple[dict[str, Any], ...]:
    """The entries of ``dictionary.yaml`` as written (templates unexpanded)."""
    entries = yaml.safe_load(DICTIONARY_FILE.read_text(encoding="utf-8"))["features"]
    for entry in entries:
        if entry["direction"] not in DIRECTIONS:
            raise ValueError(
                f"{DICTIONARY_FILE.name}: {entry['name']}: direction {entry['direction']!r}"
            )
    return tuple(entries)


def _fill(text: str, values: dict[str, int]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def _row(entry: dict[str, Any], values: dict[str, int], scoring: bool) -> dict[str, Any]:
    window = entry["window_months"]
    return {
        "feature": _fill(entry["name"], values),
        "definition": _fill(entry["definition"], values),
        "window_months": int(_fill(window, values)) if isinstance(window, str) else window,
        "unit": entry["unit"],
        "dtype": entry["dtype"],
        "scoring": scoring,
        "direction": entry["direction"],
        "added_by": entry.get("added_by", "sql"),
    }


def expand_dictionary(
    windows: list[int], scoring_windows: set[int], label_source: str
) -> pd.DataFrame:
    """Every dictionary row for the computed ``windows`` (per-window blocks repeated window by window),
    with ``direction`` and ``added_by`` (``sql``, ``rules`` or ``truth``)."""
    values = {"w_min": min(windows), "w_max": max(windows)}
    entries = list(dictionary_entries())
    rows: list[dict[str, Any]] = []
    k = 0
    while k < len(entries):
        if not entries[k].get("per_window"):
            entry = entries[k]
            row = _row(entry, values, bool(entry["scoring"]))
            note = (entry.get("label_source_note") or {}).get(label_source)
            row["definition"] += note or ""
            rows.append(row)
            k += 1
            continue
        block = []
        while k < len(entries) and entries[k].get("per_window"):
            block.append(entries[k])
            k += 1
        for w in windows:
            for entry in block:
                scoring = (
                    w in scoring_windows if entry["scoring"] == "window" else entry["scoring"]
                )
                rows.append(_row(entry, {**values, "w": w}, bool(scoring)))
    table = pd.DataFrame(rows)
    table["window_months"] = table["window_months"].astype("Int64")
    return table


def feature_dictionary(params: FeaturesParams, columns: list[str]) -> pd.DataFrame:
    """The dictionary rows (`CSV_COLUMNS`) of the snapshot ``columns``, in dictionary order."""
    table = expand_dictionary(params.windows, set(params.windows_months), params.label.source)
    table = table[table["feature"].isin(columns)]
    return table[CSV_COLUMNS].reset_index(drop=True)
