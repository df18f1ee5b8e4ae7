"""The credit file: customer-history validation on ingest, the master fallback, and point-in-time attributes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.credit_file import (
    MASTER_VERSION_REASON,
    attributes_as_of,
    history_from_master,
    timeline_failures,
)
from pipeline.features.duckdb_engine import compute_snapshots
from pipeline.ingest import run_ingest
from pipeline.schemas import EXPERT_SCORES, HISTORY_ATTRIBUTES
from pipeline.synth import generate_ledger
from tests.fixtures.feature_params import features_params
from tests.fixtures.ingest_params import ingest_params

CORPUS = Path(__file__).resolve().parent / "fixtures" / "bad_input"
BASE_TABLES = ("customers", "invoices", "payments", "claims")


def _ingest(tmp_path: Path, case: str, make_params) -> dict:
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for folder in ("base", case):
        for file in (CORPUS / folder).iterdir():
            shutil.copy(file, raw / file.name)
    out = tmp_path / "out"
    params = ingest_params(make_params)
    return run_ingest(
        raw, out / "interim", out / "quarantine", out / "ingest.json", out / "metrics.json", params
    )


def _quarantine(tmp_path: Path, table: str) -> pd.DataFrame:
    return pd.read_parquet(tmp_path / "out" / "quarantine" / f"{table}.parquet")


# --------------------------------------------------------------------------- ingest: bad-input corpus
def test_history_corpus_quarantines_broken_timelines_and_reconciles(tmp_path, make_params):
    report = _ingest(tmp_path, "bad_customer_history", make_params)
    t = report["tables"]["customer_history"]
    assert (t["rows_read"], t["rows_accepted"], t["rows_quarantined"]) == (10, 2, 8)
    assert t["reconciled"] and report["reconciled"]
    q = _quarantine(tmp_path, "customer_history").set_index("_source_row")["_rule"]
    assert q.to_dict() == {
        4: "history_broken",
        5: "version_gap",
        6: "history_broken",
        7: "version_overlap",
        8: "customer_exists",
        9: "future_date",
        10: "in_range",
        11: "parses_as_date",
    }
    reason10 = (
        _quarantine(tmp_path, "customer_history").set_index("_source_row").loc[10, "_reason"]
    )
    assert "valid_to_after_from" in reason10
    assert t["customers_with_history"] == 1 and t["customers_single_version_from_master"] == 2
    hist = pd.read_parquet(tmp_path / "out" / "interim" / "customer_history.parquet")
    assert hist.groupby("customer_id").size().to_dict() == {"C1": 2, "C2": 1, "C3": 1}
    c3 = hist[hist["customer_id"] == "C3"].iloc[0]
    assert c3["version_source"] == "master" and c3["credit_limit"] == 80000
    assert c3["valid_from"] == pd.Timestamp("2019-03-20") and pd.isna(c3["valid_to"])
    # the master's C1 (limit 50000, share 0.1, character 4) equals its current version
    assert t["master_differs_from_current_version"]["credit_limit"] == 0
    assert "credit_limit" not in t["attributes_without_history"]
    assert "region" in t["attributes_without_history"]


def test_expert_score_corpus(tmp_path, make_params):
    report = _ingest(tmp_path, "bad_expert_scores", make_params)
    t = report["tables"]["expert_scores"]
    assert (t["rows_read"], t["rows_accepted"], t["rows_quarantined"]) == (12, 6, 6)
    assert t["reconciled"]
    q = _quarantine(tmp_path, "expert_scores").set_index("_source_row")["_rule"]
    assert q.to_dict() == {
        8: "duplicate_id",
        9: "in_range",
        10: "in_range",
        11: "customer_exists",
        12: "in_range",
        13: "future_date",
    }


def test_platform_corpus(tmp_path, make_params):
    report = _ingest(tmp_path, "bad_platform", make_params)
    t = report["tables"]["platform"]
    assert (t["rows_read"], t["rows_accepted"], t["rows_quarantined"]) == (9, 2, 7)
    assert t["reconciled"]
    q = _quarantine(tmp_path, "platform").set_index("_source_row")["_rule"]
    assert q.to_dict() == {
        4: "duplicate_id",
        5: "in_range",
        6: "refunds_within_transactions",
        7: "required",
        8: "future_date",
        9: "customer_exists",
        10: "in_range",
    }


def test_master_without_history_is_one_version_from_onboarding(tmp_path, make_params):
    report = _ingest(tmp_path, "base", make_params)
    t = report["tables"]["customer_history"]
    assert t["source"] == "absent" and t["rows_read"] == 0 and t["reconciled"]
    assert t["customers_single_version_from_master"] == 3
    assert t["attributes_without_history"] == list(HISTORY_ATTRIBUTES)
    hist = pd.read_parquet(tmp_path / "out" / "interim" / "customer_history.parquet")
    assert (hist["change_reason"] == MASTER_VERSION_REASON).all()
    assert hist["valid_to"].isna().all()
    assert report["tables"]["expert_scores"]["rows_read"] == 0


def test_master_version_starts_at_the_first_invoice_when_it_precedes_onboarding():
    customers = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "onboarding_date": pd.to_datetime(["2024-03-01", "2024-03-01", None]),
            **{c: np.nan for c in HISTORY_ATTRIBUTES},
        }
    )
    first = pd.Series(pd.to_datetime(["2024-01-10", "2024-05-01"]), index=["A", "B"])
    h = history_from_master(customers, first)
    assert h["valid_from"].iloc[0] == pd.Timestamp("2024-01-10")
    assert h["valid_from"].iloc[1] == pd.Timestamp("2024-03-01")
    assert pd.isna(h["valid_from"].iloc[2]) and h["valid_to"].isna().all()


# --------------------------------------------------------------------------- timeline rule (property)
@st.composite
def timelines(draw):
    """A valid timeline of 1–6 contiguous versions (day offsets), and a boundary to break."""
    n = draw(st.integers(2, 6))
    lengths = draw(st.lists(st.integers(1, 400), min_size=n, max_size=n))
    starts = np.cumsum([0, *lengths[:-1]])
    return starts, lengths, draw(st.integers(1, n - 1)), draw(st.integers(-30, 30))


@settings(max_examples=60, deadline=None)
@given(timelines())
def test_contiguous_timelines_pass_and_any_shifted_boundary_fails(case):
    starts, lengths, k, shift = case
    t0 = pd.Timestamp("2020-01-01")
    frm = [t0 + pd.Timedelta(days=int(s)) for s in starts]
    to = [t0 + pd.Timedelta(days=int(s + n)) for s, n in zip(starts, lengths, strict=True)]
    to[-1] = pd.NaT
    h = pd.DataFrame({"customer_id": "A", "valid_from": frm, "valid_to": to})
    assert timeline_failures(h).empty
    broken = h.copy()
    broken.loc[k, "valid_from"] = broken.loc[k, "valid_from"] + pd.Timedelta(days=shift)
    bad = timeline_failures(broken)
    if shift == 0:
        assert bad.empty
        return
    later = broken.loc[k, "valid_from"] > broken.loc[k - 1, "valid_to"]
    assert len(bad) == len(h)  # the whole customer is rejected
    rules = set(bad["_rule"])
    if later:
        assert "version_gap" in rules
    else:
        assert rules & {"version_overlap", "duplicate_id"}


# --------------------------------------------------------------------------- point in time
PARAMS = {
    "windows_months": [3, 6, 12],
    "data_cutoff": "2024-12-31",
    "threads": 2,
    "memory_limit": "1GB",
    "label": {"source": "ledger", "performance_window_months": 12, "bad_days_beyond_terms": 90},
}
AS_OF = pd.Timestamp("2024-03-31")
ATTRIBUTE_FEATURES = [
    "competitor_share",
    "credit_limit",
    "utilisation",
    "net_worth",
    "annual_turnover",
    "net_worth_previous",
    "attributes_valid_from",
    *EXPERT_SCORES,
    "expert_approver",
    "expert_reason",
    "expert_date",
]
FUTURE_LABEL = ["label", "is_bad"]


@pytest.fixture(scope="module")
def book() -> dict[str, pd.DataFrame]:
    t = generate_ledger(160, 24, "2023-01-01", seed=15)
    return {k: t[k] for k in (*BASE_TABLES, "customer_history")}


def _snap(tables, as_of=AS_OF, start=None) -> pd.DataFrame:
    params = features_params(
        {
            **PARAMS,
            "as_of": {
                "start": str((start or as_of).date()),
                "end": str(as_of.date()),
                "freq": "ME",
            },
        }
    )
    return compute_snapshots(tables, params)["snapshots"]


def _truncate_and_alter(
    tables: dict[str, pd.DataFrame], t: pd.Timestamp
) -> dict[str, pd.DataFrame]:
    """Delete every event after t, end every version at t's version, and rewrite every later version and
    the master's attributes with different values."""
    inv = tables["invoices"][tables["invoices"]["invoice_date"] <= t].copy()
    inv.loc[inv["write_off_date"] > t, "write_off_date"] = pd.NaT
    pay = tables["payments"][tables["payments"]["payment_date"] <= t]
    pay = pay[pay["invoice_id"].isna() | pay["invoice_id"].isin(inv["invoice_id"])]
    clm = tables["claims"][tables["claims"]["claim_date"] <= t]
    clm = clm[clm["invoice_id"].isna() | clm["invoice_id"].isin(inv["invoice_id"])]
    h = tables["customer_history"].copy()
    later = h["valid_from"] > t
    h.loc[later, "credit_limit"] = h.loc[later, "credit_limit"] * 7 + 1000
    h.loc[later, "competitor_share"] = 1 - h.loc[later, "competitor_share"].fillna(0.5)
    h.loc[later, "net_worth"] = 1.0
    h.loc[later, "annual_turnover"] = 2.0
    for e in EXPERT_SCORES:
        h.loc[later, e] = 1
    h.loc[later, ["approver", "change_reason"]] = ["someone else", "rewritten"]
    # drop half of the later versions outright (end the previous version open)
    drop = later & (np.arange(len(h)) % 2 == 0)
    h = h[~drop].copy()
    cur = h["valid_from"].le(t) & (h["valid_to"].isna() | h["valid_to"].gt(t))
    nxt = h.groupby("customer_id")["valid_from"].shift(-1)
    h["valid_to"] = np.where(cur, nxt, h["valid_to"])
    h["valid_to"] = pd.to_datetime(h["valid_to"])
    cust = tables["customers"].copy()
    cust["credit_limit"] = 1.0
    cust["competitor_share"] = 0.99
    cust["net_worth"] = 3.0
    for e in EXPERT_SCORES:
        cust[e] = pd.array([5] * len(cust), dtype="Int64")
    return {
        "customers": cust,
        "invoices": inv.reset_index(drop=True),
        "payments": pay.reset_index(drop=True),
        "claims": clm.reset_index(drop=True),
        "customer_history": h.reset_index(drop=True),
    }


