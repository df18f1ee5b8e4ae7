"""Scorecard exports: SQL (CASE per characteristic), Excel workbook with scoring formulas, CSV
points table, and the boundary test set every export is checked against.

All exports are generated from the card (docs/architecture.md) and follow the bin rules of
:func:`pipeline.card.score_frame`: ``[lower, upper)`` ranges, null/NaN -> ``missing``, listed
special values -> ``special``, unknown category -> ``unseen_points``. Data-derived text (category
labels, feature names) never reaches the SQL unquoted: labels are string literals with quotes
doubled, names are quoted identifiers; in the workbook labels are plain text cells that formulas
reference, never formula text.
"""

from __future__ import annotations

import bisect
import io
import math
import re
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from unittest import mock
from xml.etree.ElementTree import Element, SubElement, indent, tostring

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.compat import safe_string
from openpyxl.utils import get_column_letter, quote_sheetname

from pipeline.card import score_frame, score_to_pd
from pipeline.card.routing import ROUTE_COLUMN, all_features, is_routed, labelled_cards
from pipeline.domain import SEGMENTS, PipelineError

SQL_INPUT_TABLE = "scorecard_input"
XLSX_SHEETS = ("points", "grade_cutoffs", "limit_table", "policy", "categories", "scoring")
OUT_OF_RANGE = "__unseen_category__"


# ------------------------------------------------------------------------------ segment cards
def _zero_feature(feature: dict) -> dict:
    """A characteristic a card does not use: 0 points whatever the value, never a reason."""
    ranges = [{"type": "range", "lower": None, "upper": None, "points": 0}]
    return {
        "name": feature["name"],
        "dtype": feature["dtype"],
        "bins": (ranges if feature["dtype"] == "numeric" else [])
        + [{"type": "missing", "points": 0}],
        "unseen_points": 0,
        "baseline_points": 0,
        "reason_code": None,
    }


def padded_cards(card: dict) -> list[tuple[str | None, dict]]:
    """(segment, card) for the main card (segment None: every row not routed elsewhere) and each
    segment card of a routed card, each over every card's characteristics in one order, with 0
    points where it does not use one: the exports score each card's rows with the same columns,
    so the cards' results stack (`pipeline.card.routing`)."""
    names = all_features(card)
    out = []
    for seg, sub in labelled_cards(card):
        own = {f["name"]: f for f in sub["features"]}
        features = [own.get(f["name"]) or _zero_feature(f) for f in names]
        out.append((seg, {**sub, "features": features}))
    return out


def input_features(card: dict) -> list[dict]:
    """The input columns of the exports, as (name, dtype) entries: every card's characteristics,
    then the routing column (text) when the card has segment cards."""
    route = [{"name": ROUTE_COLUMN, "dtype": "categorical"}] if is_routed(card) else []
    return [{"name": f["name"], "dtype": f["dtype"]} for f in all_features(card)] + route


# ------------------------------------------------------------------------------------ SQL
@dataclass(frozen=True)
class SqlDialect:
    """How one database spells the few constructs the scorecard SQL needs.

    Templates, not a transpiler: each dialect's missing-value rule, string escaping and double
    literal is written out here and reviewed once (docs/exports.md gives the reasons); sqlglot
    checks in the tests that every rendering parses in its dialect.
    """

    name: str
    sqlglot: str
    double: str  # CAST target for a numeric input
    text: str  # CAST target for a categorical input
    number: str  # double literal, {v} = the shortest round-trip decimal
    nan_test: str | None  # the NaN test ({x}); None: the type has no NaN (stored as NULL)
    quote: tuple[str, str] = ('"', '"')
    escapes_backslash: bool = False  # backslash is an escape character in string literals
    string_prefix: str = ""
    text_equal: str = "{x} = {lit}"
    alias: str = " AS "  # before a derived table's alias
    client: str = ""


DIALECTS: dict[str, SqlDialect] = {
    d.name: d
    for d in (
        SqlDialect(
            "duckdb",
            "duckdb",
            "DOUBLE",
            "VARCHAR",
            "CAST('{v}' AS DOUBLE)",
            "isnan({x})",
            client="DuckDB",
        ),
        SqlDialect(
            "postgres",
            "postgres",
            "DOUBLE PRECISION",
            "TEXT",
            "CAST('{v}' AS DOUBLE PRECISION)",
            "{x} = CAST('NaN' AS DOUBLE PRECISION)",
            client="PostgreSQL",
        ),
        SqlDialect(
            "sqlite",
            "sqlite",
            "REAL",
            "TEXT",
            "{ratio}",
            None,
            client="SQLite",
        ),
        SqlDialect(
            "mysql",
            "mysql",
            "DOUBLE",
            "CHAR",
            "{v}",
            None,
            quote=("`", "`"),
            escapes_backslash=True,
            text_equal="{x} = {lit} COLLATE utf8mb4_bin",
            client="MySQL 8",
        ),
        SqlDialect(
            "tsql",
            "tsql",
            "FLOAT",
            "NVARCHAR(4000)",
            "CAST({v} AS FLOAT)",
            None,
            quote=("[", "]"),
            string_prefix="N",
            text_equal="{x} = {lit} COLLATE Latin1_General_100_BIN2",
            client="SQL Server",
        ),
        SqlDialect(
            "oracle",
            "oracle",
            "BINARY_DOUBLE",
            "VARCHAR2(4000)",
            "TO_BINARY_DOUBLE('{v}')",
            "{x} IS NAN",
            alias=" ",
            client="Oracle",
        ),
        SqlDialect(
            "spark",
            "spark",
            "DOUBLE",
            "STRING",
            "CAST('{v}' AS DOUBLE)",
            "isnan({x})",
            quote=("`", "`"),
            escapes_backslash=True,
            client="Spark SQL",
        ),
    )
}


