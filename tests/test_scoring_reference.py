"""The vectorised scoring (``score_frame``) and the SQL export against a plain per-row reference
written here from the bin rules in docs/architecture.md, on random cards and random values that
include every bin edge, one ulp either side, specials, null, NaN, infinities, unseen categories,
mixed-type categories and absent columns."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.card import score_frame
from pipeline.exports import SQL_INPUT_TABLE, scorecard_sql

FACTOR, OFFSET = 20 / math.log(2), 600 - 20 / math.log(2) * math.log(50)
LABELS = ["retail", "export", "online", "1", "1.0", "True", "o'neil", ""]


# ------------------------------------------------------------------------------ reference
def _is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def reference_points(feature: dict, value) -> int:
    """One value's points, read off the card bin by bin."""
    bins = feature["bins"]
    if _is_missing(value):
        return next(b["points"] for b in bins if b["type"] == "missing")
    if feature["dtype"] == "numeric":
        x = float(value)
        for b in bins:
            if b["type"] == "special" and x in [float(v) for v in b["values"]]:
                return b["points"]
        for b in bins:
            if b["type"] == "range":
                above = b["lower"] is None or b["lower"] <= x
                below = b["upper"] is None or x < b["upper"]
                if above and below:
                    return b["points"]
        raise AssertionError(f"no range bin for {x}")
    for b in bins:
        if b["type"] == "category" and str(value) in [str(c) for c in b["categories"]]:
            return b["points"]
    return feature["unseen_points"]


def reference_row(card: dict, row: dict) -> dict:
    """Score, PD, points and reasons of one row, the slow obvious way."""
    points, shortfalls = {}, []
    for j, f in enumerate(card["features"]):
        p = reference_points(f, row[f["name"]]) if f["name"] in row else f["unseen_points"]
        points[f["name"]] = p
        shortfall = float(f["baseline_points"]) - p
        if shortfall > 0:
            shortfalls.append((-shortfall, j, f["reason_code"]))
    score = sum(points.values())
    top_n = card["reason_codes"]["top_n"]
    reasons = [code for _, _, code in sorted(shortfalls)[:top_n]]
    reasons += [None] * (top_n - len(reasons))
    return {
        "score": score,
        "pd_model": 1.0 / (1.0 + math.exp((score - OFFSET) / FACTOR)),
        "points": points,
        "reasons": reasons,
    }


# ------------------------------------------------------------------------------ strategies
@st.composite
def numeric_feature(draw, j: int) -> dict:
    edges = sorted(
        draw(
            st.sets(
                st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(
                    lambda v: v + 0.0  # no -0.0 edge
                ),
                min_size=0,
                max_size=6,
            )
        )
    )
    lowers, uppers = [None, *edges], [*edges, None]
    bins = [
        {"type": "range", "lower": lo, "upper": up, "points": draw(st.integers(-40, 120))}
        for lo, up in zip(lowers, uppers, strict=True)
    ]
    if draw(st.booleans()):
        specials = draw(st.lists(st.sampled_from([-1.0, -99.0, 0.0, 7.5]), min_size=1, max_size=2))
        bins.append({"type": "special", "values": specials, "points": draw(st.integers(-40, 120))})
    bins.append({"type": "missing", "points": draw(st.integers(-40, 120))})
    return _feature(draw, j, "numeric", bins)


@st.composite
def categorical_feature(draw, j: int) -> dict:
    labels = draw(st.lists(st.sampled_from(LABELS), unique=True, min_size=1, max_size=6))
    cut = draw(st.integers(0, len(labels)))
    groups = [g for g in (labels[:cut], labels[cut:]) if g]
    bins = [
        {"type": "category", "categories": g, "points": draw(st.integers(-40, 120))}
        for g in groups
    ]
    bins.append({"type": "missing", "points": draw(st.integers(-40, 120))})
    return _feature(draw, j, "categorical", bins)


