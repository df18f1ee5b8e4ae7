"""pipeline.onboard: column map, source type, date formats, derived settings and the params.yaml edit."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pipeline import onboard as ob
from pipeline.config import PipelineError, deep_merge, stage_params
from pipeline.sufficiency import propose_material_amount, suggest_oot_start
from tests.fixtures.onboard_ledgers import write_chinese_four_tables, write_english_ar_export

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ map
def test_english_ar_export_headers_map_to_the_ledger_columns():
    headers = [
        "countryCode",
        "customerID",
        "PaperlessDate",
        "invoiceNumber",
        "InvoiceDate",
        "DueDate",
        "InvoiceAmount",
        "Disputed",
        "SettledDate",
        "PaperlessBill",
        "DaysToSettle",
        "DaysLate",
    ]
    m = ob.propose_column_map(headers)
    assert m == {
        "countryCode": "region",
        "customerID": "customer_id",
        "invoiceNumber": "invoice_id",
        "InvoiceDate": "invoice_date",
        "DueDate": "due_date",
        "InvoiceAmount": "amount",
        "SettledDate": "settled_date",
        "DaysLate": "days_late",
    }
    assert ob.classify_table(headers, set(m.values())) == "ledger"


def test_chinese_erp_headers_map_and_classify():
    inv = ["发票号", "客户编号", "开票日期", "约定付款日", "金额", "币种", "核销日期"]
    pay = ["收款单号", "客户编号", "发票号", "收款日期", "金额"]
    cust = ["客户编号", "客户名称", "行业", "地区", "信用额度"]
    claims = ["索赔单号", "发票号", "客户编号", "索赔日期", "金额", "原因"]
    m = ob.propose_column_map(inv)
    assert m["约定付款日"] == "due_date" and m["核销日期"] == "write_off_date"
    assert ob.classify_table(inv, set(m.values())) == "invoices"
    assert ob.classify_table(pay, set(ob.propose_column_map(pay).values())) == "payments"
    assert ob.classify_table(cust, set(ob.propose_column_map(cust).values())) == "customers"
    assert ob.classify_table(claims, set(ob.propose_column_map(claims).values())) == "claims"


def test_canonical_headers_map_to_themselves_and_first_alias_wins():
    m = ob.propose_column_map(["customer_id", "expert_character", "Customer No"])
    assert m == {"customer_id": "customer_id", "expert_character": "expert_character"}


def test_uci_panel_is_recognised():
    headers = ["ID", *(f"X{i}" for i in range(1, 24)), "Y"]
    files = [{"name": "p.csv", "table": ob.classify_table(headers, set()), "column_map": {}}]
    assert ob.choose_source(files) == {
        "source": "uci_credit_card",
        "file": "p.csv",
        "adapter": {"due_days": ob.UCI_DUE_DAYS},
    }


def test_choose_source_canonical_files_and_maps():
    files = [
        {"name": "客户.csv", "table": "customers", "column_map": {"客户编号": "customer_id"}},
        {"name": "invoices.csv", "table": "invoices", "column_map": {"invoice_id": "invoice_id"}},
        {"name": "收款.csv", "table": "payments", "column_map": {"结清日期": "settled_date"}},
    ]
    plan = ob.choose_source(files)
    assert plan["source"] == "canonical"
    assert plan["files"] == {
        "customers": "客户.csv",
        "invoices": "invoices.csv",
        "payments": "收款.csv",
    }
    # a settled date in a payments file is its payment date; identical names need no map
    assert plan["column_map"] == {
        "customers": {"客户编号": "customer_id"},
        "payments": {"结清日期": "payment_date"},
    }


def test_choose_source_refuses_unrecognised_files():
    with pytest.raises(PipelineError, match="cannot tell the source type"):
        ob.choose_source([{"name": "x.csv", "table": None, "column_map": {}}])


def test_header_row_skips_title_lines():
    lines = [
        "Accounts receivable export",
        "run 2014-12-31",
        "customerID,invoiceNumber,DueDate",
        "1,2,3",
    ]
    assert ob.header_row(lines) == 2


# ---------------------------------------------------------------------------------------- dates
def test_date_format_us_and_ambiguity():
    us = pd.Series(["12/31/2013", "01/02/2012", None, ""])
    assert ob.detect_date_format(us) == ("%m/%d/%Y", ["%m/%d/%Y"])
    both = pd.Series(["01/02/2012", "03/04/2012"])
    fmt, candidates = ob.detect_date_format(both)
    assert fmt == "%m/%d/%Y" and candidates == ["%m/%d/%Y", "%d/%m/%Y"]
    assert ob.detect_date_format(pd.Series(["2016/03/15"]))[0] == "%Y/%m/%d"
    assert ob.detect_date_format(pd.Series(["15.03.2016"]))[0] == "%d.%m.%Y"
    assert ob.detect_date_format(pd.Series(["not a date"])) == (None, [])


def test_cutoff_rounds_to_month_end_only_when_the_month_is_complete():
    assert ob.choose_cutoff(pd.Timestamp("2014-12-28"))[0] == pd.Timestamp("2014-12-31")
    assert ob.choose_cutoff(pd.Timestamp("2014-12-15"))[0] == pd.Timestamp("2014-12-15")


# --------------------------------------------------------------------------------------- derive
def test_material_amount_golden_values():
    # 0.5% of the median invoice, rounded to 1-2-5: 19,194.07 -> 95.97 -> 100; 44.72 -> 0.2236 -> 0.2
    assert propose_material_amount(19194.07) == 100.0
    assert propose_material_amount(44.72) == 0.2
    assert propose_material_amount(8086.53) == 50.0  # 40.4 -> 50 (log-nearest of 20, 50)
    assert propose_material_amount(0.0) == 0.0


@given(st.floats(min_value=1e-2, max_value=1e9))
def test_material_amount_is_a_1_2_5_number_near_half_a_percent(median):
    m = propose_material_amount(median)
    ratio = m / (0.005 * median)
    assert math.sqrt(2 / 5) - 1e-9 <= ratio <= math.sqrt(5 / 2) + 1e-9  # log-midpoints of 2..5
    mant = m / 10 ** math.floor(math.log10(m) + 1e-9)
    assert any(abs(mant - x) < 1e-6 for x in (1, 2, 5))


def test_oot_start_is_the_last_third_of_matured_dates():
    dates = list(pd.date_range("2023-06-30", "2024-12-31", freq="ME"))  # 19 month ends
    assert suggest_oot_start(dates) == pd.Timestamp("2024-07-31")  # round(19/3) = 6 months
    assert suggest_oot_start(dates[:2]) == dates[1]
    assert suggest_oot_start(dates[:1]) is None


def test_fifo_settlement_by_hand():
    inv = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "invoice_date": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-01-01"]),
            "due_date": pd.to_datetime(["2020-01-31", "2020-03-01", "2020-01-31"]),
            "amount": [100.0, 50.0, 10.0],
        }
    )
    credits = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "date": pd.to_datetime(["2020-02-10", "2020-02-20", "2020-04-01"]),
            "amount": [60.0, 40.0, 30.0],
        }
    )
    # a's first invoice is covered on 02-20 (60 + 40); the second never (30 of 50); b has no credit
    settled = ob.settle_fifo(inv, credits)
    assert settled.iloc[0] == pd.Timestamp("2020-02-20")
    assert pd.isna(settled.iloc[1]) and pd.isna(settled.iloc[2])


# --------------------------------------------------------------------------------------- render
def test_render_block_reads_back_with_awkward_keys_and_values():
    d = ob.Derived(block={stage: {} for stage in ob.STAGES})
    ob._set(d, "ingest.source", "invoice_ledger", "a comment")
    ob._set(d, "ingest.date_format", "%m/%d/%Y", "dates")
    ob._set(d, "ingest.data_cutoff", "2014-12-31", "cut-off")
    ob._set(
        d,
        "ingest.column_map",
        {
            "ledger": {
                "Invoice #": "invoice_id",
                "yes": "region",
                "a: b": "amount",
                "客户编号": "customer_id",
                "2014": "due_date",
            }
        },
    )
    ob._set(d, "features.windows_months", [3, 6], "windows")
    ob._set(d, "features.label.material_amount", 0.2, "materiality")
    text = "datasets:\n" + ob.render_block("new_ds", d, "header")
    assert yaml.safe_load(text)["datasets"]["new_ds"] == d.block
    assert "# materiality" in text and "# windows" in text


PARAMS = """# top comment
base:
  seed: 1   # keep

