"""Segment cards: one card file, each row scored by the card of its segment, in Python, SQL, the
workbook, the CSV points table and the published bundle; fitted and kept only where they earn it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.card import load_bundle, score_frame
from pipeline.card.routing import (
    ROUTE_COLUMN,
    all_features,
    calibrated_segments,
    main_card,
    scoring_columns,
    segment_cards,
)
from pipeline.development import fit_models, fit_segment_cards
from pipeline.domain import PipelineError
from pipeline.export_clients import agreement, run_duckdb, run_sqlite
from pipeline.exports import (
    boundary_cases,
    check_against_python,
    points_table,
    scorecard_pmml,
    scorecard_sql,
    scorecard_workbook,
)
from pipeline.io import json_text
from pipeline.params.publish import PublishParams
from pipeline.params.train import TrainParams
from pipeline.score import score_customers
from tests.fixtures.cards import hand_bundle, hand_cutoffs, routed_card

GRADES = hand_cutoffs()["grades"]
FACTOR, OFFSET = 28.85390081777927, 487.1228762045055


def rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment": ["delinquent", "current", None, "delinquent"],
            "days_beyond_terms_max_12m": [50.0, 50.0, 50.0, np.nan],
            "worst_days_past_due": [70.0, 70.0, 70.0, np.nan],
            "net_collection_rate_12m": [0.99, 0.99, 0.99, np.nan],
            "customer_type": ["retail", "retail", "retail", None],
        }
    )


def test_each_row_is_scored_by_its_segments_card_by_hand():
    got = score_frame(routed_card(), rows())
    # delinquent card: dbt 50 in [45, 75) -> 40, days past due 70 >= 60 -> 20; main-card
    # characteristics give 0. Main card: dbt 50 in [15, 60) -> 30, collection 0.99 -> 70,
    # retail -> 80, days past due not in it -> 0. All missing, delinquent: 25 + 30.
    assert got["score"].tolist() == [60, 180, 180, 55]
    assert got["points__worst_days_past_due"].tolist() == [20, 0, 0, 30]
    assert got["points__net_collection_rate_12m"].tolist() == [0, 70, 70, 0]
    assert got["points__days_beyond_terms_max_12m"].tolist() == [40, 30, 30, 25]
    # shortfalls below baseline: delinquent row 65-20=45 (DEL02) before 70-40=30 (DEL01)
    assert got.loc[0, ["reason_1", "reason_2", "reason_3"]].tolist() == ["DEL02", "DEL01", None]
    assert got.loc[1, ["reason_1", "reason_2"]].tolist() == ["R01", None]
    expected_pd = 1 / (1 + np.exp((np.array([60, 180, 180, 55]) - OFFSET) / FACTOR))
    assert np.allclose(got["pd_model"], expected_pd, rtol=1e-15)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["delinquent", "current", None, "other"]),
            st.one_of(st.none(), st.floats(-5, 200, allow_nan=False)),
            st.one_of(st.none(), st.floats(0, 120, allow_nan=False)),
            st.one_of(st.none(), st.floats(0, 1, allow_nan=False)),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_routed_scoring_equals_each_card_on_its_own_rows(values):
    frame = pd.DataFrame(
        values,
        columns=[
            "segment",
            "days_beyond_terms_max_12m",
            "worst_days_past_due",
            "net_collection_rate_12m",
        ],
    ).astype({c: float for c in ("days_beyond_terms_max_12m", "worst_days_past_due")})
    frame["net_collection_rate_12m"] = frame["net_collection_rate_12m"].astype(float)
    frame["customer_type"] = "retail"
    card = routed_card()
    got = score_frame(card, frame)
    delinquent = (frame["segment"] == "delinquent").to_numpy()
    own = score_frame(segment_cards(card)["delinquent"], frame[delinquent])
    rest = score_frame(main_card(card), frame[~delinquent])
    assert got.loc[delinquent, "score"].tolist() == own["score"].tolist()
    assert got.loc[~delinquent, "score"].tolist() == rest["score"].tolist()
    assert got.loc[delinquent, "reason_1"].tolist() == own["reason_1"].tolist()


def test_routing_needs_the_segment_column_and_never_scores_it():
    with pytest.raises(PipelineError, match="column 'segment' missing"):
        score_frame(routed_card(), rows().drop(columns="segment"))
    card = routed_card()
    card["features"][2]["name"] = ROUTE_COLUMN
    with pytest.raises(PipelineError, match="rule: routing column"):
        score_frame(card, rows())
    assert scoring_columns(routed_card())[-1] == ROUTE_COLUMN
    assert calibrated_segments(routed_card()) == ("current", "delinquent")
    assert [f["name"] for f in all_features(routed_card())] == [
        "days_beyond_terms_max_12m",
        "net_collection_rate_12m",
        "customer_type",
        "worst_days_past_due",
    ]


def test_sql_routes_every_boundary_case_like_python():
    card = routed_card()
    cases = boundary_cases(card, GRADES)
    assert set(cases[ROUTE_COLUMN].map(str)) == {"current", "delinquent", "None"}
    assert len(cases) == len(cases["case_id"].unique())
    for run in (run_duckdb, run_sqlite):
        got = run(card, cases, GRADES)
        assert len(got) == len(cases)
        check_against_python(card, cases, got, run.__name__)
        assert agreement(card, cases, got).all()
    sql = scorecard_sql(card, GRADES)
    assert sql.count("UNION ALL") == 1 and "'delinquent'" in sql


def test_sql_routing_catches_a_card_swapped_between_segments():
    card = routed_card()
    cases = boundary_cases(card, GRADES)
    swapped = cases.copy()
    swapped[ROUTE_COLUMN] = swapped[ROUTE_COLUMN].map(
        {"delinquent": "current", "current": "delinquent"}
    )
    got = run_duckdb(card, swapped, GRADES)
    assert not agreement(card, cases, got).all()
    with pytest.raises(PipelineError, match="pipeline.card.score_frame gives"):
        check_against_python(card, cases, got, "swapped")


def test_workbook_routes_like_python(tmp_path):
    from tests.test_exports import evaluate_workbook

    card = routed_card()
    cases = boundary_cases(card, GRADES)
    got = evaluate_workbook(scorecard_workbook(card, GRADES, cases=cases), tmp_path)
    for col in ["score", *(c for c in got.columns if c.startswith("points__"))]:
        assert got[col].astype(int).tolist() == cases[f"expected_{col}"].tolist(), col
    assert got["grade"].tolist() == cases["expected_grade"].tolist()


def test_points_table_lists_each_card_and_pmml_is_one_card_per_document():
    table = points_table(routed_card())
    assert table.columns[0] == "card"
    assert set(table["card"]) == {"main", "delinquent"}
    delinquent = table[table["card"] == "delinquent"]
    assert set(delinquent["feature"]) == {"days_beyond_terms_max_12m", "worst_days_past_due"}
    assert delinquent["reason_code"].dropna().str.startswith("DEL").all()
    with pytest.raises(PipelineError, match="one PMML document per card|as its own PMML"):
        scorecard_pmml(routed_card(), GRADES)
    assert "<Scorecard" in scorecard_pmml(segment_cards(routed_card())["delinquent"], GRADES)


def test_published_bundle_with_segment_cards_loads_scores_and_detects_damage(
    make_params, tmp_path
):
    bundle = hand_bundle(make_params(PublishParams, "publish"), routed_card())
    # sealed like the main card's characteristics: each declares its domain
    assert all("domain" in f for f in bundle["segment_cards"]["delinquent"]["features"])
    path = tmp_path / "scorecard.json"
    path.write_text(json_text(bundle))
    loaded = load_bundle(path)
    scored = score_customers(loaded, rows().assign(avg_monthly_invoiced=5000.0))
    assert scored["score"].tolist() == [60, 180, 180, 55]
    assert scored["grade"].tolist() == ["D", "A2", "A2", "D"]  # A2: [175, 190)
    assert scored.loc[0, "reason_text_1"] == "Days past due at the as-of date"
    damaged = json.loads(path.read_text())
    bins = damaged["segment_cards"]["delinquent"]["features"][1]["bins"]
    bins[0]["upper"], bins[1]["lower"] = 70.0, 70.0  # 70 > the next upper edge 60
    damaged.pop("content_sha256")
    from pipeline.card import seal_bundle

    path.write_text(json_text(seal_bundle(damaged)))
    with pytest.raises(PipelineError, match=r"segment_cards\.delinquent\.features\[1\]"):
        load_bundle(path)


def segment_data(seed: int = 7, n: int = 6000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Snapshots where the current segment's risk follows x1 and the delinquent segment's
    follows x2 (x1 is noise there): a delinquent card on x2 ranks that segment better."""
    rng = np.random.default_rng(seed)
    segment = np.where(rng.random(n) < 0.3, "delinquent", "current")
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    logit = np.where(segment == "current", -2.0 + 1.5 * x1, 0.5 + 1.5 * x2)
    is_bad = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    customers = np.arange(n)
    snaps = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in customers],
            "as_of_date": pd.Timestamp("2024-01-31"),
            "x1": x1,
            "x2": x2,
            "segment": segment,
            "is_bad": is_bad,
        }
    )
    sample = np.where(customers % 4 == 0, "calibration", "train")
    samples = snaps[["customer_id", "as_of_date", "segment"]].assign(sample=sample)
    return snaps, samples


