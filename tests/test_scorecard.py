"""WoE scorecard: scaling, points, bin lookup, reason codes, selection, sign check, JSON card."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from pipeline.card import (
    assign_bins,
    attribute_points,
    load_card,
    reason_codes,
    scaling_constants,
    score_frame,
    score_to_pd,
)
from pipeline.config import PipelineError
from pipeline.io import write_json
from pipeline.scorecard import WoEScorecard
from tests.fixtures.snapshots import SCORING_FEATURES, uci_snapshot_frame

SPECIALS = {"days_beyond_terms_last_invoice": [-1]}


# ------------------------------------------------------------------------------- hand-built card
def toy_card() -> dict:
    """Three characteristics with hand-set points (scaling 600 @ 50:1, PDO 20)."""
    factor, offset = 20 / math.log(2), 600 - 20 / math.log(2) * math.log(50)
    return {
        "schema_version": "1.0",
        "kind": "woe_logistic_scorecard",
        "scaling": {
            "base_score": 600,
            "base_odds": 50,
            "pdo": 20,
            "factor": factor,
            "offset": offset,
        },
        "intercept": -1.0,
        "reason_codes": {"top_n": 4},
        "features": [
            {
                "name": "dbt",
                "dtype": "numeric",
                "reason_code": "R01",
                "baseline_points": 60,
                "unseen_points": 10,
                "bins": [
                    {"type": "range", "lower": None, "upper": 0.5, "points": 60},
                    {"type": "range", "lower": 0.5, "upper": 30.0, "points": 40},
                    {"type": "range", "lower": 30.0, "upper": None, "points": 10},
                    {"type": "special", "values": [-1.0], "points": 50},
                    {"type": "missing", "points": 25},
                ],
            },
            {
                "name": "segment",
                "dtype": "categorical",
                "reason_code": "R02",
                "baseline_points": 30,
                "unseen_points": 5,
                "bins": [
                    {"type": "category", "categories": ["retail", "wholesale"], "points": 30},
                    {"type": "category", "categories": ["export"], "points": 5},
                    {"type": "missing", "points": 12},
                ],
            },
            {
                "name": "ncr",
                "dtype": "numeric",
                "reason_code": "R03",
                "baseline_points": 50,
                "unseen_points": 20,
                "bins": [
                    {"type": "range", "lower": None, "upper": 0.9, "points": 20},
                    {"type": "range", "lower": 0.9, "upper": None, "points": 50},
                    {"type": "missing", "points": 20},
                ],
            },
        ],
    }


def test_scaling_golden_values() -> None:
    """600 points at 50:1 good:bad, PDO 20 -> Factor 28.8539, Offset 487.1229 (Siddiqi / docs/methodology.md
    §3.1).
    """
    factor, offset = scaling_constants(600, 50, 20)
    assert factor == pytest.approx(28.8539, abs=5e-5)
    assert offset == pytest.approx(487.1229, abs=5e-5)
    assert scaling_constants(600, 30, 20)[1] == pytest.approx(501.8622, abs=5e-5)
    # score(base_odds) = base_score; doubling the odds adds PDO points
    assert offset + factor * math.log(50) == pytest.approx(600)
    assert offset + factor * math.log(100) == pytest.approx(620)


def test_scaling_rejects_nonpositive_pdo() -> None:
    with pytest.raises(PipelineError):
        scaling_constants(600, 50, 0)


def test_points_formula_by_hand() -> None:
    """beta -0.8, WoE 0.5, alpha -1.2, n 3: 0.8*28.8539 + 487.1229/3 = 23.0831 + 162.3743 =
    185.4574.
    """
    factor, offset = scaling_constants(600, 50, 20)
    assert attribute_points(-0.8, 0.5, -1.2, 3, factor, offset) == pytest.approx(
        185.4574, abs=1e-3
    )


def test_pd_at_base_score_is_base_odds() -> None:
    """At 600 the odds are 50:1, so P(bad) = 1/51; at 620 the odds are 100:1."""
    factor, offset = scaling_constants(600, 50, 20)
    assert score_to_pd(600, factor, offset) == pytest.approx(1 / 51)
    assert score_to_pd(620, factor, offset) == pytest.approx(1 / 101)


def test_toy_card_points_missing_special_unseen() -> None:
    card = toy_card()
    X = pd.DataFrame(
        {
            "dbt": [0.0, 0.5, 29.99, 30.0, -1.0, np.nan, 400.0],
            "segment": ["retail", "wholesale", "export", None, "online", "retail", "export"],
            "ncr": [0.95, 0.9, 0.89, np.nan, 1.0, 0.2, np.nan],
        }
    )
    out = score_frame(card, X)
    assert out["points__dbt"].tolist() == [60, 40, 40, 10, 50, 25, 10]
    assert out["points__segment"].tolist() == [30, 30, 5, 12, 5, 30, 5]  # 'online' unseen -> 5
    assert out["points__ncr"].tolist() == [50, 50, 20, 20, 50, 20, 20]
    assert out["score"].tolist() == [140, 120, 65, 42, 105, 75, 35]
    assert out["score"].dtype == np.int64


def test_absent_feature_scores_unseen_points() -> None:
    out = score_frame(toy_card(), pd.DataFrame({"dbt": [0.0], "ncr": [1.0]}))
    assert out["points__segment"].tolist() == [5]
    assert out["score"].tolist() == [60 + 5 + 50]


def test_text_in_numeric_feature_is_an_error() -> None:
    X = pd.DataFrame({"dbt": ["12", "abc"], "segment": ["retail", "retail"], "ncr": [1.0, 1.0]})
    with pytest.raises(PipelineError, match=r"row 1, column 'dbt'"):
        score_frame(toy_card(), X)


def test_reason_codes_rank_ties_drop_and_top4() -> None:
    codes = np.array(["A", "B", "C", "D", "E"], dtype=object)
    shortfall = np.array(
        [
            [5, 10, 10, 0, 3],  # tie B/C by feature order; D (0) dropped
            [1, 2, 3, 4, 5],  # five shortfalls, top 4 only
            [0, -1, 0, 0, 0],  # nothing below baseline
        ]
    )
    out = reason_codes(shortfall, codes, 4)
    assert out[0].tolist() == ["B", "C", "A", "E"]
    assert out[1].tolist() == ["E", "D", "C", "B"]
    assert out[2].tolist() == [None, None, None, None]


def test_toy_card_reason_codes() -> None:
    X = pd.DataFrame({"dbt": [400.0, 0.0], "segment": ["export", "retail"], "ncr": [0.2, 1.0]})
    out = score_frame(toy_card(), X)
    # shortfalls row 0: dbt 50, segment 25, ncr 30 -> R01, R03, R02; row 1: none
    assert out.loc[0, ["reason_1", "reason_2", "reason_3", "reason_4"]].tolist() == [
        "R01",
        "R03",
        "R02",
        None,
    ]
    assert out.loc[1, ["reason_1", "reason_2", "reason_3", "reason_4"]].isna().all()


def test_load_card_rejects_other_files(tmp_path) -> None:
    path = tmp_path / "x.json"
    write_json({"kind": "something_else"}, path)
    with pytest.raises(PipelineError, match="not a scorecard card"):
        load_card(path)
    with pytest.raises(PipelineError, match="not found"):
        load_card(tmp_path / "missing.json")


@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=6, unique=True),
    st.lists(
        st.one_of(st.floats(-2e6, 2e6, allow_nan=False), st.just(float("nan"))),
        min_size=1,
        max_size=50,
    ),
)
@settings(max_examples=80, deadline=None)
def test_range_bin_is_the_one_with_lower_le_x_lt_upper(splits, xs) -> None:
    """Every non-missing value lands in the unique range bin with lower <= x < upper."""
    edges = [None, *sorted(splits), None]
    bins = [
        {"type": "range", "lower": lo, "upper": up}
        for lo, up in zip(edges[:-1], edges[1:], strict=False)
    ]
    feat = {"name": "x", "dtype": "numeric", "bins": [*bins, {"type": "missing"}]}
    idx = assign_bins(feat, pd.Series(xs, dtype=float))
    for x, i in zip(xs, idx, strict=False):
        if math.isnan(x):
            assert i == len(bins)
        else:
            b = bins[i]
            assert (b["lower"] is None or b["lower"] <= x) and (
                b["upper"] is None or x < b["upper"]
            )


@given(st.integers(0, 1000), st.integers(1, 300))
def test_pd_strictly_decreasing_in_score(score, gap) -> None:
    factor, offset = scaling_constants(600, 50, 20)
    assert score_to_pd(score, factor, offset) > score_to_pd(score + gap, factor, offset)


# ------------------------------------------------------------------------------ fitted on UCI
@pytest.fixture(scope="module")
def uci(uci_csv):
    df = uci_snapshot_frame(uci_csv)
    rng = np.random.default_rng(7)
    test = rng.random(len(df)) < 0.25
    train, oot = df[~test], df[test]
    model = WoEScorecard(special_codes=SPECIALS, max_correlation=0.8).fit(
        train[SCORING_FEATURES], train["is_bad"].astype(int)
    )
    return model, train, oot


def test_fitted_coefficients_negative_and_reported(uci) -> None:
    model, _, _ = uci
    spec = model.to_spec()
    assert spec["features"], "no characteristic selected"
    for f in spec["features"]:
        assert f["coefficient"] < 0
        assert f["std_error"] > 0 and 0 <= f["p_value"] <= 1 and f["vif"] >= 1
    table = model.coefficient_table()
    assert table["term"].iloc[0] == "intercept" and len(table) == len(spec["features"]) + 1


def test_every_dropped_feature_has_a_reason(uci) -> None:
    model, _, _ = uci
    selection = model.to_spec()["selection"]
    assert [s["feature"] for s in selection] == SCORING_FEATURES
    for s in selection:
        assert s["decision"] in ("kept", "dropped")
        assert (s["decision"] == "kept") == (s["reason"] == "")
    kept = [s["feature"] for s in selection if s["decision"] == "kept"]
    assert sorted(kept) == sorted(model.get_feature_names_out())


def test_points_follow_bad_rate_order(uci) -> None:
    """With negative coefficients, a bin with a higher bad rate never gets more points."""
    model, _, _ = uci
    for f in model.to_spec()["features"]:
        seen = sorted((b["bad_rate"], b["points"]) for b in f["bins"] if b["count"] >= 50)
        points = [p for _, p in seen]
        assert points == sorted(points, reverse=True), f["name"]


def test_missing_and_special_bins_have_observed_woe(uci) -> None:
    """The missing bin of net collection rate and the special bin (-1) keep their empirical WoE."""
    model, train, _ = uci
    y = train["is_bad"].astype(int)
    for name, mask in (
        ("net_collection_rate_3m", train["net_collection_rate_3m"].isna()),
        ("days_beyond_terms_last_invoice", train["days_beyond_terms_last_invoice"] == -1),
    ):
        kind = "missing" if name.startswith("net") else "special"
        b = next(b for b in model.binned_[name].bins if b["type"] == kind)
        g, d = (y[mask] == 0).sum(), (y[mask] == 1).sum()
        expected = math.log((g / (y == 0).sum()) / (d / (y == 1).sum()))
        assert b["count"] == mask.sum() and b["count_bad"] == d
        assert (
            b["woe"] == pytest.approx(expected) and b["woe"] != 0 and b["woe_basis"] == "observed"
        )


def test_score_is_sum_of_points_and_pd_monotone(uci) -> None:
    model, _, oot = uci
    out = model.score_frame(oot)
    pts = out.filter(like="points__")
    assert (pts.sum(axis=1) == out["score"]).all()
    ordered = out.sort_values("score")
    assert ordered["pd_model"].is_monotonic_decreasing


def test_rounding_drift_reported_and_bounded(uci) -> None:
    model, _, _ = uci
    r = model.to_spec()["rounding"]
    assert 0 <= r["max_abs_drift"] <= r["max_abs_drift_bound"] <= 0.5 * len(model.selected_)


def test_json_round_trip_exact_on_whole_sample(uci, tmp_path) -> None:
    """Saved and reloaded card scores the whole holdout exactly like the in-memory model."""
    model, _, oot = uci
    path = tmp_path / "scorecard.json"
    write_json(model.to_spec(dataset="uci"), path)
    loaded = score_frame(load_card(path), oot)
    in_memory = model.score_frame(oot)
    pd.testing.assert_frame_equal(loaded, in_memory, check_exact=True)
    assert np.array_equal(model.predict_proba(oot)[:, 1], loaded["pd_model"].to_numpy())


def test_bins_agree_with_optbinning_transform(uci) -> None:
    """Our [lower, upper) lookup reproduces OptBinning's own bin assignment on training values."""
    from optbinning import OptimalBinning

    model, train, _ = uci
    name = "days_beyond_terms_wavg_6m"
    x = train[name].to_numpy()
    ob = OptimalBinning(name, monotonic_trend="auto_asc_desc", min_bin_size=0.05, max_n_prebins=20)
    ob.fit(x, train["is_bad"].astype(int).to_numpy())
    feat = {"name": name, "dtype": "numeric", "bins": model.binned_[name].bins}
    ours = assign_bins(feat, train[name])
    theirs = ob.transform(x, metric="indices", metric_missing="empirical")
    missing = np.isnan(x)
    assert np.array_equal(ours[~missing], theirs[~missing])
    # OptBinning numbers its missing bin n_bins + 1 (after a special slot); ours is the last bin
    assert (theirs[missing] == len(ob.splits) + 2).all() and (
        ours[missing] == len(feat["bins"]) - 1
    ).all()