def sql_string(value: Any, dialect: SqlDialect | None = None) -> str:
    """A SQL string literal: single quotes doubled (backslashes doubled too where the dialect
    reads them as escapes; Spark, which joins adjacent literals, gets ``\\'``); NUL bytes are
    refused."""
    d = dialect or DIALECTS["duckdb"]
    text = str(value)
    if "\x00" in text:
        raise PipelineError(f"category label {text!r} contains a NUL byte; clean the label")
    if d.escapes_backslash:
        text = text.replace("\\", "\\\\")
    quote = "\\'" if d.name == "spark" else "''"
    return d.string_prefix + "'" + text.replace("'", quote) + "'"


def sql_identifier(name: str, dialect: SqlDialect | None = None) -> str:
    """A quoted SQL identifier: the closing quote character doubled."""
    d = dialect or DIALECTS["duckdb"]
    if "\x00" in name:
        raise PipelineError(f"feature name {name!r} contains a NUL byte")
    return d.quote[0] + name.replace(d.quote[1], d.quote[1] * 2) + d.quote[1]


def decimal_text(x: float) -> str:
    """The shortest decimal that reads back as exactly ``x`` (for a card edge: the short
    decimal stored at fit time)."""
    x = float(x)
    if not math.isfinite(x):
        raise PipelineError(f"bin edge {x} is not finite; use null for an unbounded edge")
    return repr(x + 0.0)


def exact_ratio(x: float) -> tuple[int, int] | None:
    """``x``'s shortest decimal as integer m and exponent k (x = m * 10^k) when both m and
    10^|k| are exact doubles (|m| <= 2^53, |k| <= 22), else None."""
    sign, digits, exponent = Decimal(decimal_text(x)).normalize().as_tuple()
    m = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    if abs(m) > 2**53 or abs(exponent) > 22:
        return None
    return m, int(exponent)


def _ratio_literal(x: float) -> str:
    """A double built by one correctly rounded IEEE operation on two exact doubles, m / 10^k or
    m * 10^k: SQLite's own decimal parser misreads about 1 in 10,000 literals by an ulp (even
    six-digit ones such as -0.328236), this never does."""
    ratio = exact_ratio(x)
    if ratio is None:
        return decimal_text(x)
    m, k = ratio
    if k == 0:
        return f"CAST({m} AS REAL)"
    # 10^19..10^22 exceed SQLite's integers: 10^18 times the rest, an exact product
    power = (
        str(10 ** abs(k)) if abs(k) <= 18 else f"(CAST({10**18} AS REAL) * {10 ** (abs(k) - 18)})"
    )
    return f"(CAST({m} AS REAL) {'/' if k < 0 else '*'} {power} /* {decimal_text(x)} */)"


def sql_number(x: float, dialect: SqlDialect | None = None) -> str:
    """A double literal that parses back to exactly ``x``."""
    d = dialect or DIALECTS["duckdb"]
    if d.number == "{ratio}":
        return _ratio_literal(x)
    return d.number.format(v=decimal_text(x))


def _bins_of(feature: dict, kind: str) -> list[tuple[int, dict]]:
    return [(i, b) for i, b in enumerate(feature["bins"]) if b["type"] == kind]


MAX_OR_TERMS = 16


def _any_of(x: str, literals: list[str]) -> str:
    """``x`` equals one of ``literals``: an OR of equalities for short lists (DuckDB evaluates
    these faster than a short IN list), IN for long ones; null ``x`` is never a match. A
    categorical feature with few labels gets one WHEN per label, faster still."""
    if len(literals) <= MAX_OR_TERMS:
        return " OR ".join(f"{x} = {lit}" for lit in literals)
    return f"{x} IN ({', '.join(literals)})"


def feature_case_sql(feature: dict, dialect: SqlDialect | None = None) -> str:
    """The CASE expression giving one characteristic's points.

    Ordered for speed, with the same result as the bin rules: the ranges by upper edge, a special
    value tested only inside the range that holds it, and the null/NaN test only for rows no range
    took (a null matches no comparison, and NaN, which the databases with a NaN order above every
    number, is below no upper edge); categories, then null, then unseen.
    """
    d = dialect or DIALECTS["duckdb"]
    col = sql_identifier(feature["name"], d)
    missing = _bins_of(feature, "missing")[0][1]["points"]
    lines = ["CASE"]
    if feature["dtype"] == "numeric":
        x = f"CAST({col} AS {d.double})"
        ranges = [b for _, b in _bins_of(feature, "range")]
        uppers = [float(b["upper"]) for b in ranges[:-1]]
        specials: list[list[tuple[list[str], int]]] = [[] for _ in ranges]
        for _, b in _bins_of(feature, "special"):
            by_range: dict[int, list[str]] = {}
            for v in b["values"]:
                literal = sql_number(v, d)  # refuses NaN and infinities
                by_range.setdefault(bisect.bisect_right(uppers, float(v)), []).append(literal)
            for r, literals in by_range.items():
                specials[r].append((literals, int(b["points"])))

        def points(r: int) -> str:
            if not specials[r]:
                return str(int(ranges[r]["points"]))
            whens = " ".join(f"WHEN {_any_of(x, lits)} THEN {pts}" for lits, pts in specials[r])
            return f"CASE {whens} ELSE {int(ranges[r]['points'])} END"

        for r, upper in enumerate(uppers):
            lines.append(f"    WHEN {x} < {sql_number(upper, d)} THEN {points(r)}")
        nan = f" OR {d.nan_test.format(x=x)}" if d.nan_test else ""
        lines.append(f"    WHEN {col} IS NULL{nan} THEN {int(missing)}")
        lines.append(f"    ELSE {points(len(ranges) - 1)}")
    else:
        x = f"CAST({col} AS {d.text})"
        groups = [b for _, b in _bins_of(feature, "category") if b["categories"]]
        few = sum(len(b["categories"]) for b in groups) <= MAX_OR_TERMS
        for b in groups:
            labels = [sql_string(c, d) for c in b["categories"]]
            if few:
                tests = [d.text_equal.format(x=x, lit=lab) for lab in labels]
            elif d.text_equal == "{x} = {lit}":
                tests = [_any_of(x, labels)]
            else:
                tests = [" OR ".join(d.text_equal.format(x=x, lit=lab) for lab in labels)]
            for test in tests:
                lines.append(f"    WHEN {test} THEN {int(b['points'])}")
        lines.append(f"    WHEN {col} IS NULL THEN {int(missing)}")
        lines.append(f"    ELSE {int(feature['unseen_points'])}")
    return "\n".join(lines) + "\n  END"


