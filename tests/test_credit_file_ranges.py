"""The credit file ingested in ranges of customers writes the bytes and report of the whole-table path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.credit_file import CREDIT_FILE_TABLES
from pipeline.credit_file_ranges import range_bounds, range_customers, range_of
from pipeline.ingest import run_ingest
from pipeline.synth import generate_ledger
from tests.fixtures.ingest_params import ingest_params

CORPUS = Path(__file__).resolve().parent / "fixtures" / "bad_input"
LEDGER = ("customers", "invoices", "payments", "claims")


def _shuffle(path: Path, seed: int) -> None:
    """Rows of a CSV in a random order: a customer's rows end up apart, in any range order."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    order = np.random.default_rng(seed).permutation(len(frame))
    frame.iloc[order].to_csv(path, index=False)


def _corpus(raw: Path) -> None:
    for folder in ("base", "bad_customer_history", "bad_expert_scores", "bad_platform"):
        for file in (CORPUS / folder).iterdir():
            shutil.copy(file, raw / file.name)


def _history_only(raw: Path) -> None:
    for folder in ("base", "bad_customer_history"):
        for file in (CORPUS / folder).iterdir():
            shutil.copy(file, raw / file.name)


def _generated(raw: Path) -> None:
    tables = generate_ledger(40, 12, "2023-01-01", seed=15)
    for name in (*LEDGER, *CREDIT_FILE_TABLES):
        tables[name].to_csv(raw / f"{name}.csv", index=False)
    history = pd.read_csv(raw / "customer_history.csv", dtype=str, keep_default_na=False)
    extra = history.iloc[[0, 3, 5]].copy()
    extra.iloc[1, extra.columns.get_loc("customer_id")] = "NOT_A_CUSTOMER"
    extra.iloc[2, extra.columns.get_loc("customer_id")] = ""
    pd.concat([history, extra]).to_csv(raw / "customer_history.csv", index=False)
    scores = pd.read_csv(raw / "expert_scores.csv", dtype=str, keep_default_na=False)
    pd.concat([scores, scores.iloc[[7]]]).to_csv(raw / "expert_scores.csv", index=False)


def _run(raw: Path, out: Path, make_params, budget: int | None) -> tuple[dict, dict[str, bytes]]:
    report = run_ingest(
        raw,
        out / "interim",
        out / "quarantine",
        out / "ingest.json",
        out / "metrics.json",
        ingest_params(make_params),
        budget_bytes=budget,
    )
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.*"))}
    return report, files


@pytest.mark.parametrize(
    "build", [_corpus, _history_only, _generated], ids=["corpus", "history_only", "generated"]
)
def test_ranges_write_the_whole_table_bytes(tmp_path: Path, make_params, build) -> None:
    """One customer per range (a 1-byte budget), over files whose customers' rows are scattered:
    every interim and quarantine file, the report and the metrics are those of the whole-table path."""
    raw = tmp_path / "raw"
    raw.mkdir()
    build(raw)
    for i, table in enumerate(CREDIT_FILE_TABLES):
        if (raw / f"{table}.csv").exists():
            _shuffle(raw / f"{table}.csv", seed=i)
    whole, whole_files = _run(raw, tmp_path / "whole", make_params, None)
    ranged, ranged_files = _run(raw, tmp_path / "ranged", make_params, 1)
    assert range_customers(10**6, 40, 1) == 1
    assert sorted(whole_files) == sorted(ranged_files)
    differ = [name for name in whole_files if whole_files[name] != ranged_files[name]]
    assert not differ, differ
    assert ranged == whole
    for table in CREDIT_FILE_TABLES:
        assert whole["tables"][table]["reconciled"]
    assert whole["tables"]["customer_history"]["rows_quarantined"] > 0


def test_range_of_routes_by_text_and_missing_ids_to_the_first_range() -> None:
    bounds = range_bounds(pd.Series(["C3", "C1", "C2", "C4", "C5"]), 2)
    assert list(bounds) == ["C3", "C5"]
    ids = pd.Series(["C1", "C2", "C3", None, "C45", "C5", "C9", "A"], dtype=object)
    assert list(range_of(ids, bounds)) == [0, 0, 1, 0, 1, 2, 2, 0]


def test_range_size_follows_the_budget_left() -> None:
    assert range_customers(10**9, 1000, None) == 1000
    assert range_customers(10**9, 1000, 40 * 10**9) == 1000
    assert range_customers(10**9, 1000, 5 * 10**9) == 250
    assert range_customers(10**9, 1000, 10 * 10**9, used_bytes=5 * 10**9) == 250
    assert range_customers(10**9, 1000, 10 * 10**9, used_bytes=20 * 10**9) == 50
