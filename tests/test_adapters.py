"""Adapters: the real UCI credit-card panel and a generic one-row-per-invoice ledger, both into the
canonical
tables, with counts that reconcile against figures computed here from the raw files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipeline.adapters.uci import BILL, PAID, to_canonical
from pipeline.ingest import run_ingest
from pipeline.params.ingest import IngestParams
from tests.fixtures.ingest_params import ingest_params

LEDGER = Path(__file__).resolve().parent / "fixtures" / "ledger_export" / "ar_ledger.csv"
UCI_ROW_1_2 = (
    "ID,X1,X2,X3,X4,X5,X6,X7,X8,X9,X10,X11,X12,X13,X14,X15,X16,X17,X18,X19,X20,X21,X22,X23,Y\n"
    "1,20000,2,2,1,24,2,2,-1,-1,-2,-2,3913,3102,689,0,0,0,0,689,0,0,0,0,1\n"
    "2,120000,2,2,2,26,-1,2,0,0,0,2,2682,1725,2682,3272,3455,3261,0,1000,1000,1000,0,2000,1\n"
)


def run(raw: Path, tmp_path: Path, p: IngestParams) -> dict:
    out = tmp_path / "out"
    return run_ingest(raw, out / "interim", out / "quarantine", out / "r.json", out / "m.json", p)


def test_uci_mapping_by_hand(tmp_path: Path) -> None:
    """The first two UCI rows, mapped by the stated rules and checked against hand-worked dates."""
    (tmp_path / "u.csv").write_text(UCI_ROW_1_2)
    tables, notes = to_canonical(pd.read_csv(tmp_path / "u.csv"), due_days=20, currency="TWD")
    inv = tables["invoices"].set_index("invoice_id")
    assert len(inv) == 12
    assert inv.loc["1-200507", "invoice_date"] == pd.Timestamp("2005-07-31")
    assert inv.loc["1-200507", "due_date"] == pd.Timestamp("2005-08-20")
    assert inv.loc["2-200509", "amount"] == 2682
    pay = tables["payments"].set_index("payment_id")
    # Customer 1, Apr..Sep: status -2,-2,-1,-1,2,2; bills 0,0,0,689,3102,3913; paid 0,0,0,0,689,0.
    # Cash 689 in Aug settles the Jul bill on its due date (Jul 31 + 20 days).
    assert pay.loc["1-200508-P", "invoice_id"] == "1-200507"
    assert pay.loc["1-200508-P", "payment_date"] == pd.Timestamp("2005-08-20")
    # The Aug bill (3102) is 1 month behind in Sep (status 2 >= 5 - 4): no settlement, open at t.
    assert "1-200508-R" not in pay.index and "1-200507-R" not in pay.index
    assert (pay["customer_id"] == "1").sum() == 1
    # Customer 2, Apr..Sep: status 2,0,0,0,2,-1; bills 3261,3455,3272,2682,1725,2682;
    # paid 2000,0,1000,1000,1000,0.
    # Cash: Apr 2000 settles March (outside the panel) -> unallocated, dated Mar 31 + 20.
    assert pd.isna(pay.loc["2-200504-P", "invoice_id"]) and pay.loc["2-200504-P", "amount"] == 2000
    assert pay.loc["2-200504-P", "payment_date"] == pd.Timestamp("2005-04-20")
    assert pay.loc["2-200506-P", "invoice_id"] == "2-200505"
    assert pay.loc["2-200506-P", "payment_date"] == pd.Timestamp("2005-06-20")
    # Rollover: May bill 3455 - 1000 cash in Jun = 2455, current in Jun -> settled on its due date.
    assert pay.loc["2-200505-R", "amount"] == 2455
    assert pay.loc["2-200505-R", "payment_date"] == pd.Timestamp("2005-06-20")
    # Jul bill 2682 - 1000 cash in Aug = 1682; Aug status 2 keeps it in arrears (2 >= 4 - 3), Sep
    # status -1 clears it: 1 month in arrears -> due date Aug 20 + 30 days = Sep 19.
    assert pay.loc["2-200507-R", "amount"] == 1682
    assert pay.loc["2-200507-R", "payment_date"] == pd.Timestamp("2005-09-19")
    # Apr bill 3261, no cash in May, current in May: rolled over on its due date May 20.
    assert pay.loc["2-200504-R", "amount"] == 3261
    assert pay.loc["2-200504-R", "payment_date"] == pd.Timestamp("2005-05-20")
    assert (pay["customer_id"] == "2").sum() == 4 + 5
    assert notes["zero_payments_skipped"] == 7 and notes["rollover_settlements"] == 5
    cust = tables["customers"].set_index("customer_id")
    assert cust.loc["2", "credit_limit"] == 120000 and cust.loc["1", "source_default_flag"] == 1
    assert (
        cust.loc["1", "protected_sex"] == "female"
        and cust.loc["1", "protected_marital_status"] == "married"
    )


def test_uci_real_file_loads_all_customers(uci_csv: Path, tmp_path: Path, make_params) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(uci_csv, raw / uci_csv.name)
    report = run(
        raw,
        tmp_path,
        make_params(IngestParams, "ingest", "uci"),  # the uci dataset's own parameters
    )
    src = pd.read_csv(uci_csv)
    t = report["tables"]
    assert t["customers"]["rows_accepted"] == 30_000 and t["customers"]["rows_quarantined"] == 0
    assert t["invoices"]["rows_read"] == 6 * 30_000
    assert t["invoices"]["reasons"] == {"amount_positive": int((src[BILL] <= 0).to_numpy().sum())}
    assert t["invoices"]["amount_read"] == pytest.approx(float(src[BILL].to_numpy().sum()))
    cash_rows = int((src[PAID] != 0).to_numpy().sum())
    assert (
        t["payments"]["rows_read"] == cash_rows + report["adapter_notes"]["rollover_settlements"]
    )
    payments = pd.read_parquet(tmp_path / "out" / "interim" / "payments.parquet")
    cash = payments[payments["payment_id"].str.endswith("-P")]
    assert cash["amount"].sum() == pytest.approx(float(src[PAID].to_numpy().sum()))
    assert t["payments"]["reasons"] == {}
    assert payments["payment_date"].max() <= pd.Timestamp("2005-09-30")
    for c in t.values():
        assert c["rows_read"] == c["rows_accepted"] + c["rows_quarantined"] and c["reconciled"]
    customers = pd.read_parquet(tmp_path / "out" / "interim" / "customers.parquet")
    assert (
        customers["source_default_flag"].sum() == 6636
    )  # 22.12% defaults, as PROVENANCE.md states
    assert {
        "protected_sex",
        "protected_marital_status",
        "protected_age",
        "protected_education",
    } <= set(customers)
    inv = pd.read_parquet(tmp_path / "out" / "interim" / "invoices.parquet")
    assert (inv["currency"] == "TWD").all() and (inv["due_date"] >= inv["invoice_date"]).all()


LEDGER_MAP = {
    "Doc No": "invoice_id",
    "Account": "customer_id",
    "Customer Name": "name",
    "Doc Date": "invoice_date",
    "Net Due": "due_date",
    "Gross Amount": "amount",
    "Cleared On": "settled_date",
    "Days Late": "days_late",
    "Deduction": "claim_amount",
}


@pytest.mark.parametrize("chunksize", [3, 10_000])
def test_generic_ledger_maps_to_canonical_tables(
    tmp_path: Path, chunksize: int, make_params
) -> None:
    """An ERP ledger in its own shape (one row per invoice, settled date or days late) loads via
    column_map."""
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(LEDGER, raw / LEDGER.name)
    report = run(
        raw,
        tmp_path,
        ingest_params(
            make_params,
            source="invoice_ledger",
            file=LEDGER.name,
            chunksize=chunksize,
            column_map={"ledger": LEDGER_MAP},
            currency="EUR",
        ),
    )
    out = tmp_path / "out"
    t = report["tables"]
    assert t["invoices"]["unknown_columns_dropped"] == ["Sales Office"]
    assert t["invoices"]["reasons"] == {"amount_positive": 1}  # D106, a credit note of -100
    cust = pd.read_parquet(out / "interim" / "customers.parquet").set_index("customer_id")
    assert cust["name"].to_dict() == {
        "A1": "Acme Trading",
        "A2": "Beta Retail",
        "A3": "Gamma Supply",
    }
    pay = pd.read_parquet(out / "interim" / "payments.parquet").set_index("invoice_id")[
        "payment_date"
    ]
    assert pay.to_dict() == {  # settled date, else due date + days late
        "D100": pd.Timestamp("2024-02-04"),
        "D101": pd.Timestamp("2024-03-18"),
        "D102": pd.Timestamp("2024-03-25"),
        "D104": pd.Timestamp("2024-03-08"),
    }
    q = pd.read_parquet(out / "quarantine" / "payments.parquet")
    assert q[["_source_row", "_rule"]].values.tolist() == [
        [7, "parses_as_date"]
    ]  # days late "late"
    claims = pd.read_parquet(out / "interim" / "claims.parquet")
    assert claims[["claim_id", "amount"]].values.tolist() == [["D102-C", 50.0]]
    assert (pd.read_parquet(out / "interim" / "invoices.parquet")["currency"] == "EUR").all()
    for c in t.values():
        assert c["reconciled"]
