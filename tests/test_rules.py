"""The seed's rule-based grading: the combination table, indicator boundaries and the expert overlay."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import rules
from pipeline.domain import PipelineError
from pipeline.params import ParamsError
from pipeline.params.rules import RulesParams

U = rules.UNDEFINED
# Written out by hand: the textbook's seven cells, any D → D (veto), and the three gaps AAC, ABC, ACC under
# additive (A=1, B=2, C=3; sum 3–4 A, 5–6 B, 7–9 C), conservative (worst, one step up only if both others
# are A) and strict (UNDEFINED). Key: the letters sorted; value: (additive, conservative, strict).
TABLE = {
    "AAA": ("A", "A", "A"),
    "AAB": ("A", "A", "A"),
    "AAC": ("B", "B", U),
    "AAD": ("D", "D", "D"),
    "ABB": ("B", "B", "B"),
    "ABC": ("B", "C", U),
    "ABD": ("D", "D", "D"),
    "ACC": ("C", "C", U),
    "ACD": ("D", "D", "D"),
    "ADD": ("D", "D", "D"),
    "BBB": ("B", "B", "B"),
    "BBC": ("C", "C", "C"),
    "BBD": ("D", "D", "D"),
    "BCC": ("C", "C", "C"),
    "BCD": ("D", "D", "D"),
    "BDD": ("D", "D", "D"),
    "CCC": ("C", "C", "C"),
    "CCD": ("D", "D", "D"),
    "CDD": ("D", "D", "D"),
    "DDD": ("D", "D", "D"),
}
# pairs (one indicator missing), by hand from the stated two-letter rule of each completion
PAIRS = {
    "AA": ("A", "A", "A"),
    "AB": ("B", "A", "B"),
    "AC": ("B", "B", U),
    "AD": ("D", "D", "D"),
    "BB": ("B", "B", "B"),
    "BC": ("C", "C", "C"),
    "BD": ("D", "D", "D"),
    "CC": ("C", "C", "C"),
    "CD": ("D", "D", "D"),
    "DD": ("D", "D", "D"),
}
RANK = {"A": 0, "B": 1, "C": 2, "D": 3}


@pytest.fixture(scope="module")
def rp(make_params):
    """``rp(override)``: the rules block of params.yaml with ``override`` merged in."""
    return lambda override=None: make_params(RulesParams, "rules", "synthetic", override)


def test_table_covers_every_multiset():
    assert len(TABLE) == 20 and len(PAIRS) == 10


@pytest.mark.parametrize("completion", rules.COMPLETIONS)
def test_all_64_ordered_triples(completion):
    col = rules.COMPLETIONS.index(completion)
    seen = 0
    for triple in itertools.product("ABCD", repeat=3):
        grade, reason = rules.combine(triple, completion)
        assert grade == TABLE["".join(sorted(triple))][col], (triple, completion)
        if "".join(sorted(triple)) in ("AAA", "AAB", "ABB", "BBB", "BBC", "BCC", "CCC"):
            assert reason is None
        else:
            assert reason  # veto, completion or UNDEFINED always say why
        seen += 1
    assert seen == 64


@pytest.mark.parametrize("completion", rules.COMPLETIONS)
def test_pairs(completion):
    col = rules.COMPLETIONS.index(completion)
    for pair in itertools.product("ABCD", repeat=2):
        assert rules.combine(pair, completion)[0] == PAIRS["".join(sorted(pair))][col], pair


@given(
    st.tuples(*[st.sampled_from("ABCD")] * 3),
    st.permutations(range(3)),
    st.sampled_from(rules.COMPLETIONS),
)
def test_order_invariance(triple, perm, completion):
    assert rules.combine(triple, completion) == rules.combine(
        tuple(triple[i] for i in perm), completion
    )


@given(
    st.lists(st.sampled_from("ABCD"), min_size=2, max_size=3),
    st.integers(0, 2),
    st.sampled_from(["additive", "conservative"]),
)
def test_improving_an_indicator_never_worsens_the_grade(letters, i, completion):
    i %= len(letters)
    if letters[i] == "A":
        return
    better = list(letters)
    better[i] = "ABCD"[RANK[letters[i]] - 1]
    assert (
        RANK[rules.combine(tuple(better), completion)[0]]
        <= RANK[rules.combine(tuple(letters), completion)[0]]
    )


def test_combine_rejects_bad_input():
    with pytest.raises(PipelineError):
        rules.combine(("A", "B", "E"), "additive")
    with pytest.raises(PipelineError):
        rules.combine(("A", "B", "C"), "lenient")


def snaps(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {
        "customer_id": [f"C{i}" for i in range(n)],
        "as_of_date": pd.Timestamp("2024-12-31"),
        "net_collection_rate_12m": 1.0,
        "days_beyond_terms_max_12m": 0.0,
        "days_beyond_terms_wavg_12m": 0.0,
        "days_beyond_terms_last_invoice": 0.0,
        "competitor_share": 0.0,
    }
    base.update(cols)
    if "days_late_wavg_12m" not in cols:  # one invoice per customer: lateness = max(0, signed DBT)
        base["days_late_wavg_12m"] = np.maximum(
            np.asarray(base["days_beyond_terms_wavg_12m"], float), 0
        )
    return pd.DataFrame(base)


def test_boundaries(rp):
    ncr = [1.0, 0.99999, 0.95, 0.94999, 0.90, 0.89999, np.nan]
    g = rules.grade(snaps(net_collection_rate_12m=ncr), rp())
    assert g["grade_net_collection"].tolist() == ["A", "B", "B", "C", "C", "D", None]
    dbt = [-3.0, 0.0, 0.01, 4.99, 5.0, 9.99, 10.0, 45.0]
    g = rules.grade(snaps(days_beyond_terms_wavg_12m=dbt), rp())
    assert g["grade_payment_timing"].tolist() == ["A", "A", "B", "B", "C", "C", "D", "D"]
    share = [0.0, 0.01, 0.2, 0.21, 0.5, 0.51, 1.0]
    g = rules.grade(snaps(competitor_share=share), rp())
    assert g["grade_competitor_share"].tolist() == ["A", "B", "B", "C", "C", "D", "D"]


def test_timing_measure_picks_the_column(rp):
    frame = snaps(
        days_beyond_terms_max_12m=[12.0],
        days_beyond_terms_wavg_12m=[3.0],
        days_beyond_terms_last_invoice=[6.0],
    )
    got = {
        m: rules.grade(frame, rp({"timing_measure": m}))["grade_payment_timing"].iloc[0]
        for m in rules.TIMING_MEASURES
    }
    assert got == {
        "amount_weighted_lateness": "B",
        "worst_dbt": "D",
        "amount_weighted_dbt": "B",
        "last_period_dbt": "C",
    }


def test_default_timing_measure_grades_lateness_not_net_days(rp):
    """The issue's customer: invoices 15 days late, 16 early and on time (equal amounts). Signed mean
    −1/3 day grades A; the default (mean lateness, 5 days) grades C, as the textbook grades how late the
    customer pays. The old signed measure stays available."""
    frame = snaps(days_beyond_terms_wavg_12m=[-1 / 3], days_late_wavg_12m=[5.0])
    assert rp().timing_measure == "amount_weighted_lateness"  # the params.yaml default
    assert rules.grade(frame, rp())["grade_payment_timing"].iloc[0] == "C"
    signed = rules.grade(frame, rp({"timing_measure": "amount_weighted_dbt"}))
    assert signed["grade_payment_timing"].iloc[0] == "A"


def test_grade_columns_subgrade_and_reasons(rp):
    frame = snaps(
        net_collection_rate_12m=[1.0, 0.96, 0.92, 0.5],
        days_beyond_terms_wavg_12m=[0.0, 7.0, 7.0, 0.0],
        competitor_share=[0.1, 0.0, 0.4, 0.0],
    )
    g = rules.grade(frame, rp({"completion": "conservative"}))
    assert list(frame.columns) == list(g.columns[: frame.shape[1]])
    assert set(rules.OUTPUT_COLUMNS) <= set(g.columns)
    assert g["rule_subgrade"].tolist() == ["AAB", "BCA", "CCC", "DAA"]
    assert g["rule_grade"].tolist() == ["A", "C", "C", "D"]
    assert g["rule_grade_reason"].iloc[3] == "veto: D on net_collection"
    assert "conservative" in g["rule_grade_reason"].iloc[1]
    assert (g["rule_grade_basis"] == "three_indicators").all()
    assert "rule_grade" not in frame  # grade returns a copy


def test_missing_competitor_share_graded_on_two_and_counted(rp):
    frame = snaps(
        net_collection_rate_12m=[1.0, 1.0, 0.96, 1.0, np.nan],
        days_beyond_terms_wavg_12m=[0.0, 2.0, 7.0, 12.0, np.nan],
        competitor_share=[np.nan, np.nan, np.nan, np.nan, np.nan],
    )
    g = rules.grade(frame, rp({"missing_competitor_rule": "two_indicator"}))
    assert g["rule_subgrade"].tolist() == ["AA-", "AB-", "BC-", "AD-", "---"]
    assert g["rule_grade"].tolist() == ["A", "B", "C", "D", U]
    assert g["rule_grade_basis"].tolist()[:4] == ["two_indicators"] * 4
    assert g["rule_grade_basis"].iloc[4] == "insufficient_indicators"
    # worst-of-present imputation: AB- is read as ABB (→ B), AC- as ACC (→ C under additive)
    g2 = rules.grade(
        snaps(
            net_collection_rate_12m=[1.0, 1.0],
            days_beyond_terms_wavg_12m=[2.0, 7.0],
            competitor_share=[np.nan, np.nan],
        ),
        rp({"missing_competitor_rule": "worst_of_present"}),
    )
    assert g2["rule_grade"].tolist() == ["B", "C"]
    report = rules.grading_report(g, rp())
    assert report["graded_on_two_indicators"] == 4
    assert report["missing_competitor_share"] == 5
    assert report["undefined"] == 1


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.5, 1.0), st.floats(-10, 30), st.floats(0, 1), st.integers(0, 2), st.floats(0, 1)
)
def test_improving_an_input_never_worsens_the_rule_grade(rp, ncr, dbt, share, which, step):
    before = snaps(
        net_collection_rate_12m=[ncr], days_beyond_terms_wavg_12m=[dbt], competitor_share=[share]
    )
    after = before.copy()
    col = ["net_collection_rate_12m", "days_beyond_terms_wavg_12m", "competitor_share"][which]
    after[col] = after[col] + (step if which == 0 else -20 * step if which == 1 else -step)
    after["net_collection_rate_12m"] = after["net_collection_rate_12m"].clip(upper=1.0)
    after["competitor_share"] = after["competitor_share"].clip(lower=0.0)
    after["days_late_wavg_12m"] = after["days_beyond_terms_wavg_12m"].clip(lower=0.0)
    g0, g1 = (
        rules.grade(before, rp())["rule_grade"].iloc[0],
        rules.grade(after, rp())["rule_grade"].iloc[0],
    )
    assert RANK[g1] <= RANK[g0]


def expert_frame(scores, grade_inputs, approver="Li Wei", date="2024-06-30", as_of="2024-12-31"):
    ncr, dbt = zip(*grade_inputs, strict=True)
    frame = snaps(
        net_collection_rate_12m=list(ncr),
        days_beyond_terms_wavg_12m=list(dbt),
        competitor_share=[0.0] * len(ncr),
    )
    for c in rules.EXPERT_CS:
        frame[f"expert_{c}"] = pd.array(scores, dtype="Int64")
    frame["expert_approver"] = approver
    frame["expert_reason"] = "Delphi panel: annual review"
    frame["expert_date"] = pd.Timestamp(date)
    frame["as_of_date"] = pd.Timestamp(as_of)
    return frame


# rule-grade inputs: A = AAA, B = BBA, C = CCA, D = DAA
A_, B_, C_, D_ = (1.0, 0.0), (0.96, 2.0), (0.92, 7.0), (0.5, 0.0)


def test_weighted_expert_score_by_hand(rp):
    frame = expert_frame([3], [A_])
    for c, s in zip(rules.EXPERT_CS, [5, 4, 3, 2, 1, 5], strict=True):
        frame[f"expert_{c}"] = pd.array([s], dtype="Int64")
    # 0.25·5 + 0.25·4 + 0.15·3 + 0.10·2 + 0.10·1 + 0.15·5 = 3.75
    assert rules.grade(frame, rp())["expert_score"].iloc[0] == pytest.approx(3.75)
    frame["expert_coverage"] = pd.array([None], dtype="Int64")  # renormalised over the five scored
    assert rules.grade(frame, rp())["expert_score"].iloc[0] == pytest.approx(3.0 / 0.85)


def test_overlay_notches_are_bounded_and_recorded(rp):
    frame = expert_frame([5, 5, 5, 1, 1, 2, 4, 3], [C_, A_, D_, B_, C_, B_, B_, B_])
    g = rules.grade(frame, rp())
    # score 5 → +2 requested, bounded to +1; score 1 → −2; score 2 → −1; 4 → +1; 3 → 0
    assert g["rule_grade"].tolist() == ["C", "A", "D", "B", "C", "B", "B", "B"]
    assert g["final_grade"].tolist() == ["B", "A", "D", "D", "D", "C", "A", "B"]
    assert g["overlay_notches"].tolist() == [1, 0, 0, -2, -1, -1, 1, 0]
    moved = g["overlay_notches"] != 0
    assert g.loc[moved, "override_approver"].eq("Li Wei").all()
    assert g.loc[moved, "override_date"].eq(pd.Timestamp("2024-06-30")).all()
    assert g.loc[moved, "override_reason"].str.startswith("Delphi panel: annual review").all()
    assert g.loc[~moved, "override_approver"].isna().all()
    g_up = rules.grade(frame, rp({"overlay": {"max_notches_up": 2, "upgrade_d": True}}))
    assert g_up["final_grade"].tolist()[:3] == ["A", "A", "B"]
    off = rules.grade(frame, rp({"overlay": {"enabled": False}}))
    assert off["final_grade"].equals(off["rule_grade"]) and (off["overlay_notches"] == 0).all()


def test_overlay_needs_approver_date_and_point_in_time(rp):
    late = rules.grade(expert_frame([5], [C_], date="2025-03-31", as_of="2024-12-31"), rp())
    assert late["final_grade"].iloc[0] == "C" and late["overlay_notches"].iloc[0] == 0
    assert late["override_reason"].iloc[0].startswith("not applied")
    nobody = rules.grade(expert_frame([5], [C_], approver=None), rp())
    assert nobody["final_grade"].iloc[0] == "C"


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(1, 5), min_size=6, max_size=6),
    st.sampled_from([A_, B_, C_, D_]),
    st.integers(0, 3),
    st.integers(0, 3),
)
def test_overlay_never_exceeds_its_bounds(rp, scores, inputs, up, down):
    frame = expert_frame([3], [inputs])
    for c, s in zip(rules.EXPERT_CS, scores, strict=True):
        frame[f"expert_{c}"] = pd.array([s], dtype="Int64")
    bounds = rp({"overlay": {"max_notches_up": up, "max_notches_down": down}})
    g = rules.grade(frame, bounds).iloc[0]
    assert -down <= g["overlay_notches"] <= up
    assert RANK[g["rule_grade"]] - RANK[g["final_grade"]] == g["overlay_notches"]


def test_grading_report_rates_by_hand(rp):
    frame = expert_frame([5, 1, 3, 3], [C_, B_, B_, A_])
    g = rules.grade(frame, rp())
    g["is_bad"] = pd.array([0, 1, 1, pd.NA], dtype="Int8")
    r = rules.grading_report(g, rp())
    assert r["overlay"]["overrides"] == 2 and r["overlay"]["override_rate"] == 0.5
    assert r["overlay"]["upgrades"] == 1 and r["overlay"]["downgrades"] == 1
    assert r["bad_rate"]["overridden"] == {"count": 2, "bad_rate": 0.5}
    assert r["bad_rate"]["not_overridden"] == {"count": 1, "bad_rate": 1.0}
    assert r["overlay"]["by_approver"] == {"Li Wei": 2}


def test_errors_name_the_problem(rp):
    with pytest.raises(PipelineError, match="days_late_wavg_12m"):
        rules.grade(snaps(x=[1]).drop(columns="days_late_wavg_12m"), rp())
    with pytest.raises(ParamsError, match="key rules.completion: rule one_of"):
        rules.grade(snaps(x=[1]), rp({"completion": "lenient"}))
    with pytest.raises(ParamsError, match="key rules.overlay.weights: rule weights"):
        rules.grade(snaps(x=[1]), rp({"overlay": {"weights": {"character": 0.5}}}))


@pytest.mark.parametrize(
    "override, key, rule",
    [
        ({"timing_measure": "median_dbt"}, "rules.timing_measure", "one_of"),
        ({"missing_competitor_rule": "ignore"}, "rules.missing_competitor_rule", "one_of"),
        ({"collection_thresholds": {"b_min": 1.01}}, "rules.collection_thresholds", "ordered"),
        ({"timing_thresholds": {"b_below": 0.0}}, "rules.timing_thresholds", "ordered"),
        (
            {"competitor_share_thresholds": {"c_max": 1.5}},
            "rules.competitor_share_thresholds",
            "ordered",
        ),
        ({"overlay": {"weights": {"luck": 0.0}}}, "rules.overlay.weights", "weights"),
        ({"overlay": {"points_per_notch": 0.0}}, "rules.overlay.points_per_notch", "positive"),
        ({"overlay": {"max_notches_down": -1}}, "rules.overlay.max_notches_down", "in_range"),
        ({"timing_window_months": 0}, "rules.timing_window_months", "in_range"),
    ],
)
def test_rules_params_are_checked_once_naming_the_key(make_params, override, key, rule):
    with pytest.raises(ParamsError) as info:
        make_params(RulesParams, "rules", "synthetic", override)
    assert str(info.value).startswith(f"params.yaml: key {key}: rule {rule}: "), info.value


@pytest.mark.parametrize("dataset", ["synthetic", "uci"])
def test_rules_params_build_for_every_dataset(make_params, dataset):
    p = make_params(RulesParams, "rules", dataset)
    assert set(p.overlay.weights) == set(rules.EXPERT_CS)
    assert set(rules.indicator_columns(p)) == set(rules.INDICATORS)