def grade_case_sql(score_expr: str, grades: list[dict], dialect: SqlDialect | None = None) -> str:
    """CASE giving the grade: score_min <= score, best grade first (interval [min, max))."""
    d = dialect or DIALECTS["duckdb"]
    parts = [
        f"WHEN {score_expr} >= {int(g['score_min'])} THEN {sql_string(g['grade'], d)}"
        for g in grades[:-1]
    ]
    return "CASE " + " ".join(parts) + f" ELSE {sql_string(grades[-1]['grade'], d)} END"


def scorecard_sql(
    card: dict,
    grades: list[dict] | None = None,
    table: str = SQL_INPUT_TABLE,
    dialect: str = "duckdb",
) -> str:
    """A SELECT scoring every row of ``table``: its columns, ``points__<feature>``, ``score``,
    ``pd_model`` and, with a master scale, ``grade``, in the SQL of ``dialect`` (a key of
    :data:`DIALECTS`). Every feature column must exist (null = missing).

    A card with segment cards gives one SELECT per card, each over the rows of its segment (the
    main card: every other row, null included), stacked with UNION ALL: rows come out grouped by
    card, not in the table's order."""
    if dialect not in DIALECTS:
        raise PipelineError(f"SQL dialect {dialect!r} unknown; choose one of {sorted(DIALECTS)}")
    d = DIALECTS[dialect]
    version = re.sub(r"[^0-9.]", "", str(card["schema_version"]))
    q = lambda name: sql_identifier(name, d)  # noqa: E731
    header = (
        f"-- WoE logistic scorecard, schema {version}, {d.client} SQL; "
        "generated by pipeline.exports, do not edit.\n"
        f"-- Scores the table {q(table)}; points per characteristic, score = sum.\n"
    )
    if not is_routed(card):
        return header + _card_select(card, grades, table, d)
    padded = padded_cards(card)
    routed = [seg for seg, _ in padded if seg is not None]
    header += (
        f"-- Segment cards: rows whose {q(ROUTE_COLUMN)} is {', '.join(routed)} are scored by "
        "that segment's card, every other row by the main card; one score scale and master "
        "scale.\n"
    )
    selects = [
        _card_select(sub, grades, table, d, _route_condition(seg, routed, d))
        for seg, sub in padded
    ]
    return header + "UNION ALL\n".join(selects)


def _route_condition(segment: str | None, routed: list[str], d: SqlDialect) -> str:
    """The rows one card scores: its segment's, or (main card) every row of no routed segment."""
    col = sql_identifier(ROUTE_COLUMN, d)
    x = f"CAST({col} AS {d.text})"
    if segment is not None:
        return d.text_equal.format(x=x, lit=sql_string(segment, d))
    others = " OR ".join(d.text_equal.format(x=x, lit=sql_string(s, d)) for s in routed)
    return f"{col} IS NULL OR NOT ({others})"


def _card_select(
    card: dict, grades: list[dict] | None, table: str, d: SqlDialect, where: str | None = None
) -> str:
    """The SELECT of one card over ``table`` (the rows matching ``where``)."""
    f, o = card["scaling"]["factor"], card["scaling"]["offset"]
    q = lambda name: sql_identifier(name, d)  # noqa: E731
    cases = ",\n".join(
        f"  {feature_case_sql(feat, d)} AS {q('points__' + feat['name'])}"
        for feat in card["features"]
    )
    total = " + ".join(f"b.{q('points__' + feat['name'])}" for feat in card["features"])
    outer = [
        "  p.*",
        f"  1.0 / (1.0 + EXP((CAST(p.score AS {d.double}) - {sql_number(o, d)}) / "
        f"{sql_number(f, d)})) AS pd_model",
    ]
    if grades:
        outer.append(f"  {grade_case_sql('p.score', grades, d)} AS grade")
    filtered = f"\n    WHERE {where}" if where else ""
    return (
        "SELECT\n" + ",\n".join(outer) + "\nFROM (\n"
        f"  SELECT b.*,\n  ({total}) AS score\n  FROM (\n"
        f"    SELECT t.*,\n{cases}\n    FROM {q(table)}{d.alias}t{filtered}\n  ){d.alias}b\n"
        f"){d.alias}p\n"
    )


# ------------------------------------------------------------------------------- CSV table
def points_table(card: dict) -> pd.DataFrame:
    """One row per feature x bin (plus the unseen row): what an analyst reads off the card. A card
    with segment cards lists each card's rows after a first column ``card`` (``main``, or the
    segment whose rows that card scores)."""
    if is_routed(card):
        return pd.concat(
            [_points_rows(sub).assign(card=seg or "main") for seg, sub in labelled_cards(card)],
            ignore_index=True,
        ).pipe(lambda t: t[["card", *t.columns[:-1]]])
    return _points_rows(card)


def _points_rows(card: dict) -> pd.DataFrame:
    rows = []
    for order, feat in enumerate(card["features"], start=1):
        for b in feat["bins"]:
            rows.append(
                {
                    "feature_order": order,
                    "feature": feat["name"],
                    "dtype": feat["dtype"],
                    "reason_code": feat.get("reason_code"),
                    "bin_type": b["type"],
                    "lower": b.get("lower"),
                    "upper": b.get("upper"),
                    "categories": "|".join(map(str, b["categories"]))
                    if "categories" in b
                    else None,
                    "special_values": "|".join(map(repr, b["values"])) if "values" in b else None,
                    "count": b.get("count"),
                    "count_bad": b.get("count_bad"),
                    "bad_rate": b.get("bad_rate"),
                    "woe": b.get("woe"),
                    "points": int(b["points"]),
                    "baseline_points": feat.get("baseline_points"),
                    "reason_text": feat.get("reason_text"),
                }
            )
        rows.append(
            {
                "feature_order": order,
                "feature": feat["name"],
                "dtype": feat["dtype"],
                "reason_code": feat.get("reason_code"),
                "bin_type": "unseen",
                "points": int(feat["unseen_points"]),
                "baseline_points": feat.get("baseline_points"),
                "reason_text": feat.get("reason_text"),
            }
        )
    return pd.DataFrame(rows)