def test_a_segment_card_is_kept_only_where_it_ranks_its_segment_better(make_params):
    snaps, samples = segment_data()
    params = make_params(TrainParams, "train", "synthetic")
    features = {"x1": "numeric", "x2": "numeric"}
    texts = {f: f for f in features}
    fit = (samples["sample"] == "train") & (samples["segment"] == "current")
    fitted = fit_models(snaps[fit], features, params, "t", texts, "test")
    decisions = fit_segment_cards(
        fitted, snaps, samples, lambda mask: snaps[mask], features, params, texts
    )
    d = decisions["delinquent"]
    assert d["kept"] and d["auc_segment_card"] > d["auc_main_card"] + 0.1
    own = segment_cards(fitted["card"])["delinquent"]
    assert [f["name"] for f in own["features"]][0] == "x2"
    assert own["features"][0]["reason_code"] == "DEL01"
    # the same data with the delinquent segment following x1 like the rest: no better card
    snaps2 = snaps.copy()
    snaps2["x2"] = snaps2["x1"]
    fitted2 = fit_models(snaps2[fit], features, params, "t", texts, "test")
    fitted2["card"].pop("segment_cards", None)
    few = samples.assign(segment=np.where(samples.index < 5900, "current", samples["segment"]))
    d2 = fit_segment_cards(
        fitted2, snaps2, few, lambda mask: snaps2[mask], features, params, texts
    )["delinquent"]
    assert not d2["kept"] and d2["reason"].startswith("too few train rows")
    assert "segment_cards" not in fitted2["card"]


