"""Delphi panel: Kendall's W (hand-worked), consensus and agreement, and panels merged point in time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.credit_file import attributes_as_of, timeline_failures
from pipeline.delphi import CRITERIA, kendalls_w, merge_panels, panel_agreement
from pipeline.schemas import COLUMNS, EXPERT_SCORES

MAX_IQR = 1.0  # the convergence rule under test: every criterion's IQR <= 1 point


def test_kendalls_w_perfect_agreement_is_one():
    x = np.array([[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]])
    assert kendalls_w(x) == pytest.approx(1.0)


def test_kendalls_w_hand_worked_without_ties():
    # ranks: R = [4, 6, 8], mean 6, S = 8; W = 12·8 / (3²·(3³ − 3)) = 96 / 216
    x = np.array([[1, 2, 3], [1, 3, 2], [2, 1, 3]])
    assert kendalls_w(x) == pytest.approx(96 / 216)


def test_kendalls_w_hand_worked_with_ties():
    # expert 1 ties two criteria: ranks 1.5, 1.5, 3 (T = 2³ − 2 = 6); R = [2.5, 3.5, 6], S = 6.5
    # W = 12·6.5 / (2²·24 − 2·6) = 78 / 84
    x = np.array([[1, 1, 2], [1, 2, 3]])
    assert kendalls_w(x) == pytest.approx(78 / 84)
    assert np.isnan(kendalls_w(np.array([[3, 3, 3], [4, 4, 4]])))


def _panel(
    final: dict[str, list[int]],
    first: dict[str, list[int]],
    customer="C1",
    pid="P1",
    day="2024-03-15",
) -> pd.DataFrame:
    rows = []
    experts = ["E1", "E2", "E3"]
    for rnd, table in ((1, first), (2, final)):
        for c in CRITERIA:
            for e, sc in zip(experts, table.get(c, [3, 3, 3]), strict=True):
                rows.append(
                    (
                        pid,
                        customer,
                        e,
                        rnd,
                        c,
                        sc,
                        pd.Timestamp(day) - pd.Timedelta(days=14 * (2 - rnd)),
                        None,
                    )
                )
    return pd.DataFrame(rows, columns=list(COLUMNS["expert_scores"]))


def test_consensus_is_the_last_round_median_and_agreement_is_reported():
    final = {"character": [2, 4, 4], "capacity": [1, 3, 5]}
    first = {"character": [1, 4, 5], "capacity": [1, 3, 5]}
    p = panel_agreement(_panel(final, first), MAX_IQR).iloc[0]
    assert p["expert_character"] == 4 and p["expert_capacity"] == 3 and p["expert_coverage"] == 3
    # IQR of [2, 4, 4] = 4 − 3 = 1; of [1, 3, 5] = 4 − 2 = 2 -> not converged (max IQR 2 > 1)
    assert p["iqr_character"] == 1.0 and p["iqr_capacity"] == 2.0
    assert p["max_iqr"] == 2.0 and not p["converged"]
    # moved between rounds: character E1 1->2, E3 5->4 = 2 of 18 scores
    assert p["moved_share"] == pytest.approx(2 / 18)
    assert p["consensus_date"] == pd.Timestamp("2024-03-15") and p["last_round"] == 2
    ok = panel_agreement(_panel({"character": [3, 4, 4]}, {}), MAX_IQR).iloc[0]
    assert ok["converged"]
    # the rule is the caller's: with max_iqr 2 the first panel converges too
    assert panel_agreement(_panel(final, first), 2.0).iloc[0]["converged"]


def _history() -> pd.DataFrame:
    h = pd.DataFrame(
        {
            "customer_id": ["C1", "C1"],
            "valid_from": pd.to_datetime(["2023-01-01", "2024-06-01"]),
            "valid_to": pd.to_datetime(["2024-06-01", None]),
            "segment": "retail",
            "region": "East",
            "competitor_share": [0.1, 0.3],
            "credit_limit": [10_000.0, 5_000.0],
            "net_worth": [1e6, 8e5],
            "annual_turnover": [5e6, 4e6],
            **{c: pd.array([2, 1], dtype="Int64") for c in EXPERT_SCORES},
            "approver": ["Li Wei", "Zhao Lei"],
            "approval_date": pd.to_datetime(["2023-01-01", "2024-06-01"]),
            "change_reason": ["onboarding", "overdue: limit cut"],
        }
    )
    return h


def test_panel_splits_the_version_and_later_changes_supersede_it():
    panels = panel_agreement(_panel({"character": [4, 4, 5]}, {}, day="2024-03-15"), MAX_IQR)
    merged, applied = merge_panels(_history(), panels)
    assert applied == 1 and timeline_failures(merged).empty and len(merged) == 3
    keys = pd.DataFrame(
        {
            "customer_id": "C1",
            "as_of_date": pd.to_datetime(["2024-02-29", "2024-03-31", "2024-06-30"]),
        }
    )
    at = attributes_as_of(merged, keys)
    assert list(at["expert_character"]) == [2, 4, 1]  # before the panel, panel, later downgrade
    assert list(at["credit_limit"]) == [10_000.0, 10_000.0, 5_000.0]
    assert at.loc[1, "approver"] == "Delphi panel P1"


def test_a_panel_after_t_changes_nothing_at_t():
    t = pd.Timestamp("2024-03-31")
    keys = pd.DataFrame({"customer_id": ["C1"], "as_of_date": [t]})
    base = attributes_as_of(_history(), keys)
    later = panel_agreement(_panel({"character": [5, 5, 5]}, {}, day="2024-04-10"), MAX_IQR)
    merged, _ = merge_panels(_history(), later)
    after = attributes_as_of(merged, keys)
    cols = ["credit_limit", "competitor_share", *EXPERT_SCORES, "approver"]
    pd.testing.assert_frame_equal(base[cols], after[cols], check_dtype=False)
