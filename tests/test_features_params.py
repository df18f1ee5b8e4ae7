"""The features and settle blocks: every dataset builds, and each rule fails on one line naming its key."""

from __future__ import annotations

import re

import pytest

from pipeline.config import load_params
from pipeline.params import ParamsError
from pipeline.params.features import FeaturesParams, stated_cutoff
from pipeline.params.settle import SettleParams
from tests.fixtures.feature_params import features_params, settle_params


@pytest.mark.parametrize("dataset", sorted(load_params()["datasets"]))
def test_every_dataset_builds(make_params, dataset):
    params = make_params(FeaturesParams, "features", dataset)
    assert 12 in params.windows and params.windows == sorted(params.windows)
    assert make_params(SettleParams, "settle", dataset).threads >= 1


@pytest.mark.parametrize(
    "override, key, rule",
    [
        ({"label": {"source": "bureau"}}, "features.label.source", "one_of"),
        ({"label": {"material_share": 1.5}}, "features.label.material_share", "in_range"),
        (
            {"label": {"good_max_days_beyond_terms": 120}},
            "features.label.good_max_days_beyond_terms",
            "in_range",
        ),
        (
            {"segments": {"delinquent_days_beyond_terms": 90}},
            "features.segments.delinquent_days_beyond_terms",
            "below_bad_threshold",
        ),
        ({"windows_months": [3, 3]}, "features.windows_months", "distinct_positive"),
        (
            {"as_of": {"start": "2025-01-31", "end": "2024-01-31"}},
            "features.as_of.start",
            "not_after_end",
        ),
        ({"as_of": {"freq": "fortnightly"}}, "features.as_of.freq", "pandas_freq"),
        ({"data_cutoff": "end of 2025"}, "features.data_cutoff", "date"),
        ({"memory_limit": "lots"}, "features.memory_limit", "memory_size"),
        ({"customer_chunks": 0}, "features.customer_chunks", "positive"),
        ({"customer_chunks": "many"}, "features.customer_chunks", "type"),
        (
            {"platform": {"prior_transactions": -1}},
            "features.platform.prior_transactions",
            "non_negative",
        ),
    ],
)
def test_rules_name_the_key(override, key, rule):
    with pytest.raises(ParamsError) as info:
        features_params(override)
    assert re.match(rf"params\.yaml: key {re.escape(key)}: rule {rule}: ", str(info.value)), (
        info.value
    )


def test_settle_resources_are_checked():
    with pytest.raises(ParamsError, match="key settle.threads: rule positive"):
        settle_params({"threads": 0})


def test_cutoff_is_stated_never_derived():
    assert stated_cutoff(None, "2025-12-31", "synthetic") == "2025-12-31"
    assert stated_cutoff("2025-06-30", "2025-12-31", "synthetic") == "2025-06-30"
    with pytest.raises(ParamsError, match="key datasets.x.ingest.data_cutoff: rule required"):
        stated_cutoff(None, None, "x")
