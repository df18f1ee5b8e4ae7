"""Ingest stage on the bad-input corpus: each case is a clear error or quarantined rows with
reasons, and
every table reconciles (rows and amounts read = accepted + quarantined)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.config import PipelineError
from pipeline.credit_file import CREDIT_FILE_TABLES
from pipeline.ingest import run_ingest
from pipeline.params import ParamsError
from pipeline.params.ingest import IngestParams
from tests.fixtures.ingest_params import ingest_params

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parent / "fixtures" / "bad_input"
TABLES = ("customers", "invoices", "payments", "claims")
CHINESE_MAP = {
    "customers": {
        "客户编号": "customer_id",
        "客户名称": "name",
        "行业": "segment",
        "地区": "region",
        "信用额度": "credit_limit",
    },
    "invoices": {
        "发票号": "invoice_id",
        "客户编号": "customer_id",
        "开票日期": "invoice_date",
        "约定付款日": "due_date",
        "金额": "amount",
        "币种": "currency",
    },
    "payments": {
        "收款单号": "payment_id",
        "客户编号": "customer_id",
        "发票号": "invoice_id",
        "收款日期": "payment_date",
        "金额": "amount",
    },
    "claims": {
        "索赔单号": "claim_id",
        "发票号": "invoice_id",
        "客户编号": "customer_id",
        "索赔日期": "claim_date",
        "金额": "amount",
        "原因": "reason",
    },
}


@pytest.fixture
def params(make_params):
    """Ingest parameters from params.yaml with the corpus's cut-off and files, plus ``overrides``."""
    return lambda **overrides: ingest_params(make_params, **overrides)


def raw_case(tmp_path: Path, case: str) -> Path:
    """base/ overlaid with the case's files, in a scratch raw folder."""
    raw = tmp_path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for folder in ("base", case):
        for file in (CORPUS / folder).iterdir():
            shutil.copy(file, raw / file.name)
    return raw


@pytest.fixture
def ingest(params):
    """Run the stage on a corpus case copied under ``where``; ``overrides`` are ingest params."""

    def run(where: Path, case: str, **overrides) -> dict:
        raw = raw_case(where, case)
        out = where / "out"
        return run_ingest(
            raw,
            out / "interim",
            out / "quarantine",
            out / "reports" / "ingest.json",
            out / "metrics" / "ingest.json",
            params(**overrides),
        )

    return run


def read(tmp_path: Path, kind: str, table: str) -> pd.DataFrame:
    return pd.read_parquet(tmp_path / "out" / kind / f"{table}.parquet")


def assert_reconciles(report: dict) -> None:
    for table, c in report["tables"].items():
        assert c["rows_read"] == c["rows_accepted"] + c["rows_quarantined"], table
        assert sum(c["reasons"].values()) == c["rows_quarantined"], table
        if "amount_read" in c:
            assert c["amount_read"] == pytest.approx(
                c["amount_accepted"] + c["amount_quarantined"], abs=1e-6
            )
        assert c["reconciled"], table
    assert report["reconciled"]


QUARANTINE_CASES = {
    "wrong_types": {
        "customers": {3: "parses_as_number", 4: "parses_as_integer", 5: "in_range", 6: "in_range"}
    },
    "bad_amounts": {
        "invoices": {
            3: "parses_as_number",
            4: "amount_positive",
            5: "required",
            6: "amount_finite",
            7: "amount_positive",
            8: "required",
            9: "amount_finite",
            10: "currency_present",
        }
    },
    "duplicate_ids": {"invoices": {4: "duplicate_id", 6: "duplicate_id"}},
    "payment_before_invoice": {"payments": {3: "payment_not_before_invoice"}},
    "payment_unknown_invoice": {
        "payments": {3: "invoice_exists", 4: "customer_exists", 5: "customer_matches_invoice"}
    },
    "future_dates": {"invoices": {8: "future_date"}, "payments": {3: "future_date"}},
    "unparseable_dates": {
        "invoices": {3: "parses_as_date", 4: "parses_as_date", 5: "parses_as_date"}
    },
    "due_before_invoice": {"invoices": {3: "due_not_before_invoice", 4: "customer_exists"}},
}


