"""Tests of pipeline.metrics: golden values from a published example and from hand calculation,
plus hypothesis properties of the AUC, KS and the paired DeLong test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from pipeline import metrics as m

# ------------------------------------------------------------------------------ golden values
# Hanley & McNeil (1982), Radiology 143:29-36, Table 1: CT ratings 1 (definitely normal) ..
# 5 (definitely abnormal) for 58 truly normal and 51 truly abnormal patients.
# Published: A = 0.893, SE(A) = 0.032.
HM_NORMAL = [33, 6, 6, 11, 2]
HM_ABNORMAL = [3, 2, 2, 11, 33]


def _hanley_mcneil_sample() -> tuple[np.ndarray, np.ndarray]:
    rating = np.arange(1, 6)
    y = np.r_[np.zeros(sum(HM_NORMAL)), np.ones(sum(HM_ABNORMAL))]
    risk = np.r_[np.repeat(rating, HM_NORMAL), np.repeat(rating, HM_ABNORMAL)]
    return y, risk


def test_hanley_mcneil_published_example():
    y, risk = _hanley_mcneil_sample()
    a = m.auc(y, risk)
    assert a == pytest.approx(0.893, abs=5e-4)
    assert m.hanley_mcneil_se(0.893, 51, 58) == pytest.approx(0.032, abs=6e-4)
    out = m.auc_with_ci(y, risk)
    assert out["n_bad"] == 51 and out["n_good"] == 58
    assert out["se_hanley_mcneil"] == pytest.approx(0.032, abs=6e-4)


# Seven cases by hand. Bads' risks 0.9, 0.8, 0.4; goods' risks 0.7, 0.4, 0.2, 0.1.
# Placements of bads (share of goods below, ties 1/2): 1, 1, 2.5/4 = 0.625 -> AUC = 2.625/3.
# Placements of goods (share of bads above): 2/3, 2.5/3, 1, 1                -> mean 0.875 as well.
# S10 = (0.125² + 0.125² + 0.25²)/2 = 0.046875; S01 = ((5/24)² + (1/24)² + 2·(1/8)²)/3 = 11/432.
# Var = S10/3 + S01/4 = 1/64 + 11/1728 = 38/1728.
Y7 = np.array([1, 1, 1, 0, 0, 0, 0])
A7 = np.array([0.9, 0.8, 0.4, 0.7, 0.4, 0.2, 0.1])
# Second score on the same cases: bads 0.9, 0.3, 0.5 -> placements 1, 0.5, 0.75, AUC 0.75;
# goods -> 1/3, 2/3, 1, 1. Deviations a: bads (1/8, 1/8, -1/4), goods (-5/24, -1/24, 1/8, 1/8);
# b: bads (1/4, -1/4, 0), goods (-5/12, -1/12, 1/4, 1/4).
# S10_bb = 1/16, S10_ab = 0; S01_bb = 11/108, S01_ab = 11/216.
# Var(a - b) = (3/64 + 1/16 - 0)/3 + (11/432 + 11/108 - 11/108)/4 = 63/1728 + 11/1728 = 74/1728.
B7 = np.array([0.9, 0.3, 0.5, 0.7, 0.4, 0.2, 0.1])


def test_delong_by_hand_placements():
    p = m.placement_values(Y7, A7)
    np.testing.assert_allclose(p["v10"], [1.0, 1.0, 0.625])
    np.testing.assert_allclose(p["v01"], [2 / 3, 2.5 / 3, 1.0, 1.0])
    assert p["auc"] == pytest.approx(0.875)
    assert m.delong_se(Y7, A7) == pytest.approx(math.sqrt(38 / 1728), rel=1e-12)
    out = m.auc_with_ci(Y7, A7, level=0.95)
    assert out["ci_low"] == pytest.approx(0.875 - 1.959963985 * math.sqrt(38 / 1728), rel=1e-9)
    assert out["ci_high"] == 1.0  # clipped


def test_paired_delong_by_hand():
    out = m.delong_paired_test(Y7, A7, B7)
    assert out["auc_a"] == pytest.approx(0.875) and out["auc_b"] == pytest.approx(0.75)
    assert out["difference"] == pytest.approx(0.125)
    assert out["se"] == pytest.approx(math.sqrt(74 / 1728), rel=1e-12)
    z = 0.125 / math.sqrt(74 / 1728)
    assert out["z"] == pytest.approx(z)
    assert out["p_value"] == pytest.approx(
        2 * (1 - 0.5 * (1 + math.erf(z / math.sqrt(2)))), rel=1e-9
    )


# Six cases, riskiest first: bad, bad, good, bad, good, good.
# F_bad by cut: 1/3, 2/3, 2/3, 1, 1, 1; F_good: 0, 0, 1/3, 1/3, 2/3, 1
# -> KS = 2/3 (first at risk 0.8).
# Weights 2,1,1,1,1,1: F_bad 2/4, 3/4, 3/4, 1; F_good as before -> KS = 3/4.
# AUC: bads 0.9, 0.8 outrank all 3 goods, bad 0.6 outranks 2 -> 8/9.
Y6 = np.array([1, 1, 0, 1, 0, 0])
S6 = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])


def test_ks_six_points_by_hand():
    assert m.ks_statistic(Y6, S6) == {"ks": pytest.approx(2 / 3), "ks_risk": 0.8}
    assert m.ks_statistic(Y6, S6, weights=[2, 1, 1, 1, 1, 1])["ks"] == pytest.approx(0.75)
    assert m.auc(Y6, S6) == pytest.approx(8 / 9)
    assert m.gini(8 / 9) == pytest.approx(7 / 9)


def test_gains_table_by_hand():
    # Three bands of two: (0.9, 0.8) 2 bads; (0.7, 0.6) 1 bad; (0.5, 0.4) none. Bad rate 1/2.
    t = m.gains_table(Y6, S6, n_bands=3)
    assert t["count"].tolist() == [2, 2, 2]
    assert t["bads"].tolist() == [2, 1, 0]
    np.testing.assert_allclose(t["bad_rate"], [1.0, 0.5, 0.0])
    np.testing.assert_allclose(t["cum_bad_capture"], [2 / 3, 1.0, 1.0])
    np.testing.assert_allclose(t["lift"], [2.0, 1.0, 0.0])
    np.testing.assert_allclose(t["cum_lift"], [2.0, 1.5, 1.0])
    assert t["risk_max"].tolist() == [0.9, 0.7, 0.5]


def test_gains_table_weighted_by_hand():
    # Weights 4,1,1,1,1,1 (total 9, bad weight 6), two bands split at half the weight. A tie
    # group goes to the band holding the midpoint of its cumulative share:
    # 0.9 -> (0 + 4/9)/2 = 0.22 -> band 1; 0.8 -> (4/9 + 5/9)/2 = 0.5, on the edge -> band 2.
    # Band 1: weight 4, bads 4; band 2: weight 5, bads 2.
    t = m.gains_table(Y6, S6, weights=[4, 1, 1, 1, 1, 1], n_bands=2)
    assert t["count"].tolist() == [1, 5]
    np.testing.assert_allclose(t["weight"], [4, 5])
    np.testing.assert_allclose(t["bads"], [4, 2])
    np.testing.assert_allclose(t["bad_rate"], [1.0, 0.4])
    np.testing.assert_allclose(t["lift"], [1.0 / (6 / 9), 0.4 / (6 / 9)])


def test_ties_never_split_across_bands():
    risk = np.array([3, 3, 3, 2, 1, 1])
    band = m.bands_by_shares(risk, [0.5, 0.5])
    assert band.tolist() == [0, 0, 0, 1, 1, 1]
    band = m.bands_by_shares(np.array([3, 3, 3, 3, 1, 1]), [0.5, 0.5])
    assert len(set(band[:4])) == 1


def test_ecb_deterioration_by_hand():
    # A = 0.70, n_b = 100, n_g = 900: Q1 = 0.7/1.3 = 0.538462, Q2 = 0.98/1.7 = 0.576471,
    # SE² = [0.21 + 99·0.048462 + 899·0.086471] / 90000 = 82.7448 / 90000 -> SE = 0.030321;
    # z = (0.70 − 0.75) / 0.030321 = −1.6490; p = Φ(−1.6490) = 0.04957.
    out = m.auc_deterioration_test(0.70, 0.75, 100, 900)
    assert out["se"] == pytest.approx(0.030321, abs=2e-6)
    assert out["z"] == pytest.approx(-1.6490, abs=2e-4)
    assert out["p_value"] == pytest.approx(0.04957, abs=5e-5)
    better = m.auc_deterioration_test(0.80, 0.75, 100, 900)
    assert better["p_value"] > 0.5
    assert m.auc_deterioration_test(0.7, 0.75, 100, 900, se=0.05)["z"] == pytest.approx(-1.0)


def test_migration_table_by_hand():
    frm = pd.Series(["A", "A", "B", "B", "D"])
    to = pd.Series(["A", "B", "B", "B", "A"])
    y = [0, 1, 0, 1, 1]
    t = m.migration_table(
        frm, to, y, ["A", "B", "C", "D"], ["A", "B", "C", "D"], weights=[1, 2, 3, 4, 5]
    )
    assert len(t) == 16 and t["count"].sum() == 5
    cell = t.set_index(["grade_from", "grade_to"])
    assert cell.loc[("B", "B"), "count"] == 2 and cell.loc[("B", "B"), "bad_rate"] == 0.5
    assert cell.loc[("B", "B"), "weighted_bad_rate"] == pytest.approx(4 / 7)
    assert cell.loc[("D", "A"), "bads"] == 1
    assert cell.loc[("C", "C"), "count"] == 0 and np.isnan(cell.loc[("C", "C"), "bad_rate"])


def test_grade_table_by_hand():
    t = m.grade_table(pd.Series(["A", "B", "B", "D"]), [0, 0, 1, 1], ["A", "B", "C", "D"])
    assert t["count"].tolist() == [1, 2, 0, 1]
    assert t["bad_rate"].tolist()[:2] == [0.0, 0.5] and np.isnan(t["bad_rate"].iloc[2])


def test_approve_by_rate_never_splits_ties():
    risk = [1, 1, 2, 3, 3, 3]
    assert m.approve_by_rate(risk, 0.5).tolist() == [True, True, True, False, False, False]
    # cuts available: 0, 2/6, 3/6, 1 -> 0.4 is closest to 2/6
    assert m.approve_by_rate(risk, 0.4).sum() == 2
    assert m.approve_by_rate(risk, 0.0).sum() == 0 and m.approve_by_rate(risk, 1.0).all()


def test_swap_set_by_hand():
    y = [0, 1, 0, 1, 0, 1]
    champion = [True, True, True, False, False, False]
    challenger = [True, False, True, True, False, False]
    t = m.swap_set(y, champion, challenger).set_index("segment")
    assert t.loc["accepted by both", "count"] == 2 and t.loc["accepted by both", "bads"] == 0
    assert t.loc["accepted by challenger only (swap-in)", "count"] == 1
    assert t.loc["accepted by challenger only (swap-in)", "bad_rate"] == 1.0
    assert t.loc["accepted by champion only (swap-out)", "bads"] == 1
    assert t.loc["rejected by both", "count"] == 2 and t.loc["rejected by both", "bad_rate"] == 0.5
    table, accept = m.swap_set_at_rate(y, champion, [1, 5, 2, 3, 6, 4])
    assert accept.tolist() == [True, False, True, True, False, False]
    assert table["count"].sum() == 6


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="0/1"):
        m.auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="missing"):
        m.auc([0, 1], [np.nan, 0.2])
    with pytest.raises(ValueError, match="at least one bad"):
        m.auc([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="non-negative"):
        m.auc([0, 1], [0.1, 0.2], weights=[1, -1])


# --------------------------------------------------------------------------------- properties
@st.composite
def scored_sample(draw, min_size: int = 4, max_size: int = 60):
    n = draw(st.integers(min_size, max_size))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    if sum(y) in (0, n):
        y[0], y[-1] = 0, 1
    risk = draw(st.lists(st.integers(-20, 20), min_size=n, max_size=n))  # integers: plenty of ties
    weights = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    return np.array(y), np.array(risk, dtype=float), np.array(weights, dtype=float)


@settings(max_examples=40, deadline=None)
@given(scored_sample())
def test_auc_invariant_under_monotone_transform(sample):
    y, risk, _ = sample
    a = m.auc_with_ci(y, risk)
    b = m.auc_with_ci(y, np.exp(risk / 7.0) * 3.0 - 1.0)
    assert a["auc"] == pytest.approx(b["auc"], abs=1e-12)
    assert a["se_delong"] == pytest.approx(b["se_delong"], abs=1e-12)
    assert m.ks_statistic(y, risk)["ks"] == pytest.approx(m.ks_statistic(y, risk**3)["ks"])


@settings(max_examples=40, deadline=None)
@given(scored_sample())
def test_auc_of_reversed_score(sample):
    y, risk, w = sample
    assert m.auc(y, -risk) == pytest.approx(1.0 - m.auc(y, risk), abs=1e-12)
    assert m.auc(y, -risk, w) == pytest.approx(1.0 - m.auc(y, risk, w), abs=1e-12)
    assert m.delong_se(y, -risk) == pytest.approx(m.delong_se(y, risk), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(scored_sample())
def test_unit_weights_equal_unweighted(sample):
    y, risk, _ = sample
    ones = np.ones(len(y))
    a, b = m.auc_with_ci(y, risk), m.auc_with_ci(y, risk, ones)
    for key in ("auc", "se_delong", "se_hanley_mcneil", "ci_low", "ci_high"):
        assert a[key] == pytest.approx(b[key], abs=1e-12)
    assert m.ks_statistic(y, risk)["ks"] == pytest.approx(m.ks_statistic(y, risk, ones)["ks"])
    pd.testing.assert_frame_equal(m.gains_table(y, risk), m.gains_table(y, risk, ones))


@settings(max_examples=40, deadline=None)
@given(scored_sample())
def test_integer_weights_equal_repeated_rows(sample):
    y, risk, w = sample
    reps = w.astype(int)
    assert m.auc(y, risk, w) == pytest.approx(
        m.auc(np.repeat(y, reps), np.repeat(risk, reps)), abs=1e-12
    )
    assert m.ks_statistic(y, risk, w)["ks"] == pytest.approx(
        m.ks_statistic(np.repeat(y, reps), np.repeat(risk, reps))["ks"], abs=1e-12
    )
    # placement means agree with sklearn's independent weighted AUC
    assert m.placement_values(y, risk, w)["auc"] == pytest.approx(
        roc_auc_score(y, risk, sample_weight=w), abs=1e-12
    )


@settings(max_examples=40, deadline=None)
@given(scored_sample())
def test_paired_test_with_itself_shows_no_difference(sample):
    y, risk, w = sample
    for weights in (None, w):
        out = m.delong_paired_test(y, risk, risk, weights)
        assert out["difference"] == 0.0 and out["se"] == pytest.approx(0.0, abs=1e-9)
        assert out["p_value"] == 1.0


@settings(max_examples=40, deadline=None)
@given(scored_sample(), st.floats(0.0, 1.0))
def test_approval_rate_is_closest_cut(sample, rate):
    _, risk, _ = sample
    accept = m.approve_by_rate(risk, rate)
    if accept.any() and (~accept).any():
        assert risk[accept].max() < risk[~accept].min()  # a cut, ties kept together
    cuts = [0.0] + [float(np.mean(risk <= v)) for v in np.unique(risk)]
    assert abs(accept.mean() - rate) == pytest.approx(min(abs(c - rate) for c in cuts), abs=1e-12)


# ------------------------------------------------------------------------- cluster bootstrap
def test_ranked_auc_and_ks_by_hand():
    """y = 1,0,1,0 with risk 2,1,1,0 and weights 1,2,1,1. Bads: risk 2 (w 1), risk 1 (w 1); goods:
    risk 1 (w 2), risk 0 (w 1). AUC = [1·3 + 1·(½·2 + 1)] / (2·3) = 5/6. KS over the cuts from
    the riskiest: after risk 2 |1/2 − 0| = 1/2, after risk 1 |1 − 2/3| = 1/3, then 0: KS = 1/2.
    """
    y, risk = np.array([1, 0, 1, 0]), np.array([2.0, 1.0, 1.0, 0.0])
    w = np.array([[1.0, 2.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]])
    a, k = m._RankedScore(y, risk).auc_ks(w)
    assert a[0] == pytest.approx(5 / 6) and k[0] == pytest.approx(0.5)
    # unit weights: bads (2, 1) vs goods (1, 0): pairs won 2 + 1.5 of 4 = 0.875; KS = 1/2
    assert a[1] == pytest.approx(0.875) and k[1] == pytest.approx(0.5)
    assert np.isnan(a[2]) and np.isnan(k[2])  # no bad drawn: the resample is unusable


@settings(max_examples=40, deadline=None)
@given(scored_sample())
def test_ranked_auc_matches_sklearn_and_ks(sample):
    y, risk, w = sample
    a, k = m._RankedScore(y, risk).auc_ks(w[None, :])
    assert a[0] == pytest.approx(roc_auc_score(y, risk, sample_weight=w), abs=1e-12)
    assert k[0] == pytest.approx(m.ks_statistic(y, risk, w)["ks"], abs=1e-12)


def test_resample_weights_are_whole_customers_and_seeded():
    clusters = np.array(["a", "a", "b", "c", "c", "c"])
    blocks = list(m.cluster_resample_weights(clusters, 7, seed=5, chunk=3))
    w = np.vstack(blocks)
    assert w.shape == (7, 6)
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 3] == w[:, 5]).all()  # one draw per customer
    assert (w[:, [0, 2, 3]].sum(axis=1) == 3).all()  # three customers drawn per resample
    again = np.vstack(list(m.cluster_resample_weights(clusters[::-1][::-1], 7, seed=5, chunk=7)))
    np.testing.assert_array_equal(w, again)  # chunking does not change the draws


def _clustered(seed: int, n_customers: int = 150, per: int = 8):
    rng = np.random.default_rng(seed)
    cust = np.repeat(np.arange(n_customers), per)
    frailty = np.repeat(rng.normal(size=n_customers), per)
    y = (rng.random(len(cust)) < 1 / (1 + np.exp(-(1.5 * frailty - 1.5)))).astype(int)
    score_a = frailty + rng.normal(0, 0.6, len(cust))
    score_b = frailty + rng.normal(0, 1.2, len(cust))
    return y, score_a, score_b, cust


def test_cluster_bootstrap_is_reproducible_and_labelled():
    y, a, b, cust = _clustered(1)
    args = dict(pairs=[("a", "b")], n_resamples=300, level=0.9)
    one = m.cluster_bootstrap(y, {"a": a, "b": b}, cust, seed=11, **args)
    two = m.cluster_bootstrap(y, {"a": a, "b": b}, cust, seed=11, **args)
    other = m.cluster_bootstrap(y, {"a": a, "b": b}, cust, seed=12, **args)
    assert one == two
    assert one["scores"]["a"]["ci_low"] != other["scores"]["a"]["ci_low"]
    assert one["n_customers"] == 150 and one["n_resamples"] == 300 and one["seed"] == 11
    s = one["scores"]["a"]
    assert s["auc"] == pytest.approx(m.auc(y, a))
    assert s["ci_low"] < s["auc"] < s["ci_high"]
    p = one["pairs"]["a_vs_b"]
    assert p["difference"] == pytest.approx(m.auc(y, a) - m.auc(y, b))


def test_duplicated_rows_inflate_delong_not_the_cluster_bootstrap():
    """Each customer's single row copied m = 6 times: with clusters = customers the bootstrap
    draws the same customers (same seed, same number of clusters), so it gives exactly the figures
    of the one-row-per-customer data; DeLong, assuming 6m independent rows, shrinks its SE by about
    √6, so the design effect is about 6."""
    rng = np.random.default_rng(3)
    n = 200
    u = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * u - 1)))).astype(int)
    risk = u + rng.normal(0, 0.7, n)
    cust = np.arange(n)
    base = m.cluster_bootstrap(y, {"s": risk}, cust, n_resamples=400, seed=2)
    dup = m.cluster_bootstrap(
        np.repeat(y, 6), {"s": np.repeat(risk, 6)}, np.repeat(cust, 6), n_resamples=400, seed=2
    )
    for key in ("auc", "ci_low", "ci_high", "se_cluster_bootstrap", "ks_ci_low"):
        assert dup["scores"]["s"][key] == pytest.approx(base["scores"]["s"][key], abs=1e-12)
    assert base["scores"]["s"]["design_effect"] == pytest.approx(1.0, abs=0.35)
    assert dup["scores"]["s"]["design_effect"] == pytest.approx(6.0, rel=0.3)


def test_cluster_bootstrap_paired_identical_scores():
    y, a, _, cust = _clustered(4)
    out = m.cluster_bootstrap(y, {"a": a, "b": a}, cust, pairs=[("a", "b")], n_resamples=50)
    p = out["pairs"]["a_vs_b"]
    assert p["difference"] == 0.0 and p["se"] == 0.0 and p["p_value"] == 1.0


@pytest.mark.slow
def test_cluster_bootstrap_covers_the_true_auc():
    """Coverage on clustered data: over 60 samples the 90% clustered interval covers the
    population AUC (from one large sample) about 90% of the time; the DeLong interval that assumes
    independent rows covers it much less often."""
    truth = m.auc(*_clustered(999, n_customers=20000)[:2])
    cover_boot = cover_delong = 0
    for seed in range(60):
        y, a, _, cust = _clustered(seed)
        out = m.cluster_bootstrap(y, {"a": a}, cust, n_resamples=300, seed=seed, level=0.9)
        s = out["scores"]["a"]
        cover_boot += s["ci_low"] <= truth <= s["ci_high"]
        lo, hi = m._wald_ci(s["auc"], s["se_delong_independent"], 0.9)
        cover_delong += lo <= truth <= hi
    assert cover_boot >= 47  # ≥ 78% of 60 (90% nominal, binomial noise)
    assert cover_delong < cover_boot


def test_cluster_resample_blocks_are_bounded_without_changing_the_draws(monkeypatch) -> None:
    """Large samples get fewer resamples per block (memory), never different resamples."""
    clusters = np.repeat(np.arange(40), 3).astype(str)
    whole = np.vstack(list(m.cluster_resample_weights(clusters, 9, seed=11)))
    monkeypatch.setattr(m, "BOOTSTRAP_BLOCK_BYTES", 8 * len(clusters) * 2)  # two rows per block
    blocks = list(m.cluster_resample_weights(clusters, 9, seed=11))
    assert [len(b) for b in blocks] == [2, 2, 2, 2, 1]
    np.testing.assert_array_equal(np.vstack(blocks), whole)