datasets:
  first:
    ingest:
      source: canonical   # a comment
    train: {}
  second:
    ingest: {source: canonical}

# about ingest
ingest:
  files: {}
"""


def test_insert_block_appends_and_keeps_every_other_byte():
    block = "  third:\n    ingest: {source: canonical}\n"
    out = ob.insert_block(PARAMS, "third", block)
    assert out == PARAMS.replace(
        "    ingest: {source: canonical}\n\n# about",
        "    ingest: {source: canonical}\n" + block + "\n# about",
    )
    assert list(yaml.safe_load(out)["datasets"]) == ["first", "second", "third"]


def test_insert_block_never_overwrites_without_force():
    block = "  first:\n    ingest: {source: invoice_ledger}\n"
    with pytest.raises(PipelineError, match="already exists; rerun with --force"):
        ob.insert_block(PARAMS, "first", block)
    out = ob.insert_block(PARAMS, "first", block, force=True)
    loaded = yaml.safe_load(out)
    assert loaded["datasets"]["first"] == {"ingest": {"source": "invoice_ledger"}}
    assert loaded["datasets"]["second"] == {"ingest": {"source": "canonical"}}
    assert out.startswith("# top comment\nbase:\n  seed: 1   # keep\n")
    assert out.endswith("# about ingest\ningest:\n  files: {}\n")


# ------------------------------------------------------------------------- embedded datasets
def _effective(block: dict, params: dict) -> dict:
    """The stage settings a dataset runs with: each stage block overlaid with the dataset's."""
    out = {}
    for stage in ob.STAGES:
        merged = deep_merge(params.get(stage, {}), block.get(stage))
        out[stage] = merged
    return out


