"""The publish stage end to end on the hand card: every output, determinism, bad inputs."""

from __future__ import annotations

import sys

import duckdb
import numpy as np
import pandas as pd
import pytest

from pipeline import publish
from pipeline.config import Paths, PipelineError
from pipeline.exports import SQL_INPUT_TABLE, check_against_python
from pipeline.io import write_json, write_parquet
from pipeline.score import load_bundle, score_customers
from tests.fixtures.cards import hand_card, hand_cutoffs

OUTPUTS = [
    "scorecard.json",
    "scorecard.sql",
    "sql/scorecard.postgres.sql",
    "sql/scorecard.sqlite.sql",
    "sql/scorecard.oracle.sql",
    "scorecard.pmml",
    "export_checks.json",
    "scorecard.xlsx",
    "scorecard.csv",
    "limit_table.csv",
    "credit_policy.csv",
    "dunning_strategy.csv",
    "boundary_cases.csv",
    "model_card.md",
]


def stage_inputs(root, cutoffs=None) -> Paths:
    paths = Paths("synthetic", root=root)
    write_json(hand_card(), paths.models / "scorecard.json")
    write_json(cutoffs or hand_cutoffs(), paths.models / "grade_cutoffs.json")
    snaps = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c", "d"],
            "as_of_date": pd.to_datetime(
                ["2025-01-31", "2025-02-28", "2025-02-28", "2025-02-28", "2025-02-28"]
            ),
            "avg_monthly_invoiced": [1.0e9, 4000.0, 6000.0, 30000.0, 2.0e6],
        }
    )
    write_parquet(snaps, paths.processed / "snapshots.parquet")
    write_json(
        {
            "methods": {
                "scorecard": {"count": {"auc": 0.8, "gini": 0.6, "ks": 0.45}},
                "rules": {"count": {"auc": 0.7, "gini": 0.4, "ks": 0.3}},
            }
        },
        paths.metrics / "evaluate.json",
    )
    return paths


def run(monkeypatch, root) -> Paths:
    monkeypatch.setattr(publish, "Paths", lambda ds: Paths(ds, root=root))
    monkeypatch.setattr(sys, "argv", ["publish", "--dataset", "synthetic"])
    publish.main()
    return Paths("synthetic", root=root)


def test_publish_writes_every_output_deterministically(monkeypatch, tmp_path):
    paths = run(monkeypatch, tmp_path) if stage_inputs(tmp_path) else None
    first = {name: (paths.exports / name).read_bytes() for name in OUTPUTS}
    run(monkeypatch, tmp_path)
    assert {name: (paths.exports / name).read_bytes() for name in OUTPUTS} == first


def test_published_exports_agree(monkeypatch, tmp_path):
    stage_inputs(tmp_path)
    out = run(monkeypatch, tmp_path).exports
    bundle = load_bundle(out / "scorecard.json")
    cases = pd.read_csv(
        out / "boundary_cases.csv",
        dtype={"segment": object},
        keep_default_na=False,
        na_values={"days_beyond_terms_max_12m": [""], "net_collection_rate_12m": [""]},
    )
    cases["segment"] = cases["segment"].replace("", None)
    # the CSV keeps full precision: one ulp below 15 is still below 15
    assert (cases.days_beyond_terms_max_12m == np.nextafter(15.0, 0)).any()
    con = duckdb.connect()
    con.register(SQL_INPUT_TABLE, cases)
    got = con.execute((out / "scorecard.sql").read_text()).df()
    check_against_python(bundle, cases, got, "scorecard.sql")
    scored = score_customers(bundle, cases)
    assert (scored.score.to_numpy() == cases.expected_score.to_numpy()).all()
    assert (scored.grade.to_numpy() == cases.expected_grade.to_numpy()).all()


def test_limit_table_and_model_card(monkeypatch, tmp_path):
    stage_inputs(tmp_path)
    out = run(monkeypatch, tmp_path).exports
    limits = pd.read_csv(out / "limit_table.csv")
    assert set(limits.letter_grade) == {"A", "B", "C", "D"}
    assert len(limits) == 4 * 5 and limits.binding.notna().all()
    # latest snapshot per customer: a=4,000 and b=6,000 fall in [0, 10,000) -> median 5,000
    band0 = limits[(limits.letter_grade == "A") & (limits.size_min == 0)].iloc[0]
    assert band0.typical_monthly_sales == 5000 and band0.limit == 5000 * 2 * 1.5
    card = (out / "model_card.md").read_text()
    for section in (
        "## Data",
        "## Features and points",
        "## Discrimination",
        "## Calibration and master scale",
        "## Comparison with the rule grading",
        "## Limits and credit policy",
        "## Known limitations",
    ):
        assert section in card
    assert "0.8000" in card and "R01" in card


def test_publish_refuses_non_monotone_master_scale(monkeypatch, tmp_path):
    cutoffs = hand_cutoffs()
    cutoffs["grades"][2]["pd"] = 0.001
    stage_inputs(tmp_path, cutoffs)
    with pytest.raises(PipelineError, match="rise strictly"):
        run(monkeypatch, tmp_path)


def test_publish_needs_calibrate_output(monkeypatch, tmp_path):
    paths = stage_inputs(tmp_path)
    (paths.models / "grade_cutoffs.json").unlink()
    with pytest.raises(PipelineError, match="calibrate"):
        run(monkeypatch, tmp_path)


