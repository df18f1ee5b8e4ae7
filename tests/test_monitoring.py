"""Monitoring: PSI/CSI with fixed bins and smoothing, discrimination, migration, early warning."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import monitoring as mon

THRESHOLDS = (0.10, 0.25)  # PSI bands: green below 0.10, amber below 0.25, red above

GRADES = ["A", "B", "C", "D"]


def test_psi_by_hand_without_empty_bins() -> None:
    """E = 50/30/20 %, A = 40/40/20 %: PSI = -0.1·ln(0.8) + 0.1·ln(4/3) = 0.0510826 (ε = 0)."""
    expected = pd.Series([50, 30, 20], index=["low", "mid", "high"])
    actual = pd.Series([40, 40, 20], index=["low", "mid", "high"])
    by_hand = -0.1 * math.log(0.4 / 0.5) + 0.1 * math.log(0.4 / 0.3) + 0.0
    assert by_hand == pytest.approx(0.0510826, abs=1e-7)
    assert mon.psi(expected, actual, epsilon=0.0) == pytest.approx(by_hand, rel=1e-12)


def test_psi_smoothing_rule_by_hand() -> None:
    """With ε the shares are (share + ε)/(1 + kε) on both sides, k = 3 bins."""
    eps = 0.01
    expected = pd.Series([50, 30, 20], index=list("abc"))
    actual = pd.Series([40, 40, 20], index=list("abc"))
    e = [(s + eps) / (1 + 3 * eps) for s in (0.5, 0.3, 0.2)]
    a = [(s + eps) / (1 + 3 * eps) for s in (0.4, 0.4, 0.2)]
    by_hand = sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e, strict=True))
    assert mon.psi(expected, actual, epsilon=eps) == pytest.approx(by_hand, rel=1e-12)


def test_vanished_bin_counts() -> None:
    """toad's example: E = 50/30/20, A = 60/40/0. toad drops bin C (PSI 0.047); here it counts."""
    eps = 1e-4
    expected = pd.Series([50, 30, 20], index=list("ABC"))
    actual = pd.Series([60, 40], index=list("AB"))
    table = mon.psi_table(expected, actual, epsilon=eps)
    vanished = table.set_index("bin").loc["C"]
    e_c, a_c = (0.2 + eps) / (1 + 3 * eps), eps / (1 + 3 * eps)
    assert vanished["contribution"] == pytest.approx((a_c - e_c) * math.log(a_c / e_c), rel=1e-12)
    assert vanished["contribution"] > 1.0
    total = table["contribution"].sum()
    assert total > 0.25 and mon.psi_status(total, THRESHOLDS) == "red"


def test_new_bin_counts() -> None:
    """A bin absent at development and present now is listed and adds a positive contribution."""
    expected = pd.Series([50, 50], index=["x", "y"])
    actual = pd.Series([45, 45, 10], index=["x", "y", "new"])
    table = mon.psi_table(expected, actual, epsilon=1e-4)
    assert list(table["bin"]) == ["x", "y", "new"]
    assert table.set_index("bin").loc["new", "contribution"] > 0.3


def test_epsilon_zero_with_empty_bin_is_rejected() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        mon.psi(pd.Series([1, 1], index=["a", "b"]), pd.Series([2], index=["a"]), epsilon=0.0)


def test_psi_status_thresholds() -> None:
    assert [mon.psi_status(v, (0.10, 0.25)) for v in (0.0, 0.0999, 0.10, 0.2499, 0.25, 3)] == [
        "green",
        "green",
        "amber",
        "amber",
        "red",
        "red",
    ]


counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=12)


