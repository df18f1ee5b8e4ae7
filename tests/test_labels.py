"""The bad definition on hand-made one-customer ledgers: thresholds, materiality, write-off, window edges."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from pipeline.config import PipelineError
from pipeline.features.duckdb_engine import compute_snapshots
from pipeline.features.sql import label_sql
from tests.fixtures.feature_params import features_params
from tests.fixtures.ledger import as_canonical

AS_OF = "2024-01-31"  # performance window (2024-01-31, 2025-01-31]
DUE = pd.Timestamp("2024-01-31")
PARAMS = {
    "windows_months": [3, 6, 12],
    "as_of": {"start": AS_OF, "end": AS_OF, "freq": "ME"},
    "data_cutoff": "2025-12-31",
    "label": {
        "source": "ledger",
        "performance_window_months": 12,
        "bad_days_beyond_terms": 90,
        "good_max_days_beyond_terms": 30,
        "material_amount": 100.0,
        "material_share": 0.01,
    },
}
OVERRIDE = PARAMS
PARAMS = features_params(OVERRIDE)


def ledger(
    invoices: list[tuple], payments: list[tuple] = (), flag: int | None = 0
) -> dict[str, pd.DataFrame]:
    """invoices: (id, invoice_date, due_date, amount, write_off_date); payments: (id, invoice_id, date, amount)."""
    inv = pd.DataFrame(
        [(i, "c1", d, due, a, "CNY", wo) for i, d, due, a, wo in invoices],
        columns=[
            "invoice_id",
            "customer_id",
            "invoice_date",
            "due_date",
            "amount",
            "currency",
            "write_off_date",
        ],
    )
    pay = pd.DataFrame(
        [(p, "c1", i, d, a) for p, i, d, a in payments],
        columns=["payment_id", "customer_id", "invoice_id", "payment_date", "amount"],
    )
    cust = pd.DataFrame(
        {
            "customer_id": ["c1"],
            "onboarding_date": [pd.Timestamp("2023-01-01")],
            "competitor_share": [0.1],
            "credit_limit": [5000.0],
            "source_default_flag": pd.array([flag], dtype="Int64"),
            "protected_sex": ["F"],
            "protected_marital_status": ["single"],
            "protected_age": pd.array([40], dtype="Int64"),
            "protected_education": ["university"],
        }
    )
    claims = pd.DataFrame(
        {
            "claim_id": pd.Series(dtype=str),
            "invoice_id": pd.Series(dtype=str),
            "customer_id": pd.Series(dtype=str),
            "claim_date": pd.Series(dtype="datetime64[ns]"),
            "amount": pd.Series(dtype=float),
            "reason": pd.Series(dtype=str),
        }
    )
    return as_canonical({"customers": cust, "invoices": inv, "payments": pay, "claims": claims})


def label_of(tables, **overrides) -> str:
    params = features_params(
        {**OVERRIDE, **overrides, "label": {**OVERRIDE["label"], **overrides.get("label", {})}}
    )
    snaps = compute_snapshots(tables, params)["snapshots"]
    assert len(snaps) == 1
    return snaps["label"].iloc[0]


def one_invoice(days_late: int | None, amount: float = 1000.0, write_off_after: int | None = None):
    pays = [] if days_late is None else [("p1", "i1", DUE + pd.Timedelta(days=days_late), amount)]
    wo = pd.NaT if write_off_after is None else DUE + pd.Timedelta(days=write_off_after)
    return ledger([("i1", "2024-01-01", DUE, amount, wo)], pays)


@pytest.mark.parametrize(
    ("days_late", "expected"),
    [
        (-5, "good"),
        (0, "good"),
        (29, "good"),
        (30, "indeterminate"),
        (89, "indeterminate"),
        (90, "bad"),
        (200, "bad"),
        (None, "bad"),
    ],
)
def test_days_beyond_terms_thresholds(days_late, expected):
    assert label_of(one_invoice(days_late)) == expected


def test_absolute_materiality():
    assert label_of(one_invoice(None, amount=100.0)) == "good"  # not above 100
    assert label_of(one_invoice(None, amount=100.01)) == "bad"


def test_relative_materiality_needs_both_components():
    """150 unpaid is above the absolute floor but below 1% of the 1,000,150 exposure at t: not material."""
    tables = ledger(
        [
            ("i1", "2024-01-01", DUE, 150.0, pd.NaT),
            ("i2", "2024-01-20", "2024-02-20", 1_000_000.0, pd.NaT),
        ],
        [("p2", "i2", "2024-02-20", 1_000_000.0)],
    )
    assert label_of(tables) == "good"
    tables = ledger(
        [
            ("i1", "2024-01-01", DUE, 150.0, pd.NaT),
            ("i2", "2024-01-20", "2024-02-20", 10_000.0, pd.NaT),
        ],
        [("p2", "i2", "2024-02-20", 10_000.0)],
    )
    assert label_of(tables) == "bad"


def test_write_off_in_window_is_bad_even_without_lateness():
    assert label_of(one_invoice(None, amount=50.0, write_off_after=10)) == "bad"


def test_window_edges():
    # 30 DBT reached only after the window closes: due 2025-01-14, unpaid, 17 DBT at the window end
    late_issue = ledger(
        [
            ("i0", "2023-12-01", "2023-12-31", 500.0, pd.NaT),
            ("i1", "2024-12-15", "2025-01-14", 900.0, pd.NaT),
        ],
        [("p0", "i0", "2023-12-31", 500.0)],
    )
    assert label_of(late_issue) == "good"
    # already 90+ before t and still unpaid: in default at t, not part of the scoring population
    old = ledger([("i1", "2023-05-01", "2023-06-30", 1000.0, pd.NaT)])
    assert label_of(old) == "in_default"
    # a 120-day late payment made before t is history, not outcome
    history = ledger(
        [("i1", "2023-05-01", "2023-06-30", 1000.0, pd.NaT)], [("p1", "i1", "2023-10-28", 1000.0)]
    )
    assert label_of(history) == "good"


def test_open_invoice_at_bad_threshold_at_t_is_in_default():
    """Due 2023-11-02, unpaid: 90 DBT at t = 2024-01-31 (in default); due a day later: 89 DBT (not yet)."""
    at_90 = ledger([("i1", "2023-10-01", "2023-11-02", 1000.0, pd.NaT)])
    assert label_of(at_90) == "in_default"
    at_89 = ledger([("i1", "2023-10-01", "2023-11-03", 1000.0, pd.NaT)])
    assert label_of(at_89) == "bad"  # reaches 90 DBT inside the window
    # paid before t: history, not default
    paid = ledger(
        [("i1", "2023-10-01", "2023-11-02", 1000.0, pd.NaT)], [("p1", "i1", "2024-01-30", 1000.0)]
    )
    assert label_of(paid) == "good"


def test_in_default_uses_the_bad_materiality():
    """100 open at 90+ DBT is not above the 100 floor; 150 is, but is below 1% of a 20,150 exposure."""
    small = ledger([("i1", "2023-10-01", "2023-11-02", 100.0, pd.NaT)])
    assert label_of(small) != "in_default"
    big_exposure = ledger(
        [
            ("i1", "2023-10-01", "2023-11-02", 150.0, pd.NaT),
            ("i2", "2024-01-20", "2024-02-20", 20_000.0, pd.NaT),
        ],
        [("p2", "i2", "2024-02-20", 20_000.0)],
    )
    assert label_of(big_exposure) != "in_default"  # 150 <= 0.01 * 20,150
    material = ledger(
        [
            ("i1", "2023-10-01", "2023-11-02", 250.0, pd.NaT),
            ("i2", "2024-01-20", "2024-02-20", 20_000.0, pd.NaT),
        ],
        [("p2", "i2", "2024-02-20", 20_000.0)],
    )
    assert label_of(material) == "in_default"  # 250 > 100 and > 0.01 * 20,250


def test_write_off_on_or_before_t_is_in_default():
    """Any write-off dated on or before t, however small and whatever follows; one a day after t is bad."""
    before = ledger(
        [
            ("i0", "2023-01-10", "2023-02-10", 20.0, pd.Timestamp("2023-03-01")),
            ("i1", "2024-01-01", DUE, 1000.0, pd.NaT),
        ],
        [("p1", "i1", DUE, 1000.0)],
    )
    assert label_of(before) == "in_default"
    on_t = one_invoice(None, amount=50.0, write_off_after=0)  # written off on t itself
    assert label_of(on_t) == "in_default"
    assert label_of(one_invoice(None, amount=50.0, write_off_after=1)) == "bad"
    snaps = compute_snapshots(before, PARAMS)["snapshots"]
    assert snaps["written_off_amount_to_date"].iloc[0] == 20.0
    assert snaps["is_bad"].isna().all()


def test_in_default_takes_precedence_over_immature():
    old = ledger([("i1", "2023-05-01", "2023-06-30", 1000.0, pd.NaT)])
    assert label_of(old, data_cutoff="2024-06-30") == "in_default"
    assert label_of(one_invoice(None), data_cutoff="2024-06-30") == "immature"


def test_immature_when_window_runs_past_cutoff():
    assert label_of(one_invoice(None), data_cutoff="2025-01-30") == "immature"
    assert label_of(one_invoice(None), data_cutoff="2025-01-31") == "bad"


def test_customer_flag_source():
    for flag, expected in ((1, "bad"), (0, "good"), (None, "indeterminate")):
        tables = ledger(
            [("i1", "2024-01-01", DUE, 1000.0, pd.NaT)], [("p1", "i1", DUE, 1000.0)], flag=flag
        )
        assert label_of(tables, label={"source": "customer_flag"}) == expected


def test_label_precedence_and_unknown_source_is_rejected():
    """in_default beats immature beats bad beats indeterminate beats good (the SQL label expression)."""
    frame = pd.DataFrame(
        {
            "mature": [True, True, True, False, True, False],
            "default_at_asof": [0, 0, 0, 0, 1, 1],
            "perf_bad_dbt": [1, 0, 0, 1, 1, 0],
            "perf_written_off": [0, 0, 0, 0, 0, 0],
            "perf_over_good": [1, 1, 0, 1, 1, 0],
        }
    )
    con = duckdb.connect()
    con.register("frame", frame)
    out = con.execute(f"SELECT {label_sql('ledger')} AS label FROM frame").df()
    assert out["label"].tolist() == [
        "bad",
        "indeterminate",
        "good",
        "immature",
        "in_default",
        "in_default",
    ]
    tables = ledger([("i1", "2024-01-01", DUE, 1000.0, pd.NaT)], [("p1", "i1", DUE, 1000.0)])
    with pytest.raises(PipelineError, match="bureau"):
        compute_snapshots(tables, features_params({"label": {"source": "bureau"}}))


def test_is_bad_follows_the_label():
    good = ledger([("i1", "2024-01-01", DUE, 1000.0, pd.NaT)], [("p1", "i1", DUE, 1000.0)])
    snaps = compute_snapshots(good, PARAMS)["snapshots"]
    assert snaps["label"].iloc[0] == "good" and snaps["is_bad"].iloc[0] == 0
    assert str(snaps["is_bad"].dtype) == "Int8"
    bad = one_invoice(None, amount=50.0, write_off_after=1)
    assert compute_snapshots(bad, PARAMS)["snapshots"]["is_bad"].iloc[0] == 1


# ---- observation segments: current / delinquent / excluded (in default) ------------------------------------
def snapshot_of(tables, **overrides) -> pd.Series:
    params = features_params(
        {**OVERRIDE, **overrides, "label": {**OVERRIDE["label"], **overrides.get("label", {})}}
    )
    snaps = compute_snapshots(tables, params)["snapshots"]
    assert len(snaps) == 1
    return snaps.iloc[0]


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        ("2024-01-31", "current"),  # due on t: not past due
        ("2024-01-01", "current"),  # 30 days past due
        ("2023-12-31", "delinquent"),  # 31 days past due: the threshold
        ("2023-11-03", "delinquent"),  # 89 days: still not in default
        ("2023-11-02", None),  # 90 days: in default, outside the observation population
    ],
)
def test_segment_by_days_past_due_at_t(due, expected):
    """Open 1,000 invoice aged at t = 2024-01-31 against the default threshold of 31 days."""
    row = snapshot_of(ledger([("i1", "2023-10-01", due, 1000.0, pd.NaT)]))
    assert (row["segment"] if pd.notna(row["segment"]) else None) == expected
    assert (row["label"] == "in_default") == (expected is None)


def test_segment_threshold_is_a_param_and_uses_the_materiality():
    tables = ledger([("i1", "2023-10-01", "2024-01-01", 1000.0, pd.NaT)])  # 30 days past due
    assert snapshot_of(tables)["segment"] == "current"
    assert (
        snapshot_of(tables, segments={"delinquent_days_beyond_terms": 30})["segment"]
        == "delinquent"
    )
    small = ledger(
        [
            ("i1", "2023-10-01", "2023-12-01", 90.0, pd.NaT),  # 61 days past due, below 100
            ("i2", "2024-01-20", "2024-02-20", 5_000.0, pd.NaT),
        ]
    )
    assert snapshot_of(small)["segment"] == "current"


@pytest.mark.parametrize("bad_value", [0, 90, 120, 31.5, "31", True])
def test_segment_threshold_is_validated(bad_value):
    from pipeline.params import ParamsError

    with pytest.raises(ParamsError, match="features.segments.delinquent_days_beyond_terms"):
        features_params({**OVERRIDE, "segments": {"delinquent_days_beyond_terms": bad_value}})
    assert PARAMS.segments.delinquent_days_beyond_terms == 31


def test_paid_history_leaves_the_customer_current():
    """A late invoice already paid by t is history (a feature), not a delinquency at t."""
    paid = ledger(
        [("i1", "2023-10-01", "2023-11-03", 1000.0, pd.NaT)], [("p1", "i1", "2024-01-30", 1000.0)]
    )
    assert snapshot_of(paid)["segment"] == "current"


def test_truth_is_joined_at_the_as_of_date():
    """true_pd is the truth row of the as-of month end; NaN when the truth has no row for that date."""
    tables = one_invoice(0)
    truth = pd.DataFrame(
        {
            "customer_id": ["c1", "c1"],
            "month_end": pd.to_datetime(["2023-12-31", "2024-01-31"]),
            "true_pd_12m": [0.2, 0.05],
            "default_date": pd.to_datetime([pd.NaT, pd.NaT]),
            "payments_stopped_date": pd.to_datetime([pd.NaT, pd.NaT]),
        }
    )
    row = compute_snapshots({**tables, "truth": truth}, PARAMS)["snapshots"].iloc[0]
    assert row["true_pd"] == 0.05
    other = truth.assign(month_end=pd.to_datetime(["2023-11-30", "2023-12-31"]))
    row = compute_snapshots({**tables, "truth": other}, PARAMS)["snapshots"].iloc[0]
    assert pd.isna(row["true_pd"])


def test_lateness_measure_never_lets_early_payment_offset_late():
    """The issue's example: equal invoices 15 days late, 16 days early, on time: signed amount-weighted
    mean −1/3 day (grade A), amount-weighted lateness (15 + 0 + 0) / 3 = 5 days (grade C)."""
    t = pd.Timestamp(AS_OF)
    due = [t - pd.Timedelta(days=d) for d in (100, 70, 40)]
    inv = [(f"i{k}", d - pd.Timedelta(days=30), d, 1000.0, pd.NaT) for k, d in enumerate(due)]
    pays = [
        ("p0", "i0", due[0] + pd.Timedelta(days=15), 1000.0),
        ("p1", "i1", due[1] - pd.Timedelta(days=16), 1000.0),
        ("p2", "i2", due[2], 1000.0),
    ]
    row = snapshot_of(ledger(inv, pays))
    assert row["days_beyond_terms_wavg_12m"] == pytest.approx(-1 / 3)
    assert row["days_late_wavg_12m"] == pytest.approx(5.0)
    weighted = ledger(
        [
            (k, d - pd.Timedelta(days=30), d, a, pd.NaT)
            for k, d, a in (("a", due[0], 3000.0), ("b", due[1], 1000.0))
        ],
        [
            ("p0", "a", due[0] + pd.Timedelta(days=8), 3000.0),
            ("p1", "b", due[1] - pd.Timedelta(days=5), 1000.0),
        ],
    )
    assert snapshot_of(weighted)["days_late_wavg_12m"] == pytest.approx(8 * 3000 / 4000)