def test_truncation_changes_no_feature_at_t(book):
    """Deleting/altering every event and every attribute version after t (and today's master) changes no
    feature at t: the snapshot is built from what was known at t only."""
    base = _snap(book).drop(columns=FUTURE_LABEL)
    cut = _snap(_truncate_and_alter(book, AS_OF)).drop(columns=FUTURE_LABEL)
    assert len(base) > 50
    later = book["customer_history"]["valid_from"] > AS_OF
    assert later.sum() > 20  # the test really rewrites versions after t
    label_inputs = [
        c for c in base.columns if c.startswith(("perf_", "mature", "segment", "true_pd"))
    ]
    pd.testing.assert_frame_equal(
        base.drop(columns=label_inputs), cut.drop(columns=label_inputs), check_exact=True
    )
    for c in ATTRIBUTE_FEATURES:
        assert c in base.columns


def test_truncation_test_detects_a_change_to_the_version_valid_at_t(book):
    """Guard: altering the version in force at t does change the features, so the test above can fail."""
    h = book["customer_history"].copy()
    cur = h["valid_from"].le(AS_OF) & (h["valid_to"].isna() | h["valid_to"].gt(AS_OF))
    h.loc[cur, "credit_limit"] = h.loc[cur, "credit_limit"] + 1000
    a = _snap(book)["credit_limit"]
    b = _snap({**book, "customer_history": h})["credit_limit"]
    assert not a.equals(b)


