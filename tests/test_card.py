"""The deploy-time card: no fitting library loaded, the bundle's calibrated PD, the card JSON."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.calibration import calibrator_from_dict
from pipeline.card import CARD_KIND, SCHEMA_VERSION, calibrated_pd, card_spec, load_card
from pipeline.domain import PipelineError

ROOT = Path(__file__).resolve().parents[1]
FITTING_LIBRARIES = ("sklearn", "optbinning", "statsmodels", "scipy")


def test_scoring_modules_load_no_fitting_library() -> None:
    """The score command, the exports and the card import numpy/pandas only, not the estimator."""
    code = (
        "import sys, json\n"
        "import pipeline.card, pipeline.score, pipeline.exports\n"
        f"print(json.dumps([m for m in {FITTING_LIBRARIES!r} if m in sys.modules]))\n"
        "print(json.dumps('pipeline.scorecard' in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    loaded, estimator = (json.loads(line) for line in proc.stdout.splitlines())
    assert loaded == []
    assert estimator is False


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_platt_pd_by_hand() -> None:
    """PD = 1 / (1 + exp(-(a + b * score))), floored: a = 10, b = -0.02 at 500 gives σ(0) = 0.5."""
    spec = {"method": "platt", "intercept": 10.0, "slope": -0.02, "pd_floor": 0.0003}
    got = calibrated_pd(spec, [500.0, 600.0, 2000.0])
    assert got[0] == pytest.approx(0.5)
    assert got[1] == pytest.approx(_sigmoid(-2.0))
    assert got[2] == 0.0003  # σ(-30) ≈ 9e-14 is below the floor


def test_isotonic_pd_by_hand_and_shift() -> None:
    """Linear between thresholds, flat beyond; the shift moves the logit: σ(logit(0.1) + ln 2)."""
    spec = {
        "method": "isotonic",
        "x_thresholds": [400.0, 500.0, 600.0],
        "y_thresholds": [0.3, 0.1, 0.02],
        "pd_floor": 0.0,
    }
    assert calibrated_pd(spec, [300.0, 450.0, 700.0]).tolist() == pytest.approx([0.3, 0.2, 0.02])
    shifted = calibrated_pd({**spec, "intercept_shift": math.log(2.0)}, [500.0])
    assert shifted[0] == pytest.approx(0.2 / 1.1)  # odds 1/9 doubled: 2/9 -> PD 2/11


def test_unknown_calibration_method_is_an_error() -> None:
    with pytest.raises(PipelineError, match="unknown method 'beta'"):
        calibrated_pd({"method": "beta", "pd_floor": 0.0}, [500.0])


@settings(max_examples=60, deadline=None)
@given(
    a=st.floats(-20, 20),
    b=st.floats(-0.1, -1e-4),
    shift=st.floats(-3, 3),
    floor=st.floats(0, 0.01),
    scores=st.lists(st.floats(0, 1000), min_size=1, max_size=20),
)
def test_platt_matches_the_fitted_calibrator(a, b, shift, floor, scores) -> None:
    """The deploy-time map gives the calibrate stage's PDs bit for bit (same arithmetic)."""
    spec = {
        "method": "platt",
        "intercept": a,
        "slope": b,
        "intercept_shift": shift,
        "pd_floor": floor,
        "central_tendency": None,
    }
    want = calibrator_from_dict(spec).predict_pd(scores)
    np.testing.assert_array_equal(calibrated_pd(spec, scores), want)


@settings(max_examples=60, deadline=None)
@given(
    ys=st.lists(st.floats(0, 1), min_size=2, max_size=8),
    shift=st.floats(-3, 3),
    scores=st.lists(st.floats(-100, 1100), min_size=1, max_size=20),
)
def test_isotonic_matches_the_fitted_calibrator(ys, shift, scores) -> None:
    ys = sorted(ys, reverse=True)
    spec = {
        "method": "isotonic",
        "x_thresholds": list(np.linspace(0, 1000, len(ys))),
        "y_thresholds": ys,
        "intercept_shift": shift,
        "pd_floor": 0.0,
        "central_tendency": None,
    }
    want = calibrator_from_dict(spec).predict_pd(scores)
    np.testing.assert_array_equal(calibrated_pd(spec, scores), want)


def test_card_spec_round_trips_through_load_card(tmp_path: Path) -> None:
    """A card assembled by `card_spec` is one `load_card` accepts, with the published key order."""
    spec = card_spec(
        dataset="toy",
        provenance={},
        sample={"n_train": 10, "n_bad": 2},
        scaling={"base_score": 600, "base_odds": 50, "pdo": 20, "factor": 28.85, "offset": 487.1},
        intercept=-2.0,
        features=[],
        rounding={},
        reason_baseline="max",
        top_n=4,
        empty_bin_woe="worst",
        selection=[],
    )
    assert (spec["kind"], spec["schema_version"]) == (CARD_KIND, SCHEMA_VERSION)
    assert list(spec)[:3] == ["schema_version", "kind", "dataset"]
    assert (
        spec["bin_rules"]["woe_pure_bin"]
        == "add 0.5 to goods and bads of a bin with none of either"
    )
    path = tmp_path / "scorecard.json"
    path.write_text(json.dumps(spec))
    assert load_card(path) == spec
    path.write_text(json.dumps({**spec, "schema_version": "0.9"}))
    with pytest.raises(PipelineError, match="not a scorecard card of schema 1.0"):
        load_card(path)
