"""Spark parity: the same feature definitions on DuckDB and on Spark (local mode) give the same snapshots, and
the scorecard's SQL export gives the same points in Spark SQL as the Python scoring from the JSON card.

Marked ``spark`` (deselected by default; .ci runs it as its own step). Skipped when pyspark or Java is missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.features.spark import spark_available
from tests.fixtures.feature_params import features_params, settle_params

pytestmark = pytest.mark.spark

REASON = spark_available()
if REASON:
    pytest.skip(f"Spark parity needs pyspark and Java: {REASON}", allow_module_level=True)

PARAMS = {
    "windows_months": [3, 6, 12],
    "threads": 2,
    "memory_limit": "1GB",
    "as_of": {"start": "2023-12-31", "end": "2024-05-31", "freq": "ME"},
    "roll_rate_months": 6,
    "label": {
        "source": "ledger",
        "performance_window_months": 6,
        "bad_days_beyond_terms": 90,
        "good_max_days_beyond_terms": 30,
        "material_amount": 100.0,
        "material_share": 0.01,
    },
    "paydex_floor": 1,
}
PARAMS = features_params(PARAMS)
EXACT_UNITS = {"count", "currency"}


@pytest.fixture(scope="module")
def spark():
    from pipeline.features.spark import spark_session

    session = spark_session(threads=2)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def ledger():
    from pipeline.synth import generate_ledger

    return generate_ledger(60, 18, "2023-01-01", 20261129)


@pytest.fixture(scope="module")
def both(spark, ledger):
    from pipeline.features.duckdb_engine import compute_snapshots
    from pipeline.features.spark import compute_snapshots_spark

    duck = compute_snapshots(ledger, PARAMS, with_analysis=True)
    sprk = compute_snapshots_spark(ledger, PARAMS, with_analysis=True, spark=spark)
    return duck, sprk


def _exact_columns(columns: list[str]) -> set[str]:
    from pipeline.features.dictionary import feature_dictionary

    table = feature_dictionary(PARAMS, columns)
    return set(table.loc[table["unit"].isin(EXACT_UNITS), "feature"])


def test_snapshots_identical(both):
    duck, sprk = both[0]["snapshots"], both[1]["snapshots"]
    assert len(duck) > 100 and duck["label"].nunique() > 1, (
        "ledger too small to exercise the features"
    )
    assert list(duck.columns) == list(sprk.columns)
    assert len(duck) == len(sprk)
    pd.testing.assert_frame_equal(
        duck[["customer_id", "as_of_date"]], sprk[["customer_id", "as_of_date"]]
    )
    exact = _exact_columns(list(duck.columns))
    assert {"invoice_count_12m", "invoiced_amount_12m", "exposure"} <= exact
    for col in duck.columns:
        a, b = duck[col], sprk[col]
        assert str(a.dtype) == str(b.dtype), f"{col}: dtype {a.dtype} vs {b.dtype}"
        if pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a):
            x, y = a.astype("float64").to_numpy(), b.astype("float64").to_numpy()
            assert np.array_equal(np.isnan(x), np.isnan(y)), f"{col}: missing values differ"
            if col in exact or a.dtype.kind in "iu" or str(a.dtype).startswith("Int"):
                assert np.array_equal(x, y, equal_nan=True), f"{col}: counts/sums differ"
            else:
                np.testing.assert_allclose(
                    x, y, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=col
                )
        else:
            assert (
                a.astype(object).where(a.notna(), None).tolist()
                == b.astype(object).where(b.notna(), None).tolist()
            ), f"{col}: values differ"


def test_analysis_tables_identical(both):
    duck, sprk = both
    pd.testing.assert_frame_equal(duck["vintage_events"], sprk["vintage_events"])
    pd.testing.assert_frame_equal(duck["buckets"], sprk["buckets"])
    assert duck["data_cutoff"] == sprk["data_cutoff"]


def test_spark_reads_the_stored_settlement(spark, ledger, both, tmp_path):
    """Spark given the `settle` stage's tables (written by DuckDB) gives the snapshots it computes itself."""
    from pipeline.features.duckdb_engine import compute_settlement
    from pipeline.features.spark import compute_snapshots_spark
    from pipeline.features.sql import SETTLEMENT_TABLES

    compute_settlement(ledger, settle_params(), tmp_path)
    stored = {n: tmp_path / f"{n}.parquet" for n in SETTLEMENT_TABLES}
    again = compute_snapshots_spark({**ledger, **stored}, PARAMS, spark=spark)
    pd.testing.assert_frame_equal(both[1]["snapshots"], again["snapshots"], check_exact=True)