@settings(max_examples=100, deadline=None)
@given(counts, counts, st.floats(min_value=1e-6, max_value=0.1))
def test_psi_is_non_negative_and_symmetric(e: list[int], a: list[int], eps: float) -> None:
    n = min(len(e), len(a))
    e, a = e[:n], a[:n]
    if sum(e) == 0 or sum(a) == 0:
        return
    idx = [f"b{i}" for i in range(n)]
    forward = mon.psi(pd.Series(e, index=idx), pd.Series(a, index=idx), eps)
    backward = mon.psi(pd.Series(a, index=idx), pd.Series(e, index=idx), eps)
    assert forward >= 0
    assert forward == pytest.approx(backward, rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(counts, st.integers(min_value=1, max_value=7), st.floats(min_value=1e-6, max_value=0.1))
def test_psi_is_zero_for_identical_distributions(c: list[int], k: int, eps: float) -> None:
    if sum(c) == 0:
        return
    idx = [f"b{i}" for i in range(len(c))]
    assert mon.psi(pd.Series(c, index=idx), pd.Series([k * x for x in c], index=idx), eps) == (
        pytest.approx(0.0, abs=1e-12)
    )


def test_shifted_month_fires_score_psi() -> None:
    """Scores down by one standard deviation: PSI far above 0.25; an unshifted month is green."""
    rng = np.random.default_rng(7)
    dev = pd.Series(rng.normal(600, 40, 20_000).round())
    same = pd.Series(rng.normal(600, 40, 5_000).round())
    shifted = pd.Series(rng.normal(560, 40, 5_000).round())
    stable_value, table = mon.score_psi(dev, same, n_bins=10, epsilon=1e-4)
    shifted_value, _ = mon.score_psi(dev, shifted, n_bins=10, epsilon=1e-4)
    assert len(table) == 10
    assert table["expected_share"].between(0.08, 0.12).all()
    assert mon.psi_status(stable_value, THRESHOLDS) == "green"
    assert shifted_value > 0.25 and mon.psi_status(shifted_value, THRESHOLDS) == "red"


def test_score_bins_are_half_open_and_fixed() -> None:
    edges = [500.0, 600.0]
    labels = mon.bin_scores(pd.Series([499, 500, 599.9, 600, np.nan]), edges)
    assert list(labels) == ["[-inf, 500)", "[500, 600)", "[500, 600)", "[600, inf)", "missing"]


FEATURE = {
    "name": "days_beyond_terms_max_12m",
    "dtype": "numeric",
    "bins": [
        {"type": "range", "lower": None, "upper": 0.5, "count": 600},
        {"type": "range", "lower": 0.5, "upper": 30.0, "count": 300},
        {"type": "range", "lower": 30.0, "upper": None, "count": 100},
        {"type": "special", "values": [-1], "count": 0},
        {"type": "missing", "count": 0},
    ],
}
SEGMENT = {
    "name": "segment",
    "dtype": "categorical",
    "bins": [
        {"type": "category", "categories": ["retail", "wholesale"], "count": 700},
        {"type": "category", "categories": ["distributor"], "count": 300},
        {"type": "missing", "count": 0},
    ],
}
CARD = {"features": [FEATURE, SEGMENT]}


def test_assign_card_bins_follows_the_card_rules() -> None:
    values = pd.Series([0.0, 0.5, 29.999, 30.0, -1, np.nan])
    got = mon.assign_card_bins(FEATURE, values, values.index)
    assert list(got) == [
        "[-inf, 0.5)",
        "[0.5, 30)",
        "[0.5, 30)",
        "[30, inf)",
        "special -1",
        "missing",
    ]
    cats = pd.Series(["retail", "distributor", "kiosk", None])
    got = mon.assign_card_bins(SEGMENT, cats, cats.index)
    assert list(got) == ["{retail, wholesale}", "{distributor}", "unseen", "missing"]
    assert (mon.assign_card_bins(SEGMENT, None, cats.index) == "unseen").all()


def test_csi_uses_card_bins_and_counts_new_and_vanished_bins() -> None:
    """Same mix as development → CSI ≈ 0; all worst-bin and a new unseen category → red."""
    same = pd.DataFrame(
        {
            "days_beyond_terms_max_12m": [0.0] * 60 + [10.0] * 30 + [45.0] * 10,
            "segment": ["retail"] * 70 + ["distributor"] * 30,
        }
    )
    summary, detail = mon.characteristic_stability(CARD, same, 1e-4, THRESHOLDS)
    assert summary["csi"].max() == pytest.approx(0.0, abs=1e-9)
    assert set(detail["feature"]) == {"days_beyond_terms_max_12m", "segment"}
    # placeholder bins empty on both sides are left out
    assert "missing" not in set(detail.loc[detail["feature"] == "segment", "bin"])

    shifted = pd.DataFrame(
        {"days_beyond_terms_max_12m": [45.0] * 90 + [np.nan] * 10, "segment": ["kiosk"] * 100}
    )
    summary, detail = mon.characteristic_stability(CARD, shifted, 1e-4, THRESHOLDS)
    status = summary.set_index("feature")["status"]
    assert (status == "red").all()
    seg = detail[detail["feature"] == "segment"].set_index("bin")
    assert seg.loc["{distributor}", "contribution"] > 0  # vanished bin counts
    assert seg.loc["unseen", "actual_count"] == 100
    dbt = detail[detail["feature"] == "days_beyond_terms_max_12m"].set_index("bin")
    assert dbt.loc["missing", "expected_count"] == 0 and dbt.loc["missing", "contribution"] > 0


def test_discrimination_by_hand() -> None:
    """bads 500, 620; goods 600, 700 → 3 of 4 pairs ranked right: AUC 0.75, Gini 0.5, KS 0.5."""
    got = mon.score_discrimination(pd.Series([1, 1, 0, 0]), pd.Series([500, 620, 600, 700]))
    assert got["auc"] == pytest.approx(0.75)
    assert got["gini"] == pytest.approx(0.5)
    assert got["ks"] == pytest.approx(0.5)
    assert (got["n_bad"], got["n_good"]) == (2, 2)


def test_discrimination_over_time_only_uses_matured_dates() -> None:
    """Month 1 ranks perfectly (AUC 1, SE 0: untested); month 2 is random (AUC 0.5) against a
    development AUC of 0.8 with 10 bads and 10 goods: Hanley–McNeil Q1 = Q2 = 1/3,
    SE² = (0.25 + 18·(1/3 − 0.25))/100,
    z = −0.3/SE, p = Φ(z) ≈ 0.0117 → deteriorated. Month 3 is immature and left out."""
    frame = pd.DataFrame(
        {
            "as_of_date": pd.to_datetime(
                ["2024-01-31"] * 20 + ["2024-02-29"] * 20 + ["2024-03-31"] * 4
            ),
            "is_bad": [1] * 10 + [0] * 10 + [0, 1] * 10 + [pd.NA] * 4,
            "score": list(range(20)) + [500] * 20 + [1, 2, 3, 4],
        }
    )
    out = mon.discrimination_over_time(frame, 0.8, alpha=0.05, min_bads=5, adjust="holm")
    assert len(out) == 2
    assert out["auc"].tolist() == pytest.approx([1.0, 0.5])
    se = math.sqrt((0.25 + 18 * (1 / 3 - 0.25)) / 100)
    z = -0.3 / se
    p = 0.5 * math.erfc(-z / math.sqrt(2))
    assert out.loc[1, "z"] == pytest.approx(z)
    assert out.loc[1, "p_value"] == pytest.approx(p) and p == pytest.approx(0.0117, abs=1e-4)
    assert out["deteriorated"].tolist() == [False, True]
    assert math.isnan(out.loc[0, "p_value"])


def test_migration_matrix_and_summary() -> None:
    prev = pd.Series({"c1": "A", "c2": "A", "c3": "B", "c4": "C", "c5": "D"})
    curr = pd.Series({"c1": "A", "c2": "C", "c3": "A", "c4": "C", "c6": "B"})
    m = mon.migration_matrix(prev, curr, GRADES)
    assert (
        m.loc["A", "A"] == 1
        and m.loc["A", "C"] == 1
        and m.loc["B", "A"] == 1
        and m.loc["C", "C"] == 1
    )
    assert int(m.to_numpy().sum()) == 4
    s = mon.month_migration_summary(m)
    assert s == {
        "n": 4,
        "stable": 0.5,
        "upgraded": 0.25,
        "downgraded": 0.25,
        "moved_2_or_more": 0.25,
    }


def test_concentration_hhi_by_hand() -> None:
    """Shares 0.5/0.3/0.2/0 → HHI = 0.25 + 0.09 + 0.04 = 0.38."""
    table, hhi = mon.grade_concentration(pd.Series(["A"] * 5 + ["B"] * 3 + ["C"] * 2), GRADES)
    assert hhi == pytest.approx(0.38)
    assert table["share"].tolist() == pytest.approx([0.5, 0.3, 0.2, 0.0])


def test_shifted_month_fires_every_trigger() -> None:
    previous = pd.DataFrame(
        {"days_beyond_terms": [2.0, 5.0, 0.0, 3.0, 1.0], "grade": ["A", "B", "B", "A", "B"]},
        index=pd.Index(["c1", "c2", "c3", "c4", "c5"], name="customer_id"),
    )
    current = pd.DataFrame(
        {
            "days_beyond_terms": [40.0, 6.0, 0.0, 3.0, 1.0],
            "grade": ["A", "B", "B", "C", "A"],
            "exposure": [100.0, 900.0, 50.0, 10.0, 10.0],
            "limit": [1000.0, 800.0, np.nan, 100.0, 100.0],
            "new_claims": [0, 0, 2, 0, 0],
        },
        index=previous.index,
    )
    out = mon.early_warnings(current, previous, GRADES, dbt_jump_days=15)
    got = dict(zip(out["customer_id"], out["triggers"], strict=True))
    assert got == {
        "c1": "dbt_jump",
        "c2": "limit_breach",
        "c3": "new_claims",
        "c4": "grade_downgrade",
    }


def test_override_statistics() -> None:
    snaps = pd.DataFrame(
        {
            "as_of_date": pd.to_datetime(["2024-01-31"] * 4 + ["2024-02-29"] * 4),
            "overlay_notches": [0, 1, -1, 0, 0, 0, -2, 0],
            "override_approver": [None, "li", "wang", None, None, None, "wang", None],
            "is_bad": [0, 1, 0, pd.NA, 0, 0, 1, 1],
        }
    )
    summary, by_approver, by_date = mon.override_statistics(snaps)
    assert summary["override_rate"] == pytest.approx(3 / 8)
    assert summary["upgrade_rate"] == pytest.approx(1 / 8)
    assert summary["downgrade_rate"] == pytest.approx(2 / 8)
    assert summary["bad_rate_overridden"] == pytest.approx(2 / 3)
    assert summary["bad_rate_not_overridden"] == pytest.approx(1 / 4)
    assert by_approver.set_index("approver")["n_overrides"].to_dict() == {"li": 1, "wang": 2}
    assert by_date["override_rate"].tolist() == pytest.approx([0.5, 0.25])


# -------------------------------------------------------------------------------------------------
# The monitor stage on a hand-built portfolio with a shifted month
from pipeline import monitor  # noqa: E402
from pipeline import monitoring_review as review  # noqa: E402
from pipeline.calibration import assign_grade  # noqa: E402
from pipeline.config import PipelineError  # noqa: E402
from pipeline.params import ParamsError  # noqa: E402
from pipeline.params.monitor import MonitorParams  # noqa: E402

SCALE = [
    {"grade": "A", "letter_grade": "A", "score_min": 620, "score_max": None},
    {"grade": "B", "letter_grade": "B", "score_min": 580, "score_max": 620},
    {"grade": "C", "letter_grade": "C", "score_min": 540, "score_max": 580},
    {"grade": "D", "letter_grade": "D", "score_min": None, "score_max": 540},
]
DBT_CARD = {
    "features": [
        {
            "name": "days_beyond_terms_max_12m",
            "dtype": "numeric",
            "bins": [
                {"type": "range", "lower": None, "upper": 10.0, "count": 700},
                {"type": "range", "lower": 10.0, "upper": None, "count": 300},
                {"type": "missing", "count": 0},
            ],
        }
    ]
}
STRATEGY = pd.DataFrame(
    {
        "letter_grade": ["A", "A", "B", "B", "C", "C", "D", "D"],
        "dpd_min": [0, 30] * 4,
        "amount_min": [0] * 8,
        "action": [
            "reminder",
            "call",
            "reminder",
            "second notice",
            "call",
            "final notice",
            "stop shipment",
            "legal",
        ],
        "wait_days": [14, 7, 10, 7, 7, 5, 3, 3],
    }
)


def test_collection_action_lookup() -> None:
    got = review.collection_actions(
        STRATEGY, ["B", "B", "D", None, "A"], [45.0, 29.0, 0.0, 0.0, -3.0], [1000.0] * 5
    )
    assert got.tolist() == [
        "second notice (wait 7 days)",
        "reminder (wait 10 days)",
        "stop shipment (wait 3 days)",
        "",
        "reminder (wait 14 days)",
    ]
    no_first_band = STRATEGY.assign(dpd_min=STRATEGY["dpd_min"] + 1)
    assert review.collection_actions(no_first_band, ["A"], [0.0], [5.0])[0] == review.NO_STEP


def _portfolio() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    ids = [f"c{i:04d}" for i in range(1000)]
    frames = []
    for k, (date, mean, dbt_bad_share) in enumerate(
        [("2024-01-31", 600, 0.3), ("2024-02-29", 600, 0.3), ("2024-03-31", 560, 0.8)]
    ):
        score = rng.normal(mean, 40, len(ids)).round()
        pd_true = 1 / (1 + np.exp((score - 520) / 25))
        is_bad = (rng.uniform(size=len(ids)) < pd_true).astype(float)
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": ids,
                    "as_of_date": pd.Timestamp(date),
                    "score": score,
                    "is_bad": pd.array(is_bad if k < 2 else [pd.NA] * len(ids), dtype="Int8"),
                    "days_beyond_terms_max_12m": np.where(
                        rng.uniform(size=len(ids)) < dbt_bad_share, 40.0, 2.0
                    ),
                    "exposure": 1000.0,
                    "overlay_notches": 0,
                    "override_approver": None,
                }
            )
        )
    scored = pd.concat(frames, ignore_index=True)
    scored["grade"] = assign_grade(
        scored["score"], pd.DataFrame(SCALE).astype({"score_min": float})
    )
    return scored


