"""Scorecard exports: SQL (CASE per characteristic), Excel workbook with scoring formulas, CSV
points table, and the boundary test set every export is checked against.

All exports are generated from the card (docs/architecture.md) and follow the bin rules of
:func:`pipeline.scorecard.score_frame`: ``[lower, upper)`` ranges, null/NaN -> ``missing``, listed
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
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.compat import safe_string
from openpyxl.utils import get_column_letter, quote_sheetname

from pipeline.config import PipelineError
from pipeline.scorecard import score_frame, score_to_pd

SQL_INPUT_TABLE = "scorecard_input"
XLSX_SHEETS = ("points", "grade_cutoffs", "limit_table", "policy", "categories", "scoring")
OUT_OF_RANGE = "__unseen_category__"


# ------------------------------------------------------------------------------------ SQL
def sql_string(value: Any) -> str:
    """A SQL string literal: single quotes doubled; NUL bytes are refused."""
    text = str(value)
    if "\x00" in text:
        raise PipelineError(f"category label {text!r} contains a NUL byte; clean the label")
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A quoted SQL identifier: double quotes doubled."""
    if "\x00" in name:
        raise PipelineError(f"feature name {name!r} contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def sql_number(x: float) -> str:
    """A DOUBLE literal that parses back to exactly ``x`` (shortest round-trip repr)."""
    x = float(x)
    if not math.isfinite(x):
        raise PipelineError(f"bin edge {x} is not finite; use null for an unbounded edge")
    return f"CAST('{x!r}' AS DOUBLE)"


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


def feature_case_sql(feature: dict) -> str:
    """The CASE expression giving one characteristic's points.

    Ordered for speed, with the same result as the bin rules: the ranges by upper edge, a special
    value tested only inside the range that holds it, and the null/NaN test only for rows no range
    took (a null matches no comparison, and NaN, which SQL engines order above every number, is
    below no upper edge); categories, then null, then unseen.
    """
    col = sql_identifier(feature["name"])
    missing = _bins_of(feature, "missing")[0][1]["points"]
    lines = ["CASE"]
    if feature["dtype"] == "numeric":
        x = f"CAST({col} AS DOUBLE)"
        ranges = [b for _, b in _bins_of(feature, "range")]
        uppers = [float(b["upper"]) for b in ranges[:-1]]
        specials: list[list[tuple[list[str], int]]] = [[] for _ in ranges]
        for _, b in _bins_of(feature, "special"):
            by_range: dict[int, list[str]] = {}
            for v in b["values"]:
                literal = sql_number(v)  # refuses NaN and infinities
                by_range.setdefault(bisect.bisect_right(uppers, float(v)), []).append(literal)
            for r, literals in by_range.items():
                specials[r].append((literals, int(b["points"])))

        def points(r: int) -> str:
            if not specials[r]:
                return str(int(ranges[r]["points"]))
            whens = " ".join(f"WHEN {_any_of(x, lits)} THEN {pts}" for lits, pts in specials[r])
            return f"CASE {whens} ELSE {int(ranges[r]['points'])} END"

        for r, upper in enumerate(uppers):
            lines.append(f"    WHEN {x} < {sql_number(upper)} THEN {points(r)}")
        lines.append(f"    WHEN {x} IS NULL OR isnan({x}) THEN {int(missing)}")
        lines.append(f"    ELSE {points(len(ranges) - 1)}")
    else:
        x = f"CAST({col} AS VARCHAR)"
        groups = [b for _, b in _bins_of(feature, "category") if b["categories"]]
        few = sum(len(b["categories"]) for b in groups) <= MAX_OR_TERMS
        for b in groups:
            labels = [sql_string(c) for c in b["categories"]]
            for test in [f"{x} = {lab}" for lab in labels] if few else [_any_of(x, labels)]:
                lines.append(f"    WHEN {test} THEN {int(b['points'])}")
        lines.append(f"    WHEN {col} IS NULL THEN {int(missing)}")
        lines.append(f"    ELSE {int(feature['unseen_points'])}")
    return "\n".join(lines) + "\n  END"


def grade_case_sql(score_expr: str, grades: list[dict]) -> str:
    """CASE giving the grade: score_min <= score, best grade first (interval [min, max))."""
    parts = [
        f"WHEN {score_expr} >= {int(g['score_min'])} THEN {sql_string(g['grade'])}"
        for g in grades[:-1]
    ]
    return "CASE " + " ".join(parts) + f" ELSE {sql_string(grades[-1]['grade'])} END"


def scorecard_sql(
    card: dict, grades: list[dict] | None = None, table: str = SQL_INPUT_TABLE
) -> str:
    """A SELECT scoring every row of ``table``: its columns, ``points__<feature>``, ``score``,
    ``pd_model`` and, with a master scale, ``grade``. Every feature column must exist (null =
    missing)."""
    f, o = card["scaling"]["factor"], card["scaling"]["offset"]
    version = re.sub(r"[^0-9.]", "", str(card["schema_version"]))
    cases = ",\n".join(
        f"  {feature_case_sql(feat)} AS {sql_identifier('points__' + feat['name'])}"
        for feat in card["features"]
    )
    total = " + ".join(sql_identifier("points__" + feat["name"]) for feat in card["features"])
    select = [f"  ({total}) AS score"]
    outer = [
        "  p.*",
        f"  1.0 / (1.0 + exp((p.score - {sql_number(o)}) / {sql_number(f)})) AS pd_model",
    ]
    if grades:
        outer.append(f"  {grade_case_sql('p.score', grades)} AS grade")
    return (
        f"-- WoE logistic scorecard, schema {version}; "
        "generated by pipeline.exports, do not edit.\n"
        f"-- Scores the table {sql_identifier(table)}; points per characteristic, score = sum.\n"
        "SELECT\n" + ",\n".join(outer) + "\nFROM (\n"
        "  SELECT b.*,\n" + ",\n".join(select) + "\n  FROM (\n"
        f"    SELECT *,\n{cases}\n    FROM {sql_identifier(table)}\n  ) AS b\n) AS p\n"
    )


# ------------------------------------------------------------------------------- CSV table
def points_table(card: dict) -> pd.DataFrame:
    """One row per feature x bin (plus the unseen row): what an analyst reads off the card."""
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


# ---------------------------------------------------------------------------- boundary set
def _step(edge: float) -> float:
    return 1e-6 * max(1.0, abs(edge))


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
    """Inputs probing every bin rule: each range edge exactly, one ulp and one step
    (1e-6 x max(1, |edge|)) either side, each special value, missing, each category, an unseen
    category; the other features sit at a base value. Plus an all-missing row."""
    feats = card["features"]
    base = {f["name"]: _base_value(f) for f in feats}
    rows: list[dict] = []

    def add(feature: str, case: str, value: Any) -> None:
        row = dict(base)
        row[feature] = value
        rows.append({"case_feature": feature, "case": case, **row})

    for f in feats:
        name = f["name"]
        if f["dtype"] == "numeric":
            for _, b in _bins_of(f, "range"):
                if b.get("upper") is None:
                    continue
                e = float(b["upper"])
                for case, v in (
                    ("edge", e),
                    ("edge-ulp", np.nextafter(e, -np.inf)),
                    ("edge+ulp", np.nextafter(e, np.inf)),
                    ("edge-step", e - _step(e)),
                    ("edge+step", e + _step(e)),
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
            **{f["name"]: (np.nan if f["dtype"] == "numeric" else None) for f in feats},
        }
    )
    out = pd.DataFrame(rows)
    for f in feats:
        out[f["name"]] = out[f["name"]].astype(float if f["dtype"] == "numeric" else object)
    out.insert(0, "case_id", np.arange(1, len(out) + 1))
    return out


