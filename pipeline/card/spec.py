"""The training card as JSON: its kind and schema version, how it is assembled, how it is read.

The train stage writes ``models/<ds>/scorecard.json`` from :func:`card_spec`; every stage that
scores reads it back with :func:`load_card`. The published bundle (card plus calibration, master
scale and policy) is checked by `pipeline.card.bundle`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.domain import PipelineError
from pipeline.io import read_json

SCHEMA_VERSION = "1.0"
CARD_KIND = "woe_logistic_scorecard"
HALDANE = 0.5
"""Added to the goods and bads of a bin with none of either, so its WoE is finite."""


def card_spec(
    *,
    dataset: str,
    provenance: dict,
    sample: dict,
    scaling: dict,
    intercept: float,
    features: list[dict],
    rounding: dict,
    reason_baseline: str,
    top_n: int,
    empty_bin_woe: str,
    selection: list[dict],
) -> dict[str, Any]:
    """The JSON card (schema_version 1.0, docs/architecture.md), keys in their published order."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": CARD_KIND,
        "dataset": dataset,
        "provenance": provenance,
        "sample": sample,
        "target": {"event": "bad", "odds": "good:bad", "woe": "ln(%good / %bad)"},
        "scaling": scaling,
        "intercept": intercept,
        "features": features,
        "rounding": rounding,
        "reason_codes": {
            "method": "points_below_baseline",
            "baseline": reason_baseline,
            "top_n": top_n,
            "ties": "feature order",
        },
        "bin_rules": {
            "range": "[lower, upper), null = unbounded",
            "edges": "short decimals: a numeric feature's edges are rounded to its "
            "edge_digits significant digits, the fewest that keep every training row in "
            "its bin",
            "woe_pure_bin": f"add {HALDANE} to goods and bads of a bin with none of either",
            "empty_bin_woe": empty_bin_woe,
            "unseen_points": "points of the feature's worst bin",
        },
        "selection": selection,
    }


def load_card(path: Path | str) -> dict:
    """Read and check a scorecard card written by the train stage."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: scorecard card not found; run the train stage first")
    card = read_json(path)
    if card.get("kind") != CARD_KIND or card.get("schema_version") != SCHEMA_VERSION:
        raise PipelineError(
            f"{path}: not a scorecard card of schema {SCHEMA_VERSION} (kind={card.get('kind')!r}, "
            f"schema_version={card.get('schema_version')!r})"
        )
    for key in ("scaling", "intercept", "features"):
        if key not in card:
            raise PipelineError(f"{path}: key '{key}' missing from the card")
    return card