def test_monitor_month_fires_on_a_shifted_month(make_params) -> None:
    """Scores fall by one SD and late payers jump from 30 % to 80 %: PSI, CSI and triggers fire."""
    scored = _portfolio()
    month = pd.Timestamp("2024-03-31")
    development = scored[scored["as_of_date"] < month]
    scored["credit_limit"] = np.nan
    scored.loc[scored["customer_id"] == "c0000", "credit_limit"] = 500.0
    scored.loc[scored["customer_id"] == "c0001", "credit_limit"] = 5000.0
    scored["policy_limit"] = np.where(
        scored["customer_id"].isin(["c0001", "c0005"]), 100.0, np.nan
    )
    claims = pd.DataFrame(
        {
            "customer_id": ["c0002", "c0003"],
            "claim_date": pd.to_datetime(["2024-03-15", "2024-02-10"]),
        }
    )
    params = make_params(MonitorParams, "monitor", "synthetic", {"dbt_jump_days": 15})
    res = review.monitor_month(
        scored, development, DBT_CARD, SCALE, month, params, claims, STRATEGY
    )

    assert res["previous_month"] == pd.Timestamp("2024-02-29")
    assert res["score_psi"] > 0.25
    assert res["csi"].set_index("feature").loc["days_beyond_terms_max_12m", "status"] == "red"
    assert res["psi_over_time"]["status"].tolist()[:2] == ["green", "green"]
    ew = res["early_warning"].set_index("customer_id")
    assert bool(ew.loc["c0000", "trigger_limit_breach"])  # exposure 1000 > limit 500
    assert "c0001" not in ew.index or not bool(ew.loc["c0001", "trigger_limit_breach"])
    assert bool(
        ew.loc["c0005", "trigger_limit_breach"]
    )  # no ledger limit: the policy limit counts
    assert int(ew["trigger_limit_breach"].sum()) == 2  # no limit known = no breach
    assert bool(ew.loc["c0002", "trigger_new_claims"])
    assert "c0003" not in ew.index or not bool(ew.loc["c0003", "trigger_new_claims"])
    assert ew["trigger_dbt_jump"].sum() > 300
    assert ew["trigger_grade_downgrade"].sum() > 200
    assert (ew["action"] != "").all()
    # matured months only, both tested against the development AUC and not deteriorated
    assert len(res["discrimination"]) == 2
    assert not res["discrimination"]["deteriorated"].any()

    summary = review.metrics_json(res, "toy", month, len(development), 1000, DBT_CARD)
    assert summary["stability"]["score_psi_status"] == "red"
    assert summary["early_warning"]["n_flagged"] == len(ew)


