"""Stage ``calibrate`` on a fabricated scorecard card, samples and snapshots (with a true PD)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pipeline.calibrate as stage
import pipeline.pd_calibration as lib
from pipeline.calibration import assign_grade
from pipeline.config import Paths, PipelineError, load_params
from pipeline.io import write_json, write_parquet
from pipeline.params import ParamsError, load
from pipeline.params.calibrate import CalibrateParams
from pipeline.pd_calibration import calibrate, cutoffs_spec, scored_samples, true_pd_check

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FACTOR, OFFSET = 28.8539, 487.1229
# the fabricated-data setting over params.yaml's calibrate block: auto (Platt below 50k rows), no
# anchor, no per-grade customer or expected-default minimums
OVERRIDE = {
    "method": "auto",
    "isotonic_min_sample": 50000,
    "central_tendency": None,
    "min_grade_customers": 0,
    "min_grade_expected_defaults": 0.0,
}


@pytest.fixture
def params(make_params):
    """``make_params`` for the calibrate block: ``params(**changes)`` on top of `OVERRIDE`."""
    return lambda **changes: make_params(
        CalibrateParams, "calibrate", "synthetic", {**OVERRIDE, **changes}
    )


def fabricated_card() -> dict:
    """One numeric feature ``x`` in 60 range bins; points = 420 + 5·bin, so score = points."""
    edges = list(range(1, 60))
    bins = []
    for i in range(60):
        bins.append(
            {
                "type": "range",
                "lower": None if i == 0 else float(edges[i - 1]),
                "upper": None if i == 59 else float(edges[i]),
                "points": 420 + 5 * i,
            }
        )
    bins.append({"type": "missing", "points": 500})
    return {
        "schema_version": "1.0",
        "kind": "woe_logistic_scorecard",
        "scaling": {
            "base_score": 600,
            "base_odds": 50,
            "pdo": 20,
            "factor": FACTOR,
            "offset": OFFSET,
        },
        "intercept": -3.0,
        "features": [
            {
                "name": "x",
                "dtype": "numeric",
                "coefficient": -1.0,
                "reason_code": "R01",
                "reason_text": "x is low",
                "baseline_points": 715,
                "unseen_points": 500,
                "bins": bins,
            }
        ],
    }


def fabricated_data(n: int = 60000, seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Snapshots whose true PD follows the card's score (shifted: the card overstates risk)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(30, 9, n).clip(0, 59.5)
    score = 420 + 5 * np.floor(x)
    true_pd = 1 / (1 + np.exp((score - 470) / 25))
    is_bad = pd.array((rng.random(n) < true_pd).astype(int), dtype="Int8")
    dates = np.where(np.arange(n) % 4 == 0, "2024-12-31", "2023-12-31")
    snaps = pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(n)],
            "as_of_date": pd.to_datetime(dates),
            "is_bad": is_bad,
            "x": x,
            "true_pd": true_pd,
        }
    )
    snaps.loc[::97, "is_bad"] = pd.NA  # indeterminate rows: excluded
    sample = np.where(
        snaps["as_of_date"] >= "2024-07-31",
        "oot",
        np.where(np.arange(n) % 3 == 0, "calibration", "train"),
    )
    sample = np.where(snaps["is_bad"].isna(), "excluded", sample)
    samples = snaps[["customer_id", "as_of_date"]].assign(sample=sample)
    return snaps, samples


def test_calibrate_recovers_true_pd_and_tests(params):
    snaps, samples = fabricated_data()
    scored = scored_samples(fabricated_card(), snaps, samples)
    assert scored["score"].between(420, 715).all()
    result = calibrate(scored, params())
    table = result["table"]
    assert result["calibrator"].kind == "platt"  # 15k calibration rows < 50k
    assert len(table) == 10 and np.all(np.diff(table["pd"]) > 0)
    assert (table["share"] >= 0.02).all()
    check = result["true_pd_check"]["calibration"]
    assert check["all_within"], check["grades"]
    assert set(result["tests"]) == {"calibration", "oot"}
    assert result["tests"]["oot"]["portfolio"]["count"] == int((samples["sample"] == "oot").sum())
    spec = cutoffs_spec(result, "fab", {"code_version": "test"})
    grades = spec["grades"]
    assert grades[0]["score_max"] is None and grades[-1]["score_min"] is None
    assert [g["score_min"] for g in grades[:-1]] == [g["score_max"] for g in grades[1:]]
    # the JSON grades list grades exactly as the in-memory table did
    scores = result["graded"]["score"].to_numpy()
    assert np.array_equal(assign_grade(scores, grades), result["graded"]["grade"].to_numpy())
    assert {
        "grade",
        "letter_grade",
        "score_min",
        "score_max",
        "pd",
        "count",
        "observed_bad_rate",
    } <= set(grades[0])


def test_calibrate_isotonic_and_central_tendency(params):
    snaps, samples = fabricated_data()
    p = params(isotonic_min_sample=1000, central_tendency=0.10)
    result = calibrate(scored_samples(fabricated_card(), snaps, samples), p)
    assert result["calibrator"].kind == "isotonic"
    cal = result["graded"][
        (result["graded"]["sample"] == "calibration") & result["graded"]["is_bad"].notna()
    ]
    assert cal["pd_calibrated"].mean() == pytest.approx(0.10, abs=1e-9)
    assert np.all(np.diff(result["table"]["pd"]) > 0)


def test_true_pd_check_by_hand():
    table = pd.DataFrame({"grade": ["A", "B"], "pd": [0.01, 0.05]})
    frame = pd.DataFrame(
        {
            "grade": ["A", "A", "B", "B"],
            "is_bad": [0, 0, 0, 1],
            "true_pd": [0.01, 0.0125, 0.03, 0.05],
        }
    )
    check = true_pd_check(frame, table, 0.2)
    # A: mean true .01125, gap |.01 − .01125| / .01125 = 1/9; B: mean .04, gap .01 / .04 = 0.25
    assert [g["relative_gap"] for g in check["grades"]] == pytest.approx([1 / 9, 0.25])
    assert [g["within_tolerance"] for g in check["grades"]] == [True, False]
    assert check["all_within"] is False and check["max_relative_gap"] == pytest.approx(0.25)


def test_missing_sample_row_is_a_pipeline_error():
    snaps, samples = fabricated_data(2000)
    with pytest.raises(PipelineError, match="has no sample"):
        scored_samples(fabricated_card(), snaps, samples.iloc[1:])


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copy(PROJECT_ROOT / "params.yaml", root / "params.yaml")
    params = (root / "params.yaml").read_text(encoding="utf-8")
    (root / "params.yaml").write_text(  # a dataset overlay: Platt on this 15k sample
        params.replace(
            "datasets:\n", "datasets:\n  fab:\n    calibrate:\n      method: platt\n", 1
        ),
        encoding="utf-8",
    )
    snaps, samples = fabricated_data()
    write_parquet(snaps, root / "data/processed/fab/snapshots.parquet")
    write_parquet(samples, root / "data/processed/fab/samples.parquet")
    write_json(fabricated_card(), root / "models/fab/scorecard.json")
    return root


def _run(root: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CREDIT_PIPELINE_ROOT": str(root),
        "MPLBACKEND": "Agg",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "pipeline.calibrate", "--dataset", "fab"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )


OUTPUTS = [
    "models/fab/grade_cutoffs.json",
    "models/fab/grade_cutoffs.csv",
    "metrics/fab/calibrate.json",
    "reports/fab/calibrate/calibrate_reliability.csv",
    "reports/fab/calibrate/calibrate_reliability.png",
    "reports/fab/calibrate/calibration.md",
]


def _run_in_process(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``main()`` against the scratch project, without a new interpreter."""
    monkeypatch.setattr(stage, "Paths", lambda ds: Paths(ds, root=root))
    monkeypatch.setattr(
        stage, "load", lambda cls, block, ds: load(cls, block, ds, load_params(root))
    )
    monkeypatch.setattr(sys, "argv", ["calibrate", "--dataset", "fab"])
    stage.main()


