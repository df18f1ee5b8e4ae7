"""Segment cards: one card file, one score scale, each row scored by the card of its segment.

A card may carry ``segment_cards``: ``{segment: {"intercept", "features", "sample", "selection",
"rounding"}}``, each fitted on that segment's train rows with the same binning, selection and
scaling parameters as the main card. Every card shares the main card's ``scaling`` (base score,
base odds, PDO), so a score means the same fitted odds whichever card gave it, and one calibration
map and one master scale apply to every row. Rows are routed by the snapshot column ``segment``
(`ROUTE_COLUMN`): a row whose segment has its own card is scored by it; every other row
(``current``, null) by the main card. A segment card's reason codes carry the segment's prefix
(``DEL01`` for the delinquent card's first characteristic), so a code names one characteristic of
one card.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.domain import SEGMENTS, PipelineError

ROUTE_COLUMN = "segment"
SEGMENT_CARDS = "segment_cards"
CARD_KEYS = ("intercept", "features", "sample", "selection", "rounding")
"""The keys a segment card holds; everything else (scaling, reason-code rules, bin rules) is the
main card's."""


def scoring_columns(card: dict) -> list[str]:
    """The input columns scoring with ``card`` reads: every card's characteristics, and the
    routing column when the card has segment cards."""
    names = [f["name"] for f in all_features(card)]
    return [*names, ROUTE_COLUMN] if is_routed(card) else names


def segment_cards(card: dict) -> dict[str, dict]:
    """Each segment card as a complete card (the main card's shared keys, its own features)."""
    base = main_card(card)
    return {seg: {**base, **sub} for seg, sub in card.get(SEGMENT_CARDS, {}).items()}


def main_card(card: dict) -> dict:
    """The card without its segment cards: what scores every row not routed elsewhere."""
    return {k: v for k, v in card.items() if k != SEGMENT_CARDS}


def labelled_cards(card: dict) -> list[tuple[str | None, dict]]:
    """(segment, card): the main card (segment None: every row not routed elsewhere), then each
    segment card, each complete."""
    return [(None, main_card(card)), *segment_cards(card).items()]


def cards(card: dict) -> list[dict]:
    """The main card, then each segment card, each complete."""
    return [sub for _, sub in labelled_cards(card)]


def is_routed(card: dict) -> bool:
    """True when the card holds at least one segment card."""
    return bool(card.get(SEGMENT_CARDS))


def all_features(card: dict) -> list[dict]:
    """The characteristics of every card, each name once (the main card's first)."""
    seen: dict[str, dict] = {f["name"]: f for f in card["features"]}
    for sub in card.get(SEGMENT_CARDS, {}).values():
        for f in sub["features"]:
            seen.setdefault(f["name"], f)
    return list(seen.values())


def calibrated_segments(card: dict) -> tuple[str, ...]:
    """The segments one calibration and master scale are fitted on: the headline (current)
    segment and every segment with its own card."""
    return (SEGMENTS[0], *card.get(SEGMENT_CARDS, {}))


def segment_card(segment: str, fitted: dict) -> dict:
    """The segment-card entry of a fitted card: its own keys, reason codes prefixed by the
    segment (`ROUTE_COLUMN` values are lower-case words: ``delinquent`` -> ``DEL01``)."""
    prefix = segment[:3].upper()
    features = [
        {**f, "reason_code": f"{prefix}{j + 1:02d}"} for j, f in enumerate(fitted["features"])
    ]
    return {**{k: fitted[k] for k in CARD_KEYS if k in fitted}, "features": features}


def routes(card: dict, X: pd.DataFrame) -> list[tuple[dict, np.ndarray]]:
    """(card, row positions) per card that scores rows of ``X``: each segment card's rows, then the
    main card's (the rest), in that order."""
    if any(f["name"] == ROUTE_COLUMN for f in all_features(card)):
        raise PipelineError(
            f"card: characteristic '{ROUTE_COLUMN}' is the routing column of its segment cards "
            "and cannot also be scored (rule: routing column)"
        )
    if ROUTE_COLUMN not in X.columns:
        raise PipelineError(
            f"column '{ROUTE_COLUMN}' missing from the input (rule: the card routes rows by segment "
            f"to its segment cards {sorted(card[SEGMENT_CARDS])}); add the snapshot's segment"
        )
    segment = X[ROUTE_COLUMN]
    taken = np.zeros(len(X), dtype=bool)
    out = []
    for seg, sub in segment_cards(card).items():
        rows = segment.eq(seg).fillna(False).to_numpy(dtype=bool)
        taken |= rows
        out.append((sub, np.flatnonzero(rows)))
    out.append((main_card(card), np.flatnonzero(~taken)))
    return out
