"""The published bundle: the master scale checked, the card sealed with calibration and policy, and the
bad definition in words for the model card.

Pure functions on the stage's inputs; the publish stage reads and writes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.card import seal_bundle
from pipeline.domain import PipelineError
from pipeline.io import code_version
from pipeline.params import to_dict
from pipeline.params.features import LabelParams
from pipeline.params.publish import PublishParams
from pipeline.snapshot_io import in_key_order, sort_by_keys

BUNDLE_SCHEMA = "1.0"
GRADE_KEYS = ("grade", "letter_grade", "score_min", "pd")


def check_cutoffs(cutoffs: dict, source: str) -> list[dict]:
    """The master-scale grades, checked: letter grades present, score_min falling, PDs rising."""
    grades = cutoffs.get("grades") or []
    if not grades:
        raise PipelineError(f"{source}: no 'grades'; run the calibrate stage")
    for i, g in enumerate(grades):
        for key in GRADE_KEYS:
            if key not in g:
                raise PipelineError(f"{source}: grades[{i}] has no '{key}'")
    mins = [g["score_min"] for g in grades[:-1]]
    if any(m is None for m in mins) or any(b >= a for a, b in zip(mins, mins[1:], strict=False)):
        raise PipelineError(f"{source}: score_min must fall strictly from the best grade on")
    pds = [g["pd"] for g in grades]
    if any(b <= a for a, b in zip(pds, pds[1:], strict=False)):
        raise PipelineError(f"{source}: grade PDs must rise strictly from grade to grade")
    return grades


def latest_sizes(snapshots: pd.DataFrame, size_measure: str) -> pd.Series:
    """Each customer's size measure at their latest snapshot: the last row of each customer once
    the rows are in key order (the snapshot file's contract; sorted only when they are not), found
    where the customer id changes, so no per-customer grouping is built over every snapshot."""
    if size_measure not in snapshots.columns:
        raise PipelineError(
            f"snapshots.parquet: column '{size_measure}' (publish.size_measure) not found"
        )
    if not in_key_order(snapshots):
        snapshots = sort_by_keys(snapshots)
    ids = snapshots["customer_id"].to_numpy()
    last = np.ones(len(ids), dtype=bool)
    last[:-1] = ids[1:] != ids[:-1]
    return snapshots.loc[last, size_measure]


def build_bundle(
    card: dict,
    cutoffs: dict,
    params: PublishParams,
    limits: pd.DataFrame,
    units: dict | None = None,
) -> dict:
    """The published scorecard.json: the card plus calibration, master scale and policy (the
    ``publish`` parameters as params.yaml states them, and the limit table), sealed with declared
    feature domains and a content hash (`pipeline.card.seal_bundle`)."""
    return seal_bundle(
        {
            **card,
            "bundle": {
                "schema_version": BUNDLE_SCHEMA,
                "code_version": code_version(),
                "scored_by": "python -m pipeline.score --card <this file> --input <file>",
            },
            "calibration": cutoffs["calibration"],
            "master_scale": {"scale": cutoffs.get("scale"), "grades": cutoffs["grades"]},
            "policy": {**to_dict(params), "limit_table": limits.to_dict("records")},
        },
        units,
    )


def bad_definition(label: LabelParams) -> str:
    """The bad definition in words, from the features stage's ``label`` parameters."""
    if label.source == "customer_flag":
        return "the source's own default flag (one observation point)"
    return (
        f"an invoice more than {label.bad_days_beyond_terms} days beyond terms "
        f"within {label.performance_window_months} months of the observation "
        f"date, above {label.material_amount} and "
        f"{label.material_share:.0%} of exposure"
    )