def test_monitor_outputs_are_written_and_byte_stable(tmp_path, make_params) -> None:
    scored = _portfolio()
    month = pd.Timestamp("2024-03-31")
    development = scored[scored["as_of_date"] < month]
    params = make_params(MonitorParams, "monitor")
    res = review.monitor_month(
        scored,
        development,
        DBT_CARD,
        SCALE,
        month,
        params,
        scored.iloc[0:0].assign(claim_date=pd.NaT),
        STRATEGY,
    )
    summary = review.metrics_json(res, "toy", month, len(development), 1000, DBT_CARD)
    digests = []
    for run in ("a", "b"):
        monitor.write_outputs(res, summary, tmp_path / run)
        digests.append({p.name: p.read_bytes() for p in sorted((tmp_path / run).iterdir())})
    assert digests[0] == digests[1]
    names = set(digests[0])
    assert {"monitor.json", "report.md", "score_psi.csv", "early_warning.csv", "csi.png"} <= names
    report = (tmp_path / "a" / "report.md").read_text(encoding="utf-8")
    assert "Score PSI" in report and "Early warning" in report and "red" in report


def test_deterioration_is_adjusted_for_the_months_tested() -> None:
    """Three random months (AUC 0.5, 10 bads, 10 goods) against a reference of 0.78:
    SE = √((0.25 + 18·(1/3 − 0.25))/100) = 0.1323, z = −0.28/SE = −2.117, p = Φ(z) = 0.0171 each.
    Alone each month is significant at 5%; Holm over 3 months multiplies the smallest by 3, the
    next by 2 (then running maximum): all three adjusted p = 3p = 0.0514 > 0.05, so no alarm."""
    months = ["2024-01-31", "2024-02-29", "2024-03-31"]
    frame = pd.DataFrame(
        {
            "as_of_date": pd.to_datetime([m for m in months for _ in range(20)]),
            "is_bad": [0, 1] * 30,
            "score": [500] * 60,
        }
    )
    se = math.sqrt((0.25 + 18 * (1 / 3 - 0.25)) / 100)
    p = 0.5 * math.erfc(0.28 / se / math.sqrt(2))
    assert p == pytest.approx(0.0171, abs=1e-4)
    holm = mon.discrimination_over_time(frame, 0.78, alpha=0.05, min_bads=5, adjust="holm")
    assert holm["n_tested"].tolist() == [3, 3, 3]
    assert holm["p_value"].tolist() == pytest.approx([p] * 3)
    assert holm["p_value_adjusted"].tolist() == pytest.approx([3 * p] * 3)
    assert not holm["deteriorated"].any()
    raw = mon.discrimination_over_time(frame, 0.78, alpha=0.05, min_bads=5, adjust="none")
    assert raw["deteriorated"].all()
    with pytest.raises(ValueError, match="multiplicity"):
        mon.discrimination_over_time(frame, 0.78, alpha=0.05, min_bads=5, adjust="sidak")


