"""Platform indicators: hand-worked features, small-count shrinkage, the platform grade, point in time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.features import platform as platform_module
from tests.fixtures.feature_params import features_params

PLATFORM = features_params().platform  # params.yaml features.platform: k = 20, refund prior 3%


def platform_features(platform: pd.DataFrame, keys: pd.DataFrame) -> pd.DataFrame:
    return platform_module.platform_features(platform, keys, PLATFORM)


MONTHS = pd.date_range("2024-01-31", periods=12, freq="ME")


def _platform() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": "A",
            "period": MONTHS,
            "rating": [4.0] * 9 + [4.6, 4.8, 5.0],
            "transactions": pd.array([10] * 9 + [100, 50, 50], dtype="Int64"),
            "refunds": pd.array([1] * 9 + [2, 1, 1], dtype="Int64"),
            "complaints": pd.array([0] * 12, dtype="Int64"),
        }
    )


def test_hand_worked_features_at_year_end():
    keys = pd.DataFrame({"customer_id": ["A", "B"], "as_of_date": [MONTHS[-1], MONTHS[-1]]})
    f = platform_features(_platform(), keys)
    a = f.iloc[0]
    # 3 months: (4.6·100 + 4.8·50 + 5.0·50) / 200 = 4.75; 12 months: (4·90 + 950) / 290
    assert a["platform_rating_3m"] == pytest.approx(4.75)
    assert a["platform_rating_trend"] == pytest.approx(4.75 - (4.0 * 90 + 950) / 290)
    assert a["platform_transactions_3m"] == 200
    assert a["platform_transactions_trend"] == pytest.approx(200 * 4 / 290 - 1)
    # 6 months: 30 + 200 transactions, 3 + 4 refunds; shrunk (7 + 20·0.03) / (230 + 20)
    assert a["platform_refund_rate_6m"] == pytest.approx(7.6 / 250)
    assert a["platform_complaint_rate_6m"] == pytest.approx(20 * 0.01 / 250)
    assert a["platform_months_12m"] == 12
    # rating 4.75 >= 4.5, refund 3.04% > 3% -> not A; B: <= 6%, complaints 0.08% <= 2% -> B
    assert a["grade_platform"] == "B"
    assert f.iloc[1].drop("grade_platform").isna().all() and f.iloc[1]["grade_platform"] is None


def test_small_counts_are_shrunk_toward_the_prior():
    p = pd.DataFrame(
        {
            "customer_id": ["A"],
            "period": [MONTHS[0]],
            "rating": [5.0],
            "transactions": pd.array([3], dtype="Int64"),
            "refunds": pd.array([1], dtype="Int64"),
            "complaints": pd.array([0], dtype="Int64"),
        }
    )
    f = platform_features(p, pd.DataFrame({"customer_id": ["A"], "as_of_date": [MONTHS[0]]}))
    k, prior = PLATFORM.prior_transactions, PLATFORM.prior_refund_rate
    assert f.iloc[0]["platform_refund_rate_6m"] == pytest.approx((1 + k * prior) / (3 + k))
    assert f.iloc[0]["platform_refund_rate_6m"] < 0.1  # not the raw 33%


def test_rows_after_t_change_nothing_at_t():
    t = MONTHS[7]
    keys = pd.DataFrame({"customer_id": ["A"], "as_of_date": [t]})
    base = platform_features(_platform(), keys)
    later = _platform()
    after = later["period"] > t
    later.loc[after, "rating"] = 1.0
    later.loc[after, "refunds"] = later.loc[after, "transactions"]
    extra = later.iloc[[0]].assign(period=t + pd.offsets.MonthEnd(6), transactions=999)
    edited = pd.concat([later[~after.to_numpy() | (np.arange(len(later)) % 2 == 0)], extra])
    pd.testing.assert_frame_equal(base, platform_features(edited, keys))
    # guard: a change at t does show
    at = _platform()
    at.loc[at["period"] == t, "rating"] = 1.0
    assert (
        platform_features(at, keys).iloc[0]["platform_rating_3m"]
        != base.iloc[0]["platform_rating_3m"]
    )
