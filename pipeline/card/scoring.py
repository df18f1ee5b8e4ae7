"""The scorecard as data: PDO scaling, bin lookup, points, reason codes and `score_frame`.

A card (``models/<ds>/scorecard.json``, schema in docs/architecture.md) holds every bin edge,
category group, WoE, count, bad rate and integer point; :func:`score_frame` is the one function
that scores a frame from it, at fit (``pipeline.scorecard.WoEScorecard``), in every stage and in
the ``score`` command. Deploy-time only: numpy and pandas, no fitting library.

Conventions (Siddiqi / OptBinning): WoE = ln(%good / %bad), odds are good:bad, a higher score is
lower risk, logit P(bad) = intercept + sum(coefficient * WoE), so every coefficient is negative.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from pipeline.card.routing import all_features, is_routed, main_card, routes
from pipeline.domain import PipelineError

log = logging.getLogger("pipeline.card")

MAX_COMPARED_EDGES = 32
_EPS = 1e-12  # PDs are clipped to [eps, 1 - eps] before the logit shift


# --------------------------------------------------------------------------------------- scaling
def scaling_constants(base_score: float, base_odds: float, pdo: float) -> tuple[float, float]:
    """Factor and offset of score = offset + factor * ln(odds good:bad).

    factor = pdo / ln 2 and offset = base_score - factor * ln(base_odds); 600 at 50:1 with PDO 20
    gives factor 28.8539 and offset 487.1229 (docs/methodology.md §3.1).
    """
    if pdo <= 0 or base_odds <= 0:
        raise PipelineError(
            f"params.yaml train.scaling: pdo ({pdo}) and base_odds ({base_odds}) must be > 0"
        )
    factor = pdo / math.log(2.0)
    return factor, base_score - factor * math.log(base_odds)


def attribute_points(
    coefficient: float, woe: Any, intercept: float, n_features: int, factor: float, offset: float
) -> np.ndarray:
    """Unrounded attribute points: -(coefficient * WoE + intercept / n) * factor + offset / n."""
    woe = np.asarray(woe, dtype=float)
    return -(coefficient * woe + intercept / n_features) * factor + offset / n_features


def score_to_pd(score: Any, factor: float, offset: float) -> np.ndarray:
    """P(bad) implied by a score: 1 / (1 + exp((score - offset) / factor))."""
    z = (np.asarray(score, dtype=float) - offset) / factor
    return 1.0 / (1.0 + np.exp(z))


def calibrated_pd(calibration: dict, score: Any) -> np.ndarray:
    """Calibrated PD per score from a bundle's ``calibration.parameters``, as fitted by the
    calibrate stage: the raw map (``platt``: 1 / (1 + exp(-(intercept + slope * score))),
    ``isotonic``: linear between thresholds, flat beyond), the logit shift ``intercept_shift``
    to the central tendency, then the floor ``pd_floor``.
    """
    s = np.asarray(score, dtype=float)
    method = calibration.get("method")
    if method == "platt":
        raw = _sigmoid(float(calibration["intercept"]) + float(calibration["slope"]) * s)
    elif method == "isotonic":
        x = np.asarray(calibration["x_thresholds"], dtype=float)
        raw = np.interp(s, x, np.asarray(calibration["y_thresholds"], dtype=float))
    else:
        raise PipelineError(f"calibration spec: unknown method {method!r}")
    shift = float(calibration.get("intercept_shift", 0.0))
    if shift != 0.0:
        p = np.clip(raw, _EPS, 1.0 - _EPS)
        raw = _sigmoid(np.log(p / (1.0 - p)) + shift)
    return np.maximum(float(calibration["pd_floor"]), raw)


def _sigmoid(z: Any) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


# ----------------------------------------------------------------------------------- bin lookup
def numeric_column(values: pd.Series, feature: str) -> np.ndarray:
    """Values as float64 with NaN for missing; text is an input error, not 'missing'."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return pd.to_numeric(values).astype("float64").to_numpy(na_value=np.nan)
    coerced = pd.to_numeric(values, errors="coerce")
    bad = coerced.isna() & values.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise PipelineError(
            f"input row {row}, column '{feature}': value {values.iloc[row]!r} is not a number "
            "(rule: numeric scorecard feature); fix the value or leave it empty for 'missing'"
        )
    return coerced.astype("float64").to_numpy(na_value=np.nan)


def category_key(value: Any) -> str:
    """Categories are matched as text so that the JSON card and a frame agree on them."""
    return str(value)