def test_onboarding_the_embedded_synthetic_ledger_reproduces_its_settings():
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    derived, report = ob.onboard(ROOT / "data/raw/synthetic", params=params)
    today = _effective(params["datasets"]["synthetic"], params)
    new = _effective(derived.block, params)
    assert new["features"]["as_of"] == today["features"]["as_of"]
    assert new["features"]["label"] == today["features"]["label"]
    assert new["features"]["windows_months"] == today["features"]["windows_months"]
    # oot_start is the one documented difference: onboard takes the last third of the as-of dates
    # with a matured outcome (2023-11-30); the embedded block keeps a 12-month out-of-time year
    derived_oot = pd.Timestamp(new["train"]["split"].pop("oot_start"))
    today_oot = pd.Timestamp(today["train"]["split"].pop("oot_start"))
    assert abs((derived_oot - today_oot).days) <= 92
    assert new["train"]["split"] == today["train"]["split"]
    assert new["calibrate"]["n_grades"] == today["calibrate"]["n_grades"]
    assert new["ingest"]["data_cutoff"] == today["ingest"]["data_cutoff"]
    assert new["ingest"]["source"] == "canonical" and derived.block["ingest"]["currency"] == "CNY"
    assert report["ledger"]["customers"] == 1993  # customers with at least one invoice


def test_onboarding_the_embedded_uci_panel_reproduces_its_settings():
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    derived, _ = ob.onboard(ROOT / "data/raw/uci", params=params)
    today = _effective(params["datasets"]["uci"], params)
    new = _effective(derived.block, params)
    for stage, key in (
        ("features", "as_of"),
        ("features", "label"),
        ("features", "windows_months"),
        ("train", "split"),
        ("ingest", "data_cutoff"),
        ("ingest", "file"),
        ("ingest", "source"),
        ("ingest", "adapter"),
    ):
        assert new[stage][key] == today[stage][key], (stage, key)
    assert derived.block["ingest"]["currency"] == "TWD" == today["ingest"]["currency"]


# ---------------------------------------------------------------------------------- the command
@pytest.fixture()
def scratch_params(tmp_path: Path) -> Path:
    target = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", target)
    return target