def test_reference_is_the_validation_auc(tmp_path, make_params) -> None:
    evaluation = {
        "sample": {
            "name": "oot",
            "kind": "out_of_time",
            "segment": "current",
            "compared": 900,
            "customers": 300,
        },
        "methods": {
            "scorecard": {"count": {"auc": 0.71, "ks": 0.3, "ci_low": 0.66, "ci_high": 0.76}}
        },
    }
    ref = review.validation_reference(evaluation, tmp_path / "evaluate.json")
    assert ref["auc"] == 0.71 and "oot" in ref["source"] and "current" in ref["source"]
    with pytest.raises(PipelineError, match="methods.scorecard.count.auc"):
        review.validation_reference({"methods": {}}, tmp_path / "evaluate.json")
    scored = _portfolio()
    month = pd.Timestamp("2024-03-31")
    development = scored[scored["as_of_date"] < month]
    res = review.monitor_month(
        scored,
        development,
        DBT_CARD,
        SCALE,
        month,
        make_params(MonitorParams, "monitor"),
        scored.iloc[0:0].assign(claim_date=pd.NaT),
        STRATEGY,
        ref,
    )
    assert res["reference"]["auc"] == 0.71
    assert (res["discrimination"]["reference_auc"] == 0.71).all()
    summary = review.metrics_json(res, "toy", month, len(development), 1000, DBT_CARD)
    assert summary["discrimination"]["reference_auc"] == 0.71
    assert summary["discrimination"]["n_months_tested"] == int(
        res["discrimination"]["tested"].sum()
    )