def points_table_csv(card: dict) -> pd.DataFrame:
    """The points table for scorecard.csv: edges and special values as their exact short
    decimal text (a fixed float format would round an edge stored at more digits)."""
    table = points_table(card)
    for col in ("lower", "upper"):
        table[col] = [None if v is None or v != v else decimal_text(v) for v in table[col]]
    return table


# Where each export is executed, and the agreement with Python that client guarantees on the
# boundary set ("decimal" = the stored-decimal cases, "ulp" = one ulp beside an edge). The tests
# in tests/test_export_clients.py execute every export in the listed clients and fail on any
# difference in a guaranteed class; docs/exports.md gives the evidence and the reasons.
EXPORT_CLIENTS: list[dict] = [
    {
        "export": "sql/scorecard.duckdb.sql (= scorecard.sql)",
        "client": "DuckDB",
        "executed": "publish and tests",
        "guaranteed": "decimal, ulp",
    },
    {
        "export": "sql/scorecard.sqlite.sql",
        "client": "SQLite",
        "executed": "publish and tests",
        "guaranteed": "decimal, ulp",
    },
    {
        "export": "sql/scorecard.postgres.sql",
        "client": "PostgreSQL 15",
        "executed": "tests (throw-away server)",
        "guaranteed": "decimal, ulp",
    },
    {
        "export": "sql/scorecard.spark.sql",
        "client": "Spark SQL",
        "executed": "tests (spark)",
        "guaranteed": "decimal, ulp",
    },
    {
        "export": "sql/scorecard.mysql.sql",
        "client": "MySQL 8",
        "executed": "not executed; parsed by sqlglot",
        "guaranteed": "not verified",
    },
    {
        "export": "sql/scorecard.tsql.sql",
        "client": "SQL Server",
        "executed": "not executed; parsed by sqlglot",
        "guaranteed": "not verified",
    },
    {
        "export": "sql/scorecard.oracle.sql",
        "client": "Oracle",
        "executed": "not executed; parsed by sqlglot",
        "guaranteed": "not verified",
    },
    {
        "export": "scorecard.pmml",
        "client": "JPMML (PMML 4.4)",
        "executed": "tests (spark)",
        "guaranteed": "decimal, ulp",
    },
    {
        "export": "scorecard.xlsx",
        "client": "LibreOffice Calc",
        "executed": "tests",
        "guaranteed": "decimal (ulp cases may take the edge's bin)",
    },
    {
        "export": "scorecard.xlsx",
        "client": "pycel",
        "executed": "tests",
        "guaranteed": "decimal, ulp",
    },
    {
        "export": "scorecard.csv",
        "client": "LibreOffice Calc",
        "executed": "tests (read back)",
        "guaranteed": "every cell read back as written",
    },
]


# ---------------------------------------------------------------------------- boundary set
def edge_digits(feature: dict) -> int:
    """The significant digits the feature's edges are stored at: the card's ``edge_digits``,
    or (a card fitted before it was recorded) the most any edge's shortest decimal needs."""
    if feature.get("edge_digits") is not None:
        return int(feature["edge_digits"])
    digits = [
        len(Decimal(decimal_text(b["upper"])).normalize().as_tuple().digits)
        for _, b in _bins_of(feature, "range")
        if b.get("upper") is not None
    ]
    return max(digits, default=1)


def edge_step(edge: float, digits: int) -> Decimal:
    """One unit in the last stored significant digit of ``edge`` (10^(1 - digits) for 0)."""
    e = Decimal(decimal_text(edge))
    exponent = (e.adjusted() if e != 0 else 0) - digits + 1
    return Decimal(1).scaleb(exponent)


# Which boundary cases each client must score exactly like Python (docs/exports.md): the
# stored-decimal cases everywhere, the one-ulp cases everywhere but LibreOffice Calc, which
# compares numbers within a few ulps as equal.
PRECISION_CLASS = {"edge-ulp": "ulp", "edge+ulp": "ulp"}


def _base_value(feature: dict) -> Any:
    if feature["dtype"] == "numeric":
        ranges = [b for _, b in _bins_of(feature, "range")]
        first = ranges[0]
        if first.get("upper") is None:
            return 0.0
        return float(first["upper"]) - 1.0 if first.get("lower") is None else float(first["lower"])
    cats = _bins_of(feature, "category")
    return str(cats[0][1]["categories"][0]) if cats else OUT_OF_RANGE


def boundary_inputs(card: dict) -> pd.DataFrame:
    """Inputs probing every bin rule: each range edge exactly, one step at the stored precision
    (one unit in the edge's last stored significant digit) and one ulp either side, each
    special value, missing, each category, an unseen category; the other features sit at a base
    value. Plus an all-missing row. ``precision`` says which agreement the case tests:
    ``decimal`` (inputs that are short decimals themselves) or ``ulp``.

    A card with segment cards gets every card's cases, each with ``segment`` set to the segment
    the card scores (the main card's: ``current``), and an all-missing row with a null segment."""
    if is_routed(card):
        return _routed_inputs(card)
    feats = card["features"]
    base = {f["name"]: _base_value(f) for f in feats}
    rows: list[dict] = []

    def add(feature: str, case: str, value: Any) -> None:
        row = dict(base)
        row[feature] = value
        precision = PRECISION_CLASS.get(case, "decimal")
        rows.append({"case_feature": feature, "case": case, "precision": precision, **row})

    for f in feats:
        name = f["name"]
        if f["dtype"] == "numeric":
            digits = edge_digits(f)
            for _, b in _bins_of(f, "range"):
                if b.get("upper") is None:
                    continue
                e = float(b["upper"])
                step, exact = edge_step(e, digits), Decimal(decimal_text(e))
                for case, v in (
                    ("edge", e),
                    ("edge-ulp", np.nextafter(e, -np.inf)),
                    ("edge+ulp", np.nextafter(e, np.inf)),
                    ("edge-step", float(exact - step)),
                    ("edge+step", float(exact + step)),
                ):
                    add(name, case, float(v))
            for _, b in _bins_of(f, "special"):
                for v in b["values"]:
                    add(name, "special", float(v))
            add(name, "missing", np.nan)
        else:
            for _, b in _bins_of(f, "category"):
                for c in b["categories"]:
                    add(name, "category", str(c))
            add(name, "unseen", OUT_OF_RANGE)
            add(name, "missing", None)
    rows.append(
        {
            "case_feature": "*",
            "case": "all_missing",
            "precision": "decimal",
            **{f["name"]: (np.nan if f["dtype"] == "numeric" else None) for f in feats},
        }
    )
    out = pd.DataFrame(rows)
    for f in feats:
        out[f["name"]] = out[f["name"]].astype(float if f["dtype"] == "numeric" else object)
    out.insert(0, "case_id", np.arange(1, len(out) + 1))
    return out