def test_each_cards_characteristics_are_monitored_on_the_rows_it_scores():
    from pipeline.monitoring import characteristic_stability

    card = routed_card()
    for feature in card["features"] + card["segment_cards"]["delinquent"]["features"]:
        feature["bins"][0]["count"] = feature["bins"][0].get("count") or 10  # development counts
    frame = rows().assign(customer_type="retail")
    summary, detail = characteristic_stability(card, frame, 1e-4, (0.1, 0.25))
    assert summary["feature"].tolist()[:3] == [
        "days_beyond_terms_max_12m",
        "net_collection_rate_12m",
        "customer_type",
    ]
    own = detail[detail["feature"] == "delinquent: worst_days_past_due"].set_index("bin")
    # the two delinquent rows: 70 days past due (last range) and missing; none of the others
    assert own["actual_count"].sum() == 2
    main = detail[detail["feature"] == "net_collection_rate_12m"]
    assert main["actual_count"].sum() == 2  # the current and the null-segment rows


def test_validation_report_states_each_segment_card_decision():
    from pipeline.validate import segment_card_note

    kept = {"kept": True, "reason": "ranks the calibration rows better than the main card"}
    kept |= {"train_bads": 873, "train_goods": 331}
    kept |= {"auc_segment_card": 0.6196, "auc_main_card": 0.5057}
    assert segment_card_note("delinquent", kept) == (
        "delinquent segment: its own card, kept: ranks the calibration rows better than the main "
        "card (train 873 bads, 331 goods; calibration AUC 0.620 (own card) vs 0.506 (main card))"
    )
    dropped = {"kept": False, "reason": "too few train rows", "train_bads": 209}
    dropped["train_goods"] = 0
    assert segment_card_note("delinquent", dropped).startswith(
        "delinquent segment: no card of its own: too few train rows (train 209 bads, 0 goods)"
    )


def test_a_segment_card_that_cannot_be_fitted_leaves_the_main_card(make_params):
    snaps, samples = segment_data()
    features = {"x1": "numeric", "x2": "numeric"}
    texts = {f: f for f in features}
    params = make_params(TrainParams, "train", "synthetic")
    fit = (samples["sample"] == "train") & (samples["segment"] == "current")
    fitted = fit_models(snaps[fit], features, params, "t", texts, "test")
    strict = make_params(TrainParams, "train", "synthetic", {"selection": {"min_iv": 4.0}})
    d = fit_segment_cards(fitted, snaps, samples, lambda m: snaps[m], features, strict, texts)
    assert not d["delinquent"]["kept"]
    assert d["delinquent"]["reason"].startswith("no card could be fitted: no characteristic")
    assert "segment_cards" not in fitted["card"]


def test_score_command_needs_the_segment_and_flags_an_unknown_one(make_params, tmp_path, capsys):
    from pipeline.io import write_json
    from pipeline.score import main

    bundle = hand_bundle(make_params(PublishParams, "publish"), routed_card())
    card = tmp_path / "scorecard.json"
    write_json(bundle, card)
    frame = rows().assign(avg_monthly_invoiced=5000.0)
    frame.loc[1, "segment"] = "Delinquent"  # a typo must not route silently to the main card
    frame.to_csv(tmp_path / "new.csv", index=False)
    main(["--card", str(card), "--input", str(tmp_path / "new.csv")])
    out = pd.read_csv(tmp_path / "new_scored.csv")
    assert out["score"].tolist()[:1] == [60] and np.isnan(out["score"][1])
    assert "column segment: 'Delinquent' is not a segment" in out["error"][1]
    frame.drop(columns="segment").to_csv(tmp_path / "flat.csv", index=False)
    with pytest.raises(SystemExit) as exc:
        main(["--card", str(card), "--input", str(tmp_path / "flat.csv")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "flat.csv: row 1, column segment: missing" in err