def test_stage_writes_outputs_deterministically(tmp_path, monkeypatch):
    root = _project(tmp_path)
    _run_in_process(root, monkeypatch)
    first = {p: (root / p).read_bytes() for p in OUTPUTS}
    spec = json.loads(first["models/fab/grade_cutoffs.json"])
    assert spec["calibration"]["method"] == "platt"
    pds = [g["pd"] for g in spec["grades"]]
    assert all(b > a for a, b in zip(pds, pds[1:], strict=False))
    metrics = json.loads(first["metrics/fab/calibrate.json"])
    assert metrics["true_pd_calibration"]["all_within_tolerance"] is True
    assert "| AAA |" in first["reports/fab/calibrate/calibration.md"].decode()
    _run_in_process(root, monkeypatch)
    second = {p: (root / p).read_bytes() for p in OUTPUTS}
    spec2 = json.loads(second.pop("models/fab/grade_cutoffs.json"))
    first.pop("models/fab/grade_cutoffs.json")
    # code_version hashes the package source, which may change between the runs while
    # the tree is being edited; everything else must be byte-identical
    spec["provenance"].pop("code_version"), spec2["provenance"].pop("code_version")
    assert spec2 == spec
    assert second == first


def test_stage_without_card_exits_with_a_clear_error(tmp_path):
    root = _project(tmp_path)
    (root / "models/fab/scorecard.json").unlink()
    proc = _run(root)
    assert proc.returncode == 2
    assert "scorecard.json" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------ cohorts, anchor, segments, choice