def _routed_inputs(card: dict) -> pd.DataFrame:
    parts = []
    for seg, sub in padded_cards(card):
        part = boundary_inputs(sub).drop(columns="case_id")
        part[ROUTE_COLUMN] = seg or SEGMENTS[0]
        parts.append(part)
    unrouted = parts[0].tail(1).assign(**{ROUTE_COLUMN: None})
    out = pd.concat([*parts, unrouted], ignore_index=True)
    out[ROUTE_COLUMN] = out[ROUTE_COLUMN].astype(object)
    out.insert(0, "case_id", np.arange(1, len(out) + 1))
    return out


def boundary_cases(card: dict, grades: list[dict] | None = None) -> pd.DataFrame:
    """The boundary inputs with the expected points, score, PD and grade from ``score_frame``."""
    from pipeline.calibration import assign_grade

    X = boundary_inputs(card)
    scored = score_frame(card, X)
    reasons = [c for c in scored.columns if c.startswith("reason_")]
    keep = ["score", "pd_model"] + [f"points__{f['name']}" for f in all_features(card)] + reasons
    out = pd.concat([X, scored[keep].add_prefix("expected_")], axis=1)
    if grades:
        out["expected_grade"] = assign_grade(scored["score"], grades)
    return out


# ------------------------------------------------------------------------------------ Excel
def _text(cell, value: Any) -> None:
    """Write ``value`` as literal text (never a formula, whatever it starts with)."""
    text = str(value)
    if ILLEGAL_CHARACTERS_RE.search(text):
        raise PipelineError(
            f"label {text!r} holds a control character Excel cannot store; clean the label"
        )
    cell.value = text
    cell.data_type = "s"


def _put(ws, row: int, col: int, value: Any) -> None:
    cell = ws.cell(row=row, column=col)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return
    if isinstance(value, (bool, np.bool_)):
        cell.value = bool(value)
    elif isinstance(value, (int, float, np.integer, np.floating)):
        cell.value = float(value) if isinstance(value, (float, np.floating)) else int(value)
    else:
        _text(cell, value)


def _sheet_from_frame(ws, frame: pd.DataFrame) -> None:
    for j, name in enumerate(frame.columns, start=1):
        _text(ws.cell(row=1, column=j), name)
    for i, row in enumerate(frame.itertuples(index=False), start=2):
        for j, v in enumerate(row, start=1):
            _put(ws, i, j, v)


def _xl_number(x: float) -> str:
    text = repr(float(x))
    return text.upper() if "e" in text else text


def _feature_formula(feature: dict, ref: str, cat_cells: dict[int, list[str]]) -> str:
    """Nested IF giving one characteristic's points from the input cell ``ref``."""
    missing = int(_bins_of(feature, "missing")[0][1]["points"])
    if feature["dtype"] == "numeric":
        ranges = [b for _, b in _bins_of(feature, "range")]
        expr = str(int(ranges[-1]["points"]))
        for b in reversed(ranges[:-1]):
            expr = f"IF({ref}<{_xl_number(b['upper'])},{int(b['points'])},{expr})"
        for _, b in _bins_of(feature, "special"):
            tests = ",".join(f"{ref}={_xl_number(v)}" for v in b["values"])
            expr = f"IF(OR({tests}),{int(b['points'])},{expr})"
        expr = f"IF(ISNUMBER({ref}),{expr},NA())"
    else:
        expr = str(int(feature["unseen_points"]))
        for i, b in reversed(_bins_of(feature, "category")):
            tests = ",".join(f"EXACT({ref},{c})" for c in cat_cells[i])
            expr = f"IF(OR({tests}),{int(b['points'])},{expr})"
    return f"=IF(ISBLANK({ref}),{missing},{expr})"


def scorecard_workbook(
    card: dict,
    grades: list[dict] | None = None,
    limit_table: pd.DataFrame | None = None,
    policy_table: pd.DataFrame | None = None,
    cases: pd.DataFrame | None = None,
) -> Workbook:
    """Workbook with sheets points, grade_cutoffs, limit_table, policy, categories (labels the
    formulas reference) and scoring (inputs = the boundary cases, or one empty row; points, score,
    PD and grade as formulas)."""
    wb = Workbook()
    wb.remove(wb.active)
    _sheet_from_frame(wb.create_sheet("points"), points_table(card))
    _sheet_from_frame(wb.create_sheet("grade_cutoffs"), pd.DataFrame(grades or []))
    _sheet_from_frame(
        wb.create_sheet("limit_table"), limit_table if limit_table is not None else pd.DataFrame()
    )
    _sheet_from_frame(
        wb.create_sheet("policy"), policy_table if policy_table is not None else pd.DataFrame()
    )

    cat_cells = _categories_sheet(wb.create_sheet("categories"), card)
    _scoring_sheet(wb.create_sheet("scoring"), card, grades, cases, cat_cells)
    return wb


def _card_list(card: dict) -> list[tuple[str | None, dict]]:
    return padded_cards(card) if is_routed(card) else [(None, card)]