@pytest.mark.parametrize(
    "override, key, rule",
    [
        ({"psi_thresholds": [0.25, 0.10]}, "monitor.psi_thresholds", "increasing"),
        ({"psi_thresholds": [0.10]}, "monitor.psi_thresholds", "length"),
        ({"psi_epsilon": -1e-4}, "monitor.psi_epsilon", "non_negative"),
        ({"multiplicity": "sidak"}, "monitor.multiplicity", "one_of"),
        ({"alpha": 0.0}, "monitor.alpha", "in_range"),
        ({"min_bads": 0}, "monitor.min_bads", "at_least"),
        ({"downgrade_on": "score"}, "monitor.downgrade_on", "one_of"),
    ],
)
def test_bad_monitor_params_name_the_key(make_params, override, key, rule) -> None:
    with pytest.raises(ParamsError, match=rf"^params\.yaml: key {re.escape(key)}: rule {rule}: "):
        make_params(MonitorParams, "monitor", "synthetic", override)


def _snapshot_file(path, shuffled: bool) -> pd.DataFrame:
    """25,000 snapshots (5,000 customers x 5 month ends) with the hand card's features, some in
    default, one row the card cannot score; written to ``path`` in key order or shuffled."""
    rng = np.random.default_rng(11)
    n = 25_000
    snaps = pd.DataFrame(
        {
            "customer_id": np.repeat([f"C{i:05d}" for i in range(5_000)], 5),
            "as_of_date": np.tile(pd.date_range("2024-01-31", periods=5, freq="ME"), 5_000),
            "label": rng.choice(["good", "bad", "in_default", None], n),
            "is_bad": rng.choice([0.0, 1.0, np.nan], n),
            "segment": rng.choice(["retail", "Wholesale", "other"], n),
            "days_beyond_terms_max_12m": rng.choice([0.0, 7.0, 40.0, np.nan], n),
            "net_collection_rate_12m": rng.uniform(0.8, 1.0, n).astype(object),
            "avg_monthly_invoiced": rng.uniform(1e3, 5e4, n),
        }
    )
    snaps.loc[123, "net_collection_rate_12m"] = "abc"  # an input error: left out with a warning
    snaps["net_collection_rate_12m"] = snaps["net_collection_rate_12m"].astype(str)
    frame = snaps.sample(frac=1.0, random_state=2) if shuffled else snaps
    from pipeline.io import write_parquet

    write_parquet(frame.reset_index(drop=True), path)
    return snaps


