"""Credit policy maths: limits, terms NPV (textbook example), triggers, dunning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import PipelineError, load_params
from pipeline.params import ParamsError, to_dict
from pipeline.params.publish import LimitPolicy, PublishParams, policy_from_bundle
from pipeline.policy import (
    band_statistics,
    credit_policy_table,
    credit_terms_npv,
    customer_limits,
    dunning_table,
    letter_pds,
    limit_action,
    limit_table,
    size_band,
)

# the inputs of the hand calculations below, stated here so a params.yaml edit cannot move them
HAND = {
    "lgd": 0.45,
    "el_budget": 5000.0,
    "days_per_month": 30,
    "size_bands": [0, 10000, 50000],
    "credit_period_days": {"A": 60, "B": 45, "C": 30, "D": 0},
    "grade_factor": {"A": 1.5, "B": 1.0, "C": 0.6, "D": 0.0},
    "net_worth_share": {"A": 0.35, "B": 0.25, "C": 0.15, "D": 0.0},
    "turnover_share": {"A": 0.10, "B": 0.07, "C": 0.05, "D": 0.0},
}


@pytest.fixture(scope="module")
def hand(make_params) -> LimitPolicy:
    return make_params(PublishParams, "publish", "synthetic", HAND).limit_policy


@pytest.fixture(scope="module")
def published(make_params) -> PublishParams:
    return make_params(PublishParams, "publish")


def test_published_params_have_everything_policy_reads(published):
    credit_policy_table(published.limit_policy)
    d = published.dunning
    assert len(dunning_table(d)) == 4 * len(d.dpd_bands) * len(d.amount_bands)


# ------------------------------------------------------------------------------ parameters
def test_params_echo_params_yaml_and_round_trip_through_the_bundle(published):
    raw = load_params()["publish"]
    assert to_dict(published) == raw  # the bundle's policy reads as the params file, types kept
    assert to_dict(published)["triggers"]["raise"]["min_tenure_months"] == 12  # key `raise` kept
    assert published.triggers.raise_.step == raw["triggers"]["raise"]["step"]
    bundle_policy = {**to_dict(published), "limit_table": [{"letter_grade": "A"}]}
    assert policy_from_bundle(bundle_policy) == published.limit_policy
    # scoring needs only the limit policy: a bundle published before the dunning block still scores
    older = {k: v for k, v in bundle_policy.items() if k not in ("dunning", "customer_value")}
    assert policy_from_bundle(older) == published.limit_policy
    with pytest.raises(ParamsError, match="key publish.triggers: rule required"):
        policy_from_bundle({k: v for k, v in older.items() if k != "triggers"})


@pytest.mark.parametrize(
    "override, key, rule",
    [
        ({"size_bands": [0, 50000, 10000]}, "publish.size_bands", "increasing"),
        ({"lgd": 1.5}, "publish.lgd", "in_range"),
        ({"net_worth_share": {"A": 1.2}}, "publish.net_worth_share.A", "in_range"),
        ({"grade_factor": {"B": -0.5}}, "publish.grade_factor", "non_negative"),
        ({"dunning": {"wait_days": [7, 7]}}, "publish.dunning.wait_days", "same_length"),
        (
            {"dunning": {"amount_escalation": [0, 1]}},
            "publish.dunning.amount_escalation",
            "same_length",
        ),
        ({"triggers": {"cut": {"step": 1.5}}}, "publish.triggers.cut.step", "in_range"),
        ({"triggers": {"raise": {"step": "x"}}}, "publish.triggers.raise.step", "type"),
        (
            {"limit_review": {"exposure_level": [0, 1]}},
            "publish.limit_review.exposure_level",
            "same_length",
        ),
        (
            {"limit_review": {"change_bands": [0.1, 0.5, 1.0]}},
            "publish.limit_review.change_bands",
            "from_zero",
        ),
        (
            {"limit_review": {"suspend_role": "ceo"}},
            "publish.limit_review.suspend_role",
            "one_of",
        ),
        (
            {"customer_value": {"tier_quantiles": [0.8, 0.4]}},
            "publish.customer_value.tier_quantiles",
            "increasing",
        ),
        (
            {"customer_value": {"grade_strategy": {"low": {"A": "hold"}}}},
            "publish.customer_value.grade_strategy.low.A",
            "one_of",
        ),
        ({"size_measure": None}, "publish.size_measure", "type"),
    ],
)
def test_bad_publish_params_fail_once_naming_the_key(make_params, override, key, rule):
    with pytest.raises(ParamsError) as info:
        make_params(PublishParams, "publish", "synthetic", override)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"params.yaml: key {key}: rule {rule}: "), message


def test_grade_maps_must_cover_every_letter_grade():
    from pipeline.config import deep_merge
    from pipeline.params import build

    raw = load_params()["publish"]
    partial = deep_merge(raw, {})
    partial["review_months"] = {"A": 12, "B": 12, "C": 6}
    with pytest.raises(ParamsError, match=r"key publish.review_months: rule covers_grades: .*'D'"):
        build(PublishParams, partial, "publish")


# ------------------------------------------------------------------------ credit terms (RWJ)
def test_locust_software_switch_to_net_30():
    # Ross-Westerfield-Jordan, Fundamentals of Corporate Finance, ch. "Credit and Inventory
    # Management", Locust Software: P=$49, v=$20, Q=100 -> Q'=110, R=2%/month.
    # NPV = -[49*100 + 20*10] + (49-20)*10/0.02 = -5,100 + 14,500 = $9,400 (published).
    # Break-even dQ = 4,900 / (29/0.02 - 20) = 4,900 / 1,430 = 3.43 units (published).
    out = credit_terms_npv(49, 20, 100, 110, 0.02)
    assert out["npv"] == pytest.approx(9400.0)
    assert out["switch_cost"] == pytest.approx(5100.0)
    assert out["break_even_quantity_change"] == pytest.approx(4900 / 1430)
    assert round(out["break_even_quantity_change"], 2) == 3.43


def test_locust_extra_credit_five_units():
    # Same text, end-of-chapter check: Q' = 105 -> cost 5,000, benefit 145/month,
    # NPV = -5,000 + 145/0.02 = $2,250.
    out = credit_terms_npv(49, 20, 100, 105, 0.02)
    assert out["npv"] == pytest.approx(2250.0)
    assert out["monthly_benefit"] == pytest.approx(145.0)


def test_locust_break_even_default_rate_with_discount():
    # Same text, "discounts and default risk": d = 2%, R = 2% -> pi = .02 - .02*.98 = .0004.
    out = credit_terms_npv(49, 20, 100, 100, 0.02, discount=0.02, default_rate=0.0004)
    assert out["break_even_default_rate"] == pytest.approx(0.0004)
    assert out["npv"] == pytest.approx(0.0, abs=1e-6)
    # -P*Q + P'*Q*(d - pi)/R with P' = 49/0.98 = 50, pi = 1%: -4,900 + 50*100*0.01/0.02 = -2,400
    assert credit_terms_npv(49, 20, 100, 100, 0.02, 0.02, 0.01)["npv"] == pytest.approx(-2400.0)


@given(
    price=st.floats(10, 500),
    cost_share=st.floats(0.05, 0.9),
    q=st.floats(1, 1e4),
    rate=st.floats(0.002, 0.05),
    d=st.floats(0, 0.05),
    pi=st.floats(0, 0.03),
)
def test_npv_is_zero_at_the_break_even_sales_change(price, cost_share, q, rate, d, pi):
    base = credit_terms_npv(price, price * cost_share, q, q, rate, d, pi)
    dq = base["break_even_quantity_change"]
    if np.isfinite(dq):
        at = credit_terms_npv(price, price * cost_share, q, q + dq, rate, d, pi)
        assert at["npv"] == pytest.approx(0.0, abs=1e-6 * price * q / rate)


def test_terms_npv_rejects_bad_rates():
    with pytest.raises(PipelineError, match="monthly_rate"):
        credit_terms_npv(49, 20, 100, 110, 0.0)


# ---------------------------------------------------------------------------------- limits
def test_customer_limit_binding_constraints_by_hand(hand):
    lim = customer_limits(
        ["B", "A", "C", "D", "B"],
        [0.02, 0.01, 0.10, 0.30, 0.02],
        [30000.0, 30000.0, 30000.0, 30000.0, np.nan],
        hand,
        net_worth=[80000.0, np.nan, np.nan, np.nan, np.nan],
        annual_turnover=[700000.0, np.nan, np.nan, np.nan, np.nan],
    )
    # B: need 30,000 x 45/30 x 1.0 = 45,000; 25% x 80k = 20,000; 7% x 700k = 49,000;
    #    EL cap 5,000 / (0.02 x 0.45) = 555,555 -> 20,000 by net worth.
    assert lim.loc[0, "need"] == pytest.approx(45000)
    assert (lim.loc[0, "limit"], lim.loc[0, "binding"]) == (20000, "net_worth_cap")
    # A: need 30,000 x 2 x 1.5 = 90,000 vs EL cap 1,111,111 -> need.
    assert (lim.loc[1, "limit"], lim.loc[1, "binding"]) == (90000, "need")
    # C: need 30,000 x 1 x 0.6 = 18,000 vs EL cap 5,000 / 0.045 = 111,111 -> need.
    assert (lim.loc[2, "limit"], lim.loc[2, "binding"]) == (18000, "need")
    # D: cash in advance; no sales history: no credit.
    assert lim.loc[3, "limit"] == 0 and lim.loc[4, "limit"] == 0
    # EL cap binding: PD 40% for an A customer with big sales -> 5,000 / 0.18 = 27,777
    el = customer_limits(["A"], [0.4], [1e6], hand).iloc[0]
    assert (el["limit"], el["binding"]) == (27777, "expected_loss_cap")


def test_unknown_letter_grade_is_an_error(hand):
    with pytest.raises(PipelineError, match="credit_period_days"):
        customer_limits(["E"], [0.1], [1.0], hand)


def test_size_bands_half_open_and_statistics():
    idx = size_band([-1, 0, 9999.99, 10000, 50000, np.nan], [0, 10000, 50000])
    assert idx.tolist() == [-1, 0, 0, 1, 2, -1]
    stats = band_statistics([1000, 3000, 20000], [0, 10000, 50000])
    assert stats["typical_monthly_sales"].tolist() == [2000, 20000, 50000]
    assert stats["customers"].tolist() == [2, 1, 0]


def test_limit_table_names_binding_constraint_in_every_cell(hand):
    grades = [
        {"letter_grade": "A", "pd": 0.01, "count": 10},
        {"letter_grade": "A", "pd": 0.03, "count": 30},
        {"letter_grade": "B", "pd": 0.05, "count": 1},
    ]
    pds = letter_pds(grades)
    assert pds["A"] == pytest.approx((0.1 + 0.9) / 40)
    table = limit_table(pds, band_statistics([5000, 20000, 80000], [0, 10000, 50000]), hand)
    assert len(table) == 2 * 3
    assert table["binding"].isin(["need", "expected_loss_cap"]).all()
    # A, band [50,000, inf) typical 80,000: need 240,000 vs EL cap 5,000/(0.025*0.45) = 444,444
    cell = table[(table.letter_grade == "A") & (table.size_min == 50000)].iloc[0]
    assert cell["limit"] == 240000 and cell["binding"] == "need"


def test_limit_actions_priority(published):
    frame = pd.DataFrame(
        {
            "late_invoice_share_12m": [0.0, 0.0, 0.0, 0.5],
            "invoiced_amount_3m": [300.0, 300.0, 300.0, 300.0],
            "invoiced_amount_12m": [900.0, 900.0, 900.0, 900.0],
            "tenure_months": [24, 24, 24, 24],
            "largest_invoice_share_3m": [0.1, 0.5, 0.5, 0.1],
            "days_beyond_terms_max_3m": [0, 20, 20, 0],
            "worst_days_past_due": [0, 0, 90, 0],
        }
    )
    out = limit_action(frame, published.triggers)
    assert out["limit_action"].tolist() == ["raise", "cut", "suspend", "keep"]
    assert out["limit_multiplier"].tolist() == [1.25, 0.5, 0.0, 1.0]
    blank = limit_action(pd.DataFrame(index=[0]), published.triggers)
    assert blank["limit_action"].tolist() == ["keep"]


def test_dunning_escalates_with_grade_and_amount(published):
    d = published.dunning
    t = dunning_table(d)
    first = t[(t.dpd_min == 1) & (t.amount_min == 0)].set_index("letter_grade")
    assert first.loc["A", "action"] == "friendly_reminder"
    assert first.loc["D", "action"] == "final_notice"
    assert first.loc["D", "wait_days"] < d.wait_days[2]
    last = t[t.dpd_min == max(d.dpd_bands)]
    assert (last["action"] == "agency_or_legal").all()
    steps = t.groupby("letter_grade")["step"].mean()
    assert steps.is_monotonic_increasing