def _categories_sheet(cats: Any, card: dict) -> dict[tuple[int, str], dict[int, list[str]]]:
    """One row per (feature, bin, category) label (after a ``card`` column when the card has
    segment cards); returns, per (card position, feature), the cells each category bin tests."""
    routed = is_routed(card)
    first = 2 if routed else 1
    for j, name in enumerate((("card",) if routed else ()) + ("feature", "bin", "category"), 1):
        _text(cats.cell(row=1, column=j), name)
    cat_cells: dict[tuple[int, str], dict[int, list[str]]] = {}
    r = 2
    for k, (seg, sub) in enumerate(_card_list(card)):
        for feat in sub["features"]:
            if feat["dtype"] == "numeric":
                continue
            cells = cat_cells.setdefault((k, feat["name"]), {})
            for i, b in _bins_of(feat, "category"):
                for c in b["categories"]:
                    if routed:
                        _text(cats.cell(row=r, column=1), seg or "main")
                    _text(cats.cell(row=r, column=first), feat["name"])
                    cats.cell(row=r, column=first + 1, value=i)
                    _text(cats.cell(row=r, column=first + 2), c)
                    column = get_column_letter(first + 2)
                    cells.setdefault(i, []).append(
                        f"{quote_sheetname('categories')}!${column}${r}"
                    )
                    r += 1
    return cat_cells


def _points_formula(
    card: dict, j: int, ref: str, segment_ref: str, cat_cells: dict[tuple[int, str], dict]
) -> str:
    """One characteristic's points formula; with segment cards, the card of the row's segment."""
    formulas = [
        (
            seg,
            _feature_formula(
                sub["features"][j], ref, cat_cells.get((k, sub["features"][j]["name"]), {})
            ),
        )
        for k, (seg, sub) in enumerate(_card_list(card))
    ]
    expr = formulas[0][1][1:]
    for seg, formula in reversed(formulas[1:]):
        label = '"' + str(seg).replace('"', '""') + '"'
        expr = f"IF(EXACT({segment_ref},{label}),{formula[1:]},{expr})"
    return "=" + expr


def _scoring_sheet(
    ws: Any,
    card: dict,
    grades: list[dict] | None,
    cases: pd.DataFrame | None,
    cat_cells: dict[tuple[int, str], dict[int, list[str]]],
) -> None:
    """Inputs (the boundary cases, or one empty row), then points, score, PD and grade formulas."""
    feats = all_features(card)
    inputs_ = input_features(card)
    nf, ni = len(feats), len(inputs_)
    headers = (
        ["case_id"]
        + [f["name"] for f in inputs_]
        + [f"points__{f['name']}" for f in feats]
        + ["score", "pd_model"]
        + (["grade"] if grades else [])
    )
    for j, h in enumerate(headers, start=1):
        _text(ws.cell(row=1, column=j), h)
    inputs = pd.DataFrame({"case_id": [1]}) if cases is None else cases
    f_, o_ = card["scaling"]["factor"], card["scaling"]["offset"]
    score_col = get_column_letter(2 + ni + nf)
    for i, row in enumerate(inputs.to_dict("records"), start=2):
        _put(ws, i, 1, row.get("case_id"))
        for j, feat in enumerate(inputs_):
            value = row.get(feat["name"])
            if feat["dtype"] == "numeric" or value is None or value != value:
                _put(ws, i, 2 + j, value)
            else:
                _text(ws.cell(row=i, column=2 + j), value)
        segment_ref = f"{get_column_letter(1 + ni)}{i}"
        for j in range(nf):
            ref = f"{get_column_letter(2 + j)}{i}"
            ws.cell(
                row=i,
                column=2 + ni + j,
                value=_points_formula(card, j, ref, segment_ref, cat_cells),
            )
        first, last = get_column_letter(2 + ni), get_column_letter(1 + ni + nf)
        ws.cell(row=i, column=2 + ni + nf, value=f"=SUM({first}{i}:{last}{i})")
        ws.cell(
            row=i,
            column=3 + ni + nf,
            value=f"=1/(1+EXP(({score_col}{i}-{_xl_number(o_)})/{_xl_number(f_)}))",
        )
        if grades:
            expr = '"' + str(grades[-1]["grade"]).replace('"', '""') + '"'
            for g in reversed(grades[:-1]):
                label = '"' + str(g["grade"]).replace('"', '""') + '"'
                expr = f"IF({score_col}{i}>={int(g['score_min'])},{label},{expr})"
            ws.cell(row=i, column=4 + ni + nf, value="=" + expr)


def check_against_python(card: dict, cases: pd.DataFrame, got: pd.DataFrame, export: str) -> None:
    """Raise unless ``got`` (one export's scoring of ``cases``) equals the expected points and
    score exactly and the PD to 1e-12 (relative)."""
    cols = [f"points__{f['name']}" for f in all_features(card)] + ["score"]
    got = got.set_index("case_id").reindex(cases["case_id"].to_numpy()).reset_index()
    for c in cols:
        diff = np.flatnonzero(got[c].to_numpy(np.int64) != cases[f"expected_{c}"].to_numpy())
        if diff.size:
            k = int(diff[0])
            raise PipelineError(
                f"{export}: case {cases['case_id'].iloc[k]} column {c} gives "
                f"{got[c].iloc[k]} but pipeline.card.score_frame gives "
                f"{cases[f'expected_{c}'].iloc[k]}"
            )
    pd_expected = score_to_pd(
        cases["expected_score"], card["scaling"]["factor"], card["scaling"]["offset"]
    )
    if not np.allclose(got["pd_model"].to_numpy(float), pd_expected, rtol=1e-12, atol=0):
        raise PipelineError(f"{export}: pd_model differs from the Python scoring")
    if "expected_grade" in cases and "grade" in got:
        if not (
            got["grade"].astype(str).to_numpy() == cases["expected_grade"].astype(str).to_numpy()
        ).all():
            raise PipelineError(f"{export}: grade differs from the Python scoring")