@pytest.mark.parametrize("shuffled", [False, True])
def test_population_scored_in_slices_equals_a_whole_read(tmp_path, make_params, shuffled) -> None:
    """The monitor's streamed scoring (three slices at a tiny budget) gives every population row's
    narrow columns and score, and the wide rows of the detail months, exactly as a whole read, sort,
    in-default filter and a one-piece `with_published_scores` do; samples follow by position or by key."""
    from pipeline.params.publish import PublishParams
    from pipeline.snapshot_io import population_rows, samples_of
    from tests.fixtures.cards import hand_bundle

    bundle = hand_bundle(make_params(PublishParams, "publish"))
    path = tmp_path / "snapshots.parquet"
    snaps = _snapshot_file(path, shuffled)
    columns = list(snaps.columns)
    narrow = ["customer_id", "as_of_date", "is_bad", "segment"]
    months = [pd.Timestamp("2024-05-31"), pd.Timestamp("2024-04-30")]
    rows = population_rows(path)
    scored, detail = review.score_population(bundle, path, columns, rows, narrow, months, 1)

    whole, dropped, error = review.with_published_scores(
        bundle, snaps[snaps["label"] != "in_default"]
    )
    assert dropped == 1 and "'abc'" in error  # the bad row left out
    pd.testing.assert_frame_equal(scored, whole[[*narrow, "score", "grade"]])
    want = whole[whole["as_of_date"].isin(months)].reset_index(drop=True)
    pd.testing.assert_frame_equal(detail, want)
    samples = snaps[["customer_id", "as_of_date"]].assign(sample=np.arange(len(snaps)) % 3)
    merged = scored.merge(samples, on=["customer_id", "as_of_date"], how="left")
    pd.testing.assert_frame_equal(samples_of(scored, samples, path, rows), merged)


def test_monitor_month_reads_features_from_the_detail_months(make_params) -> None:
    """The review from narrow rows of every month plus the two detail months equals the review of
    the whole frame."""
    scored = _portfolio()
    scored["policy_limit"] = 100.0
    month = pd.Timestamp("2024-03-31")
    development = scored[scored["as_of_date"] < month]
    params = make_params(MonitorParams, "monitor")
    claims = scored.iloc[0:0].assign(claim_date=pd.NaT)
    whole = review.monitor_month(
        scored, development, DBT_CARD, SCALE, month, params, claims, STRATEGY
    )
    detail = scored[scored["as_of_date"] >= pd.Timestamp("2024-02-29")].reset_index(drop=True)
    narrow = scored[["customer_id", "as_of_date", "is_bad", "score", "grade", "overlay_notches"]]
    split = review.monitor_month(
        narrow, development, DBT_CARD, SCALE, month, params, claims, STRATEGY, None, detail
    )
    assert whole.keys() == split.keys()
    for key, value in whole.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(split[key], value, obj=key)
        else:
            assert repr(split[key]) == repr(value), key  # repr: NaN equals NaN