@pytest.mark.parametrize("case", sorted(QUARANTINE_CASES))
def test_bad_rows_are_quarantined_with_their_rule(tmp_path: Path, ingest, case: str) -> None:
    """Streamed in chunks of 2 rows, so rules also work across chunk boundaries."""
    report = ingest(tmp_path, case, chunksize=2)
    for table, expected in QUARANTINE_CASES[case].items():
        q = read(tmp_path, "quarantine", table)
        assert dict(zip(q["_source_row"], q["_rule"], strict=True)) == expected
        assert (q["_source_file"] == f"{table}.csv").all()
        assert q["_reason"].str.len().gt(0).all() and q["_column"].notna().all()
    assert_reconciles(report)


def test_bad_amounts_reconcile_to_hand_totals(tmp_path: Path, ingest) -> None:
    c = ingest(tmp_path, "bad_amounts")["tables"]["invoices"]
    # finite numbers read: 1000.50, -500.25, 0, 99.50; not finite numbers: 12x, NaN, inf, empty,
    # -inf
    assert c["amount_read"] == pytest.approx(599.75)
    assert c["amount_accepted"] == pytest.approx(1000.50)
    assert c["amount_quarantined"] == pytest.approx(-400.75)
    assert c["amount_not_a_finite_number_rows"] == 5


def test_duplicate_keeps_first_row(tmp_path: Path, ingest) -> None:
    ingest(tmp_path, "duplicate_ids", chunksize=2)
    inv = read(tmp_path, "interim", "invoices").set_index("invoice_id")
    assert inv.index.is_unique and inv.loc["I1", "amount"] == 1000.50


def test_due_date_after_cutoff_is_allowed(tmp_path: Path, ingest) -> None:
    ingest(tmp_path, "future_dates")
    inv = read(tmp_path, "interim", "invoices")
    assert "I6" in set(inv["invoice_id"])  # due 2025-01-14, after the 2024-12-31 cut-off


def test_trailing_delimiter_loads(tmp_path: Path, ingest) -> None:
    """Rows ending in an empty extra field (a common export quirk) lose nothing and load."""
    report = ingest(tmp_path, "trailing_delimiter")
    assert report["tables"]["invoices"]["rows_accepted"] == 2
    assert read(tmp_path, "interim", "invoices")["amount"].tolist() == [1000.50, 2000.00]


def test_unknown_columns_are_dropped_and_reported(tmp_path: Path, ingest) -> None:
    report = ingest(tmp_path, "extra_unknown_columns")
    assert report["tables"]["invoices"]["unknown_columns_dropped"] == ["sales_rep", "remark"]
    inv = read(tmp_path, "interim", "invoices")
    assert "sales_rep" not in inv and len(inv) == 6


@pytest.mark.parametrize(
    "case,pattern",
    [
        (
            "missing_required_column",
            r"invoices\.csv: row 1, column due_date, rule required_column",
        ),
        ("empty_file", r"invoices\.csv: row 1, .*rule not_empty"),
        ("header_only", r"invoices\.csv: row 2, .*rule has_data_rows"),
        ("unreadable_encoding", r"invoices\.csv: .*rule readable_encoding"),
        ("malformed_row", r"invoices\.csv: .*rule field_count: .*line 3"),
    ],
)
def test_unusable_file_raises_clear_error(tmp_path: Path, ingest, case: str, pattern: str) -> None:
    with pytest.raises(PipelineError, match=pattern):
        ingest(tmp_path, case)


def test_two_headers_mapped_to_one_name_is_an_error(tmp_path: Path, ingest) -> None:
    with pytest.raises(
        PipelineError, match=r"invoices\.csv: row 1, column amount, rule unique_header"
    ):
        ingest(tmp_path, "base", column_map={"invoices": {"currency": "amount"}})


def test_utf8_bom_loads_like_plain_utf8(tmp_path: Path, ingest) -> None:
    report = ingest(tmp_path / "bom", "utf8_bom")
    ingest(tmp_path / "plain", "base")
    assert report["tables"]["invoices"]["encoding"] == {"invoices.csv": "utf-8-sig"}
    pd.testing.assert_frame_equal(
        read(tmp_path / "bom", "interim", "invoices"),
        read(tmp_path / "plain", "interim", "invoices"),
    )


