"""pipeline.sufficiency: counts, minimums, and errors that name the setting to change."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pipeline import sufficiency as suf
from pipeline.domain import PipelineError
from pipeline.params.train import SplitParams, TrainParams


@pytest.fixture(scope="module")
def split(make_params):
    """``split(oot_start)``: the synthetic dataset's out-of-time split with ``oot_start``."""
    base: SplitParams = make_params(TrainParams, "train", "synthetic").split
    assert base.method == "out_of_time"
    return lambda oot_start=base.oot_start: dataclasses.replace(base, oot_start=oot_start)


def _snapshots(n_customers: int = 40, months: int = 24, bad_every: int = 5) -> pd.DataFrame:
    dates = pd.date_range("2020-01-31", periods=months, freq="ME")
    rows = []
    for c in range(n_customers):
        for i, t in enumerate(dates):
            matured = i < months - 12
            is_bad = (1.0 if (c + i) % bad_every == 0 else 0.0) if matured else np.nan
            rows.append(
                {
                    "customer_id": f"c{c:03d}",
                    "as_of_date": t,
                    "is_bad": is_bad,
                    "days_beyond_terms_max_12m": 70.0 if c % 3 == 0 else 5.0,
                }
            )
    return pd.DataFrame(rows)


def _samples(snaps: pd.DataFrame, oot_start: str) -> pd.DataFrame:
    s = snaps[["customer_id", "as_of_date"]].copy()
    outcome = snaps["is_bad"].notna()
    late = snaps["as_of_date"] >= pd.Timestamp(oot_start)
    cal = snaps["customer_id"].str[-1].isin(["0", "1"])
    s["sample"] = np.where(
        ~outcome, "excluded", np.where(late, "oot", np.where(cal, "calibration", "train"))
    )
    return s


def test_counts_by_sample_and_history_by_hand(split):
    snaps = _snapshots(n_customers=10, months=15, bad_every=4)
    samples = _samples(snaps, "2020-03-31")
    report = suf.sufficiency_report(snaps, samples, split())
    # 3 matured month ends (Jan–Mar 2020); oot = March; calibration = customers c000 and c001
    # bads at (c + i) % 4 == 0: oot (i = 2): c = 2, 6 -> 2 bads, 8 goods
    assert report["by_sample"]["oot"] == {"rows": 10, "bads": 2, "goods": 8}
    # calibration (c0, c1 at i = 0, 1): c0 i0 bad, c1 i1 no (2 % 4) -> 1 bad, 3 goods
    assert report["by_sample"]["calibration"] == {"rows": 4, "bads": 1, "goods": 3}
    assert report["history"]["months_of_history_with_outcome"] == 3
    assert report["history"]["snapshots_per_customer"]["median"] == 15
    assert any("bads_train" not in w and "train sample" in w for w in report["warnings"])
    assert any("months of as-of dates" in w for w in report["warnings"])


def test_no_oot_rows_names_oot_start_and_the_value_onboard_would_choose(split):
    snaps = _snapshots()  # matured as-of dates: 12 month ends 2020-01..2020-12
    samples = _samples(snaps, "2030-01-31")
    with pytest.raises(PipelineError) as err:
        suf.check_samples(snaps, samples, split("2030-01-31"))
    msg = str(err.value)
    assert "train.split.oot_start" in msg and "'2030-01-31'" in msg
    assert '"2020-09-30"' in msg  # last 4 of 12 matured month ends


def test_one_outcome_names_the_bad_definition_and_a_proxy(split):
    snaps = _snapshots(n_customers=100)  # 34 customers reach 70 days: 60 is the nearest supported
    snaps.loc[snaps["is_bad"] == 1, "is_bad"] = 0.0
    samples = _samples(snaps, "2020-09-30")
    with pytest.raises(
        PipelineError, match=r"no bads.*bad_days_beyond_terms: 60 \(a non-default proxy"
    ):
        suf.check_samples(snaps, samples, split("2020-09-30"))