def test_empty_missing_bin_rule() -> None:
    """No missing value at fit: the missing bin gets the worst observed WoE (0 under 'neutral')."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(1.5 * x - 1.5)))).astype(int)
    X = pd.DataFrame({"x": x})
    worst = WoEScorecard(min_iv=0.0).fit(X, y)
    bins = worst.binned_["x"].bins
    missing = bins[-1]
    assert missing["count"] == 0 and missing["woe_basis"] == "empty_bin_worst"
    assert missing["woe"] == min(b["woe"] for b in bins[:-1])
    neutral = WoEScorecard(min_iv=0.0, empty_bin_woe="neutral").fit(X, y)
    assert neutral.binned_["x"].bins[-1]["woe"] == 0.0
    assert score_frame(worst.to_spec(), pd.DataFrame({"x": [np.nan]}))["points__x"].iloc[0] == min(
        b["points"] for b in worst.to_spec()["features"][0]["bins"]
    )


def test_sign_check_removes_and_refits() -> None:
    """x2 = x1 + noise is good on its own but its joint coefficient flips sign: it is removed."""
    rng = np.random.default_rng(11)
    n = 20000
    x1 = rng.normal(size=n)
    x2 = x1 + rng.normal(size=n)
    logit = -1.0 + 3.0 * x1 - 1.0 * x2  # marginally x2 still raises risk
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"x1": x1, "x2": x2})
    model = WoEScorecard(max_correlation=1.0, max_vif=1e9).fit(X, y)
    decisions = {s["feature"]: s for s in model.to_spec()["selection"]}
    assert decisions["x2"]["decision"] == "dropped" and "sign check" in decisions["x2"]["reason"]
    assert model.selected_ == ["x1"] and (model.model_.params.drop("const") < 0).all()


def test_correlation_filter_keeps_higher_iv() -> None:
    rng = np.random.default_rng(5)
    n = 8000
    x1 = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * x1 - 1.5)))).astype(int)
    X = pd.DataFrame(
        {"strong": x1, "copy": x1 + rng.normal(scale=0.3, size=n), "noise": rng.normal(size=n)}
    )
    model = WoEScorecard().fit(X, y)
    sel = {s["feature"]: s for s in model.to_spec()["selection"]}
    assert sel["strong"]["decision"] == "kept"
    assert "correlation" in sel["copy"]["reason"] and "strong" in sel["copy"]["reason"]
    assert "IV" in sel["noise"]["reason"]


def test_categorical_feature_bins_and_unseen() -> None:
    rng = np.random.default_rng(9)
    n = 6000
    seg = rng.choice(["a", "b", "c", "d"], size=n)
    risk = pd.Series(seg).map({"a": -2.5, "b": -1.5, "c": -0.5, "d": 0.5}).to_numpy()
    y = (rng.random(n) < 1 / (1 + np.exp(-risk))).astype(int)
    model = WoEScorecard(min_iv=0.0).fit(pd.DataFrame({"segment": seg}), y)
    feat = model.to_spec()["features"][0]
    cats = sorted(c for b in feat["bins"] if b["type"] == "category" for c in b["categories"])
    assert cats == ["a", "b", "c", "d"]
    out = score_frame(model.to_spec(), pd.DataFrame({"segment": ["zz"]}))
    assert (
        out["points__segment"].iloc[0]
        == feat["unseen_points"]
        == min(b["points"] for b in feat["bins"])
    )


def test_sklearn_conventions() -> None:
    est = WoEScorecard(special_codes=[-1], max_features=3)
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert WoEScorecard().special_codes is None  # no shared mutable default
    with pytest.raises(PipelineError):
        WoEScorecard().fit(pd.DataFrame({"x": [1.0, 2.0]}), [0, 2])


@given(st.lists(st.integers(0, 99), min_size=1, max_size=30))
@settings(max_examples=30, deadline=None)
def test_scoring_is_row_independent(rows) -> None:
    """A row's score does not depend on the other rows scored with it."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "dbt": rng.choice([np.nan, -1.0, 0.0, 10.0, 45.0], 100),
            "segment": rng.choice(["retail", "export", "online"], 100),
            "ncr": rng.uniform(0, 1.2, 100),
        }
    )
    full = score_frame(toy_card(), X)
    part = score_frame(toy_card(), X.iloc[rows])
    pd.testing.assert_frame_equal(part, full.iloc[rows])


