"""Limit review proposals with approval authority, and customer value / the value–loyalty grid.

Golden values are hand calculations written out in the tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import customer_value as cv
from pipeline import limit_review as lr
from pipeline.config import PipelineError
from pipeline.credit_cycle import CycleInputs, credit_cycle
from pipeline.params import ParamsError
from pipeline.params.publish import PublishParams

T = pd.Timestamp("2025-06-30")


@pytest.fixture(scope="module")
def publish(make_params) -> PublishParams:
    return make_params(PublishParams, "publish")


@pytest.fixture(scope="module")
def review(publish):
    return publish.limit_review


@pytest.fixture(scope="module")
def triggers(publish):
    return publish.triggers


# --------------------------------------------------------------------------- approval authority
def test_role_levels_by_exposure_change_and_grade(review):
    roles = review.roles
    lvl = lr.role_level(
        ["A", "C", "A", "B", "D"],
        np.array([30_000, 300_000, 10_000, 60_000, 40_000]),
        np.array([0.05, 0.60, 1.0, 0.20, 0.0]),
        ["raise", "raise", "suspend", "cut", "keep"],
        review,
    )
    # A raise: band 0 -> 0; C raise: band 2 (2) + change >= 50% (1) + grade C (1) = 4 -> capped 3;
    # A suspension: band 0, floor credit_manager (1); B cut: band 1 (1), no escalation for a reduction;
    # D keep: 0 + 0 + 1 = 1
    assert [roles[i] for i in lvl] == [
        "credit_analyst",
        "credit_committee",
        "credit_manager",
        "credit_manager",
        "credit_manager",
    ]
    cut_c = lr.role_level(["C"], np.array([300_000]), np.array([0.6]), ["cut"], review)[0]
    assert roles[cut_c] == "head_of_credit"  # band 2 only


def test_authority_table_covers_grade_exposure_and_change(review):
    table = lr.approval_authority_table(review, ["A", "B", "C", "D"])
    assert len(table) == 4 * len(review.exposure_bands) * len(review.change_bands)
    a_small = table[(table["letter_grade"] == "A") & (table["exposure_min"] == 0)]
    assert list(a_small["role"]) == ["credit_analyst", "credit_analyst", "credit_manager"]
    # seniority never falls as exposure rises
    for _, g in table.groupby(["letter_grade", "change_min"]):
        levels = g.sort_values("exposure_min")["role"].map(review.roles.index)
        assert levels.is_monotonic_increasing


def test_bad_authority_params_name_the_key(make_params):
    with pytest.raises(ParamsError, match="key publish.limit_review.exposure_level: rule same_le"):
        make_params(
            PublishParams, "publish", "synthetic", {"limit_review": {"exposure_level": [0]}}
        )
    with pytest.raises(ParamsError, match="key publish.limit_review.roles: rule non_empty"):
        make_params(PublishParams, "publish", "synthetic", {"limit_review": {"roles": []}})


# --------------------------------------------------------------------------- proposals
def _review_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    n = 8
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(1, n + 1)],
            "as_of_date": T,
            "label": ["good", "good", "good", "in_default", "good", "good", "good", "in_default"],
            "credit_limit": [
                10_000.0,
                10_000.0,
                10_000.0,
                8_000.0,
                50_000.0,
                50_000.0,
                19_000.0,
                0.0,
            ],
            "attributes_valid_from": pd.to_datetime(
                [
                    "2024-05-31",
                    "2025-05-31",
                    "2025-05-31",
                    "2025-05-31",
                    "2024-05-31",
                    "2025-05-31",
                    "2024-05-31",
                    "2025-05-31",
                ]
            ),
            "exposure": 1_000.0,
            "largest_invoice_share_3m": [0.1, 0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
            "days_beyond_terms_max_3m": [0, 20, 0, 0, 0, 0, 0, 0],
            "late_invoice_share_12m": [0.1, 0.1, 0.0, 0.1, 0.1, 0.1, 0.1, 0.1],
            "invoiced_amount_3m": [
                3_000.0,
                3_000.0,
                4_000.0,
                3_000.0,
                3_000.0,
                3_000.0,
                3_000.0,
                3_000.0,
            ],
            "invoiced_amount_12m": 10_000.0,
            "tenure_months": 24.0,
        }
    )
    scored = pd.DataFrame(
        {
            "grade": ["A2", "B1", "A1", "D1", "B2", "A2", "A2", "D1"],
            "letter_grade": ["A", "B", "A", "D", "B", "A", "A", "D"],
            "pd": [0.01, 0.03, 0.005, 0.4, 0.04, 0.01, 0.01, 0.4],
            "limit": [20_000.0] * n,
            "review_months": pd.array([12, 12, 12, 3, 12, 12, 12, 3], dtype="Int64"),
        }
    )
    return frame, scored


def test_proposals_keep_cut_raise_suspend_and_policy_cap(triggers, review):
    frame, scored = _review_case()
    out = lr.propose(scored, frame, triggers, review).set_index("customer_id")
    # C6: above the policy limit but reviewed a month ago, no trigger -> not due until its review;
    # C8: in default with its limit already at 0 -> nothing to do
    assert list(out.index) == ["C1", "C2", "C3", "C4", "C5", "C7"]
    # scheduled review (13 months >= 12): re-set to the policy limit 20,000 (+100%: A, band 0, +1 step)
    assert out.loc["C1", ["action", "proposed_limit", "due"]].tolist() == [
        "raise",
        20_000.0,
        "scheduled review",
    ]
    assert out.loc["C1", "approver_role"] == "credit_manager"
    # cut: 10,000 x (1 - 0.5) = 5,000
    assert out.loc["C2", ["action", "proposed_limit", "due"]].tolist() == [
        "cut",
        5_000.0,
        "trigger",
    ]
    # raise: growth 4,000 x 4 / 10,000 - 1 = 60% >= 20%, no late invoices -> 10,000 x 1.25
    assert out.loc["C3", ["action", "proposed_limit"]].tolist() == ["raise", 12_500.0]
    assert out.loc["C3", "approver_role"] == "credit_analyst"  # 25% change, 12,500, grade A
    assert out.loc["C4", ["action", "proposed_limit", "trigger"]].tolist() == [
        "suspend",
        0.0,
        "in default at the review date",
    ]
    assert out.loc["C4", "approver_role"] == "credit_manager"  # suspension floor
    # scheduled, 50,000 on file > policy 20,000 -> cut to it; a reduction: exposure 50,000 (band 1)
    assert out.loc["C5", ["action", "proposed_limit"]].tolist() == ["cut", 20_000.0]
    assert out.loc["C5", "approver_role"] == "credit_manager"
    # scheduled, 19,000 within 10% of 20,000 -> keep
    assert out.loc["C7", ["action", "proposed_limit"]].tolist() == ["keep", 19_000.0]


def test_raise_capped_by_policy_becomes_keep(triggers, review):
    frame, scored = _review_case()
    scored["limit"] = 9_000.0
    out = lr.propose(scored, frame, triggers, review).set_index("customer_id")
    # C3's growth trigger would raise it, but the policy limit (9,000) is below its 10,000
    assert out.loc["C3", ["action", "proposed_limit"]].tolist() == ["keep", 10_000.0]
    assert "allows no raise" in out.loc["C3", "trigger"]


def test_overrides_are_recorded_with_approver_reason_and_authority(triggers, review):
    frame, scored = _review_case()
    props = lr.propose(scored, frame, triggers, review)
    ovr = pd.DataFrame(
        {
            "review_date": ["2025-06-30", "2025-06-30"],
            "customer_id": ["C2", "C3"],
            "action": ["keep", "raise"],
            "limit": ["10000", "300000"],
            "approver": ["Li Wei", "Chen Jie"],
            "role": ["credit_manager", "credit_manager"],
            "reason": ["late order was a disputed delivery", "new contract signed"],
        }
    )
    out = lr.apply_overrides(props, ovr, review).set_index("customer_id")
    assert out.loc["C2", ["final_action", "final_limit"]].tolist() == ["keep", 10_000.0]
    assert bool(out.loc["C2", "override_within_authority"])
    # 300,000 (band 2: head_of_credit) with a 2,900% change (+1) -> credit_committee needed
    assert not bool(out.loc["C3", "override_within_authority"])
    assert out.loc["C1", "decided_by"].startswith("proposal")
    assert out["override_reason"].notna().sum() == 2
    stray = lr.apply_overrides(props, ovr.assign(customer_id=["C6", "C3"]), review)
    assert stray.attrs["overrides_unmatched"] == ["row 2: C6 on 2025-06-30"]
    assert stray.set_index("customer_id").loc["C2", "final_action"] == "cut"  # not applied
    with pytest.raises(PipelineError, match="row 2, column action, rule in_range"):
        lr.apply_overrides(props, ovr.assign(action=["freeze", "raise"]), review, "overrides.csv")
    with pytest.raises(PipelineError, match="row 3, column reason, rule required"):
        lr.apply_overrides(props, ovr.assign(reason=["ok", None]), review, "overrides.csv")


# --------------------------------------------------------------------------- customer value
# the inputs of the hand calculation below, stated here so a params.yaml edit cannot move them
HAND_VALUE = {
    "gross_margin_rate": 0.18,
    "cost_of_capital": 0.08,
    "collection_cost_rate": 0.003,
    "collection_cost_per_late_invoice": 50.0,
    "lgd": 0.45,
    "horizon_years": 3,
    "discount_rate": 0.10,
    "full_tenure_months": 36,
    "loyalty_high": 0.7,
    "loyalty_medium": 0.45,
}


def test_customer_value_hand_calculation(make_params):
    p = make_params(
        PublishParams, "publish", "synthetic", {"customer_value": HAND_VALUE}
    ).customer_value
    frame = pd.DataFrame(
        {
            "sales_12m": [120_000.0],
            "active_months_12m": [9],
            "terms_days": [30.0],
            "late_invoices_12m": [2.0],
            "days_beyond_terms": [6.5],
            "pd": [0.02],
            "retention": [0.8],
            "tenure_months": [18.0],
            "competitor_share": [0.1],
        },
        index=pd.Index(["C1"], name="customer_id"),
    )
    v = cv.customer_value(frame, p).iloc[0]
    # receivable = 120,000 x 36.5 / 365 = 12,000
    assert v["average_receivable"] == pytest.approx(12_000.0)
    # 21,600 - 960 - (360 + 100) - 0.02 x 0.45 x 12,000 = 20,072
    assert v["annual_value"] == pytest.approx(20_072.0)
    # 1/1.1 + 0.8/1.21 + 0.64/1.331 = 2.0510894...
    assert v["lifetime_factor"] == pytest.approx(1 / 1.1 + 0.8 / 1.21 + 0.64 / 1.331)
    assert v["lifetime_value"] == pytest.approx(20_072.0 * 2.05108940646, rel=1e-9)
    # loyalty = (18/36 + 9/12 + 0.9) / 3 = 0.71667 -> high
    assert v["loyalty_score"] == pytest.approx((0.5 + 0.75 + 0.9) / 3)
    assert v["loyalty_level"] == "high"


def test_retention_from_the_ledger():
    inv = pd.DataFrame(
        {
            "customer_id": ["A", "A", "B", "C", "D", "D"],
            "invoice_date": pd.to_datetime(
                [
                    "2024-03-01",
                    "2025-02-01",
                    "2024-05-01",
                    "2025-05-01",
                    "2024-01-15",
                    "2024-02-15",
                ]
            ),
            "due_date": pd.to_datetime(
                [
                    "2024-04-01",
                    "2025-03-03",
                    "2024-06-01",
                    "2025-06-01",
                    "2024-02-15",
                    "2024-03-15",
                ]
            ),
            "amount": [100.0, 200.0, 50.0, 80.0, 10.0, 10.0],
        }
    )
    act = cv.ledger_activity(inv, T)
    as_category = cv.ledger_activity(inv.astype({"customer_id": "category"}), T)
    pd.testing.assert_frame_equal(as_category, act)  # a ledger read with dictionary ids
    # prior year (2023-06-30, 2024-06-30]: A, B, D; of them only A bought again -> 1/3
    assert act.loc["A", "sales_12m"] == 200.0 and act.loc["B", "sales_12m"] == 0.0
    assert set(act.index[act["bought_prior_year"]]) == {"A", "B", "D"}
    seg = pd.Series("retail", index=["A", "B", "C", "D"])
    r = cv.retention_rates(act, seg, min_customers=30)
    assert r.loc["C"] == pytest.approx(1 / 3)


def test_grid_has_six_cells_and_strategy_per_tier_and_grade(publish):
    value = publish.customer_value
    rng = np.random.default_rng(0)
    n = 60
    values = pd.DataFrame(
        {
            "lifetime_value": rng.normal(10_000, 8_000, n),
            "annual_value": rng.normal(5_000, 4_000, n),
            "loyalty_level": np.array(["high", "medium", "low"])[np.arange(n) % 3],
        },
        index=[f"C{i}" for i in range(n)],
    )
    letters = pd.Series(np.array(["A", "B", "C", "D"])[np.arange(n) % 4], index=values.index)
    grid = cv.value_grid(values, letters, value)
    cells = cv.grid_counts(grid, value)
    assert len(cells) == 6 and cells["customers"].sum() == n
    assert (grid["value_level"] == "high").sum() == n // 2
    assert set(grid["credit_strategy"]) <= set(cv.STRATEGIES)
    neg = grid[grid["lifetime_value"] <= 0]
    assert (neg["value_tier"] == "low").all()
    top_d = grid[(grid["value_tier"] == "high") & (grid["letter_grade"] == "D")]
    assert (top_d["credit_strategy"] == "secure").all()
    table = cv.strategy_table(grid, value, ["A", "B", "C", "D"])
    assert len(table) == 12 and table["customers"].sum() == n


# --------------------------------------------------------------------------- the cycle, pure
def _cycle_inputs(panels: pd.DataFrame | None = None) -> CycleInputs:
    """Two month ends of three customers on the hand card; no ledger (customer value not computed)."""
    dates = pd.to_datetime(["2025-05-31", "2025-06-30"])
    snaps = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3"] * 2,
            "as_of_date": np.repeat(dates, 3),
            "days_beyond_terms_max_12m": [0.0, 20.0, 70.0] * 2,
            "net_collection_rate_12m": [0.97, 0.5, 0.05] * 2,
            "segment": ["retail"] * 6,
            "avg_monthly_invoiced": [30_000.0] * 6,
            "credit_limit": [10_000.0, 10_000.0, 10_000.0] * 2,
            "label": ["good", "good", "in_default"] * 2,
        }
    )
    return CycleInputs(snaps, None, None, None, panels, None, "overrides")


@pytest.fixture(scope="module")
def hand_bundle(publish) -> dict:
    from tests.fixtures.cards import hand_bundle as published

    return published(publish)


def test_credit_cycle_without_ledger_reviews_limits_and_says_why_no_value(hand_bundle, publish):
    tables, summary = credit_cycle(hand_bundle, _cycle_inputs(), publish)
    assert list(tables) == ["limit_review.csv", "approval_authority.csv"]
    assert summary["customer_value"] == "not computed: snapshots lack " + str(
        ["tenure_months", "competitor_share", "late_invoice_share_12m", "invoice_count_12m"]
    )
    review = tables["limit_review.csv"]
    # c3 is in default with 10,000 open at both month ends: suspended to 0 each time
    c3 = review[review["customer_id"] == "c3"]
    assert list(c3["action"]) == ["suspend", "suspend"] and (c3["final_limit"] == 0).all()
    assert summary["limit_review"]["review_dates"] == 2
    authority = tables["approval_authority.csv"]
    assert len(authority) == 4 * len(publish.limit_review.exposure_bands) * len(
        publish.limit_review.change_bands
    )


def test_credit_cycle_lists_panels_that_did_not_converge(hand_bundle, publish):
    panels = pd.DataFrame({"customer_id": ["c1", "c2", "c2"], "converged": [True, False, True]})
    tables, summary = credit_cycle(hand_bundle, _cycle_inputs(panels), publish)
    assert tables["delphi_agreement.csv"] is panels
    assert summary["delphi_not_converged"] == ["c2"]


# --------------------------------------------------------------------------- the bounded reads
def _cycle_files(root) -> dict:
    """Fourteen month ends of eight customers (every column the cycle reads, filled so that each
    matters, plus columns it never reads), a ledger reaching past both ends of the 24-month window
    (invoices on its edges), and a credit file; written as the stage outputs, two row groups each."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    dates = pd.date_range("2024-05-31", periods=14, freq="ME")
    ids = [f"c{i}" for i in range(8)]
    n = len(dates) * len(ids)
    snaps = pd.DataFrame(
        {
            "customer_id": ids * len(dates),
            "as_of_date": np.repeat(dates, len(ids)),
            "unused_text": ["x"] * n,
            "days_beyond_terms_max_12m": rng.choice([0.0, 20.0, 70.0], n),
            "net_collection_rate_12m": rng.uniform(0, 1, n),
            "segment": rng.choice(["retail", "wholesale"], n),
            "avg_monthly_invoiced": rng.uniform(1_000, 60_000, n),
            "credit_limit": rng.choice([0.0, 5_000.0, 20_000.0], n),
            "exposure": rng.uniform(0, 30_000, n),
            "label": rng.choice(["good", "good", "bad", "in_default"], n),
            "attributes_valid_from": dates[rng.integers(0, 14, n)] - pd.DateOffset(months=12),
            "days_beyond_terms_wavg_12m": rng.uniform(-5, 40, n),
            "tenure_months": rng.integers(1, 60, n).astype(float),
            "competitor_share": rng.uniform(0, 1, n),
            "late_invoice_share_12m": rng.uniform(0, 1, n),
            "invoice_count_12m": rng.integers(0, 30, n).astype(float),
            "invoiced_amount_3m": rng.uniform(0, 90_000, n),
            "invoiced_amount_12m": rng.uniform(90_000, 200_000, n),
            "net_worth": rng.uniform(50_000, 100_000, n),
            "net_worth_previous": rng.uniform(50_000, 150_000, n),
            "days_beyond_terms_trend": rng.uniform(-10, 40, n),
            "worst_days_past_due": pd.array(rng.integers(0, 120, n), dtype="Int64"),
            "largest_invoice_share_3m": rng.uniform(0, 1, n),
            "days_beyond_terms_max_3m": pd.array(rng.integers(0, 90, n), dtype="Int64"),
            "unused_number": rng.uniform(0, 1, n),
        }
    )
    snaps.loc[n - 3, "worst_days_past_due"] = pd.NA  # a null in the last month
    snaps.loc[1, "days_beyond_terms_max_3m"] = pd.NA  # a null only before the review window
    t = dates[-1]
    edges = [t - pd.DateOffset(months=m) for m in (30, 24, 12)] + [t, t + pd.DateOffset(days=9)]
    invoice_dates = pd.DatetimeIndex(
        [*edges, *(e + pd.Timedelta(days=1) for e in edges), *dates[rng.integers(0, 14, 60)]]
    )
    invoices = pd.DataFrame(
        {
            "invoice_id": [f"i{i}" for i in range(len(invoice_dates))],
            "customer_id": [  # one invoice each on the window's edges, then the book at random
                *(f"edge{i}" for i in range(2 * len(edges))),
                *rng.choice([*ids, "gone"], 60),
            ],
            "invoice_date": invoice_dates,
            "due_date": invoice_dates
            + pd.to_timedelta(rng.integers(14, 90, len(invoice_dates)), "D"),
            "amount": rng.uniform(10, 5_000, len(invoice_dates)),
        }
    )
    history = pd.DataFrame(
        {
            "customer_id": ["c0", "c1", "c1"],
            "valid_from": pd.to_datetime(["2020-01-01", "2020-01-01", "2025-03-01"]),
            "valid_to": pd.to_datetime(["2025-01-01", "2025-03-01", None]),
            "segment": ["retail", "retail", "wholesale"],
            "region": ["north", "south", "south"],
        }
    )
    customers = pd.DataFrame({"customer_id": ids, "segment": ["retail"] * 4 + ["wholesale"] * 4})
    frames = {
        root / "processed" / "snapshots.parquet": snaps,
        root / "interim" / "invoices.parquet": invoices,
        root / "interim" / "customer_history.parquet": history,
        root / "interim" / "customers.parquet": customers,
    }
    for path, frame in frames.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        pq.write_table(table, path, row_group_size=max(len(frame) // 2, 1))
    files = dict(zip(("snapshots", "invoices", "history", "customers"), frames, strict=True))
    (root / "raw").mkdir()
    return files


def test_pruned_and_windowed_reads_give_the_whole_table_cycle(
    hand_bundle, publish, tmp_path, monkeypatch
):
    """The credit cycle on `read_cycle_inputs` (snapshot columns pruned to `cycle_columns`, invoices
    filtered to the ledger window at read time, credit file pruned, scoring in two-row slices) equals
    the cycle on the whole tables: a needed column dropped or an invoice lost changes a table."""
    from types import SimpleNamespace

    from pipeline import snapshot_io
    from pipeline.credit_cycle import cycle_columns, read_cycle_inputs

    files = _cycle_files(tmp_path)
    paths = SimpleNamespace(
        raw=tmp_path / "raw", interim=tmp_path / "interim", processed=tmp_path / "processed"
    )
    whole = CycleInputs(
        pd.read_parquet(files["snapshots"]),
        pd.read_parquet(
            files["invoices"], columns=["customer_id", "invoice_date", "due_date", "amount"]
        ),
        pd.read_parquet(files["customers"]),
        pd.read_parquet(files["history"]),
        None,
        None,
        "overrides",
    )
    bounded = read_cycle_inputs(paths, publish, hand_bundle)
    assert "unused_number" not in bounded.snapshots.columns
    assert set(bounded.snapshots.columns) == set(cycle_columns(hand_bundle)) & set(
        whole.snapshots.columns
    )
    window = bounded.invoices()  # read on demand, after the limit review
    assert len(window) < len(whole.invoices)
    assert isinstance(window["customer_id"].dtype, pd.CategoricalDtype)
    assert len(bounded.snapshots.dates) == publish.limit_review.months
    t = whole.snapshots["as_of_date"].max()
    pd.testing.assert_frame_equal(
        cv.ledger_activity(window, t), cv.ledger_activity(whole.invoices, t)
    )
    expected, expected_summary = credit_cycle(hand_bundle, whole, publish)
    monkeypatch.setattr(snapshot_io, "MIN_BATCH_ROWS", 2)
    monkeypatch.setattr(snapshot_io, "MAX_BATCH_ROWS", 2)
    got, summary = credit_cycle(hand_bundle, bounded, publish, budget_bytes=2**28)
    assert list(got) == list(expected) and "customer_value.csv" in got
    for name, table in expected.items():
        pd.testing.assert_frame_equal(got[name], table, obj=name)
    assert summary == expected_summary
    assert summary["limit_review"]["review_dates"] == publish.limit_review.months


def test_months_read_one_at_a_time_equal_the_months_of_a_full_read(tmp_path):
    """Each month of `recent_snapshot_months` equals that month of a full read of the pruned
    columns, dtypes included (an integer column with a null anywhere in the file is float64)."""
    from pipeline.credit_cycle import recent_snapshot_months

    path = _cycle_files(tmp_path)["snapshots"]
    columns = ["as_of_date", "worst_days_past_due", "days_beyond_terms_max_3m", "label", "nope"]
    months = recent_snapshot_months(path, 12, columns)
    assert months.columns[:2] == ["customer_id", "as_of_date"] and "nope" not in months.columns
    full = pd.read_parquet(path, columns=months.columns)
    assert list(months.dates) == list(np.sort(full["as_of_date"].unique())[-12:])
    assert full["days_beyond_terms_max_3m"].dtype == "float64"
    for d, frame in zip(months.dates, months, strict=True):
        expected = full[full["as_of_date"] == d].reset_index(drop=True)
        pd.testing.assert_frame_equal(frame, expected)
