"""Every export executed in the program a business system would run it in, on the boundary set,
case by case against ``pipeline.card.score_frame``: the SQL renderings on SQLite, DuckDB and
a throw-away PostgreSQL 15 server (Spark SQL under the ``spark`` marker), the workbook and the
CSV in LibreOffice Calc, the PMML in JPMML (JVM, ``spark`` marker). The other dialects (MySQL,
SQL Server, Oracle) are parsed by sqlglot only.

A client that is not installed skips its test, unless REQUIRE_EXPORT_CLIENTS=1 (set by .ci/run),
where a missing client fails the run.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from pipeline.export_clients import (
    agreement,
    agreement_counts,
    calc_available,
    pmml_available,
    postgres_available,
    postgres_server,
    read_csv_in_calc,
    run_calc_workbook,
    run_duckdb,
    run_pmml,
    run_postgres,
    run_sqlite,
)
from pipeline.exports import (
    DIALECTS,
    boundary_cases,
    points_table,
    scorecard_pmml,
    scorecard_sql,
)
from tests.fixtures.cards import HOSTILE, hand_cutoffs, routed_card, wide_card, wide_cutoffs

REQUIRE = os.environ.get("REQUIRE_EXPORT_CLIENTS") == "1"
CARD = wide_card()
GRADES = wide_cutoffs()["grades"]


def need(reason: str | None) -> None:
    if reason and REQUIRE:
        pytest.fail(f"REQUIRE_EXPORT_CLIENTS=1 but {reason}")
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def cases() -> pd.DataFrame:
    return boundary_cases(CARD, GRADES)


def assert_all_agree(cases: pd.DataFrame, got: pd.DataFrame, client: str) -> None:
    agrees = agreement(CARD, cases, got)
    bad = cases.loc[~agrees, ["case_id", "case_feature", "case"]]
    assert agrees.all(), f"{client} differs from Python on {len(bad)} cases:\n{bad.head(10)}"
    assert agreement_counts(cases, agrees)["agree"] == len(cases)


def test_boundary_set_covers_every_rule_of_the_wide_card(cases):
    kinds = cases.groupby("case").size().to_dict()
    n_edges = sum(
        1
        for f in CARD["features"]
        for b in f["bins"]
        if b["type"] == "range" and b["upper"] is not None
    )
    assert kinds["edge"] == kinds["edge-ulp"] == kinds["edge+step"] == n_edges == 15
    assert kinds["special"] == 3 and kinds["unseen"] == 2 and kinds["missing"] == 7
    assert set(cases.precision) == {"decimal", "ulp"}
    assert (cases.precision == "ulp").sum() == 2 * n_edges
    # one step at the stored precision (5 significant digits): 0.1 at 1234.5, 0.001 at 30.25
    dso = cases[cases.case_feature == "dso_trend_days"].set_index("case")["dso_trend_days"]
    assert {1234.4, 1234.6, 30.249, 30.251, -12.499, -12.501} <= set(dso)
    assert cases.expected_grade.nunique() == 5


def test_every_dialect_parses_in_sqlglot():
    sqlglot = pytest.importorskip("sqlglot")
    for name, dialect in DIALECTS.items():
        sql = scorecard_sql(CARD, GRADES, dialect=name)
        parsed = sqlglot.parse(sql, read=dialect.sqlglot, error_level=sqlglot.ErrorLevel.RAISE)
        assert len(parsed) == 1, name
        select = parsed[0]
        assert select.find(sqlglot.exp.Case) is not None, name


def test_dialects_spell_missing_values_their_own_way():
    nan_tests = {
        "duckdb": "isnan(",
        "spark": "isnan(",
        "postgres": "= CAST('NaN' AS DOUBLE PRECISION)",
        "oracle": "IS NAN",
    }
    for name in DIALECTS:
        sql = scorecard_sql(CARD, GRADES, dialect=name)
        if name in nan_tests:
            assert nan_tests[name] in sql, name
        else:  # no NaN in the type: SQLite, MySQL, SQL Server store it as NULL or refuse it
            assert "isnan" not in sql.lower() and "NaN" not in sql, name
    assert "'back\\\\slash'" in scorecard_sql(CARD, GRADES, dialect="mysql")
    assert "\\'); DROP" in scorecard_sql(CARD, GRADES, dialect="spark")


def test_sql_on_sqlite_and_duckdb_equals_python_on_every_case(cases):
    assert_all_agree(cases, run_sqlite(CARD, cases, GRADES), "SQLite")
    assert_all_agree(cases, run_duckdb(CARD, cases, GRADES), "DuckDB")


@pytest.fixture(scope="module")
def postgres():
    """A throw-away PostgreSQL server (Debian binaries, temp dir, unix socket) for this module."""
    need(postgres_available())
    with postgres_server() as server:
        yield server


def test_sql_on_postgresql_equals_python_on_every_case(cases, postgres):
    got = run_postgres(CARD, cases, GRADES, postgres)
    version = postgres.psql("SHOW server_version_num;").split()
    assert int(version[2]) >= 150000  # a real PostgreSQL server (15 here) answered
    assert_all_agree(cases, got, "PostgreSQL")
    hostile = cases.case_id[cases.segment == HOSTILE]
    assert got.set_index("case_id").loc[hostile, "points__segment"].tolist() == [55]


def test_agreement_sees_a_wrong_bin(cases):
    got = run_sqlite(CARD, cases, GRADES)
    got.loc[5, "score"] += 1
    assert (~agreement(CARD, cases, got)).sum() == 1


def test_workbook_recalculated_by_libreoffice_calc(cases, tmp_path):
    """Calc evaluates every formula cell; the short-decimal cases must all agree. Calc treats
    numbers a few ulps apart as equal, so a value one ulp below an edge may land in the edge's
    bin: where the one-ulp cases differ, Calc must give exactly Python's points for the edge."""
    need(calc_available())
    got = run_calc_workbook(CARD, cases, GRADES, workdir=tmp_path)
    assert len(got) == len(cases)
    agrees = agreement(CARD, cases, got)
    decimal = cases.precision == "decimal"
    bad = cases.loc[decimal & ~agrees, ["case_id", "case_feature", "case"]]
    assert bad.empty, f"Calc differs on stored-decimal cases:\n{bad}"
    for i in cases.index[~agrees]:
        row = cases.loc[i]
        assert row.case in ("edge-ulp", "edge+ulp")
        feat = row.case_feature
        at_edge = cases[
            (cases.case_feature == feat) & (cases.case == "edge") & (cases[feat] == row[feat])
        ]
        if at_edge.empty:  # the value is one ulp off; find the edge it sits beside
            at_edge = cases[
                (cases.case_feature == feat)
                & (cases.case == "edge")
                & np.isclose(cases[feat], row[feat], rtol=1e-15, atol=0)
            ]
        assert (
            got.set_index("case_id").loc[row.case_id, f"points__{feat}"]
            == (at_edge[f"expected_points__{feat}"].iloc[0])
        )