def _card() -> dict:
    """A two-characteristic card written by hand (numeric ranges, a special value, missing bins)."""

    def rng(lo, hi, pts):
        return {"type": "range", "lower": lo, "upper": hi, "points": pts}

    return {
        "schema_version": "1.0",
        "kind": "woe_logistic_scorecard",
        "scaling": {
            "base_score": 600,
            "base_odds": 50,
            "pdo": 20,
            "factor": 28.85390081777927,
            "offset": 487.1228762045055,
        },
        "intercept": -1.0,
        "reason_codes": {"top_n": 2},
        "features": [
            {
                "name": "days_beyond_terms_max_12m",
                "dtype": "numeric",
                "reason_code": "R01",
                "reason_text": "late",
                "baseline_points": 60,
                "unseen_points": 5,
                "bins": [
                    rng(None, 0.5, 60),
                    rng(0.5, 15.5, 40),
                    rng(15.5, None, 5),
                    {"type": "special", "values": [-1.0], "points": 30},
                    {"type": "missing", "points": 20},
                ],
            },
            {
                "name": "late_invoice_share_12m",
                "dtype": "numeric",
                "reason_code": "R02",
                "reason_text": "share late",
                "baseline_points": 55,
                "unseen_points": 10,
                "bins": [
                    rng(None, 0.1, 55),
                    rng(0.1, 0.4, 35),
                    rng(0.4, None, 10),
                    {"type": "missing", "points": 25},
                ],
            },
        ],
    }


def test_scorecard_sql_export_runs_in_spark_sql(spark, both):
    from pipeline.card import score_frame
    from pipeline.exports import SQL_INPUT_TABLE, scorecard_sql
    from pipeline.features.spark import register_table

    card = _card()
    names = [f["name"] for f in card["features"]]
    X = both[0]["snapshots"][names].astype("float64").reset_index(drop=True)
    X.loc[0, names[0]] = -1.0  # special value
    X.loc[1, names[0]] = 15.5  # on an edge: [15.5, inf)
    X.loc[2, names[1]] = np.nan  # missing
    X.insert(0, "row_id", np.arange(len(X)))
    register_table(spark, SQL_INPUT_TABLE, X)
    spark.conf.set(
        "spark.sql.ansi.enabled", "true"
    )  # the export quotes identifiers the ANSI way ("name")
    spark.conf.set("spark.sql.ansi.doubleQuotedIdentifiers", "true")
    try:
        got = (
            spark.sql(scorecard_sql(card)).toPandas().sort_values("row_id").reset_index(drop=True)
        )
    finally:
        spark.conf.set("spark.sql.ansi.doubleQuotedIdentifiers", "false")
        spark.conf.set("spark.sql.ansi.enabled", "false")
    want = score_frame(card, X[names])
    assert got.loc[0, "points__" + names[0]] == 30 and got.loc[1, "points__" + names[0]] == 5
    assert got.loc[2, "points__" + names[1]] == 25
    for name in names:
        np.testing.assert_array_equal(
            got[f"points__{name}"].to_numpy(), want[f"points__{name}"].to_numpy()
        )
    np.testing.assert_array_equal(got["score"].to_numpy(), want["score"].to_numpy())
    np.testing.assert_allclose(got["pd_model"].to_numpy(), want["pd_model"].to_numpy(), rtol=1e-12)
