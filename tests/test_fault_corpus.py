"""The fault corpus (tests/fixtures/bad_input/corpus/, one folder of real files per kind): every kind
ends in its stated outcome — a one-line error naming file/row/column (or params key) and rule, or
the named rows quarantined with the named rule — and every table that was written reconciles.

Ingest and adapter kinds run the ingest library in-process on small files (one run per kind); score
kinds score an input file with the corpus's base bundle; card kinds load a damaged bundle."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import PipelineError
from pipeline.ingest import run_ingest
from pipeline.score import load_bundle, read_input, score_customers
from tests.fixtures.ingest_params import ingest_params

BAD_INPUT = Path(__file__).resolve().parent / "fixtures" / "bad_input"
CORPUS = BAD_INPUT / "corpus"


def kinds(area: str) -> list[Path]:
    return sorted(p for p in (CORPUS / area).iterdir() if (p / "case.json").is_file())


def spec(folder: Path) -> dict:
    return json.loads((folder / "case.json").read_text(encoding="utf-8"))


def one_line_error(exc: pytest.ExceptionInfo, pattern: str) -> None:
    message = str(exc.value)
    assert "\n" not in message, message
    assert re.search(pattern, message), f"{pattern!r} not in {message!r}"


def assert_reconciles(report: dict) -> None:
    for table, c in report["tables"].items():
        assert c["reconciled"], table
        assert c["rows_read"] == c["rows_accepted"] + c["rows_quarantined"], table
        if "amount_read" in c:
            total = c["amount_accepted"] + c["amount_quarantined"]
            assert math.isclose(c["amount_read"], total, rel_tol=1e-12, abs_tol=1e-9), table
    assert report["reconciled"]


def run_case(
    folder: Path, tmp_path: Path, with_base: bool, make_params
) -> tuple[dict | None, Path, dict]:
    """Params are the test corpus's (`ingest_params`) with the case's overrides; a bad value fails
    when they are built, before any file is read, as at stage start."""
    case = spec(folder)
    raw = tmp_path / "raw"
    raw.mkdir()
    if with_base:
        for file in (BAD_INPUT / "base").iterdir():
            shutil.copy(file, raw / file.name)
    for file in folder.iterdir():
        if file.name != "case.json":
            shutil.copy(file, raw / file.name)
    out = tmp_path / "out"
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(PipelineError) as exc:
            params = ingest_params(make_params, **case["params"])
            run_ingest(raw, out / "i", out / "q", out / "r.json", out / "m.json", params)
        one_line_error(exc, expect["error"])
        assert not (out / "i").exists(), "a failed ingest must write nothing"
        return None, out, expect
    params = ingest_params(make_params, **case["params"])
    report = run_ingest(raw, out / "i", out / "q", out / "r.json", out / "m.json", params)
    assert_reconciles(report)
    assert json.loads((out / "r.json").read_text())["reconciled"] is True
    return report, out, expect


def check_outcome(report: dict, out: Path, expect: dict) -> None:
    for table, rows in expect.get("quarantine", {}).items():
        q = pd.read_parquet(out / "q" / f"{table}.parquet")
        got = {str(r): rule for r, rule in zip(q["_source_row"], q["_rule"], strict=True)}
        assert got == rows, (table, got, q["_reason"].tolist())
        assert q["_reason"].str.len().gt(0).all()
    for table, counts in expect.get("accept", {}).items():
        c = report["tables"][table]
        assert c["rows_quarantined"] == 0, (table, c["reasons"])
        for key, value in counts.items():
            if isinstance(value, float):
                assert math.isclose(c[key], value, rel_tol=1e-12), (key, c[key])
            else:
                assert c[key] == value, (key, c[key])
    if "amount" in expect:
        inv = pd.read_parquet(out / "i" / "invoices.parquet").set_index("invoice_id")
        for invoice, amount in expect["amount"].items():
            assert math.isclose(inv.loc[invoice, "amount"], amount), invoice
            assert inv.loc[invoice, "currency"] == "CNY"
    if "names" in expect:
        names = pd.read_parquet(out / "i" / "customers.parquet").set_index("customer_id")["name"]
        for cid, name in expect["names"].items():
            assert names[cid] == name


@pytest.mark.parametrize("folder", kinds("ingest"), ids=lambda p: p.name)
def test_ingest_kind(folder: Path, tmp_path: Path, make_params) -> None:
    report, out, expect = run_case(folder, tmp_path, True, make_params)
    if report is not None:
        check_outcome(report, out, expect)


@pytest.mark.parametrize("folder", kinds("adapters"), ids=lambda p: p.name)
def test_adapter_kind(folder: Path, tmp_path: Path, make_params) -> None:
    report, out, expect = run_case(folder, tmp_path, False, make_params)
    if report is not None:
        check_outcome(report, out, expect)


@pytest.fixture(scope="module")
def base_bundle() -> dict:
    return load_bundle(CORPUS / "_base_score" / "scorecard.json")


@pytest.mark.parametrize("folder", kinds("score"), ids=lambda p: p.name)
def test_score_kind(folder: Path, base_bundle: dict) -> None:
    expect = spec(folder)["expect"]
    files = [p for p in folder.iterdir() if p.name != "case.json"]
    path = files[0] if files else folder / "input.csv"
    if "error" in expect:
        with pytest.raises(PipelineError) as exc:
            score_customers(base_bundle, read_input(path))
        one_line_error(exc, expect["error"])
        return
    X = read_input(path)
    out = score_customers(base_bundle, X)
    assert len(out) == len(X)
    errors = {str(i): e for i, e in enumerate(out["error"]) if e is not None}
    assert set(errors) == set(expect["row_errors"]), errors
    for row, text in expect["row_errors"].items():
        assert text in errors[row], errors[row]
        assert pd.isna(out["score"].iloc[int(row)])
    good = [i for i in range(len(out)) if str(i) not in errors]
    assert out["score"].iloc[good].notna().all()


@pytest.mark.parametrize("folder", kinds("card"), ids=lambda p: p.name)
def test_card_kind(folder: Path) -> None:
    expect = spec(folder)["expect"]
    path = folder / "scorecard.json"
    if "error" in expect:
        with pytest.raises(PipelineError) as exc:
            load_bundle(path)
        one_line_error(exc, expect["error"])
        assert str(path) in str(exc.value)
    else:
        bundle = load_bundle(path)
        assert bundle["content_sha256"]


def test_corpus_is_large_enough() -> None:
    counts = {area: len(kinds(area)) for area in ("ingest", "adapters", "score", "card")}
    assert sum(counts.values()) >= 100 and all(counts.values()), counts
