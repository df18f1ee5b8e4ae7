"""Scorecard exports against the one Python scoring function, on the boundary set."""

from __future__ import annotations

import io

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from pipeline.card import score_frame
from pipeline.config import PipelineError
from pipeline.exports import (
    SQL_INPUT_TABLE,
    boundary_cases,
    check_against_python,
    points_table,
    scorecard_sql,
    scorecard_workbook,
    workbook_bytes,
)
from tests.fixtures.cards import HOSTILE, hand_card, hand_cutoffs

pycel = pytest.importorskip("pycel", reason="pycel (dev extra) evaluates the workbook formulas")

GRADES = hand_cutoffs()["grades"]


def run_sql(card: dict, frame: pd.DataFrame, grades=GRADES) -> pd.DataFrame:
    con = duckdb.connect()
    con.execute("CREATE TABLE x AS SELECT 42 AS survivor")
    con.register(SQL_INPUT_TABLE, frame)
    sql = scorecard_sql(card, grades)
    out = con.execute(sql).df()
    assert con.execute("SELECT survivor FROM x").fetchone() == (42,)
    return out


def evaluate_workbook(wb, tmp_path) -> pd.DataFrame:
    """Evaluate the scoring sheet's formulas with pycel (EXACT supplied by a test plugin), on the
    bytes publish writes."""
    path = str(tmp_path / "scorecard.xlsx")
    (tmp_path / "scorecard.xlsx").write_bytes(workbook_bytes(wb))
    xl = pycel.ExcelCompiler(filename=path, plugins=["tests.fixtures.excel_functions"])
    ws = load_workbook(path)["scoring"]
    headers = [c.value for c in ws[1]]
    rows = []
    for r in range(2, ws.max_row + 1):
        rows.append(
            {
                h: xl.evaluate(f"scoring!{ws.cell(row=1, column=j).column_letter}{r}")
                for j, h in enumerate(headers, start=1)
                if h.startswith("points__") or h in ("score", "pd_model", "grade", "case_id")
            }
        )
    return pd.DataFrame(rows)


def test_boundary_set_probes_every_edge_by_hand():
    cases = boundary_cases(hand_card(), GRADES)
    dbt = cases[cases.case_feature == "days_beyond_terms_max_12m"].set_index("case")
    pts = "expected_points__days_beyond_terms_max_12m"
    # [lower, upper): 0.5 belongs to the 0.5-15 bin (45 points), just below it to the first (60)
    first = int(np.flatnonzero(dbt.days_beyond_terms_max_12m.to_numpy() == 0.5)[0])
    at = dbt.iloc[first : first + 5]
    assert at.index.tolist() == ["edge", "edge-ulp", "edge+ulp", "edge-step", "edge+step"]
    assert at[pts].tolist() == [45, 60, 45, 60, 45]
    assert at.days_beyond_terms_max_12m.tolist() == [
        0.5,
        0.49999999999999994,
        0.5000000000000001,
        0.49,
        0.51,
    ]
    assert dbt.loc["special", pts] == 33 and dbt.loc["missing", pts] == 40
    seg = cases[cases.case_feature == "segment"].set_index("case")
    assert seg.loc["unseen", "expected_points__segment"] == 55
    assert seg.loc["missing", "expected_points__segment"] == 60
    assert (cases.case == "all_missing").sum() == 1
    edges = {0.5, 15.0, 60.0, 0.1, 0.953}
    probed = set(cases.loc[cases.case == "edge", "days_beyond_terms_max_12m"]) | set(
        cases.loc[cases.case == "edge", "net_collection_rate_12m"]
    )
    assert edges <= probed
    # the all-missing row scores the missing points: 40 + 38 + 60 = 138 -> grade D (< 140)
    row = cases[cases.case == "all_missing"].iloc[0]
    assert (row.expected_score, row.expected_grade) == (138, "D")


def test_sql_matches_python_on_boundary_set_with_hostile_labels():
    card = hand_card()
    cases = boundary_cases(card, GRADES)
    got = run_sql(card, cases)
    check_against_python(card, cases, got, "scorecard.sql")
    hostile = cases[cases.segment == HOSTILE]
    assert len(hostile) == 1 and got.loc[hostile.index[0], "points__segment"] == 55