def test_cohort_dates_by_hand():
    dates = pd.to_datetime(["2022-06-30", "2023-03-31", "2023-06-30", "2024-02-29", "2024-06-30"])
    # latest 2024-06-30, then 2023-06-30 and 2022-06-30 (12 months apart); others are not cohorts
    assert lib.cohort_dates(pd.Series(dates)) == list(
        pd.to_datetime(["2022-06-30", "2023-06-30", "2024-06-30"])
    )
    # month ends stay month ends: 2025-02-28 → 2024-02-29
    assert lib.cohort_dates(pd.Series(pd.to_datetime(["2024-02-29", "2025-02-28"]))) == list(
        pd.to_datetime(["2024-02-29", "2025-02-28"])
    )


def test_long_run_central_tendency_by_hand():
    # cohort 2023-12-31: 1 default of 4 customers (25%); 2024-12-31: 1 of 2 (50%) → mean 37.5%.
    # The delinquent row, the unmatured row and the 2024-06-30 rows do not count.
    frame = pd.DataFrame(
        {
            "customer_id": list("abcdab") + ["e", "f", "g"],
            "as_of_date": pd.to_datetime(
                ["2023-12-31"] * 4
                + ["2024-12-31"] * 2
                + ["2024-12-31", "2024-12-31", "2024-06-30"]
            ),
            "is_bad": [1, 0, 0, 0, 1, 0, 1, np.nan, 1],
            "segment": ["current"] * 6 + ["delinquent", "current", "current"],
        }
    )
    out = lib.long_run_central_tendency(frame)
    assert out["value"] == pytest.approx(0.375)
    assert [c["default_rate"] for c in out["cohorts"]] == pytest.approx([0.25, 0.5])
    assert lib.resolve_central_tendency(frame, None) is None
    assert lib.resolve_central_tendency(frame, 0.1)["value"] == 0.1
    with pytest.raises(PipelineError, match="calibrate.central_tendency"):
        lib.resolve_central_tendency(frame, "through_the_cycle")


def _segmented():
    snaps, samples = fabricated_data(20000)
    rng = np.random.default_rng(1)
    seg = np.where(rng.random(len(snaps)) < 0.1, "delinquent", "current").astype(object)
    seg[::50] = None  # outside the observation population
    return snaps.assign(segment=seg), samples


def test_calibrate_segments_cohorts_and_in_sample_df(params):
    snaps, samples = _segmented()
    p = params(
        central_tendency="long_run", min_grade_customers=30, min_grade_expected_defaults=2.0
    )
    result = calibrate(scored_samples(fabricated_card(), snaps, samples), p)
    cal = result["graded"]
    fitted_on = cal[
        (cal["sample"] == "calibration") & cal["is_bad"].notna() & (cal["segment"] == "current")
    ]
    assert result["calibrator"].n_fit_ == len(fitted_on)  # current segment only
    k = len(result["table"])
    assert result["tests"]["calibration"]["hosmer_lemeshow"]["df"] == k - 2  # in sample
    assert result["tests"]["oot"]["hosmer_lemeshow"]["df"] == k
    assert "oot_delinquent" in result["tests"]
    # long run = mean of the two cohorts' default rates (current segment, matured rows)
    cur = snaps[(snaps["segment"] == "current") & snaps["is_bad"].notna()]
    rates = cur.groupby("as_of_date")["is_bad"].mean()
    assert result["central_tendency"]["value"] == pytest.approx(rates.mean())
    bt = result["back_tests"]
    assert [c["segment"] for c in bt["cohorts"]] == [
        "current",
        "current",
        "delinquent",
        "delinquent",
    ]
    first = bt["cohorts"][0]
    rows = cal[
        (cal["as_of_date"] == first["cohort_date"])
        & (cal["segment"] == "current")
        & cal["is_bad"].notna()
        & ~cal["sample"].isin(["train", "excluded"])
    ]
    assert first["customers"] == rows["customer_id"].nunique() == len(rows)  # one per customer
    assert first["tests"]["portfolio"]["count"] == len(rows)
    assert bt["pooled"][0]["label"] == "pooled over 2 annual cohorts"
    assert first["verdict"] in ("green", "yellow", "red")
    gc = result["grade_count"]
    assert gc["chosen"] == k and (result["table"]["customers"] >= 30).all()


