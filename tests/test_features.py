"""Features: SQL (DuckDB) against the independent pandas reference, point-in-time safety, golden KPIs."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.pandas_features import pandas_features
from pipeline.features.dictionary import feature_dictionary
from pipeline.features.duckdb_engine import compute_snapshots, last_uses, run_statements
from pipeline.features.sql import build_feature_sql, collection_effectiveness_index, paydex_points
from pipeline.features.sql.common import PAYDEX_SCALE, cei_sql, paydex_sql
from tests.fixtures.feature_params import features_params, settle_params
from tests.fixtures.ledger import make_ledger

OVERRIDE = {
    "windows_months": [3, 6, 12],
    "as_of": {"start": "2023-09-30", "end": "2025-06-30", "freq": "QE"},
    "data_cutoff": "2025-12-31",
    "threads": 2,
    "memory_limit": "1GB",
    "label": {
        "source": "ledger",
        "performance_window_months": 12,
        "bad_days_beyond_terms": 90,
        "good_max_days_beyond_terms": 30,
        "material_amount": 100.0,
        "material_share": 0.01,
    },
}
PARAMS = features_params(OVERRIDE)
KEYS = ["customer_id", "as_of_date"]
LABEL_COLS = ["label", "is_bad"]


@pytest.fixture(scope="module")
def ledger() -> dict[str, pd.DataFrame]:
    return make_ledger(n_customers=30, seed=7)


@pytest.fixture(scope="module")
def sql_snapshots(ledger) -> pd.DataFrame:
    return compute_snapshots(ledger, PARAMS)["snapshots"]


def _compare(sql: pd.DataFrame, ref: pd.DataFrame) -> list[str]:
    """Columns that differ: exact for integer-valued columns (counts, money sums, days), 1e-9 for ratios."""
    bad = []
    for col in ref.columns:
        a, b = sql[col], ref[col]
        if col in ("customer_id", "label", "as_of_date"):
            ok = a.astype(str).to_numpy() == b.astype(str).to_numpy()
        else:
            x, y = a.astype(float).to_numpy(), b.astype(float).to_numpy()
            exact = col.startswith(
                (
                    "invoice_count",
                    "claims_count",
                    "invoiced_amount",
                    "open_balance",
                    "days_beyond_terms_max",
                    "overdue_invoice_count",
                    "worst_days",
                )
            ) or col in (
                "exposure",
                "days_beyond_terms_last_invoice",
                "days_since_last_late_payment",
                "is_bad",
            )
            ok = (
                (x == y) | (np.isnan(x) & np.isnan(y))
                if exact
                else np.isclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True)
            )
        if not np.all(ok):
            bad.append(col)
    return bad


def test_sql_matches_pandas_reference(ledger, sql_snapshots):
    ref = pandas_features(ledger, OVERRIDE)
    assert len(sql_snapshots) == len(ref) > 100
    assert set(ref.columns) <= set(sql_snapshots.columns)
    assert _compare(sql_snapshots, ref) == []
    # the sample exercises the branches that matter
    assert sql_snapshots["label"].nunique() >= 3
    assert (sql_snapshots["claims_count_12m"] > 0).any()
    assert (sql_snapshots["open_balance_90p"] > 0).any()


def test_runs_are_identical(ledger, sql_snapshots):
    again = compute_snapshots(ledger, PARAMS)["snapshots"]
    pd.testing.assert_frame_equal(sql_snapshots, again, check_exact=True)


def test_rule_inputs_present_when_windows_are_short(ledger):
    params = features_params({**OVERRIDE, "windows_months": [3, 6]})
    snaps = compute_snapshots(ledger, params)["snapshots"]
    for col in (
        "net_collection_rate_12m",
        "days_beyond_terms_max_12m",
        "days_beyond_terms_wavg_12m",
        "days_beyond_terms_last_invoice",
        "competitor_share",
    ):
        assert col in snaps.columns
    dictionary = feature_dictionary(params, list(snaps.columns))
    flags = dictionary.set_index("feature")["scoring"]
    assert not flags["net_collection_rate_12m"] and flags["net_collection_rate_6m"]


def test_dictionary_documents_every_column(sql_snapshots):
    dictionary = feature_dictionary(PARAMS, list(sql_snapshots.columns))
    undocumented = (
        set(sql_snapshots.columns) - set(dictionary["feature"]) - set(KEYS) - set(LABEL_COLS)
    )
    assert undocumented == set()
    assert list(dictionary.columns) == [
        "feature",
        "definition",
        "window_months",
        "unit",
        "dtype",
        "scoring",
    ]
    protected = dictionary[dictionary["feature"].str.startswith("protected_")]
    assert len(protected) == 4 and not protected["scoring"].any()
    assert dictionary["feature"].is_unique


# --------------------------------------------------------------------------- leakage
def _features_at(tables: dict[str, pd.DataFrame], as_of: str) -> pd.DataFrame:
    params = features_params({**OVERRIDE, "as_of": {"start": as_of, "end": as_of, "freq": "ME"}})
    snaps = compute_snapshots(tables, params)["snapshots"]
    return snaps.drop(columns=LABEL_COLS)


AS_OF = "2024-06-30"
T = pd.Timestamp(AS_OF)


@st.composite
def future_edits(draw):
    """A list of edits, each touching only events dated after the as-of date."""
    kinds = st.sampled_from(
        [
            "add_invoice",
            "add_payment",
            "drop_payment",
            "move_payment",
            "add_claim",
            "drop_claim",
            "write_off",
            "drop_invoice",
            "unallocate",
        ]
    )
    return draw(
        st.lists(
            st.tuples(
                kinds,
                st.integers(0, 10_000),
                st.integers(1, 400),
                st.floats(1, 20_000).map(lambda x: round(x, 2)),
            ),
            min_size=1,
            max_size=6,
        )
    )


def _apply(tables: dict[str, pd.DataFrame], edits) -> dict[str, pd.DataFrame]:
    inv, pay, clm = tables["invoices"].copy(), tables["payments"].copy(), tables["claims"].copy()
    customers = tables["customers"]["customer_id"].tolist()
    for n, (kind, pick, days, amount) in enumerate(edits):
        later = T + pd.Timedelta(days=days)
        fut_pay = pay.index[pay["payment_date"] > T]
        fut_clm = clm.index[clm["claim_date"] > T]
        fut_inv = inv.index[inv["invoice_date"] > T]
        cust = customers[pick % len(customers)]
        if kind == "add_invoice":
            row = inv.iloc[[0]].assign(
                invoice_id=f"x{n}",
                customer_id=cust,
                invoice_date=later,
                due_date=later + pd.Timedelta(days=30),
                amount=amount,
                write_off_date=pd.NaT,
            )
            inv = pd.concat([inv, row], ignore_index=True)
        elif kind == "add_payment":
            target = inv["invoice_id"].iloc[pick % len(inv)] if pick % 3 else None
            owner = inv["customer_id"].iloc[pick % len(inv)] if target else cust
            pay.loc[len(pay) + 10_000 + n] = [f"y{n}", owner, target, later, amount]
        elif kind == "drop_payment" and len(fut_pay):
            pay = pay.drop(index=fut_pay[pick % len(fut_pay)])
        elif kind == "move_payment" and len(fut_pay):
            pay.loc[fut_pay[pick % len(fut_pay)], ["payment_date", "amount"]] = [later, amount]
        elif kind == "add_claim":
            clm.loc[len(clm) + 10_000 + n] = [f"z{n}", None, cust, later, amount, "late"]
        elif kind == "drop_claim" and len(fut_clm):
            clm = clm.drop(index=fut_clm[pick % len(fut_clm)])
        elif kind == "write_off":
            open_idx = inv.index[inv["write_off_date"].isna()]
            inv.loc[open_idx[pick % len(open_idx)], "write_off_date"] = later
        elif kind == "drop_invoice" and len(fut_inv):
            gone = inv.loc[fut_inv[pick % len(fut_inv)], "invoice_id"]
            inv = inv.drop(index=fut_inv[pick % len(fut_inv)])
            pay, clm = pay[pay["invoice_id"] != gone], clm[clm["invoice_id"] != gone]
        elif kind == "unallocate" and len(fut_pay):
            pay.loc[fut_pay[pick % len(fut_pay)], "invoice_id"] = None
    return {
        **tables,
        "invoices": inv.reset_index(drop=True),
        "payments": pay.reset_index(drop=True),
        "claims": clm.reset_index(drop=True),
    }


@pytest.fixture(scope="module")
def small_ledger() -> dict[str, pd.DataFrame]:
    return make_ledger(n_customers=12, seed=11, unallocated_share=0.4)


@pytest.fixture(scope="module")
def base_features(small_ledger) -> pd.DataFrame:
    return _features_at(small_ledger, AS_OF)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=future_edits())
def test_no_feature_reads_events_after_as_of(small_ledger, base_features, edits):
    edited = _features_at(_apply(small_ledger, edits), AS_OF)
    pd.testing.assert_frame_equal(base_features, edited, check_exact=True)


def test_leakage_test_detects_an_edit_before_as_of(small_ledger, base_features):
    """Guard: the same comparison fails for an edit dated before t, so the leakage test can fail."""
    tables = {**small_ledger, "payments": small_ledger["payments"].copy()}
    before = tables["payments"][tables["payments"]["payment_date"] <= T]
    early = before["payment_date"].idxmax()
    tables["payments"] = tables["payments"].drop(index=early)
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(base_features, _features_at(tables, AS_OF), check_exact=True)


# --------------------------------------------------------------------------- golden KPIs
def test_cei_worked_examples():
    """creditguru / wizedu Jan–Mar example: beginning 6,200, sales 10,890, ending 6,340, ending current 3,590."""
    assert collection_effectiveness_index(6200, 10890, 6340, 3590) == pytest.approx(
        79.63, abs=0.005
    )
    assert collection_effectiveness_index(
        6200, 10890, 6340, 3590, n_months=3, convention="monthly_average"
    ) == pytest.approx(55.93, abs=0.005)
    sql_value = duckdb.sql(f"SELECT {cei_sql('6200', '10890', '6340', '3590')}").fetchall()[0][0]
    assert sql_value == pytest.approx(10750 / 13500 * 100, rel=1e-12)


# DBT -> PAYDEX from docs/methodology.md §1.2: the anchors and the chart's intermediate points
PAYDEX_GOLDEN = [
    (-40, 100),
    (-30, 100),
    (-29, 99),
    (-20, 90),
    (-18, 89),
    (-8, 84),
    (0, 80),
    (15, 70),
    (22, 60),
    (30, 50),
    (33, 49),
    (48, 44),
    (60, 40),
    (90, 30),
    (120, 20),
    (123, 19),
    (177, 1),
    (500, 1),
]


@pytest.mark.parametrize(("dbt", "points"), PAYDEX_GOLDEN)
def test_paydex_points_python_and_sql(dbt, points):
    assert paydex_points(dbt) == pytest.approx(points, abs=1e-12)
    scaled = duckdb.sql(f"SELECT {paydex_sql(str(dbt), 1)}").fetchall()[0][0]
    assert scaled == points * PAYDEX_SCALE


@given(st.integers(-400, 1000), st.integers(-400, 1000))
def test_paydex_monotone_and_bounded(a, b):
    lo, hi = min(a, b), max(a, b)
    assert 1 <= paydex_points(hi) <= paydex_points(lo) <= 100


def test_spark_dialect_renders_without_duckdb_functions():
    statements = build_feature_sql(PARAMS, "spark")
    text = "\n".join(sql for _, sql in statements)
    assert "date_diff(" not in text and "TEMP TABLE" not in text
    assert "datediff(CAST(i.invoice_date AS DATE), DATE '1970-01-01')" in text
    duck = "\n".join(sql for _, sql in build_feature_sql(PARAMS, "duckdb"))
    assert [n for n, _ in statements] == [n for n, _ in build_feature_sql(PARAMS, "duckdb")]
    assert "datediff(CAST" not in duck and "monotonically_increasing_id" not in duck


# --------------------------------------------------------------------------- vintage and roll rates
def test_vintage_kaplan_meier_and_cohort_curve():
    """4 customers on book from day 0: bad in month 1, bad in month 2, two never bad; 3 months observed."""
    from pipeline.features.vintage import vintage_table

    events = pd.DataFrame(
        {
            "customer_id": list("abcd"),
            "first_invoice_day": [0, 0, 0, 0],
            "first_dbt_bad_day": [20, 40, np.nan, np.nan],
            "first_write_off_day": [np.nan] * 4,
        }
    )
    table = vintage_table(events, pd.Timestamp("1970-04-05"), max_months=6)
    overall = table[table["cohort"] == "all"]["cumulative_bad_rate"].tolist()
    assert overall == pytest.approx([0.25, 0.5, 0.5])  # 1/4, then 1 - (3/4)(2/3)
    cohort = table[table["cohort"] == "1970Q1"]
    assert cohort["bad"].tolist() == [1, 2, 2] and cohort["customers"].tolist() == [4, 4, 4]


def test_roll_rates_count_transitions_of_active_customers():
    from pipeline.features.grid import to_day
    from pipeline.features.vintage import roll_rate_table

    months = [pd.Timestamp("2024-01-31"), pd.Timestamp("2024-02-29"), pd.Timestamp("2024-03-31")]
    d = [to_day(m) for m in months]
    buckets = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "eval_day": [d[0], d[1], d[2]],
            "bucket": ["current", "1_30", "current"],
        }
    )
    first = pd.Series([d[0], d[1]], index=["a", "b"])
    table = roll_rate_table(buckets, first, months).set_index(["from_bucket", "to_bucket"])
    assert table.loc[("current", "1_30"), "count"] == 1  # a, Jan -> Feb
    assert table.loc[("1_30", "no_balance"), "count"] == 1  # a, Feb -> Mar (paid)
    assert (
        table.loc[("no_balance", "current"), "count"] == 1
    )  # b, Feb -> Mar (b not active in Jan)
    assert table["count"].sum() == 3
    assert table.loc[("current", "1_30"), "rate"] == 1.0


def test_intermediates_are_dropped_only_after_their_last_reader():
    """A table read through a view stays until the view's last reader has run; kept names are never dropped."""
    statements = [
        ("a", "CREATE OR REPLACE TEMP TABLE a AS SELECT 1 AS x"),
        ("b", "CREATE OR REPLACE TEMP VIEW b AS SELECT x FROM a"),
        ("c", "CREATE OR REPLACE TEMP TABLE c AS SELECT x FROM b"),
        ("d", "CREATE OR REPLACE TEMP TABLE d AS SELECT 2 AS x"),
        ("e", "CREATE OR REPLACE TEMP TABLE e AS SELECT x FROM d"),
        ("final", "SELECT * FROM c JOIN e USING (x)"),
    ]
    assert last_uses(statements) == {2: ["a"], 4: ["d"], 5: ["c", "e"]}
    assert last_uses(statements, keep=("a", "d")) == {5: ["c", "e"]}
    con = duckdb.connect()
    assert con.execute(run_statements(con, statements)).fetchall() == []
    assert {r[0] for r in con.execute("SHOW TABLES").fetchall()} == {"b", "c", "e"}  # b: a view