def test_csv_export_read_back_by_libreoffice_calc(tmp_path):
    """scorecard.csv as publish writes it, opened by Calc: every cell holds what the file says
    (numbers as the same doubles, edges included; labels as text, formula-like ones too)."""
    import csv

    from pipeline.exports import points_table_csv
    from pipeline.io import write_csv

    need(calc_available())
    path = tmp_path / "scorecard.csv"
    write_csv(points_table_csv(CARD), path)
    with open(path, encoding="utf-8", newline="") as fh:
        written = list(csv.reader(fh))
    cells = read_csv_in_calc(path, workdir=tmp_path)
    assert len(cells) == len(written) == len(points_table(CARD)) + 1
    assert cells[0] == written[0]
    checked = 0
    for want_row, got_row in zip(written[1:], cells[1:], strict=True):
        for col, want, got in zip(written[0], want_row, got_row, strict=False):
            if want == "":
                assert got is None, (col, got)
            elif isinstance(got, (int, float)):
                assert float(got) == float(want), (col, got, want)
            else:
                assert got == want, (col, got, want)
            checked += 1
    assert checked > 500
    uppers = [r[written[0].index("upper")] for r in written[1:]]
    assert "1234.5" in uppers and "0.00125" in uppers
    assert any("=1+1" in str(r[written[0].index("categories")]) for r in cells[1:])