FIXED_TIMESTAMP = "2000-01-01T00:00:00Z"


def _full_precision(value: Any) -> str:
    """Cell text for a number: the shortest repr that reads back to the same double (openpyxl's
    own %.16g loses the 17th digit that separates x from an edge one ulp away)."""
    if isinstance(value, float) and math.isfinite(value):
        return repr(float(value))
    return safe_string(value)


def workbook_bytes(wb: Workbook) -> bytes:
    """The .xlsx bytes with numbers at full precision, fixed document dates and zip entry
    times, so that the same workbook gives the same bytes on every run (openpyxl stamps the
    save time)."""
    import openpyxl.cell._writer as cell_writer

    raw = io.BytesIO()
    with mock.patch.object(cell_writer, "safe_string", _full_precision):
        wb.save(raw)
    raw.seek(0)
    out = io.BytesIO()
    stamp = re.compile(r"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = stamp.sub(
                    lambda m: m.group(1) + FIXED_TIMESTAMP + m.group(3), data.decode("utf-8")
                ).encode("utf-8")
            fixed = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, data)
    return out.getvalue()


# ------------------------------------------------------------------------------------- PMML
PMML_NS = "http://www.dmg.org/PMML-4_4"


def _pmml_number(x: float) -> str:
    return decimal_text(x)


def _pmml_interval(el, lo: Any, hi: Any) -> None:
    attrs = {"closure": "closedOpen"}
    if lo is not None:
        attrs["leftMargin"] = str(int(lo))
    if hi is not None:
        attrs["rightMargin"] = str(int(hi))
    SubElement(el, "Interval", attrs)


def _pmml_points_expr(parent, feature: dict) -> None:
    """An expression giving the feature's points by the bin rules (the Scorecard attributes
    written as nested ``if``), for the shortfall count in the Output."""
    name = feature["name"]

    def node(test: str, *args: str):
        el = SubElement(parent_stack[-1], "Apply", {"function": "if"})
        cond = SubElement(el, "Apply", {"function": test})
        SubElement(cond, "FieldRef", {"field": name})
        for a in args:
            SubElement(
                cond,
                "Constant",
                {
                    "dataType": "double"
                    if test != "equal" or feature["dtype"] == "numeric"
                    else "string"
                },
            ).text = a
        return el, cond

    def points(el, value: int) -> None:
        SubElement(el, "Constant", {"dataType": "integer"}).text = str(int(value))

    parent_stack = [parent]
    el, _ = node("isMissing")
    points(el, _bins_of(feature, "missing")[0][1]["points"])
    parent_stack.append(el)
    if feature["dtype"] == "numeric":
        tests = [
            ("equal", decimal_text(v), b["points"])
            for _, b in _bins_of(feature, "special")
            for v in b["values"]
        ]
        ranges = [b for _, b in _bins_of(feature, "range")]
        tests += [("lessThan", decimal_text(b["upper"]), b["points"]) for b in ranges[:-1]]
        last = ranges[-1]["points"]
    else:
        tests = [
            ("equal", str(c), b["points"])
            for _, b in _bins_of(feature, "category")
            for c in b["categories"]
        ]
        last = feature["unseen_points"]
    for test, value, pts in tests:
        el, _ = node(test, value)
        points(el, pts)
        parent_stack.append(el)
    points(parent_stack[-1], last)


def scorecard_pmml(card: dict, grades: list[dict] | None = None) -> str:
    """The card as a PMML 4.4 ``Scorecard``: one Characteristic per feature (reason code,
    baseline score = the card's ``baseline_points``), Attributes in the order the bin rules
    apply (missing, special values, ranges ``lessThan`` their upper edge, categories, then
    unseen); reason codes ``pointsBelow`` the baseline. Outputs: score, pd_model (the scaling
    formula), reason_1..reason_<top_n> and, with a master scale, grade and grade_pd (the score
    discretised on the grades' [score_min, score_max) intervals).

    Edges are the card's short decimals, written as the shortest round-trip text. A NaN input
    is declared a missing value of every numeric field.

    One card per document: a card with segment cards is exported card by card
    (`pipeline.card.routing.cards`), and the caller routes rows by segment.
    """
    if is_routed(card):
        raise PipelineError(
            "scorecard_pmml: the card has segment cards; export main_card(card) and each of "
            "segment_cards(card) as its own PMML document (rows routed by segment)"
        )
    feats = card["features"]
    root = Element("PMML", {"xmlns": PMML_NS, "version": "4.4"})
    _pmml_dictionary(root, card)
    model = _pmml_model(root, card)
    out = SubElement(model, "Output")
    _pmml_score_outputs(out, card)
    _pmml_reason_outputs(out, feats, int(card.get("reason_codes", {}).get("top_n", 4)))
    if grades:
        _pmml_grade_outputs(out, grades)
    chars = SubElement(model, "Characteristics")
    for f in feats:
        _pmml_characteristic(chars, f)
    indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + tostring(root, encoding="unicode") + "\n"


def _pmml_apply(parent: Element, function: str) -> Element:
    return SubElement(parent, "Apply", {"function": function})


def _pmml_const(parent: Element, value: float) -> None:
    SubElement(parent, "Constant", {"dataType": "double"}).text = _pmml_number(value)


def _pmml_output(out: Element, name: str, optype: str, dtype: str, feature: str) -> Element:
    attrs = {"name": name, "optype": optype, "dataType": dtype, "feature": feature}
    return SubElement(out, "OutputField", attrs)


def _pmml_dictionary(root: Element, card: dict) -> None:
    """Header and DataDictionary: a NaN input is a missing value of every numeric field."""
    feats = card["features"]
    header = SubElement(
        root,
        "Header",
        {
            "description": f"WoE logistic scorecard '{card.get('dataset', '')}', generated by "
            "pipeline.exports; do not edit"
        },
    )
    SubElement(header, "Application", {"name": "credit-grading-pipeline", "version": "0.1.0"})
    dd = SubElement(root, "DataDictionary", {"numberOfFields": str(len(feats))})
    for f in feats:
        if f["dtype"] == "numeric":
            field = SubElement(
                dd, "DataField", {"name": f["name"], "optype": "continuous", "dataType": "double"}
            )
            SubElement(field, "Value", {"value": "NaN", "property": "missing"})
        else:
            SubElement(
                dd, "DataField", {"name": f["name"], "optype": "categorical", "dataType": "string"}
            )


