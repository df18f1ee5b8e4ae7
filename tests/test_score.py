"""The score command: golden rows worked by hand, per-row errors, CLI on CSV and Parquet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import PipelineError
from pipeline.io import write_json
from pipeline.params.publish import PublishParams
from pipeline.score import load_bundle, main, score_customers
from tests.fixtures.cards import hand_bundle, hand_card


@pytest.fixture(scope="module")
def bundle(make_params) -> dict:
    return hand_bundle(make_params(PublishParams, "publish"))


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4"],
            "days_beyond_terms_max_12m": ["0", "20", "abc", None],
            "net_collection_rate_12m": ["0.97", "0.05", "0.5", None],
            "segment": ["retail", "zzz", "retail", None],
            "avg_monthly_invoiced": ["30000", "30000", "30000", None],
        }
    )


def test_golden_rows_by_hand(bundle):
    out = score_customers(bundle, frame())
    best, worst = out.iloc[0], out.iloc[1]
    # c1: 60 + 70 + 80 = 210 >= 190 -> A1 (PD 0.4%), no shortfall -> no reasons.
    assert (best.score, best.grade, best.letter_grade, best.grade_pd) == (210, "A1", "A", 0.004)
    # need 30,000 x 60/30 x 1.5 = 90,000; EL cap 5,000 / (0.004 x 0.45) = 2.78m -> need binds
    assert (best.limit, best.limit_binding, best.credit_period_days) == (90000, "need", 60)
    assert best.review_months == 12 and pd.isna(best.reason_1) and pd.isna(best.error)
    # c2: 30 + 25 + 55 (unseen) = 110 < 140 -> D, cash in advance; shortfalls 30, 45, 25
    assert (worst.score, worst.grade, worst.limit, worst.credit_period_days) == (110, "D", 0, 0)
    assert [worst[f"reason_{k}"] for k in (1, 2, 3)] == ["R02", "R01", "R03"]
    assert pd.isna(worst.reason_4)
    assert worst.reason_text_1 == "Share of invoiced amount collected is low"
    # Platt PD: 1 / (1 + exp(-(6 - 0.05 x 110))) = 1 / (1 + exp(-0.5))
    assert worst.pd == pytest.approx(1 / (1 + np.exp(-0.5)))


def test_bad_row_gets_an_error_not_a_crash(bundle):
    out = score_customers(bundle, frame())
    assert len(out) == 4 and out.customer_id.tolist() == ["c1", "c2", "c3", "c4"]
    bad = out.iloc[2]
    assert "days_beyond_terms_max_12m" in bad.error and "'abc'" in bad.error
    assert pd.isna(bad.score) and pd.isna(bad.grade) and pd.isna(bad.limit)
    # c4: everything missing is not an error: 40 + 38 + 60 = 138 -> D; no sales -> no credit
    empty = out.iloc[3]
    assert pd.isna(empty.error) and (empty.score, empty.grade, empty.limit) == (138, "D", 0)


def test_triggers_adjust_the_recommended_limit(bundle):
    X = frame().iloc[[0, 0]].reset_index(drop=True)
    X["worst_days_past_due"] = ["0", "90"]
    out = score_customers(bundle, X)
    assert out.limit_action.tolist() == ["keep", "suspend"]
    assert out.recommended_limit.tolist() == [90000, 0]


def test_cli_csv_and_parquet(bundle, tmp_path):
    card = tmp_path / "scorecard.json"
    write_json(bundle, card)
    X = frame()
    X.to_csv(tmp_path / "new.csv", index=False)
    main(
        [
            "--card",
            str(card),
            "--input",
            str(tmp_path / "new.csv"),
            "--output",
            str(tmp_path / "out.csv"),
        ]
    )
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == len(X) and out.score.tolist()[:2] == [210, 110]
    X.to_parquet(tmp_path / "new.parquet")
    main(["--card", str(card), "--input", str(tmp_path / "new.parquet")])
    assert len(pd.read_csv(tmp_path / "new_scored.csv")) == len(X)


def test_training_card_is_not_a_bundle(tmp_path):
    path = tmp_path / "card.json"
    write_json(hand_card(), path)
    with pytest.raises(PipelineError, match="published bundle"):
        load_bundle(path)


def test_cli_reports_missing_input(bundle, tmp_path, capsys):
    card = tmp_path / "scorecard.json"
    write_json(bundle, card)
    with pytest.raises(SystemExit) as exc:
        main(["--card", str(card), "--input", str(tmp_path / "nope.csv")])
    assert exc.value.code == 2 and "not found" in capsys.readouterr().err
