"""The shared vocabulary of the product: grades, keys, segments, samples, and the error type.

Library modules import from here, never from the application layer (`pipeline.config`), so a
function on DataFrames depends only on the words it uses.
"""

from __future__ import annotations

LETTER_GRADES: tuple[str, ...] = ("A", "B", "C", "D")
"""Rule and scorecard letter grades, best first; D is the veto grade."""

SNAPSHOT_KEYS: list[str] = ["customer_id", "as_of_date"]
"""One row per customer per as-of date: the key of snapshots, samples, scores and grades."""

SEGMENTS: tuple[str, ...] = ("current", "delinquent")
"""Observation segments at an as-of date (customers already in default are excluded)."""

SAMPLES: tuple[str, ...] = ("train", "calibration", "oot", "oot_known", "excluded")
"""Sample roles written by the train stage (docs/validation.md)."""

LEDGER_TABLES: tuple[str, ...] = ("customers", "invoices", "payments", "claims")
"""The canonical receivables ledger tables."""


class PipelineError(RuntimeError):
    """An error a user can act on: names the stage, the file and the fix. Printed without a traceback."""