def _pmml_model(root: Element, card: dict) -> Element:
    """The Scorecard element (pointsBelow reason codes) with its MiningSchema."""
    model = SubElement(
        root,
        "Scorecard",
        {
            "modelName": f"scorecard_{card.get('dataset', '')}",
            "functionName": "regression",
            "useReasonCodes": "true",
            "reasonCodeAlgorithm": "pointsBelow",
            "initialScore": "0",
            "baselineMethod": "other",
        },
    )
    schema = SubElement(model, "MiningSchema")
    for f in card["features"]:
        SubElement(
            schema,
            "MiningField",
            {"name": f["name"], "usageType": "active", "invalidValueTreatment": "asIs"},
        )
    return model


def _pmml_score_outputs(out: Element, card: dict) -> None:
    """``score`` and ``pd_model`` = 1 / (1 + exp((score - offset) / factor))."""
    _pmml_output(out, "score", "continuous", "double", "predictedValue")
    pd_field = _pmml_output(out, "pd_model", "continuous", "double", "transformedValue")
    div = _pmml_apply(pd_field, "/")
    _pmml_const(div, 1.0)
    plus = _pmml_apply(div, "+")
    _pmml_const(plus, 1.0)
    z = _pmml_apply(_pmml_apply(plus, "exp"), "/")
    minus = _pmml_apply(z, "-")
    SubElement(minus, "FieldRef", {"field": "score"})
    _pmml_const(minus, card["scaling"]["offset"])
    _pmml_const(z, card["scaling"]["factor"])


def _pmml_reason_outputs(out: Element, feats: list[dict], top_n: int) -> None:
    """``reason_1``..``reason_<top_n>``, each kept only when that many characteristics fall short.

    pointsBelow ranks every characteristic, also those at or above their baseline; the card
    names only shortfalls, so reason k is kept when at least k characteristics fall short.
    """
    n_short = _pmml_output(out, "n_shortfalls", "continuous", "integer", "transformedValue")
    total = _pmml_apply(n_short, "sum") if len(feats) > 1 else n_short
    for f in feats:
        below = _pmml_apply(total, "if")
        less = _pmml_apply(below, "lessThan")
        _pmml_points_expr(less, f)
        _pmml_const(less, float(f["baseline_points"]))
        SubElement(below, "Constant", {"dataType": "integer"}).text = "1"
        SubElement(below, "Constant", {"dataType": "integer"}).text = "0"
    for k in range(1, top_n + 1):
        rank = _pmml_output(out, f"reason_rank_{k}", "categorical", "string", "reasonCode")
        rank.set("rank", str(k))
        field = _pmml_output(out, f"reason_{k}", "categorical", "string", "transformedValue")
        keep = _pmml_apply(field, "if")
        ge = _pmml_apply(keep, "greaterOrEqual")
        SubElement(ge, "FieldRef", {"field": "n_shortfalls"})
        SubElement(ge, "Constant", {"dataType": "integer"}).text = str(k)
        SubElement(keep, "FieldRef", {"field": f"reason_rank_{k}"})


def _pmml_grade_outputs(out: Element, grades: list[dict]) -> None:
    """``grade`` and ``grade_pd``: the score discretised on the grades' [score_min, score_max)."""
    for name, key, dtype in (("grade", "grade", "string"), ("grade_pd", "pd", "double")):
        optype = "categorical" if dtype == "string" else "continuous"
        field = _pmml_output(out, name, optype, dtype, "transformedValue")
        disc = SubElement(field, "Discretize", {"field": "score", "dataType": dtype})
        for i, g in enumerate(grades):
            value = str(g[key]) if dtype == "string" else _pmml_number(g[key])
            b = SubElement(disc, "DiscretizeBin", {"binValue": value})
            lo = g["score_min"] if i < len(grades) - 1 else None
            hi = grades[i - 1]["score_min"] if i > 0 else None
            _pmml_interval(b, lo, hi)


def _pmml_characteristic(chars: Element, f: dict) -> None:
    """One Characteristic: Attributes in the order the bin rules apply (missing, special values,
    ranges ``lessThan`` their upper edge, categories, then unseen)."""
    ch = SubElement(
        chars,
        "Characteristic",
        {
            "name": f"points__{f['name']}",
            "reasonCode": str(f["reason_code"]),
            "baselineScore": _pmml_number(float(f["baseline_points"])),
        },
    )

    def attribute(points: int) -> Element:
        return SubElement(ch, "Attribute", {"partialScore": str(int(points))})

    name = f["name"]
    missing = _bins_of(f, "missing")[0][1]["points"]
    SubElement(attribute(missing), "SimplePredicate", {"field": name, "operator": "isMissing"})
    if f["dtype"] == "numeric":
        for _, b in _bins_of(f, "special"):
            for v in b["values"]:
                SubElement(
                    attribute(b["points"]),
                    "SimplePredicate",
                    {"field": name, "operator": "equal", "value": _pmml_number(v)},
                )
        ranges = [b for _, b in _bins_of(f, "range")]
        for b in ranges[:-1]:
            SubElement(
                attribute(b["points"]),
                "SimplePredicate",
                {"field": name, "operator": "lessThan", "value": _pmml_number(b["upper"])},
            )
        SubElement(attribute(ranges[-1]["points"]), "True")
        return
    for _, b in _bins_of(f, "category"):
        if not b["categories"]:
            continue
        pred = attribute(b["points"])
        if len(b["categories"]) > 1:
            pred = SubElement(pred, "CompoundPredicate", {"booleanOperator": "or"})
        for c in b["categories"]:
            SubElement(
                pred, "SimplePredicate", {"field": name, "operator": "equal", "value": str(c)}
            )
    SubElement(attribute(f["unseen_points"]), "True")