def boundary_cases(card: dict, grades: list[dict] | None = None) -> pd.DataFrame:
    """The boundary inputs with the expected points, score, PD and grade from ``score_frame``."""
    from pipeline.calibration import assign_grade

    X = boundary_inputs(card)
    scored = score_frame(card, X)
    keep = ["score", "pd_model"] + [f"points__{f['name']}" for f in card["features"]]
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

    cats = wb.create_sheet("categories")
    for j, name in enumerate(("feature", "bin", "category"), start=1):
        _text(cats.cell(row=1, column=j), name)
    cat_cells: dict[str, dict[int, list[str]]] = {}
    r = 2
    for feat in card["features"]:
        if feat["dtype"] == "numeric":
            continue
        cat_cells[feat["name"]] = {}
        for i, b in _bins_of(feat, "category"):
            for c in b["categories"]:
                _text(cats.cell(row=r, column=1), feat["name"])
                cats.cell(row=r, column=2, value=i)
                _text(cats.cell(row=r, column=3), c)
                cat_cells[feat["name"]].setdefault(i, []).append(
                    f"{quote_sheetname('categories')}!$C${r}"
                )
                r += 1

    ws = wb.create_sheet("scoring")
    feats = card["features"]
    nf = len(feats)
    headers = (
        ["case_id"]
        + [f["name"] for f in feats]
        + [f"points__{f['name']}" for f in feats]
        + ["score", "pd_model"]
        + (["grade"] if grades else [])
    )
    for j, h in enumerate(headers, start=1):
        _text(ws.cell(row=1, column=j), h)
    inputs = pd.DataFrame({"case_id": [1]}) if cases is None else cases
    f_, o_ = card["scaling"]["factor"], card["scaling"]["offset"]
    score_col = get_column_letter(2 + 2 * nf)
    for i, row in enumerate(inputs.to_dict("records"), start=2):
        _put(ws, i, 1, row.get("case_id"))
        for j, feat in enumerate(feats):
            value = row.get(feat["name"])
            if feat["dtype"] == "numeric" or value is None or value != value:
                _put(ws, i, 2 + j, value)
            else:
                _text(ws.cell(row=i, column=2 + j), value)
            ref = f"{get_column_letter(2 + j)}{i}"
            ws.cell(
                row=i,
                column=2 + nf + j,
                value=_feature_formula(feat, ref, cat_cells.get(feat["name"], {})),
            )
        first, last = get_column_letter(2 + nf), get_column_letter(1 + 2 * nf)
        ws.cell(row=i, column=2 + 2 * nf, value=f"=SUM({first}{i}:{last}{i})")
        ws.cell(
            row=i,
            column=3 + 2 * nf,
            value=f"=1/(1+EXP(({score_col}{i}-{_xl_number(o_)})/{_xl_number(f_)}))",
        )
        if grades:
            expr = '"' + str(grades[-1]["grade"]).replace('"', '""') + '"'
            for g in reversed(grades[:-1]):
                label = '"' + str(g["grade"]).replace('"', '""') + '"'
                expr = f"IF({score_col}{i}>={int(g['score_min'])},{label},{expr})"
            ws.cell(row=i, column=4 + 2 * nf, value="=" + expr)
    return wb


def check_against_python(card: dict, cases: pd.DataFrame, got: pd.DataFrame, export: str) -> None:
    """Raise unless ``got`` (one export's scoring of ``cases``) equals the expected points and
    score exactly and the PD to 1e-12 (relative)."""
    cols = [f"points__{f['name']}" for f in card["features"]] + ["score"]
    for c in cols:
        diff = np.flatnonzero(got[c].to_numpy(np.int64) != cases[f"expected_{c}"].to_numpy())
        if diff.size:
            k = int(diff[0])
            raise PipelineError(
                f"{export}: case {cases['case_id'].iloc[k]} column {c} gives "
                f"{got[c].iloc[k]} but pipeline.scorecard.score_frame gives "
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
