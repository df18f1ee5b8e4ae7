"""Canonical schemas: each rule on a hand-made frame, and the quarantine partition as a
property."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.schemas import (
    COLUMNS,
    MAX_AMOUNT,
    InvoiceLookup,
    RuleContext,
    conform,
    empty_table,
    key_set,
    parse_schema,
    quarantine_reasons,
    rules_schema,
    validate,
    with_invoice_lookup,
)


def _invoices(**cols) -> pd.DataFrame:
    base = {
        "invoice_id": ["I1", "I2", "I3"],
        "customer_id": ["C1", "C1", "C2"],
        "invoice_date": ["2024-01-31", "2024-02-29", "2024-03-31"],
        "due_date": ["2024-03-01", "2024-03-30", "2024-04-30"],
        "amount": ["10", "20", "30"],
        "currency": ["CNY", "CNY", "CNY"],
    }
    base.update(cols)
    return pd.DataFrame(base)


def check(
    df: pd.DataFrame, table: str, ctx: RuleContext | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    parsed, bad_parse = validate(df, parse_schema(table), table)
    parsed = conform(parsed, table)
    ctx = ctx or RuleContext()
    ok, bad_rules = validate(with_invoice_lookup(parsed, ctx), rules_schema(table, ctx), table)
    return parsed.loc[ok.index], pd.concat([bad_parse, bad_rules]).sort_index()


def test_valid_invoices_pass_with_canonical_dtypes() -> None:
    ok, bad = check(_invoices(), "invoices")
    assert bad.empty and len(ok) == 3
    assert list(ok.columns) == list(COLUMNS["invoices"])
    assert ok["amount"].tolist() == [10.0, 20.0, 30.0]
    assert ok["due_date"].iloc[0] == pd.Timestamp("2024-03-01")


def test_each_invoice_rule() -> None:
    df = _invoices(
        amount=["10", "-5", "inf"],
        due_date=["2024-01-01", "2024-03-30", "2024-04-30"],
        invoice_id=["I1", "I1", "I3"],
    )
    _, bad = check(df, "invoices")
    assert bad["_rule"].to_dict() == {
        0: "due_not_before_invoice",
        1: "duplicate_id",
        2: "amount_finite",
    }
    assert bad.loc[0, "_column"] == "due_date"
    assert bad.loc[1, "_reason"] == "duplicate_id(invoice_id=I1); amount_positive(amount=-5.0)"


def test_parse_failures_name_the_value() -> None:
    _, bad = check(
        _invoices(
            invoice_date=["2024-01-31", "31/31/2024", "2024-03-31"], amount=["10", "20", "x"]
        ),
        "invoices",
    )
    assert bad["_rule"].to_dict() == {1: "parses_as_date", 2: "parses_as_number"}
    assert bad.loc[1, "_reason"] == "parses_as_date(invoice_date=31/31/2024)"


def test_cross_table_rules_and_cutoff() -> None:
    invoices = conform(
        _invoices().assign(
            invoice_date=pd.to_datetime(["2024-01-31", "2024-02-29", "2024-03-31"]),
            amount=[10.0, 20.0, 30.0],
        ),
        "invoices",
    ).set_index("invoice_id")
    customers = key_set(["C1", "C2"])
    ctx = RuleContext(
        data_cutoff=pd.Timestamp("2024-06-30"),
        customer_ids=customers,
        invoices=InvoiceLookup.from_frame(invoices, customers),
    )
    pay = pd.DataFrame(
        {
            "payment_id": ["P1", "P2", "P3", "P4", "P5", "P6"],
            "customer_id": ["C1", "C1", "C9", "C2", "C1", "C2"],
            "invoice_id": ["I1", "I9", None, "I1", "I2", None],
            "payment_date": [
                "2024-02-01",
                "2024-02-01",
                "2024-02-01",
                "2024-02-01",
                "2024-02-01",
                "2024-07-01",
            ],
            "amount": ["1", "1", "1", "1", "1", "1"],
        }
    )
    ok, bad = check(pay, "payments", ctx)
    assert ok["payment_id"].tolist() == ["P1"]
    assert bad["_rule"].to_dict() == {
        1: "invoice_exists",
        2: "customer_exists",
        3: "customer_matches_invoice",
        4: "payment_not_before_invoice",
        5: "future_date",
    }


def test_first_rule_by_priority() -> None:
    failures = pd.DataFrame(
        {
            "index": [7, 7, 8],
            "rule": ["future_date", "required", "amount_positive"],
            "column": ["invoice_date", "amount", "amount"],
            "value": ["2030-01-01", "null", "-1"],
        }
    )
    out = quarantine_reasons(failures)
    assert out.loc[7, "_rule"] == "required" and out.loc[7, "_column"] == "amount"
    assert out.loc[7, "_reason"] == "required(amount=null); future_date(invoice_date=2030-01-01)"


def test_customer_ranges() -> None:
    df = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "competitor_share": ["0.2", "1.5", None, "0"],
            "expert_capacity": ["3", "2", "6", None],
            "source_default_flag": ["0", "1", "1", "2"],
        }
    )
    ok, bad = check(df, "customers")
    assert ok["customer_id"].tolist() == ["A"]
    assert bad["_rule"].eq("in_range").all() and bad["_column"].to_dict() == {
        1: "competitor_share",
        2: "expert_capacity",
        3: "source_default_flag",
    }


def test_empty_table_has_canonical_columns() -> None:
    empty = empty_table("payments")
    assert list(empty.columns) == list(COLUMNS["payments"]) and len(empty) == 0
    assert str(empty["payment_date"].dtype) == "datetime64[ns]"


amounts = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.sampled_from(["x", "", "1e3", "-0"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(amounts, min_size=1, max_size=30))
def test_rows_are_accepted_or_quarantined_never_both(values: list) -> None:
    """Property: the accepted and quarantined rows partition the input, and accepted amounts are
    finite > 0."""
    n = len(values)
    df = pd.DataFrame(
        {
            "invoice_id": [f"I{i}" for i in range(n)],
            "customer_id": "C1",
            "invoice_date": "2024-01-01",
            "due_date": "2024-02-01",
            "amount": [None if v is None else str(v) for v in values],
            "currency": "CNY",
        }
    )
    ok, bad = check(df, "invoices")
    assert set(ok.index).isdisjoint(bad.index) and len(ok) + len(bad) == n
    assert np.isfinite(ok["amount"]).all() and (ok["amount"] > 0).all()
    expected_ok = sum(
        1
        for v in values
        if v is not None
        and v != ""
        and v != "x"
        and np.isfinite(float(v))
        and 0 < float(v) <= MAX_AMOUNT
    )
    assert len(ok) == expected_ok