def test_published_dialects_pmml_checks_and_model_card_exports(monkeypatch, tmp_path):
    import sqlite3
    import xml.etree.ElementTree as ET

    from pipeline.exports import DIALECTS, EXPORT_CLIENTS
    from pipeline.io import read_json

    stage_inputs(tmp_path)
    out = run(monkeypatch, tmp_path).exports
    assert sorted(p.name for p in (out / "sql").iterdir()) == sorted(
        f"scorecard.{d}.sql" for d in DIALECTS
    )
    assert (out / "sql" / "scorecard.duckdb.sql").read_text() == (
        out / "scorecard.sql"
    ).read_text()
    # the published SQLite file, run as a user would, on the published boundary cases
    cases = pd.read_csv(out / "boundary_cases.csv", keep_default_na=False, na_values=[""])
    con = sqlite3.connect(":memory:")
    cases.to_sql(SQL_INPUT_TABLE, con, index=False)
    got = pd.read_sql_query((out / "sql" / "scorecard.sqlite.sql").read_text(), con)
    assert (got.score.to_numpy() == cases.expected_score.to_numpy()).all()
    assert ET.parse(out / "scorecard.pmml").getroot().get("version") == "4.4"
    checks = read_json(out / "export_checks.json")
    n = len(cases)
    assert checks["boundary_cases"] == n
    for client in ("DuckDB", "SQLite"):
        c = checks["executed_at_publish"][client]
        assert c["agree"] == c["cases"] == n and c["ulp_cases"] == 10
    assert checks["edge_digits"] == {"days_beyond_terms_max_12m": 2, "net_collection_rate_12m": 3}
    card = (out / "model_card.md").read_text()
    assert "## Exports and where they run" in card
    assert f"SQLite {n}/{n} boundary cases equal to Python" in card
    for row in EXPORT_CLIENTS:
        assert row["client"] in card
    # scorecard.csv keeps the edges' exact decimals
    table = pd.read_csv(out / "scorecard.csv")
    assert set(table.upper.dropna()) == {0.5, 15.0, 60.0, 0.1, 0.953}


def test_publish_stops_when_a_sql_client_disagrees(monkeypatch, tmp_path):
    from pipeline import export_clients

    real = export_clients.run_sqlite

    def off_by_one(card, cases, grades):
        got = real(card, cases, grades)
        got.loc[3, "score"] += 1
        return got

    monkeypatch.setattr(publish, "run_sqlite", off_by_one)
    stage_inputs(tmp_path)
    with pytest.raises(PipelineError, match="SQLite"):
        run(monkeypatch, tmp_path)
    assert not (tmp_path / "exports").exists() or not any((tmp_path / "exports").rglob("*.sql"))


# --------------------------------------------------------------------------- bundle helpers
def test_bad_definition_in_words(make_params):
    import dataclasses

    from pipeline.bundle import bad_definition
    from pipeline.params.features import FeaturesParams

    def load_label(dataset: str):
        return make_params(FeaturesParams, "features", dataset).label

    ledger = dataclasses.replace(
        load_label("synthetic"),
        source="ledger",
        bad_days_beyond_terms=90,
        performance_window_months=12,
        material_amount=100.0,
        material_share=0.01,
    )
    assert bad_definition(ledger) == (
        "an invoice more than 90 days beyond terms within 12 months of the observation date, "
        "above 100.0 and 1% of exposure"
    )
    # the uci overlay (datasets.uci.features.label) switches the source to the customer's own flag
    assert load_label("uci").source == "customer_flag"
    assert bad_definition(load_label("uci")) == (
        "the source's own default flag (one observation point)"
    )


def test_bundle_policy_states_the_params_as_params_yaml_does(make_params):
    from pipeline.bundle import build_bundle
    from pipeline.config import load_params
    from pipeline.params.publish import PublishParams
    from pipeline.policy import band_statistics, letter_pds, limit_table

    params = make_params(PublishParams, "publish")
    cutoffs = hand_cutoffs()
    bands = band_statistics([5000.0, 30000.0], params.size_bands)
    limits = limit_table(letter_pds(cutoffs["grades"]), bands, params.limit_policy)
    policy = build_bundle(hand_card(), cutoffs, params, limits)["policy"]
    table = policy.pop("limit_table")  # stored at JSON precision by the seal
    assert [(r["letter_grade"], r["size_band"]) for r in table] == list(
        zip(limits["letter_grade"], limits["size_band"], strict=True)
    )
    assert policy == load_params()["publish"]


def test_latest_sizes_take_each_customers_last_snapshot() -> None:
    """Sizes at each customer's latest as-of date, whether or not the rows come in key order."""
    from pipeline.bundle import latest_sizes

    snaps = pd.DataFrame(
        {
            "customer_id": ["A", "A", "B", "C", "C", "C"],
            "as_of_date": pd.to_datetime(
                [
                    "2024-01-31",
                    "2024-02-29",
                    "2024-01-31",
                    "2023-12-31",
                    "2024-01-31",
                    "2024-02-29",
                ]
            ),
            "avg_monthly_invoiced": [10.0, 20.0, 5.0, 1.0, 2.0, 3.0],
        }
    )
    assert sorted(latest_sizes(snaps, "avg_monthly_invoiced")) == [3.0, 5.0, 20.0]
    shuffled = snaps.iloc[[5, 0, 3, 2, 1, 4]]
    assert sorted(latest_sizes(shuffled, "avg_monthly_invoiced")) == [3.0, 5.0, 20.0]
    assert latest_sizes(snaps.iloc[0:0], "avg_monthly_invoiced").empty