def test_gbk_and_chinese_headers_load_through_column_map(tmp_path: Path, ingest) -> None:
    gbk = ingest(tmp_path / "gbk", "gbk", column_map=CHINESE_MAP)
    utf = ingest(tmp_path / "utf", "chinese_headers", column_map=CHINESE_MAP)
    assert gbk["tables"]["customers"]["encoding"] == {"customers.csv": "gb18030"}
    assert utf["tables"]["customers"]["encoding"] == {"customers.csv": "utf-8"}
    for table in TABLES:
        pd.testing.assert_frame_equal(
            read(tmp_path / "gbk", "interim", table), read(tmp_path / "utf", "interim", table)
        )
    customers = read(tmp_path / "gbk", "interim", "customers")
    assert customers["name"].tolist() == ["华东贸易有限公司", "北方零售", "南方供应链"]
    assert read(tmp_path / "gbk", "interim", "claims")["reason"].tolist() == ["货物破损"]
    assert gbk["tables"]["invoices"]["rows_accepted"] == 6
    assert_reconciles(gbk)


def test_canonical_dtypes(tmp_path: Path, ingest) -> None:
    ingest(tmp_path, "base")
    inv = read(tmp_path, "interim", "invoices")
    assert list(inv.columns) == [
        "invoice_id",
        "customer_id",
        "invoice_date",
        "due_date",
        "amount",
        "currency",
        "write_off_date",
    ]
    assert (
        str(inv["invoice_date"].dtype).startswith("datetime64")
        and inv["amount"].dtype == "float64"
    )
    pay = read(tmp_path, "interim", "payments")
    assert pay.loc[pay["payment_id"] == "P5", "invoice_id"].isna().all()  # unallocated cash kept


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("case", ["base", "duplicate_ids", "bad_amounts"])
def test_outputs_byte_identical_across_runs_and_chunk_sizes(
    tmp_path: Path, ingest, case: str
) -> None:
    """Small chunks (the streamed path) give the same bytes as one chunk, and reruns change
    nothing."""
    ingest(tmp_path / "a", case, chunksize=2)
    ingest(tmp_path / "b", case, chunksize=2)
    ingest(tmp_path / "c", case, chunksize=500_000)
    a, b, c = (_digests(tmp_path / x / "out") for x in "abc")
    # interim + quarantine per table, delphi_panels.parquet, report and metrics
    assert a == b == c and len(a) == 2 * (len(TABLES) + len(CREDIT_FILE_TABLES)) + 3


def test_truth_passthrough(tmp_path: Path, params) -> None:
    raw = raw_case(tmp_path, "base")
    (raw / "truth.csv").write_text(
        "customer_id,month_end,true_pd_12m,default_date,payments_stopped_date\n"
        "C1,2024-01-31,0.02,,\nC2,2024-01-31,0.35,2024-09-30,2024-03-02\nC3,2024-01-31,0.05,,\n"
    )
    out = tmp_path / "out"
    report = run_ingest(
        raw, out / "interim", out / "quarantine", out / "r.json", out / "m.json", params()
    )
    truth = pd.read_parquet(out / "interim" / "truth.parquet")
    assert report["truth"]["rows"] == 3 and truth["true_pd_12m"].tolist() == [0.02, 0.35, 0.05]


def test_stage_cli_prints_one_line_error(tmp_path: Path) -> None:
    """A bad file ends the stage with exit code 2 and one message naming the file, not a
    traceback."""
    root = tmp_path / "proj"
    shutil.copytree(raw_case(tmp_path, "missing_required_column"), root / "data" / "raw" / "bad")
    project = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))
    project["datasets"] = {"bad": {"ingest": {"data_cutoff": "2024-12-31", "currency": "CNY"}}}
    (root / "params.yaml").write_text(yaml.safe_dump(project), encoding="utf-8")
    env = {**os.environ, "CREDIT_PIPELINE_ROOT": str(root)}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.ingest", "--dataset", "bad"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "rule required_column" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_large_file_is_streamed(tmp_path: Path, params) -> None:
    """~70 MB of invoices in 100k-row chunks: every row accounted for, peak memory reported."""
    import numpy as np

    n = 1_000_000
    raw = raw_case(tmp_path, "base")
    rng = np.random.default_rng(7)
    days = rng.integers(0, 300, n)
    inv_date = pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D")
    frame = pd.DataFrame(
        {
            "invoice_id": [f"B{i:08d}" for i in range(n)],
            "customer_id": rng.choice(["C1", "C2", "C3"], n),
            "invoice_date": inv_date.strftime("%Y-%m-%d"),
            "due_date": (inv_date + pd.Timedelta(days=30)).strftime("%Y-%m-%d"),
            "amount": rng.uniform(-10, 1000, n).round(2),
            "currency": "CNY",
        }
    )
    frame.to_csv(raw / "invoices.csv", index=False)
    (raw / "payments.csv").write_text(
        "payment_id,customer_id,invoice_id,payment_date,amount\nP1,C1,B00000000,2024-12-01,10\n"
    )
    out = tmp_path / "out"
    report = run_ingest(
        raw,
        out / "interim",
        out / "quarantine",
        out / "r.json",
        out / "m.json",
        params(chunksize=100_000),
    )
    c = report["tables"]["invoices"]
    assert c["rows_read"] == n
    assert c["rows_quarantined"] == int((frame["amount"] <= 0).sum())
    assert c["amount_read"] == pytest.approx(frame["amount"].sum(), rel=1e-12)
    assert_reconciles(report)