def test_stored_settlement_gives_the_same_snapshots(ledger, sql_snapshots, tmp_path):
    """The `settle` stage's tables read back (whole ledger and in customer chunks) give the snapshots,
    vintage events and ageing buckets of settling inside the features run."""
    from pipeline.features.chunked import compute_snapshots_chunked
    from pipeline.features.duckdb_engine import compute_settlement
    from pipeline.features.sql import SETTLEMENT_TABLES

    counts = compute_settlement(ledger, settle_params(), tmp_path / "settlement")
    assert counts["settled_invoices"] == len(ledger["invoices"])
    assert counts["settled_payments"] == len(ledger["payments"])
    stored = {n: tmp_path / "settlement" / f"{n}.parquet" for n in SETTLEMENT_TABLES}
    full = compute_snapshots(ledger, PARAMS, with_analysis=True)
    again = compute_snapshots({**ledger, **stored}, PARAMS, with_analysis=True)
    pd.testing.assert_frame_equal(sql_snapshots, again["snapshots"], check_exact=True)
    for key in ("vintage_events", "buckets"):
        pd.testing.assert_frame_equal(full[key], again[key], check_exact=True)
    raw = {}
    for name in ("customers", "invoices", "payments", "claims"):
        raw[name] = tmp_path / f"{name}.parquet"
        ledger[name].to_parquet(raw[name], index=False)
    chunked = compute_snapshots_chunked(
        {**raw, **stored},
        features_params({**OVERRIDE, "customer_chunks": 3}),
        temp_dir=str(tmp_path / "spill"),
    )
    pd.testing.assert_frame_equal(sql_snapshots, chunked["snapshots"], check_exact=True)