def test_sql_attributes_match_the_pandas_as_of_reference(book):
    snaps = _snap(book, AS_OF, start=pd.Timestamp("2023-06-30"))
    ref = attributes_as_of(book["customer_history"], snaps[["customer_id", "as_of_date"]])
    for c in ("credit_limit", "competitor_share", "net_worth", "annual_turnover", *EXPERT_SCORES):
        x = snaps[c].astype(float).to_numpy()
        y = ref[c].astype(float).to_numpy()
        assert np.array_equal(x, y, equal_nan=True), c


def test_static_master_leaks_the_later_limit_cut(book):
    """With history, a defaulter's snapshot before its behaviour-trigger review shows the limit it had
    then; today's master shows the later cut (the leak the history fixes)."""
    h = book["customer_history"]
    cuts = h[h["change_reason"].str.startswith("overdue")]
    assert len(cuts)
    pit = _snap(book, pd.Timestamp("2024-12-31"), start=pd.Timestamp("2023-06-30"))
    static = _snap(
        {k: v for k, v in book.items() if k != "customer_history"},
        pd.Timestamp("2024-12-31"),
        start=pd.Timestamp("2023-06-30"),
    )
    checked = 0
    for cid, cut_day in zip(cuts["customer_id"], cuts["valid_from"], strict=True):
        before = pit[(pit["customer_id"] == cid) & (pit["as_of_date"] < cut_day)]
        stat = static.set_index(["customer_id", "as_of_date"]).loc[
            list(zip(before["customer_id"], before["as_of_date"], strict=True)), "credit_limit"
        ]
        assert (before["credit_limit"].to_numpy() > stat.to_numpy()).all()
        checked += len(before)
    assert checked > 10