def test_cli_writes_the_block_then_refuses_then_forces(tmp_path, scratch_params, capsys):
    raw = tmp_path / "raw" / "acme_usd"
    write_english_ar_export(raw, n_customers=80)
    before = scratch_params.read_text(encoding="utf-8")
    assert ob.main([str(raw), "--params", str(scratch_params)]) == 0
    out = capsys.readouterr().out
    assert "NON-DEFAULT PROXY" in out and "check before `dvc repro`" in out
    assert len(out.splitlines()) < 40  # one screen
    after = scratch_params.read_text(encoding="utf-8")
    assert after.startswith(before[: before.index("\ningest:\n")].rstrip("\n"))
    assert after.endswith(before[before.index("\ningest:\n") :])
    params = yaml.safe_load(after)
    block = params["datasets"]["acme_usd"]
    assert block["ingest"]["currency"] == "USD"
    assert block["ingest"]["date_format"] == "%m/%d/%Y"
    assert block["ingest"]["column_map"]["ledger"]["InvoiceAmount"] == "amount"
    assert block["features"]["label"]["bad_days_beyond_terms"] < 90  # no customer reaches 90 days
    assert block["features"]["label"]["material_amount"] < 1  # relative to 5–130 dollar invoices
    assert (
        pd.Timestamp("2012-01-01")
        < pd.Timestamp(block["train"]["split"]["oot_start"])
        < pd.Timestamp(block["ingest"]["data_cutoff"])
    )
    assert "NON-DEFAULT PROXY" in after
    # the datasets registry drives the stages: stage_params sees the new dataset
    assert stage_params("features", "acme_usd", params)["as_of"]["start"].startswith("2012-")

    assert ob.main([str(raw), "--params", str(scratch_params)]) == 2
    assert "already exists; rerun with --force" in capsys.readouterr().err
    assert scratch_params.read_text(encoding="utf-8") == after
    assert ob.main([str(raw), "--params", str(scratch_params), "--force"]) == 0
    assert yaml.safe_load(scratch_params.read_text(encoding="utf-8")) == params


def test_cli_gb18030_four_tables(tmp_path, scratch_params, capsys):
    raw = tmp_path / "huadong"
    write_chinese_four_tables(raw, n_customers=60)
    assert ob.main([str(raw), "--params", str(scratch_params)]) == 0
    assert "gb18030" in capsys.readouterr().out
    block = yaml.safe_load(scratch_params.read_text(encoding="utf-8"))["datasets"]["huadong"]
    assert block["ingest"]["files"]["invoices"] == "发票.csv"
    assert block["ingest"]["column_map"]["invoices"]["约定付款日"] == "due_date"
    assert block["ingest"]["currency"] == "CNY"
    assert "date_format" not in block["ingest"]  # 2016/03/15 is read by the ISO8601 default


def test_cli_errors_are_one_line(tmp_path, scratch_params, capsys):
    assert ob.main([str(tmp_path / "missing"), "--params", str(scratch_params)]) == 2
    assert "not a folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ob.main([str(empty), "--params", str(scratch_params)]) == 2
    assert "no CSV or Parquet files" in capsys.readouterr().err


def test_currency_from_country_codes_or_flagged_when_unknown():
    plan = {"source": "invoice_ledger"}
    prof = {"currencies": {}, "regions": ["US", "USA"]}
    assert ob.derive_currency(prof, None, plan)[0] == "USD"
    assert ob.derive_currency({"currencies": {}, "regions": ["US", "CA"]}, None, plan)[0] is None
    assert ob.derive_currency(prof, "eur", plan)[0] == "EUR"
    assert (
        ob.derive_currency({"currencies": {"USD": 3, "EUR": 1}, "regions": []}, None, plan)[0]
        == "USD"
    )


def test_fx_table_is_declared_and_other_currencies_flagged(tmp_path):
    raw = tmp_path / "mixed"
    path = write_english_ar_export(raw, n_customers=60)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[frame.index[:5], "Currency"] = "EUR"
    frame.to_csv(path, index=False)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    derived, _ = ob.onboard(raw, params=params)
    assert derived.block["ingest"]["currency"] == "USD"
    assert "fx_rates" not in derived.block["ingest"]
    assert any("EUR besides USD: add fx_rates.csv" in c for c in derived.checks)
    (raw / "fx_rates.csv").write_text("date,currency,rate_to_base\n2012-01-01,EUR,1.3\n")
    derived, _ = ob.onboard(raw, params=params)
    assert derived.block["ingest"]["fx_rates"] == "fx_rates.csv"
    assert any("check that fx_rates.csv covers them" in c for c in derived.checks)