def test_stored_settlement_is_byte_stable(ledger, tmp_path):
    """Two settle runs write byte-identical files (ordered rows, invoice keys that follow the invoice id)."""
    from pipeline.features.duckdb_engine import compute_settlement

    compute_settlement(ledger, settle_params(), tmp_path / "a")
    compute_settlement(ledger, settle_params(), tmp_path / "b")
    for path in sorted((tmp_path / "a").glob("*.parquet")):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


def _stage_error_when_the_engine_raises(exc, params, monkeypatch):
    """The `pytest.ExceptionInfo` of the PipelineError the stage's ``compute`` block raises when the
    DuckDB runner raises ``exc``."""
    import pipeline.features.chunked as chunked
    from pipeline.domain import PipelineError
    from pipeline.features.__main__ import compute

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(chunked, "compute_snapshots_chunked", fail)
    with pytest.raises(PipelineError) as err:
        with compute({}, params):
            pass
    return err


def test_full_spill_disk_is_a_one_line_error_naming_the_params_keys(monkeypatch, tmp_path):
    """DuckDB's IOException for a full disk, raised by the feature SQL or in the stage's block that reads
    the spilled files, becomes a PipelineError naming features.temp_directory; other errors pass."""
    import dataclasses

    import pipeline.features.chunked as chunked
    from pipeline.domain import PipelineError
    from pipeline.features.__main__ import compute

    params = dataclasses.replace(PARAMS, temp_directory=str(tmp_path))
    full = duckdb.IOException(
        'IO Error: Could not write file "x/duckdb_temp_1.tmp": No space left on device'
    )
    err = _stage_error_when_the_engine_raises(full, params, monkeypatch)
    message = str(err.value)
    assert (
        "\n" not in message and "features.temp_directory" in message and str(tmp_path) in message
    )
    assert err.value.__cause__ is full

    monkeypatch.setattr(chunked, "compute_snapshots_chunked", lambda *a, **k: {})
    with pytest.raises(PipelineError, match="features.memory_limit"):
        with compute({}, params):
            raise OSError(28, "No space left on device")
    with pytest.raises(ValueError, match="unrelated"):
        with compute({}, params):
            raise ValueError("unrelated")
    assert list(tmp_path.iterdir()) == []


def test_duckdb_out_of_memory_is_a_one_line_error_naming_customer_chunks(monkeypatch):
    oom = duckdb.OutOfMemoryException(
        "Out of Memory Error: could not allocate block of size 256 KiB"
    )
    err = _stage_error_when_the_engine_raises(oom, PARAMS, monkeypatch)
    assert "\n" not in str(err.value) and "features.customer_chunks" in str(err.value)
    assert err.value.__cause__ is oom