def test_pandas_category_and_nullable_dtypes_score_like_plain_ones() -> None:
    plain = pd.DataFrame(
        {
            "dbt": [0.0, np.nan, 45.0],
            "segment": ["retail", "online", None],
            "ncr": [1.0, 0.5, np.nan],
        }
    )
    typed = plain.assign(
        dbt=plain["dbt"].astype("Float64"),
        segment=plain["segment"].astype("category"),
        ncr=plain["ncr"].astype("Float64"),
    )
    pd.testing.assert_frame_equal(score_frame(toy_card(), typed), score_frame(toy_card(), plain))


def test_vif_by_hand_and_against_one_ols_per_column() -> None:
    """Two columns with sample correlation 0.8 (by hand: cov 4, variances 5): VIF = 1/(1-0.64);
    on a correlated design the closed form equals statsmodels' per-column OLS definition; a
    column that is the sum of two others has an unbounded VIF."""
    import statsmodels.api as sm
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    from pipeline.scorecard import vif_table

    pair = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, 3.0, 2.0, 4.0]})
    assert vif_table(pair).to_numpy() == pytest.approx([1 / 0.36, 1 / 0.36], rel=1e-12)
    rng = np.random.default_rng(3)
    z = rng.normal(size=(5000, 4))
    W = pd.DataFrame(
        {
            "x1": z[:, 0],
            "x2": z[:, 0] + 0.5 * z[:, 1],
            "x3": z[:, 2] - 0.7 * z[:, 1],
            "x4": z[:, 2] + 0.3 * z[:, 3],
        }
    )
    exog = sm.add_constant(W.to_numpy())
    want = [variance_inflation_factor(exog, i + 1) for i in range(W.shape[1])]
    assert vif_table(W).to_numpy() == pytest.approx(want, rel=1e-10)
    assert min(want) > 1.5  # the design is collinear enough to test something
    collinear = W.assign(x5=W["x1"] + W["x4"])
    assert vif_table(collinear)["x5"] > 1e6