def test_embedded_history_is_a_valid_timeline():
    root = Path(__file__).resolve().parents[1]
    raw = root / "data" / "raw" / "synthetic" / "customer_history.csv"
    if not raw.exists():
        pytest.skip("embedded synthetic data not found")
    h = pd.read_csv(raw, parse_dates=["valid_from", "valid_to"])
    assert timeline_failures(h).empty
    assert h.groupby("customer_id")["valid_to"].apply(lambda s: s.isna().sum()).eq(1).all()


# --------------------------------------------------------------------------- the per-customer view
def test_open_items_apply_direct_payments_then_unallocated_cash_fifo():
    inv = pd.DataFrame(
        {
            "invoice_id": ["I1", "I2", "I3"],
            "invoice_date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
            "due_date": pd.to_datetime(["2024-01-31", "2024-03-02", "2024-03-31"]),
            "amount": [100.0, 200.0, 300.0],
            "write_off_date": pd.NaT,
        }
    )
    pay = pd.DataFrame(
        {
            "invoice_id": ["I2", None],
            "payment_date": pd.to_datetime(["2024-02-20", "2024-03-10"]),
            "amount": [50.0, 120.0],
        }
    )
    from pipeline.credit_file import open_items

    out = open_items(inv, pay, pd.Timestamp("2024-03-15")).set_index("invoice_id")
    # I2: 200 − 50 direct = 150; pool 120 pays I1 (100) then 20 of I2 -> 130 open; I3 300 open
    assert out["open"].to_dict() == {"I2": 130.0, "I3": 300.0}
    assert out.loc["I2", "days_past_due"] == 13 and out.loc["I3", "days_past_due"] == 0


def test_credit_file_view_from_stage_outputs(tmp_path, make_params):
    from pipeline.config import Paths
    from pipeline.credit_file import credit_file_view

    paths = Paths("demo", root=tmp_path)
    raw = paths.raw
    raw.mkdir(parents=True)
    for folder in ("base", "bad_customer_history"):
        for file in (CORPUS / folder).iterdir():
            shutil.copy(file, raw / file.name)
    params = ingest_params(make_params)
    run_ingest(
        raw, paths.interim, paths.quarantine, tmp_path / "r.json", tmp_path / "m.json", params
    )
    view = credit_file_view("C1", paths)
    assert view["identity"]["name"] == "Acme Trading"
    assert list(view["limit_history"]["credit_limit"]) == [40_000.0, 50_000.0]
    assert view["grade_history"].empty and view["limit_reviews"].empty
    with pytest.raises(KeyError):
        credit_file_view("C404", paths)