def _feature(draw, j: int, dtype: str, bins: list[dict]) -> dict:
    worst = min(b["points"] for b in bins)
    best = max(b["points"] for b in bins)
    baseline = draw(st.one_of(st.just(best), st.floats(worst, best).map(lambda v: round(v, 4))))
    return {
        "name": f"f{j}",
        "dtype": dtype,
        "reason_code": f"R{j:02d}",
        "baseline_points": baseline,
        "unseen_points": worst,
        "bins": bins,
    }


@st.composite
def cards(draw) -> dict:
    kinds = draw(st.lists(st.booleans(), min_size=1, max_size=6))
    features = [
        draw(numeric_feature(j) if numeric else categorical_feature(j))
        for j, numeric in enumerate(kinds)
    ]
    return {
        "schema_version": "1.0",
        "kind": "woe_logistic_scorecard",
        "scaling": {"factor": FACTOR, "offset": OFFSET},
        "intercept": -1.0,
        "reason_codes": {"top_n": draw(st.integers(1, 5))},
        "features": features,
    }


def numeric_values(feature: dict):
    probes = [float("nan"), math.inf, -math.inf, 0.0, -0.0]
    for b in feature["bins"]:
        if b["type"] == "range" and b["upper"] is not None:
            u = b["upper"]
            probes += [u, np.nextafter(u, -math.inf), np.nextafter(u, math.inf)]
        if b["type"] == "special":
            probes += [float(v) for v in b["values"]]
    return st.one_of(st.sampled_from(probes), st.floats(-2e6, 2e6, allow_nan=False))


def category_values(mixed: bool):
    base = [*LABELS, "unseen", None]
    return st.sampled_from([*base, 1, 1.0, True, float("nan")] if mixed else base)


@st.composite
def card_and_frame(draw, mixed: bool = True):
    card = draw(cards())
    n = draw(st.integers(1, 25))
    cols = {}
    for f in card["features"]:
        if mixed and draw(st.integers(0, 9)) == 0:
            continue  # column absent from the input
        if f["dtype"] == "numeric":
            cols[f["name"]] = np.array(
                draw(st.lists(numeric_values(f), min_size=n, max_size=n)), dtype=float
            )
        else:
            cols[f["name"]] = pd.Series(
                draw(st.lists(category_values(mixed), min_size=n, max_size=n)), dtype=object
            )
    frame = pd.DataFrame(cols, index=pd.RangeIndex(n)) if cols else pd.DataFrame(index=range(n))
    return card, frame


# ------------------------------------------------------------------------------ properties
@settings(max_examples=150, deadline=None)
@given(card_and_frame())
def test_score_frame_equals_per_row_reference(case) -> None:
    card, X = case
    got = score_frame(card, X)
    top_n = card["reason_codes"]["top_n"]
    for i, row in enumerate(X.to_dict("records")):
        want = reference_row(card, row)
        assert got["score"].iloc[i] == want["score"]
        assert math.isclose(got["pd_model"].iloc[i], want["pd_model"], rel_tol=1e-14)
        for f in card["features"]:
            assert got[f"points__{f['name']}"].iloc[i] == want["points"][f["name"]]
        assert [got[f"reason_{k + 1}"].iloc[i] for k in range(top_n)] == want["reasons"]
    assert got["score"].dtype == np.int64


@settings(max_examples=40, deadline=None)
@given(card_and_frame(mixed=False))
def test_sql_export_equals_per_row_reference(case) -> None:
    card, X = case
    con = duckdb.connect()
    con.register(SQL_INPUT_TABLE, X)
    got = con.execute(scorecard_sql(card)).df()
    for i, row in enumerate(X.to_dict("records")):
        want = reference_row(card, row)
        assert got["score"].iloc[i] == want["score"]
        for f in card["features"]:
            assert got[f"points__{f['name']}"].iloc[i] == want["points"][f["name"]]
