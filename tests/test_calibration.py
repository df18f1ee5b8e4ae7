"""pipeline.calibration: calibrators, master scale and calibration tests.

Golden values are worked by hand in each test (the arithmetic is written out); scipy.stats only
evaluates a distribution at a hand-derived statistic.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from pipeline.calibration import (
    IsotonicCalibrator,
    PlattCalibrator,
    anchor_shift,
    assign_grade,
    binomial_test,
    calibration_tests,
    calibrator_from_dict,
    choose_method,
    fit_calibrator,
    grade_labels,
    heterogeneity_test,
    hl_degrees_of_freedom,
    hosmer_lemeshow,
    jeffreys_test,
    master_scale,
    normal_test,
    spiegelhalter_test,
    traffic_light,
)
from pipeline.config import PipelineError


# ------------------------------------------------------------------------------ calibrators
def test_platt_saturated_two_point_fit_by_hand():
    # score 0: 3 bads in 4 (rate 3/4); score 1: 1 bad in 4 (rate 1/4). Two points, two parameters:
    # the MLE reproduces both rates: a = logit(3/4) = ln 3, a + b = logit(1/4) = -ln 3, b = -2 ln 3.
    score = [0, 0, 0, 0, 1, 1, 1, 1]
    y = [1, 1, 1, 0, 1, 0, 0, 0]
    cal = PlattCalibrator().fit(score, y)
    assert cal.intercept_ == pytest.approx(math.log(3), abs=1e-6)
    assert cal.slope_ == pytest.approx(-2 * math.log(3), abs=1e-6)
    # score 2: logit = ln3 - 4 ln3 = -3 ln3 → PD = 1 / 28
    assert cal.predict_pd([0, 1, 2]) == pytest.approx([0.75, 0.25, 1 / 28], abs=1e-6)


def test_platt_slope_of_the_wrong_sign_is_an_error_naming_the_cause():
    # the same data with the score reversed: the PD would rise with the score (slope +2 ln 3)
    score = [1, 1, 1, 1, 0, 0, 0, 0]
    y = [1, 1, 1, 0, 1, 0, 0, 0]
    with pytest.raises(PipelineError, match=r"Platt slope is \+2\.19.*train\.scaling\.base_odds"):
        PlattCalibrator().fit(score, y)


def test_isotonic_pool_adjacent_violators_by_hand():
    # by increasing score the bad flags are 1, 0, 1, 0; non-increasing fit pools (0, 1) → 0.5:
    # fitted 1, 0.5, 0.5, 0; linear between thresholds, flat outside.
    cal = IsotonicCalibrator().fit([1, 2, 3, 4], [1, 0, 1, 0])
    got = cal.predict_pd([0, 1, 2, 2.5, 3, 3.5, 4, 9])
    assert got == pytest.approx([1, 1, 0.5, 0.5, 0.5, 0.25, 0, 0])


def test_pd_floor_applies_after_the_map():
    cal = IsotonicCalibrator(pd_floor=0.01).fit([1, 2, 3, 4], [1, 0, 1, 0])
    assert cal.predict_pd([4, 1]) == pytest.approx([0.01, 1.0])


def test_anchor_shift_by_hand():
    # both raw PDs 0.2, target mean 0.1: δ = logit(0.1) − logit(0.2) = ln(1/9) − ln(1/4) = ln(4/9)
    assert anchor_shift(np.array([0.2, 0.2]), 0.1, 0.0) == pytest.approx(math.log(4 / 9), abs=1e-9)
    # floor binding on the second: (σ(δ) + 0.01) / 2 = 0.1 → σ(δ) = 0.19 → δ = ln(0.19 / 0.81)
    shift = anchor_shift(np.array([0.5, 1e-9]), 0.1, 0.01)
    assert shift == pytest.approx(math.log(0.19 / 0.81), abs=1e-9)


def test_central_tendency_sets_the_mean_pd():
    rng = np.random.default_rng(1)
    s = rng.normal(600, 40, 3000).round()
    y = (rng.random(3000) < 1 / (1 + np.exp((s - 480) / 28.85))).astype(int)
    for method in ("platt", "isotonic"):
        cal = fit_calibrator(s, y, method=method, central_tendency=0.08, pd_floor=0.0003)
        assert cal.predict_pd(s).mean() == pytest.approx(0.08, abs=1e-9)


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_json_round_trip_gives_identical_predictions(method):
    rng = np.random.default_rng(2)
    s = rng.integers(450, 750, 2000).astype(float)
    y = (rng.random(2000) < 1 / (1 + np.exp((s - 500) / 30))).astype(int)
    cal = fit_calibrator(s, y, method=method, central_tendency=0.05, pd_floor=0.001)
    again = calibrator_from_dict(json.loads(json.dumps(cal.to_dict())))
    grid = np.arange(400, 800, 0.5)
    assert np.array_equal(again.predict_pd(grid), cal.predict_pd(grid))
    assert again.to_dict() == cal.to_dict()


def test_choose_method_threshold():
    assert choose_method("auto", 4999, 5000) == "platt"
    assert choose_method("auto", 5000, 5000) == "isotonic"
    assert choose_method("platt", 10**6, 5000) == "platt"
    with pytest.raises(PipelineError, match="calibrate.method"):
        choose_method("beta", 10, 5)


def test_calibrator_rejects_one_class_sample():
    with pytest.raises(PipelineError, match="both goods and bads"):
        fit_calibrator([1, 2, 3], [0, 0, 0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scores=st.lists(st.integers(300, 900), min_size=10, max_size=200),
    seed=st.integers(0, 2**31 - 1),
)
def test_calibrators_are_monotone(scores, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, len(scores))
    assume(0 < y.sum() < len(y))
    grid = np.arange(250, 951, 1.0)
    iso = IsotonicCalibrator().fit(scores, y).predict_pd(grid)
    assert np.all(np.diff(iso) <= 1e-15)
    try:
        platt = PlattCalibrator().fit(scores, y).predict_pd(grid)
    except PipelineError:  # perfect separation in a tiny sample
        return
    d = np.diff(platt)
    assert np.all(d <= 1e-15) or np.all(d >= -1e-15)


# ------------------------------------------------------------------------------ master scale
def test_grade_labels():
    assert grade_labels(10, "letter") == (
        ["AAA", "AA", "A", "BB", "B", "CCC", "CC", "C", "DD", "D"],
        list("AAABBCCCDD"),
    )
    assert grade_labels(12, "letter")[0][3:6] == ["BBB", "BB", "B"]
    assert grade_labels(8, "numeric") == ([str(i) for i in range(1, 9)], list("AABBCCDD"))
    with pytest.raises(PipelineError, match="at least 7"):
        grade_labels(6, "numeric")
    with pytest.raises(PipelineError, match="letter scale"):
        grade_labels(13, "letter")


def _ten_customers():
    score = np.arange(10, 0, -1)  # 10 … 1, one customer each
    pd_ = (11 - score) / 20  # 0.05 … 0.50, rising as the score falls
    return score, pd_


def test_master_scale_with_targets_by_hand():
    # by score 10…1 the PDs are .05 .10 .15 .20 .25 .30 .35 .40 .45 .50; boundaries .12 .22 .32:
    # A = {10, 9} (mean .075), B = {8, 7} (.175), C = {6, 5} (.275), D = {4…1} (.425)
    score, pd_ = _ten_customers()
    table = master_scale(
        score, pd_, n_grades=4, min_grade_share=0.2, bands="targets", pd_targets=[0.12, 0.22, 0.32]
    )
    assert table["grade"].tolist() == ["A", "B", "C", "D"]
    assert table["count"].tolist() == [2, 2, 2, 4]
    assert table["pd"].tolist() == pytest.approx([0.075, 0.175, 0.275, 0.425])
    assert table["score_min"].tolist()[:3] == [9, 7, 5]
    assert table["score_max"].tolist()[1:] == [9, 7, 5]
    assert assign_grade([10, 9, 8.5, 7, 6, 5, 4.9, 1, -5], table).tolist() == list("AABBCCDDD")


def test_master_scale_min_share_moves_a_cutoff_by_hand():
    score, pd_ = _ten_customers()
    with pytest.raises(PipelineError, match="cannot form 4 grades"):
        # 4 grades × ceil(0.25 × 10) = 12 customers > 10
        master_scale(score, pd_, 4, "letter", 0.25, "targets", [0.12, 0.22, 0.32])
    table = master_scale(score, pd_, 4, "letter", 0.2, "targets", [0.08, 0.09, 0.32])
    # A: PD < .08 → {10} only, but 2 are needed → {10, 9} (.075); B: PD < .09 → nothing new,
    # 2 needed → {8, 7} (.175); C: PD < .32 → {6, 5} (.275); D: {4…1}
    assert table["count"].tolist() == [2, 2, 2, 4]
    assert table["pd"].tolist() == pytest.approx([0.075, 0.175, 0.275, 0.425])


def test_master_scale_pd_must_rise_strictly():
    # isotonic-like flat PDs: the first four share PD .1, so grade B must reach into PD .2
    score = np.arange(10, 0, -1)
    pd_ = np.array([0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.4])
    table = master_scale(score, pd_, 4, "letter", 0.2, "targets", [0.05, 0.15, 0.35])
    # A: PD < .05 → none, 2 needed → {10, 9} (.1); B: PD < .15 → {8, 7}, mean .1 not > .1 →
    # extend to {8, 7, 6} (mean (.1 + .1 + .2) / 3 = .1333); C: PD < .35 → {5, 4, 3} (.2667);
    # D: {2, 1} (.4)
    assert table["count"].tolist() == [2, 3, 3, 2]
    assert table["pd"].tolist() == pytest.approx([0.1, 0.4 / 3, 0.8 / 3, 0.4])


def test_geometric_bands_are_geometric():
    rng = np.random.default_rng(3)
    s = rng.normal(600, 40, 20000).round()
    p = 1 / (1 + np.exp((s - 480) / 28.85))
    table = master_scale(s, p, 10, "letter", 0.02)
    ratios = table["pd"].to_numpy()[2:-2] / table["pd"].to_numpy()[1:-3]
    # the middle grades' PDs step by a near-constant factor (integer scores blur it slightly)
    assert ratios.std() / ratios.mean() < 0.15


def test_floor_collapsing_grades_is_an_error():
    score, pd_ = _ten_customers()
    with pytest.raises(PipelineError, match="rise strictly"):
        master_scale(score, pd_, 4, "letter", 0.2, "targets", [0.12, 0.22, 0.32], pd_floor=0.3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(40, 400),
    k=st.integers(4, 12),
    share_frac=st.floats(0.0, 1.0),
    slope=st.floats(0.005, 0.2),
    scale=st.sampled_from(["letter", "numeric"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_master_scale_properties(n, k, share_frac, slope, scale, seed):
    if scale == "numeric":
        k = max(k, 7)
    assume(n >= 2 * k)
    # PDs must stay distinguishable in floating point: beyond a logit span of ~40 they saturate at 0
    # and 1 and no scale can rise strictly (that error path is tested above).
    assume(slope * 3 * n <= 40)
    rng = np.random.default_rng(seed)
    score = rng.permutation(np.arange(n) * 3 + 100).astype(float)  # distinct scores
    pd_ = 1 / (1 + np.exp(slope * (score - score.mean())))  # strictly falling in the score
    min_share = share_frac / (2 * k)
    table = master_scale(score, pd_, k, scale, min_share)
    assert len(table) == k
    assert np.all(np.diff(table["pd"].to_numpy()) > 0)
    assert np.all(table["count"].to_numpy() >= math.ceil(min_share * n - 1e-9))
    assert table["count"].sum() == n
    graded = pd.Series(assign_grade(score, table)).value_counts()
    assert graded.reindex(table["grade"]).fillna(0).astype(int).tolist() == table["count"].tolist()


# ------------------------------------------------------------------------------ tests
def test_traffic_light_boundaries():
    assert traffic_light(0.0500001) == "green"
    assert traffic_light(0.05) == "yellow"  # significance 95% exactly
    assert traffic_light(0.0011) == "yellow"
    assert traffic_light(0.001) == "red"  # significance 99.9% exactly
    assert traffic_light(float("nan")) is None


def test_binomial_by_hand():
    # N = 10, PD = 0.1: P0 = 0.9^10 = 0.3486784401, P1 = 10·0.1·0.9^9 = 0.3874204890,
    # P2 = 45·0.01·0.9^8 = 0.1937102445 → P(X ≥ 3) = 1 − 0.9298091736 = 0.0701908264
    assert binomial_test(10, 3, 0.1) == pytest.approx(0.0701908264, abs=1e-10)
    # P3 = 120·0.001·0.9^7 = 0.0573956280, P4 = 210·0.0001·0.9^6 = 0.0111602610
    # → P(X ≥ 5) = 1 − 0.9983650626 = 0.0016349374 (significance 99.84%: yellow)
    tail = 1 - (
        0.9**10
        + 10 * 0.1 * 0.9**9
        + 45 * 0.01 * 0.9**8
        + 120 * 1e-3 * 0.9**7
        + 210 * 1e-4 * 0.9**6
    )
    assert tail == pytest.approx(0.0016349374, abs=1e-10)
    assert binomial_test(10, 5, 0.1) == pytest.approx(tail, abs=1e-12)
    assert traffic_light(binomial_test(10, 5, 0.1)) == "yellow"
    assert binomial_test(10, 0, 0.1) == pytest.approx(1.0)


def test_jeffreys_by_hand():
    # N = 1, D = 0: Beta(½, 3/2), B(½, 3/2) = Γ(½)Γ(3/2)/Γ(2) = π/2; with x = sin²θ,
    # ∫₀^p x^(−½)(1−x)^(½) dx = θ + sinθ·cosθ, θ = arcsin √p. p = 0.25: θ = π/6,
    # sinθ·cosθ = ½·√3/2 → F = (2/π)(π/6 + √3/4) = 0.6089977810
    assert jeffreys_test(1, 0, 0.25) == pytest.approx(
        (2 / math.pi) * (math.pi / 6 + math.sqrt(3) / 4), abs=1e-12
    )
    # N = 200, D = 15, PD = 0.05: the ECB statistic is the Beta(15.5, 185.5) CDF at the PD
    assert jeffreys_test(200, 15, 0.05) == pytest.approx(stats.beta.cdf(0.05, 15.5, 185.5))


def test_normal_by_hand():
    # N = 100, D = 8, PD = 0.05: ODR = 0.08, sd = √(0.05·0.95/100) = √0.000475 = 0.0217945,
    # z = 0.03 / 0.0217945 = 1.3764944
    z, p = normal_test(100, 8, 0.05)
    assert z == pytest.approx(0.03 / math.sqrt(0.000475))
    assert z == pytest.approx(1.3764944, abs=1e-6)
    assert p == pytest.approx(stats.norm.sf(1.3764944), abs=1e-7)


def test_hosmer_lemeshow_by_hand():
    # g1: N 100, D 3, PD .02 → (3 − 2)² / (100·.02·.98) = 1 / 1.96 = 0.5102041
    # g2: N 200, D 12, PD .05 → (12 − 10)² / (200·.05·.95) = 4 / 9.5 = 0.4210526
    hl, p = hosmer_lemeshow([100, 200], [3, 12], [0.02, 0.05], df=2)
    assert hl == pytest.approx(1 / 1.96 + 4 / 9.5)
    assert p == pytest.approx(math.exp(-hl / 2))  # χ²(2) survival = e^(−x/2)
    # add g3: N 50, D 10, PD .1 → (10 − 5)² / (50·.1·.9) = 25 / 4.5; with df = k − 2 = 1
    hl3, p3 = hosmer_lemeshow([100, 200, 50], [3, 12, 10], [0.02, 0.05, 0.1], df=1)
    assert hl3 == pytest.approx(1 / 1.96 + 4 / 9.5 + 25 / 4.5)
    assert p3 == pytest.approx(2 * stats.norm.sf(math.sqrt(hl3)))  # χ²(1) tail = 2(1 − Φ(√x))
    assert hl_degrees_of_freedom("k", 3) == 3
    assert hl_degrees_of_freedom("k-2", 3) == 1
    with pytest.raises(PipelineError, match="hl_df"):
        hl_degrees_of_freedom("k-1", 3)


def test_spiegelhalter_by_hand():
    # p = .1 .2 .3 .4, y = 0 0 1 1
    # numerator: (−.1)(.8) + (−.2)(.6) + (.7)(.4) + (.6)(.2) = −.08 − .12 + .28 + .12 = 0.20
    # variance: .64·.09 + .36·.16 + .16·.21 + .04·.24 = .0576 + .0576 + .0336 + .0096 = 0.1584
    z, p = spiegelhalter_test([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])
    assert z == pytest.approx(0.2 / math.sqrt(0.1584))
    assert p == pytest.approx(2 * stats.norm.sf(0.2 / math.sqrt(0.1584)))


def test_heterogeneity_by_hand():
    # better: 5 / 100, worse: 15 / 100; pooled 20 / 200 = 0.1,
    # se = √(0.1·0.9·(1/100 + 1/100)) = √0.0018, z = (0.15 − 0.05) / √0.0018 = 2.3570226
    z, p = heterogeneity_test(100, 5, 100, 15)
    assert z == pytest.approx(0.1 / math.sqrt(0.0018))
    assert p == pytest.approx(stats.norm.sf(0.1 / math.sqrt(0.0018)))
    assert math.isnan(heterogeneity_test(50, 0, 50, 0)[0])


def test_calibration_tests_portfolio_and_grades():
    table = pd.DataFrame({"grade": ["A", "B"], "pd": [0.02, 0.05]})
    grade = ["A"] * 100 + ["B"] * 200
    y = [1] * 3 + [0] * 97 + [1] * 12 + [0] * 188
    out = calibration_tests(grade, y, table, hl_df="k")
    a, b = out["per_grade"]
    assert (a["count"], a["bads"], b["count"], b["bads"]) == (100, 3, 200, 12)
    # portfolio PD = (100·.02 + 200·.05) / 300 = 12 / 300 = 0.04; D = 15
    port = out["portfolio"]
    assert port["pd"] == pytest.approx(0.04)
    assert port["binomial_p"] == pytest.approx(stats.binom.sf(14, 300, 0.04))
    assert out["hosmer_lemeshow"]["statistic"] == pytest.approx(1 / 1.96 + 4 / 9.5)
    assert out["hosmer_lemeshow"]["df"] == 2
    assert out["heterogeneity"][0]["better"] == "A"


def test_calibrated_scale_end_to_end_recovers_true_pd():
    # well-specified data: grade PDs within 20% of the mean true PD of their customers
    rng = np.random.default_rng(7)
    s = rng.normal(600, 40, 40000).round()
    true_pd = 1 / (1 + np.exp((s - 480) / 28.85))
    y = (rng.random(len(s)) < true_pd).astype(int)
    cal = fit_calibrator(s, y, method="platt", pd_floor=0.0003)
    table = master_scale(s, cal.predict_pd(s), 10, "letter", 0.02)
    grade = assign_grade(s, table)
    mean_true = pd.Series(true_pd).groupby(grade).mean().reindex(table["grade"]).to_numpy()
    assert np.all(np.abs(table["pd"].to_numpy() / mean_true - 1) < 0.2)


# ------------------------------------------------------------------- PD 0 or 1, grade count
from pipeline.calibration import (  # noqa: E402
    _test_row,
    adaptive_master_scale,
)


def test_normal_test_and_hl_at_pd_zero_or_one_by_hand():
    assert normal_test(10, 0, 0.0) == (0.0, 0.5)  # ODR = PD: nothing to test
    assert normal_test(10, 1, 0.0) == (math.inf, 0.0)  # a default at PD 0: impossible
    assert normal_test(10, 10, 1.0) == (0.0, 0.5)
    assert normal_test(10, 9, 1.0) == (-math.inf, 1.0)
    # cells (N, D, PD) = (10, 0, 0), (10, 3, .3), (5, 5, 1): only the middle one has a variance,
    # (3 − 3)² / 2.1 = 0
    assert hosmer_lemeshow([10, 10, 5], [0, 3, 5], [0.0, 0.3, 1.0], 1)[0] == 0.0
    assert hosmer_lemeshow([10, 10], [1, 3], [0.0, 0.3], 1) == (math.inf, 0.0)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 500),
    frac=st.floats(0.0, 1.0),
    pd_=st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)),
)
def test_test_row_never_divides_by_zero(n, frac, pd_):
    d = int(round(frac * n))
    with np.errstate(all="raise"):
        row = _test_row(n, d, pd_)
    for key in ("binomial_p", "jeffreys_p", "normal_p"):
        assert 0.0 <= row[key] <= 1.0, key
        assert row[key.replace("_p", "_light")] in ("green", "yellow", "red")


def test_master_scale_counts_customers_once_by_hand():
    # ten rows by score 10…1 with PDs .05 … .50; customers a a b b c c d d e e (two rows each);
    # targets .12 .22 .32, at least 2 rows per grade (share .2).
    score, pd_ = _ten_customers()
    cust = list("aabbccddee")
    args = (score, pd_, 4, "letter", 0.2, "targets", [0.12, 0.22, 0.32])
    # 2 customers per grade: A = {10, 9} is customer a only → {10, 9, 8} (a, b; mean .10);
    # B: PD < .22 adds {7} (b) only → {7, 6} (b, c; .225); C = {5, 4} (c, d; .325);
    # D = {3, 2, 1} (d, e; .45)
    table = master_scale(*args, customer_id=cust, min_customers=2)
    assert table["count"].tolist() == [3, 2, 2, 3]
    assert table["customers"].tolist() == [2, 2, 2, 2]
    assert table["pd"].tolist() == pytest.approx([0.10, 0.225, 0.325, 0.45])
    # 3 customers: A may take at most 4 rows (2 kept for each of B, C, D): {10 … 7} = a, b only
    with pytest.raises(
        PipelineError, match=r"grade A would hold 2 customers < calibrate.min_grade"
    ):
        master_scale(*args, customer_id=cust, min_customers=3)
    # one customer per grade: the plain targets result; expected defaults = customers × PD
    table = master_scale(*args, customer_id=cust, min_customers=1)
    assert table["count"].tolist() == [2, 2, 2, 4]
    assert table["customers"].tolist() == [1, 1, 1, 2]
    assert table["expected_defaults"].tolist() == pytest.approx([0.075, 0.175, 0.275, 0.85])
    # 1 expected default: A can reach score 7 at most (2 rows left for each later grade):
    # customers a, b × mean PD .125 = 0.25
    with pytest.raises(
        PipelineError, match=r"grade A would hold 0.25 expected defaults < calibrate"
    ):
        master_scale(*args, customer_id=cust, min_expected_defaults=1.0)


def test_adaptive_scale_drops_grades_with_a_reason():
    rng = np.random.default_rng(8)
    n = 3000
    score = rng.normal(600, 40, n).round()
    pd_ = 1 / (1 + np.exp((score - 480) / 28.85))
    cust = np.arange(n) // 10  # 300 customers, 10 snapshots each
    table, attempts = adaptive_master_scale(
        score,
        pd_,
        cust,
        n_grades=10,
        min_customers=40,
        min_expected_defaults=2.0,
        scale="letter",
        min_grade_share=0.02,
    )
    assert 4 <= len(table) < 10
    assert attempts[-1] == {"n_grades": len(table), "formed": True, "reason": ""}
    assert all(not a["formed"] and "calibrate.min_grade" in a["reason"] for a in attempts[:-1])
    assert (table["customers"] >= 40).all() and (table["expected_defaults"] >= 2.0).all()
    assert np.all(np.diff(table["pd"]) > 0)
    # three distinct scores cannot make four grades, minimums or not: an error naming the keys
    few = np.repeat([500.0, 600.0, 700.0], 100)
    with pytest.raises(PipelineError, match="not even 4 grades.*calibrate.min_grade_customers"):
        adaptive_master_scale(
            few, 1 / (1 + np.exp((few - 480) / 28.85)), np.arange(300), n_grades=6, min_customers=5
        )


def test_adaptive_scale_relaxes_minimums_at_the_floor_with_a_reason():
    rng = np.random.default_rng(9)
    n = 2000
    score = rng.normal(600, 40, n).round()
    pd_ = 1 / (1 + np.exp((score - 480) / 28.85))
    cust = np.arange(n) // 10
    # 200 customers cannot fill 4 grades of 80 customers each: 4 grades on the share alone
    table, attempts = adaptive_master_scale(
        score, pd_, cust, n_grades=6, min_customers=80, scale="letter", min_grade_share=0.02
    )
    assert len(table) == 4 and np.all(np.diff(table["pd"]) > 0)
    last = attempts[-1]
    assert last["formed"] and "minimums relaxed" in last["reason"]
    short = table.loc[table["customers"] < 80, "grade"].tolist()
    assert short and all(g in last["reason"] for g in short)