def test_sql_is_one_statement_and_labels_stay_literals():
    card = hand_card()
    card["features"][2]["name"] = 'seg"; DROP TABLE x; --'
    sql = scorecard_sql(card, GRADES)
    assert len(duckdb.extract_statements(sql)) == 1
    cases = boundary_cases(card, GRADES)
    check_against_python(card, cases, run_sql(card, cases), "scorecard.sql")


def test_sql_detects_a_wrong_points_value():
    card = hand_card()
    cases = boundary_cases(card, GRADES)
    bad = hand_card()
    bad["features"][0]["bins"][1]["points"] = 46
    with pytest.raises(PipelineError, match="points__days_beyond_terms_max_12m"):
        check_against_python(card, cases, run_sql(bad, cases), "scorecard.sql")


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(-5, 100, allow_nan=False),
            st.sampled_from([0.5, 15.0, 60.0, -1.0, float("nan")]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_sql_equals_python_on_random_values(values):
    card = hand_card(hostile=False)
    X = pd.DataFrame(
        {
            "days_beyond_terms_max_12m": values,
            "net_collection_rate_12m": np.linspace(0, 1, len(values)),
            "segment": ["retail"] * len(values),
        }
    )
    got = run_sql(card, X)
    want = score_frame(card, X)
    assert (got["score"].to_numpy() == want["score"].to_numpy()).all()


def test_workbook_formulas_match_python_on_boundary_set(tmp_path):
    card = hand_card()
    cases = boundary_cases(card, GRADES)
    wb = scorecard_workbook(card, GRADES, cases=cases)
    assert wb.sheetnames == [
        "points",
        "grade_cutoffs",
        "limit_table",
        "policy",
        "categories",
        "scoring",
    ]
    got = evaluate_workbook(wb, tmp_path)
    assert len(got) == len(cases)
    check_against_python(card, cases, got, "scorecard.xlsx")


def test_workbook_stores_hostile_labels_as_text():
    wb = scorecard_workbook(hand_card(), GRADES)
    cats = [c.value for c in wb["categories"]["C"]]
    assert "=1+1" in cats and HOSTILE in cats
    cell = next(c for c in wb["categories"]["C"] if c.value == "=1+1")
    assert cell.data_type == "s"


def test_workbook_refuses_control_characters():
    card = hand_card()
    card["features"][2]["bins"][0]["categories"].append("bell\x07")
    with pytest.raises(PipelineError, match="control character"):
        scorecard_workbook(card, GRADES)


def test_points_table_lists_every_bin_and_unseen():
    card = hand_card()
    table = points_table(card)
    assert len(table) == sum(len(f["bins"]) + 1 for f in card["features"])
    unseen = table[table.bin_type == "unseen"].set_index("feature")["points"]
    assert unseen.to_dict() == {
        "days_beyond_terms_max_12m": 20,
        "net_collection_rate_12m": 25,
        "segment": 55,
    }
    roundtrip = pd.read_csv(io.StringIO(table.to_csv(index=False)))
    hostile = roundtrip.categories.str.contains("DROP", na=False)
    assert roundtrip.loc[hostile, "points"].item() == 55


def test_workbook_keeps_full_precision_and_is_deterministic(tmp_path):
    card = hand_card()
    cases = boundary_cases(card, GRADES)
    blob = workbook_bytes(scorecard_workbook(card, GRADES, cases=cases))
    assert blob == workbook_bytes(scorecard_workbook(card, GRADES, cases=cases))
    (tmp_path / "w.xlsx").write_bytes(blob)
    values = [c.value for c in load_workbook(tmp_path / "w.xlsx")["scoring"]["B"]]
    assert np.nextafter(15.0, 0) in values and 15.0 in values


# ------------------------------------------------------------------ short-decimal bin edges
def test_short_decimal_edges_by_hand():
    from pipeline.scorecard import short_decimal_edges

    x = np.arange(1.0, 11.0)
    # 1 digit would round 4.5 to 4 (half to even) and move the row x = 4: 2 digits needed
    assert short_decimal_edges(np.array([4.5, 7.5]), x) == (2, [4.5, 7.5])
    # an OptBinning midpoint between -5.0016 and -5.0015: -5.0016 would take the row below
    split = np.array([-5.001561880111694])
    assert short_decimal_edges(split, np.array([-6.0, -5.0016, -5.0015])) == (6, [-5.00156])
    assert short_decimal_edges(np.array([0.9531]), np.array([0.9, 1.0])) == (1, [1.0])
    assert short_decimal_edges(np.array([0.9531]), np.array([0.9, 0.99])) == (2, [0.95])
    assert short_decimal_edges(np.array([]), x) == (1, [])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=40, unique=True),
    st.data(),
)
def test_short_decimal_edges_keep_every_row_in_its_bin_with_fewest_digits(values, data):
    from pipeline.exports import decimal_text
    from pipeline.scorecard import round_significant, short_decimal_edges

    x = np.sort(np.array(values))
    k = data.draw(st.integers(1, len(x) - 1))
    i = np.sort(
        data.draw(st.lists(st.integers(1, len(x) - 1), min_size=1, max_size=k, unique=True))
    )
    splits = (x[i - 1] + x[i]) / 2  # midpoints, as OptBinning writes them
    splits = np.unique(splits[splits > x[i - 1]])
    if splits.size == 0:
        return
    digits, edges = short_decimal_edges(splits, x)
    want = np.searchsorted(splits, x, side="right")
    assert np.array_equal(np.searchsorted(np.array(edges), x, side="right"), want)
    assert all(
        len(decimal_text(e).lstrip("-").replace(".", "").strip("0")) <= max(digits, 1)
        or "e" in decimal_text(e)
        for e in edges
    )
    if 1 < digits < 17:  # one digit fewer moves a row (or merges two edges)
        fewer = np.array(round_significant(splits, digits - 1))
        moved = not np.array_equal(np.searchsorted(fewer, x, side="right"), want)
        assert moved or np.any(np.diff(fewer) <= 0)