def test_isotonic_only_with_strictly_rising_pds(params):
    snaps, samples = fabricated_data(6000)
    scored = scored_samples(fabricated_card(), snaps, samples)
    # a tiny calibration sample: isotonic steps cannot carry as many grades as Platt
    p = params(
        method="auto",
        isotonic_min_sample=10,
        min_grade_customers=40,
        min_grade_expected_defaults=3.0,
    )
    result = calibrate(scored, p)
    assert result["method_choice"].startswith(result["calibrator"].kind)
    assert "auto" in result["method_choice"]
    assert np.all(np.diff(result["table"]["pd"]) > 0)
    with pytest.raises(ParamsError, match="key calibrate.method: rule one_of"):
        params(method="beta")


def test_default_outcome_counts_indeterminates_as_not_bad():
    """A PD is P(bad) among all matured snapshots: good and indeterminate (matured, not bad) are 0,
    bad 1, immature and in-default rows have no outcome; without a label column, is_bad as it is."""
    snaps = pd.DataFrame(
        {
            "label": ["good", "bad", "indeterminate", "immature", "in_default"],
            "is_bad": pd.array([0, 1, pd.NA, pd.NA, pd.NA], dtype="Int8"),
        }
    )
    out = lib.default_outcome(snaps)
    assert out.iloc[:3].tolist() == [0.0, 1.0, 0.0]
    assert out.iloc[3:].isna().all()
    plain = lib.default_outcome(snaps.drop(columns="label"))
    assert plain.iloc[:2].tolist() == [0.0, 1.0] and plain.iloc[2:].isna().all()
    # on one grade of 1 bad, 1 good and 2 indeterminates the observed default rate is 1/4, not 1/2
    four = pd.DataFrame(
        {"label": ["bad", "good", "indeterminate", "indeterminate"], "is_bad": [1, 0, None, None]}
    )
    assert lib.default_outcome(four).mean() == pytest.approx(0.25)


def test_calibrate_params_name_the_key(params):
    """Every calibrate rule is checked once at stage start, the error naming the params.yaml key."""
    with pytest.raises(ParamsError, match="key calibrate.central_tendency: rule in_range"):
        params(central_tendency=1.5)
    with pytest.raises(ParamsError, match="key calibrate.pd_targets: rule increasing_pds"):
        params(pd_bands="targets", pd_targets=[0.05, 0.01])
    with pytest.raises(ParamsError, match="key calibrate.n_grades: rule type"):
        params(n_grades="ten")
    with pytest.raises(ParamsError, match="key calibrate.n_grades: rule in_range"):
        params(n_grades=3)
    with pytest.raises(ParamsError, match="CRR Art. 170"):
        params(scale="numeric", n_grades=6)
    assert params(central_tendency=0.05).central_tendency == 0.05


def test_streamed_scoring_equals_the_whole_table_path(tmp_path):
    """calibrate scores the snapshots in slices alongside the samples' rows at the same positions;
    with several slices, with in-default rows, and with samples in another order (the merge path),
    the scored frame equals the whole-table read and merge."""
    root = _project(tmp_path)
    snaps = pd.read_parquet(root / "data/processed/fab/snapshots.parquet")
    snaps["label"] = np.where(snaps.index % 11 == 0, "in_default", "good")
    write_parquet(snaps, root / "data/processed/fab/snapshots.parquet")
    paths = Paths("fab", root=root)
    card, snapshots, samples = stage.read_inputs(paths)
    want = scored_samples(card, snapshots, samples)
    assert len(want) < len(snaps)
    for budget in (10**12, 10**7):  # one slice; slices of 10,000 rows (the smallest)
        pd.testing.assert_frame_equal(stage.scored_inputs(paths, budget)[1], want)
    shuffled = samples.sample(frac=1.0, random_state=0)
    write_parquet(shuffled, root / "data/processed/fab/samples.parquet")
    pd.testing.assert_frame_equal(stage.scored_inputs(paths, 10**7)[1], want)


def test_one_scale_is_fitted_on_every_segment_the_card_scores(params):
    """With a segment card, calibration and the long-run anchor pool the current and the
    card's segment; without, the delinquent rows stay out of the fit (tested, not fitted)."""
    snaps, samples = fabricated_data()
    snaps["segment"] = np.where(np.arange(len(snaps)) % 5 == 0, "delinquent", "current")
    scored = scored_samples(fabricated_card(), snaps, samples)
    cal = scored[(scored["sample"] == "calibration") & scored["is_bad"].notna()]
    pooled = calibrate(scored, params(central_tendency="long_run"), ("current", "delinquent"))
    alone = calibrate(scored, params())
    assert pooled["calibrator"].n_fit_ == len(cal)
    assert alone["calibrator"].n_fit_ == int((cal["segment"] == "current").sum())
    assert "current and delinquent segments" in pooled["central_tendency"]["rule"]
    assert "calibration_delinquent" in alone["tests"]