def test_parquet_sources_load_like_csv(tmp_path: Path, params, ingest) -> None:
    """The same tables as typed Parquet files (dates as timestamps, amounts as floats) give the
    same output."""
    raw = tmp_path / "pq_raw"
    raw.mkdir()
    dates = {
        "customers": ["onboarding_date"],
        "invoices": ["invoice_date", "due_date"],
        "payments": ["payment_date"],
        "claims": ["claim_date"],
    }
    for table in TABLES:
        frame = pd.read_csv(
            CORPUS / "base" / f"{table}.csv",
            parse_dates=dates[table],
            dtype={"customer_id": str, "invoice_id": str},
        )
        frame.to_parquet(raw / f"{table}.parquet", index=False)
    out = tmp_path / "pq"
    run_ingest(
        raw,
        out / "interim",
        out / "quarantine",
        out / "r.json",
        out / "m.json",
        params(files={**params().files, **{t: f"{t}.parquet" for t in TABLES}}, chunksize=4),
    )
    ingest(tmp_path, "base")
    for table in TABLES:
        pd.testing.assert_frame_equal(
            pd.read_parquet(out / "interim" / f"{table}.parquet"), read(tmp_path, "interim", table)
        )


def test_embedded_synthetic_dataset_loads(tmp_path: Path, make_params) -> None:
    """The committed synthetic ledger (canonical CSVs + truth) loads through the canonical path."""
    raw = PROJECT_ROOT / "data" / "raw" / "synthetic"
    if not (raw / "invoices.csv").exists():
        pytest.skip(f"embedded synthetic data not found in {raw}")
    out = tmp_path / "out"
    report = run_ingest(
        raw,
        out / "interim",
        out / "quarantine",
        out / "r.json",
        out / "m.json",
        make_params(IngestParams, "ingest", "synthetic"),
    )
    assert_reconciles(report)
    customers = report["tables"]["customers"]
    assert customers["rows_accepted"] == customers["rows_read"] > 0
    truth = pd.read_parquet(out / "interim" / "truth.parquet")
    assert report["truth"]["rows"] == len(truth) > customers["rows_read"]
    assert not truth.duplicated(["customer_id", "month_end"]).any()


def test_ingest_params_of_every_dataset_build(make_params) -> None:
    """Every dataset's ingest block builds; each source name has an adapter and vice versa."""
    from pipeline.adapters import ADAPTERS
    from pipeline.config import load_params
    from pipeline.params.ingest import SOURCES, Source

    assert set(SOURCES) == set(ADAPTERS) == set(typing.get_args(Source))
    for ds in load_params()["datasets"]:
        p = make_params(IngestParams, "ingest", ds)
        assert p.currency and p.cutoff == pd.Timestamp(p.data_cutoff)
    uci = make_params(IngestParams, "ingest", "uci")
    assert uci.adapter.due_days == 20 and uci.source == "uci_credit_card"


@pytest.mark.parametrize(
    "overrides, key, rule",
    [
        ({"data_cutoff": "2024-12-31T12:00"}, "ingest.data_cutoff", "date"),
        ({"currency": "cny"}, "ingest.currency", "iso_4217"),
        ({"overpayment_tolerance": 1.0}, "ingest.overpayment_tolerance", "in_range"),
        ({"date_format": "dd.mm.yyyy"}, "ingest.date_format", "date_format"),
        ({"source": "uci_credit_card", "file": "u.csv"}, "ingest.adapter.due_days", "required"),
        ({"payment_allocation": "lifo"}, "ingest.payment_allocation", "one_of"),
        ({"typo": 1}, "ingest.typo", "known_key"),
    ],
)
def test_ingest_params_fail_on_one_line_naming_the_key(make_params, overrides, key, rule) -> None:
    with pytest.raises(ParamsError) as info:
        ingest_params(make_params, **overrides)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"params.yaml: key {key}: rule {rule}: "), message