def test_fitted_bins_have_short_decimal_edges_and_the_same_counts():
    from pipeline.scorecard import bin_feature

    rng = np.random.default_rng(7)
    x = rng.lognormal(3, 1.2, 4000) * rng.choice([1, -1], 4000, p=[0.9, 0.1])
    y = (rng.random(4000) < 1 / (1 + np.exp(-(x / 40 - 1)))).astype(float)
    binned = bin_feature(
        "x",
        pd.Series(x),
        y,
        dtype="numeric",
        special_codes=[],
        monotonic_trend="auto",
        min_bin_size=0.05,
        max_n_prebins=20,
    )
    uppers = [b["upper"] for b in binned.bins if b["type"] == "range" and b["upper"] is not None]
    assert len(uppers) >= 2 and binned.edge_digits is not None
    for e in uppers:
        assert float(f"{e:.{binned.edge_digits - 1}e}") == e  # stored at edge_digits digits
    counts = np.histogram(x, bins=[-np.inf, *uppers, np.inf])[0]
    # np.histogram bins are [a, b) except the last: same as the card's [lower, upper)
    got = [b["count"] for b in binned.bins if b["type"] == "range"]
    assert got == counts.tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(-(10**15), 10**15),
    st.integers(-22, 22),
)
def test_sqlite_edge_literal_is_the_exact_double_of_the_short_decimal(m, k):
    """SQLite's own parser misreads some literals by an ulp (-0.328236 among them); the SQLite
    rendering builds each edge from exact integers instead."""
    import sqlite3
    from decimal import Decimal

    from pipeline.exports import DIALECTS, sql_number

    x = float(Decimal(m).scaleb(k))
    got = sqlite3.connect(":memory:").execute(f"SELECT {sql_number(x, DIALECTS['sqlite'])}")
    assert got.fetchone()[0] == x
    assert (
        sqlite3.connect(":memory:")
        .execute(f"SELECT {sql_number(-0.328236, DIALECTS['sqlite'])}")
        .fetchone()[0]
        == -0.328236
    )