def test_pmml_document_is_a_scorecard_with_reason_codes_and_master_scale():
    ns = {"p": "http://www.dmg.org/PMML-4_4"}
    root = ET.fromstring(scorecard_pmml(CARD, GRADES))
    assert root.get("version") == "4.4"
    model = root.find("p:Scorecard", ns)
    assert model.get("useReasonCodes") == "true"
    assert model.get("reasonCodeAlgorithm") == "pointsBelow"
    chars = model.findall("p:Characteristics/p:Characteristic", ns)
    assert [c.get("reasonCode") for c in chars] == [f["reason_code"] for f in CARD["features"]]
    assert [float(c.get("baselineScore")) for c in chars] == [
        f["baseline_points"] for f in CARD["features"]
    ]
    dso = chars[3].findall("p:Attribute", ns)
    # missing, two specials, four edges, last range
    assert len(dso) == 1 + 2 + 4 + 1
    assert [a.find("p:SimplePredicate", ns).get("value") for a in dso[3:7]] == [
        "-12.5",
        "0.0",
        "30.25",
        "1234.5",
    ]
    bins = model.findall("p:Output/p:OutputField[@name='grade']/p:Discretize/p:DiscretizeBin", ns)
    assert [b.get("binValue") for b in bins] == [g["grade"] for g in GRADES]


@pytest.mark.spark
def test_pmml_evaluated_by_jpmml_equals_python_on_every_case(cases):
    need(pmml_available())
    got = run_pmml(CARD, cases, GRADES)
    assert {"reason_1", "reason_4", "grade"} <= set(got.columns)
    assert_all_agree(cases, got, "JPMML")


@pytest.mark.spark
def test_sql_on_spark_equals_python_on_every_case(cases):
    from pipeline.export_clients import run_spark
    from pipeline.features.spark import spark_available, spark_session

    need(spark_available())
    got = run_spark(CARD, cases, GRADES, spark_session(threads=2))
    assert_all_agree(cases, got, "Spark SQL")


def test_measuring_command_prints_counts_per_client(tmp_path, capsys):
    from pipeline.export_clients import main
    from pipeline.io import write_json

    write_json({**CARD, "master_scale": {"grades": GRADES}}, tmp_path / "wide" / "scorecard.json")
    main(["--dataset", "wide", "--exports", str(tmp_path), "--clients", "duckdb,sqlite"])
    lines = capsys.readouterr().out.splitlines()
    n, ulp = len(boundary_cases(CARD, GRADES)), 30
    assert lines[1:] == [
        f"wide,{c},{n},{n},{n - ulp},{n - ulp},{ulp},{ulp}" for c in ("DuckDB", "SQLite")
    ]


ROUTED = routed_card()
ROUTED_GRADES = hand_cutoffs()["grades"]


@pytest.fixture(scope="module")
def routed_cases() -> pd.DataFrame:
    return boundary_cases(ROUTED, ROUTED_GRADES)


def assert_routed_agree(cases: pd.DataFrame, got: pd.DataFrame, client: str) -> None:
    """Every case of a card with a delinquent-segment card, in the client, equals Python."""
    assert set(cases.segment.map(str)) == {"current", "delinquent", "None"}
    agrees = agreement(ROUTED, cases, got)
    bad = cases.loc[~agrees, ["case_id", "segment", "case_feature", "case"]]
    assert agrees.all(), f"{client} routes differently from Python on {len(bad)} cases:\n{bad}"


def test_routed_sql_on_postgresql_equals_python(routed_cases, postgres):
    got = run_postgres(ROUTED, routed_cases, ROUTED_GRADES, postgres)
    assert_routed_agree(routed_cases, got, "PostgreSQL")


def test_routed_workbook_recalculated_by_libreoffice_calc(routed_cases, tmp_path):
    need(calc_available())
    got = run_calc_workbook(ROUTED, routed_cases, ROUTED_GRADES, workdir=tmp_path)
    decimal = (routed_cases.precision == "decimal").to_numpy()
    assert_routed_agree(routed_cases[decimal], got[decimal], "LibreOffice Calc")


@pytest.mark.spark
def test_routed_pmml_documents_evaluated_by_jpmml_equal_python(routed_cases):
    need(pmml_available())
    got = run_pmml(ROUTED, routed_cases, ROUTED_GRADES)
    assert len(got) == len(routed_cases)
    assert_routed_agree(routed_cases, got, "JPMML")


@pytest.mark.spark
def test_routed_sql_on_spark_equals_python(routed_cases):
    from pipeline.export_clients import run_spark
    from pipeline.features.spark import spark_available, spark_session

    need(spark_available())
    got = run_spark(ROUTED, routed_cases, ROUTED_GRADES, spark_session(threads=2))
    assert_routed_agree(routed_cases, got, "Spark SQL")
