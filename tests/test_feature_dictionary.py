"""The feature dictionary (pipeline/features/sql/dictionary.yaml) and the feature SQL agree exactly.

For every dataset's windows and label source: each column the SQL outputs (keys and labels aside) has a
dictionary row, and each dictionary row computed by the SQL is a column it outputs; the same for the
columns `pipeline.rules` appends and the truth's ``true_pd``.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from pipeline import rules
from pipeline.config import load_params
from pipeline.features.dictionary import DIRECTIONS, dictionary_entries, expand_dictionary
from pipeline.features.duckdb_engine import compute_snapshots
from pipeline.features.platform import FEATURES as PLATFORM_FEATURES
from pipeline.params import load
from pipeline.params.features import FeaturesParams
from pipeline.params.rules import RulesParams
from tests.fixtures.ledger import make_ledger

KEYS_AND_LABELS = {"customer_id", "as_of_date", "label", "is_bad"}
DATASETS = sorted(load_params()["datasets"])


@pytest.fixture(scope="module")
def ledger() -> dict[str, pd.DataFrame]:
    return make_ledger(n_customers=8, months=24, seed=3)


def _params(dataset: str) -> FeaturesParams:
    """The dataset's features block (windows, label source), on the test ledger's calendar."""
    params = load(FeaturesParams, "features", dataset)
    as_of = dataclasses.replace(params.as_of, start="2024-06-30", end="2024-09-30", freq="ME")
    return dataclasses.replace(params, as_of=as_of, data_cutoff="2024-12-31")


def _by_source(params: FeaturesParams) -> dict[str, set[str]]:
    table = expand_dictionary(params.windows, set(params.windows_months), params.label.source)
    return {
        source: set(table.loc[table["added_by"] == source, "feature"])
        for source in ("sql", "rules", "truth", "platform")
    }


@pytest.mark.parametrize("dataset", DATASETS)
def test_sql_columns_and_dictionary_agree(ledger, dataset):
    params = _params(dataset)
    truth = pd.DataFrame(
        {
            "customer_id": pd.Series(dtype=str),
            "month_end": pd.Series(dtype="datetime64[ns]"),
            "true_pd_12m": pd.Series(dtype=float),
        }
    )
    snaps = compute_snapshots({**ledger, "truth": truth}, params)["snapshots"]
    documented = _by_source(params)
    produced = set(snaps.columns) - KEYS_AND_LABELS
    assert produced - documented["sql"] - documented["truth"] == set(), "columns without a row"
    assert documented["sql"] - produced == set(), "rows the SQL does not produce"
    assert documented["truth"] <= produced
    graded = rules.grade(snaps, load(RulesParams, "rules", dataset))
    appended = set(graded.columns) - set(snaps.columns)
    assert appended == documented["rules"]
    assert set(PLATFORM_FEATURES) == documented["platform"]


def test_window_rows_follow_the_windows():
    params = load(FeaturesParams, "features", DATASETS[0])
    params = dataclasses.replace(params, windows_months=(1, 24))
    table = expand_dictionary(params.windows, {1, 24}, "ledger").set_index("feature")
    assert params.windows == [1, 12, 24]
    assert table.loc["paydex_1m", "window_months"] == 1 and table.loc["paydex_1m", "scoring"]
    assert not table.loc["paydex_12m", "scoring"]  # computed for the rules, not listed
    assert table.loc["days_beyond_terms_trend", "window_months"] == 24
    assert (
        "days_beyond_terms_wavg_1m − days_beyond_terms_wavg_24m"
        in (table.loc["days_beyond_terms_trend", "definition"])
    )
    flag = expand_dictionary([3, 12], {3}, "customer_flag").set_index("feature")
    assert flag.loc["source_default_flag", "definition"].endswith("(the label here)")


def test_every_entry_is_complete():
    names = []
    for entry in dictionary_entries():
        assert {
            "name",
            "definition",
            "window_months",
            "unit",
            "dtype",
            "scoring",
            "direction",
        } <= set(entry), entry["name"]
        assert entry["direction"] in DIRECTIONS
        assert entry["dtype"] in ("numeric", "categorical")
        assert ("{w}" in entry["name"]) == bool(entry.get("per_window")), entry["name"]
        names.append(entry["name"])
    assert len(names) == len(set(names))