def test_enough_data_passes_without_error(split):
    snaps = _snapshots(n_customers=400, bad_every=3)
    samples = _samples(snaps, "2020-09-30")
    report = suf.check_samples(snaps, samples, split("2020-09-30"))
    assert report["by_sample"]["train"]["bads"] >= suf.MINIMUMS["bads_train"]


def test_label_warning_names_material_amount_when_there_is_no_bad():
    metrics = {"label_counts": {"good": 104, "bad": 0}}
    label = {"material_amount": 100.0, "bad_days_beyond_terms": 90, "median_amount": 45.0}
    (w,) = suf.warn_label(metrics, source="ledger", **label)
    assert "features.label.material_amount = 100.0" in w and "0.2" in w
    assert suf.warn_label({"label_counts": {"good": 5, "bad": 1}}, source="ledger", **label) == []
    assert suf.warn_label(metrics, source="customer_flag", **label) == []


def test_as_of_grid_outside_the_ledger_stops_with_the_grid_that_fits():
    facts = {
        "first_invoice": pd.Timestamp("2012-01-03"),
        "last_event": pd.Timestamp("2014-01-09"),
        "median_amount": 45.0,
    }
    grid = {"freq": "ME", "performance_months": 12}
    with pytest.raises(PipelineError) as err:
        suf.check_as_of_grid(facts, start=None, end="2025-12-31", data_cutoff="2014-01-09", **grid)
    msg = str(err.value)
    assert "features.as_of" in msg and 'start: "2012-06-30"' in msg and 'end: "2013-12-31"' in msg
    suf.check_as_of_grid(facts, start="2012-06-30", end="2013-12-31", data_cutoff=None, **grid)


def test_grade_failure_is_explained_by_its_real_cause():
    rng = np.random.default_rng(0)
    score = np.repeat([500.0, 520.0, 540.0], 40)  # three distinct scores
    y = (rng.uniform(size=score.size) < 0.2).astype(int)
    scored = pd.DataFrame({"sample": "calibration", "score": score, "is_bad": y})
    settings = {"isotonic_min_sample": 5000, "central_tendency": None, "pd_floor": 0.0}
    err = suf.explain_grade_failure(
        PipelineError("master scale: cannot form 10 grades"),
        scored,
        n_grades=10,
        method="isotonic",
        **settings,
    )
    msg = str(err)
    assert "distinct PDs" in msg and "calibrate.method: platt" in msg
    assert "3 distinct scores" in msg and "calibrate.n_grades: " in msg
    other = PipelineError("something else")
    assert (
        suf.explain_grade_failure(other, scored, n_grades=10, method="auto", **settings) is other
    )


def test_grade_warning_below_the_minimum_bads_per_grade(caplog):
    scored = pd.DataFrame(
        {"sample": "calibration", "score": np.arange(104.0), "is_bad": [1] * 13 + [0] * 91}
    )
    (w,) = suf.warn_grades(scored, n_grades=10)
    assert "104 rows and 13 bads" in w and "calibrate.n_grades: 4" in w


def test_sample_counts_are_the_same_for_aligned_and_joined_samples():
    rng = np.random.default_rng(11)
    n = 400
    snaps = pd.DataFrame(
        {
            "customer_id": np.repeat([f"C{i:03d}" for i in range(80)], 5),
            "as_of_date": np.tile(pd.date_range("2024-01-31", periods=5, freq="ME"), 80),
            "is_bad": rng.choice([0.0, 1.0, np.nan], n),
            "segment": rng.choice(["current", "delinquent", None], n),
        }
    )
    samples = snaps[["customer_id", "as_of_date"]].assign(
        sample=rng.choice(["train", "calibration", "oot"], n)
    )
    aligned = suf.sample_counts(snaps, samples)
    assert aligned == suf.sample_counts(snaps, samples.sample(frac=1.0, random_state=2))
    train = [r for r in aligned if r["sample"] == "train"]
    mask = samples["sample"].eq("train")
    assert sum(r["rows"] for r in train) == int(mask.sum())
    assert sum(r["bads"] for r in train) == int((snaps["is_bad"][mask] == 1).sum())