def _range_slots(feature: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slot of each float value and the bin position of each slot.

    The slot of a number is the count of range uppers <= x, i.e. its ``[lower, upper)`` range
    (the same as ``searchsorted(uppers, x, side="right")``, which is used for long edge lists;
    a few comparisons into a one-byte counter are faster than a binary search); NaN goes to the
    missing slot and listed special values to the special slot.
    """
    bins = feature["bins"]
    kinds = [b["type"] for b in bins]
    missing_pos = kinds.index("missing")
    ranges = [i for i, k in enumerate(kinds) if k == "range"]
    uppers = np.array([bins[i]["upper"] for i in ranges[:-1]], dtype=float)
    slot_bins = ranges + [missing_pos]
    if len(uppers) <= MAX_COMPARED_EDGES:
        slots = np.zeros(len(x), dtype=np.uint8)  # one byte per row: a third of the memory traffic
        above = np.empty(len(x), dtype=bool)
        for upper in uppers:
            np.greater_equal(x, upper, out=above)
            slots += above
    else:
        slots = np.searchsorted(uppers, x, side="right")
    slots[np.isnan(x)] = len(ranges)
    if "special" in kinds:
        pos = kinds.index("special")
        values = np.asarray(bins[pos]["values"], dtype=float)
        values = values[~np.isnan(values)]
        slots[np.isin(x, values)] = len(slot_bins)
        slot_bins.append(pos)
    return slots, np.asarray(slot_bins, dtype=np.int64)


def value_codes(values: pd.Series) -> tuple[np.ndarray, Any]:
    """Integer codes of ``values`` (-1 for null) and the distinct values they stand for: a
    categorical's own codes and categories, else factorized in order of appearance."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), values.cat.categories
    return pd.factorize(values, use_na_sentinel=True)


def _category_slots(feature: dict, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Slot of each value and the bin position of each slot (-1 = unseen category).

    Text keys are built once per distinct value, not once per row; the slots are the value codes
    with -1 (null) pointing at the appended missing slot. Object columns holding anything but
    text fall back to a per-row key, since equal values of different types (``1``, ``1.0``,
    ``True``) have different texts.
    """
    bins = feature["bins"]
    kinds = [b["type"] for b in bins]
    missing_pos = kinds.index("missing")
    lookup = {
        category_key(c): i
        for i, b in enumerate(bins)
        if b["type"] == "category"
        for c in b["categories"]
    }
    codes, uniques = value_codes(values)
    if not isinstance(values.dtype, pd.CategoricalDtype):
        exact = pd.api.types.is_integer_dtype(uniques.dtype) or all(
            isinstance(u, str) for u in uniques
        )
        if not exact:
            missing = values.isna().to_numpy()
            keys = values.astype(object).map(category_key)
            codes = keys.map(lookup).fillna(len(bins) + 1).astype("int64").to_numpy()
            codes[missing] = len(bins)
            return codes, np.array([*range(len(bins)), missing_pos, -1], dtype=np.int64)
    slot_bins = [missing_pos if pd.isna(u) else lookup.get(category_key(u), -1) for u in uniques]
    return codes, np.asarray(slot_bins + [missing_pos], dtype=np.int64)


def _slots(feature: dict, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(slots, slot_bins)``: ``slot_bins[slots]`` is each value's bin position, -1 unseen."""
    if feature["dtype"] == "numeric":
        if values.dtype == np.float64:
            x = values.to_numpy()
        else:
            x = numeric_column(values, feature["name"])
        return _range_slots(feature, x)
    return _category_slots(feature, values)


def assign_bins(feature: dict, values: pd.Series) -> np.ndarray:
    """Position of each value's bin in ``feature['bins']``; -1 for an unseen category.

    Range bins are half-open ``[lower, upper)`` as in OptBinning; NaN/null goes to the ``missing``
    bin, listed special values to the ``special`` bin.
    """
    slots, slot_bins = _slots(feature, values)
    return slot_bins[slots]


# ------------------------------------------------------------------------------------ scoring
def _reason_ranks(
    features: list[dict], tables: list[np.ndarray]
) -> tuple[list[np.ndarray], np.ndarray, int]:
    """Integer rank of every (feature, points) shortfall, best reason first, ties by feature
    order; all shortfalls <= 0 share the last rank ``none``.

    Returns per feature the rank of each entry of its points table, the code of each rank
    (``None`` for ``none``) and ``none``. Ranking the few distinct shortfalls once turns the
    per-row reason codes into a top-n selection on small integers.
    """
    entries = sorted(
        {
            (-(float(f["baseline_points"]) - float(p)), j)
            for j, (f, table) in enumerate(zip(features, tables, strict=True))
            for p in table
            if float(f["baseline_points"]) - float(p) > 0
        }
    )
    rank = {entry: r for r, entry in enumerate(entries)}
    none = len(entries)
    dtype = np.uint16 if none < np.iinfo(np.uint16).max else np.int64
    ranks = [
        np.array(
            [rank.get((-(float(f["baseline_points"]) - float(p)), j), none) for p in table],
            dtype=dtype,
        )
        for j, (f, table) in enumerate(zip(features, tables, strict=True))
    ]
    codes = np.array([features[j]["reason_code"] for _, j in entries] + [None], dtype=object)
    return ranks, codes, none


def score_frame(card: dict, X: pd.DataFrame) -> pd.DataFrame:
    """Score ``X`` with a scorecard card: points per feature, integer score, PD and top reason
    codes. A card with segment cards (`pipeline.card.routing`) scores each row with the card of
    its ``segment``; ``points__<feature>`` then covers every card's characteristics, 0 where the
    row's card does not have the feature.

    Returns ``score`` (int), ``pd_model`` (float), ``points__<feature>`` (int) and ``reason_1``…
    ``reason_<top_n>`` (codes, null where fewer shortfalls), indexed like ``X``. A feature absent
    from ``X`` or an unseen category scores the feature's ``unseen_points``.

    Vectorised: each column is binned once (``searchsorted`` on the edges, or a lookup of its
    distinct categories), points and reason ranks are read from per-bin tables, and the top
    reasons are kept by a running top-n insertion on small integer ranks.
    """
    if is_routed(card):
        return _score_routed(card, X)
    return _score_card(card, X)


def _score_routed(card: dict, X: pd.DataFrame) -> pd.DataFrame:
    """`score_frame` of a card with segment cards: the main card scores every row, then each
    segment card re-scores its own rows (cheaper than splitting the frame: the main card's rows
    are most of it)."""
    segment_parts = routes(card, X)[:-1]
    main = _score_card(main_card(card), X)
    names = [f"points__{f['name']}" for f in all_features(card)]
    reasons = [c for c in main.columns if c.startswith("reason_")]
    block = np.zeros((1 + len(names), len(X)), dtype=np.int64)  # score, then points
    for j, col in enumerate(["score", *names]):
        if col in main.columns:
            block[j] = main[col].to_numpy()
    codes = {c: main[c].to_numpy(dtype=object) for c in reasons}
    del main
    for sub, rows in segment_parts:
        if not len(rows):
            continue
        part = _score_card(sub, X.iloc[rows])
        for j, col in enumerate(["score", *names]):
            block[j, rows] = part[col].to_numpy() if col in part.columns else 0
        for c in reasons:
            codes[c][rows] = part[c].to_numpy()
    out = pd.DataFrame(block.T, index=X.index, columns=["score", *names])
    scaling = card["scaling"]
    out.insert(1, "pd_model", score_to_pd(block[0], scaling["factor"], scaling["offset"]))
    return pd.concat([out, pd.DataFrame(codes, index=X.index)], axis=1, copy=False)


def _score_card(card: dict, X: pd.DataFrame) -> pd.DataFrame:
    """`score_frame` of one card (no routing)."""
    features = card["features"]
    n = len(X)
    top_n = card.get("reason_codes", {}).get("top_n", 4)
    tables = [
        np.array([b["points"] for b in f["bins"]] + [f["unseen_points"]], dtype=np.int64)
        for f in features
    ]
    ranks, rank_codes, none = _reason_ranks(features, tables)
    rank_dtype = ranks[0].dtype if ranks else np.uint16
    block = np.zeros((1 + len(features), n), dtype=np.int64)  # score, then points per feature
    top = np.full((top_n, n), none, dtype=rank_dtype)
    high, rank = np.empty(n, dtype=rank_dtype), np.empty(n, dtype=rank_dtype)
    index = np.empty(n, dtype=np.intp)  # slots as take() indices, one buffer for every feature
    for j, feat in enumerate(features):
        name = feat["name"]
        if name not in X.columns:
            log.warning("feature '%s' absent from the input: scored with its unseen points", name)
            slots, slot_bins = np.zeros(n, dtype=np.intp), np.array([-1], dtype=np.int64)
        else:
            slots, slot_bins = _slots(feat, X[name])
        if slots.dtype != np.intp:
            np.copyto(index, slots)
            slots = index
        np.take(tables[j][slot_bins], slots, out=block[j + 1])  # bin -1 picks the unseen entry
        block[0] += block[j + 1]
        np.take(ranks[j][slot_bins], slots, out=rank)
        for k in range(top_n - 1, 0, -1):  # insert into the sorted top-n, using old values
            np.maximum(top[k - 1], rank, out=high)
            np.minimum(top[k], high, out=top[k])
        if top_n:
            np.minimum(top[0], rank, out=top[0])
    out = pd.DataFrame(
        block.T, index=X.index, columns=["score", *(f"points__{f['name']}" for f in features)]
    )
    scaling = card["scaling"]
    out.insert(1, "pd_model", score_to_pd(block[0], scaling["factor"], scaling["offset"]))
    reasons = pd.DataFrame(
        rank_codes[top.T], index=X.index, columns=[f"reason_{k + 1}" for k in range(top_n)]
    )
    return pd.concat([out, reasons], axis=1, copy=False)


def reason_codes(shortfall: np.ndarray, codes: np.ndarray, top_n: int = 4) -> np.ndarray:
    """Top ``top_n`` codes per row by shortfall (descending), shortfalls <= 0 dropped, ties by
    column order.
    """
    shortfall = np.asarray(shortfall, dtype=float)
    order = np.argsort(-shortfall, axis=1, kind="stable")[:, :top_n]
    ranked = np.take_along_axis(shortfall, order, axis=1)
    out = np.asarray(codes, dtype=object)[order]
    out[ranked <= 0] = None
    if out.shape[1] < top_n:
        out = np.hstack([out, np.full((out.shape[0], top_n - out.shape[1]), None, dtype=object)])
    return out
