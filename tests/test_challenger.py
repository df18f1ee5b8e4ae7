"""Raw logistic challenger: the JSON spec alone reproduces the fitted pipeline + statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from pipeline.challenger import fit_challenger, predict_pd, preprocessing
from pipeline.domain import PipelineError
from pipeline.io import read_json, write_json
from pipeline.params import to_dict
from pipeline.params.train import TrainParams
from tests.fixtures.snapshots import SCORING_FEATURES, uci_snapshot_frame


@pytest.fixture(scope="module")
def challenger(make_params) -> dict:
    """``train.challenger`` of params.yaml as keyword arguments of `fit_challenger`."""
    return to_dict(make_params(TrainParams, "train", "uci").challenger)


@pytest.fixture(scope="module")
def uci(uci_csv, challenger):
    df = uci_snapshot_frame(uci_csv, n_rows=12000)
    train, test = df.iloc[:9000], df.iloc[9000:]
    spec = fit_challenger(train[SCORING_FEATURES], train["is_bad"].astype(int), **challenger)
    return spec, train, test


def test_spec_reproduces_pipeline_and_statsmodels(uci, challenger) -> None:
    """predict_pd(spec) equals sklearn preprocessing + statsmodels predict on the kept columns."""
    spec, train, test = uci
    numeric = SCORING_FEATURES
    pipe = preprocessing(challenger["clip_quantile"]).fit(train[numeric])
    kept = [f["name"] for f in spec["features"]]
    Z = pd.DataFrame(pipe.transform(train[numeric]), columns=numeric)[kept]
    model = sm.Logit(train["is_bad"].astype(int).to_numpy(), sm.add_constant(Z)).fit(disp=0)
    Zt = pd.DataFrame(pipe.transform(test[numeric]), columns=numeric)[kept]
    expected = model.predict(sm.add_constant(Zt, has_constant="add"))
    np.testing.assert_allclose(predict_pd(spec, test), expected, rtol=1e-9, atol=1e-12)


def test_json_round_trip_exact(uci, tmp_path) -> None:
    spec, _, test = uci
    write_json(spec, tmp_path / "logistic.json")
    assert np.array_equal(
        predict_pd(read_json(tmp_path / "logistic.json"), test), predict_pd(spec, test)
    )


def test_spec_reports_inference_and_ranks(uci) -> None:
    spec, _, test = uci
    for f in spec["features"]:
        assert f["std_error"] > 0 and 0 <= f["p_value"] <= 1 and f["scale"] > 0
    assert roc_auc_score(test["is_bad"].astype(int), predict_pd(spec, test)) > 0.70


def test_hand_computed_single_feature() -> None:
    """clip -> impute -> standardise -> logit, computed by hand for one feature."""
    spec = {
        "kind": "raw_logistic",
        "intercept": -1.0,
        "features": [
            {
                "name": "x",
                "clip_lower": 0.0,
                "clip_upper": 10.0,
                "impute_value": 2.0,
                "mean": 4.0,
                "scale": 2.0,
                "coefficient": 0.5,
            }
        ],
    }
    X = pd.DataFrame({"x": [6.0, 50.0, np.nan, np.inf, -3.0]})
    # z: (6-4)/2=1, (10-4)/2=3, (2-4)/2=-1, inf->missing->-1, clipped 0 -> -2
    logits = [-1 + 0.5 * z for z in (1, 3, -1, -1, -2)]
    np.testing.assert_allclose(predict_pd(spec, X), [1 / (1 + math.exp(-v)) for v in logits])


def test_missing_column_is_an_error() -> None:
    spec = {
        "kind": "raw_logistic",
        "intercept": 0.0,
        "features": [
            {
                "name": "x",
                "clip_lower": 0,
                "clip_upper": 1,
                "impute_value": 0,
                "mean": 0,
                "scale": 1,
                "coefficient": 1,
            }
        ],
    }
    with pytest.raises(PipelineError, match="'x'"):
        predict_pd(spec, pd.DataFrame({"y": [1.0]}))


def test_collinear_and_constant_columns_are_dropped_with_reason(challenger) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=3000)
    y = (rng.random(3000) < 1 / (1 + np.exp(-x))).astype(int)
    X = pd.DataFrame({"x": x, "twin": 2 * x + 1, "flat": 1.0, "label": "a"})
    spec = fit_challenger(X, y, **challenger)
    reasons = {d["feature"]: d["reason"] for d in spec["dropped"]}
    assert [f["name"] for f in spec["features"]] == ["x"]
    assert (
        "correlation" in reasons["twin"]
        and "constant" in reasons["flat"]
        and "numeric" in reasons["label"]
    )


@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3))
@settings(max_examples=50, deadline=None)
def test_pd_monotone_in_feature_with_positive_coefficient(a, b) -> None:
    spec = {
        "kind": "raw_logistic",
        "intercept": 0.0,
        "features": [
            {
                "name": "x",
                "clip_lower": -1e4,
                "clip_upper": 1e4,
                "impute_value": 0.0,
                "mean": 0.0,
                "scale": 100.0,
                "coefficient": 0.7,
            }
        ],
    }
    p = predict_pd(spec, pd.DataFrame({"x": [min(a, b), max(a, b)]}))
    assert p[0] <= p[1]
