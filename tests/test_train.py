"""Train stage: sample assignment rules, feature checks, artefacts, exact JSON round trip."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.card import load_card, score_frame
from pipeline.development import scoring_features, train_models
from pipeline.domain import SAMPLES, PipelineError
from pipeline.io import code_version, write_json
from pipeline.params import ParamsError, build, to_dict
from pipeline.params.train import SplitParams, TrainParams
from pipeline.samples import assign_samples, fit_mask, sample_design
from tests.conftest import PROJECT_ROOT, dag_env
from tests.fixtures.snapshots import SCORING_FEATURES, feature_dictionary, uci_snapshot_frame


def panel(n_customers: int = 400, seed: int = 0) -> pd.DataFrame:
    """Monthly snapshots 2023-06..2025-06 for customers who start at different months."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-06-30", "2025-06-30", freq="ME")
    rows = []
    for c in range(n_customers):
        for d in dates[rng.integers(0, len(dates)) :]:
            label = rng.choice(
                ["good", "bad", "indeterminate", "immature"], p=[0.7, 0.1, 0.1, 0.1]
            )
            rows.append((f"C{c:04d}", d, label))
    df = pd.DataFrame(rows, columns=["customer_id", "as_of_date", "label"])
    df["is_bad"] = pd.array(df["label"].map({"good": 0, "bad": 1}), dtype="Int8")
    return df


@pytest.fixture(scope="module")
def split(make_params):
    """``split(**changes)``: the synthetic dataset's ``train.split`` (out of time) dated for `panel`
    (oot_start 2024-07-31), with ``changes`` applied and validated as params.yaml would be."""
    base = make_params(TrainParams, "train", "synthetic").split

    def make(**changes) -> SplitParams:
        return build(
            SplitParams, {**to_dict(base), "oot_start": "2024-07-31", **changes}, "train.split"
        )

    return make


def test_out_of_time_split_rules(split) -> None:
    snaps = panel()
    s = assign_samples(snaps, split(), seed=1)
    assert (s[["customer_id", "as_of_date"]] == snaps[["customer_id", "as_of_date"]]).all().all()
    unmatured = snaps["label"].eq("immature")
    assert s.loc[unmatured, "sample"].eq("excluded").all()
    assert (s.loc[unmatured, "exclusion_reason"] == "immature").all()
    assert s.loc[s["sample"] != "excluded", "exclusion_reason"].isna().all()
    # an indeterminate snapshot (matured, not bad) belongs to its customer's sample, like good/bad ones
    indeterminate = snaps["label"].eq("indeterminate")
    assert s.loc[indeterminate, "sample"].ne("excluded").any()
    assert not s.loc[indeterminate, "exclusion_reason"].eq("indeterminate").any()
    labelled = snaps["is_bad"].notna() | indeterminate
    late = snaps["as_of_date"] >= pd.Timestamp("2024-07-31")
    assert s.loc[labelled & late, "sample"].isin(["oot", "oot_known"]).all()
    assert s.loc[labelled & ~late, "sample"].isin(["train", "calibration", "excluded"]).all()
    ids = {
        k: set(s.loc[s["sample"] == k, "customer_id"])
        for k in ("train", "calibration", "oot", "oot_known")
    }
    assert not ids["train"] & ids["calibration"]
    assert not (ids["train"] | ids["calibration"]) & ids["oot"], (
        "oot shares customers with development"
    )
    assert ids["oot_known"] <= ids["train"] | ids["calibration"], (
        "oot_known = known customers only"
    )
    held = s["exclusion_reason"] == "oot_customer_before_oot_start"
    assert held.any() and not set(s.loc[held, "customer_id"]) & (ids["train"] | ids["calibration"])
    dev_customers = set(snaps.loc[labelled & ~late, "customer_id"])
    held_share = len(set(s.loc[held, "customer_id"])) / len(dev_customers)
    assert 0.2 < held_share < 0.4
    new = set(snaps["customer_id"]) - set(snaps.loc[~late, "customer_id"])
    assert new & set(snaps.loc[labelled, "customer_id"]) <= ids["oot"], "new customers are oot"
    cal_share = len(ids["calibration"]) / len(ids["train"] | ids["calibration"])
    assert 0.15 < cal_share < 0.35


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    hold=st.floats(0.0, 0.6),
    cal=st.floats(0.05, 0.5),
    start=st.sampled_from(["2023-09-30", "2024-07-31", "2025-03-31"]),
)
def test_out_of_time_samples_are_customer_disjoint_and_later(
    split, seed, hold, cal, start
) -> None:
    """Whatever the shares, seed and date: train, calibration and oot share no customer, oot and
    oot_known are dated on/after oot_start and development before it."""
    snaps = panel(120, seed=seed % 7)
    params = split(oot_start=start, oot_customer_share=hold, calibration_share=cal)
    s = assign_samples(snaps, params, seed=seed)
    ids = {k: set(s.loc[s["sample"] == k, "customer_id"]) for k in SAMPLES}
    assert not ids["train"] & ids["calibration"]
    assert not ids["oot"] & (ids["train"] | ids["calibration"] | ids["oot_known"])
    dates = s.groupby("sample")["as_of_date"].agg(["min", "max"])
    t0 = pd.Timestamp(start)
    for k in ("oot", "oot_known"):
        if k in dates.index:
            assert dates.loc[k, "min"] >= t0
    for k in ("train", "calibration"):
        if k in dates.index:
            assert dates.loc[k, "max"] < t0
    design = sample_design(s, snaps, params)
    assert sum(design["snapshots_per_sample"].values()) == len(snaps)
    assert design["customer_overlap"] == {
        "train&calibration": 0,
        "train&oot": 0,
        "calibration&oot": 0,
        "oot&oot_known": 0,
    }
    assert sum(design["exclusions"].values()) == design["snapshots_per_sample"]["excluded"]


def test_sample_design_counts_by_sample_segment_label(split) -> None:
    snaps = panel(200, seed=5)
    rng = np.random.default_rng(0)
    snaps["segment"] = np.where(rng.random(len(snaps)) < 0.1, "delinquent", "current")
    in_default = rng.random(len(snaps)) < 0.05
    snaps.loc[in_default, ["label", "segment"]] = ["in_default", None]
    snaps.loc[in_default, "is_bad"] = pd.NA
    s = assign_samples(snaps, split(), seed=1)
    assert (s["segment"].isna() == in_default).all()
    d = sample_design(s, snaps, split())
    total = sum(n for seg in d["counts"].values() for lab in seg.values() for n in lab.values())
    assert total == len(snaps) == d["snapshots"]
    assert d["counts"]["excluded"]["none"]["in_default"] == int(in_default.sum())
    assert d["exclusions"]["in_default"] == int(in_default.sum())
    train_current = s["sample"].eq("train") & s["segment"].eq("current")
    # the models are fitted on good/bad rows only; indeterminates stay in the sample, unfitted
    assert d["fit"]["snapshots"] == int((train_current & snaps["is_bad"].notna()).sum())
    assert (fit_mask(s, ["current"]) == train_current.to_numpy()).all()
    assert fit_mask(s, ["current", "delinquent"]).sum() == int(
        (s["sample"].eq("train") & s["segment"].notna()).sum()
    )
    bad_train = snaps.loc[s["sample"].eq("train") & snaps["is_bad"].eq(1), "customer_id"].nunique()
    assert d["bad_customers"]["train"] == bad_train
    json.dumps(d)  # the report is plain JSON


@pytest.mark.parametrize(
    "changes, key, rule",
    [
        ({"fit_segments": ["risky"]}, "train.split.fit_segments", "segments"),
        ({"fit_segments": []}, "train.split.fit_segments", "segments"),
        ({"oot_customer_share": 1.0}, "train.split.oot_customer_share", "share"),
        ({"calibration_share": 0.0}, "train.split.calibration_share", "share"),
        ({"holdout_share": -0.1}, "train.split.holdout_share", "share"),
        ({"method": "random"}, "train.split.method", "one_of"),
        ({"oot_start": None}, "train.split.oot_start", "required"),
        ({"oot_start": "31/07/2024"}, "train.split.oot_start", "iso_date"),
    ],
)
def test_split_params_are_validated_once_naming_the_key(split, changes, key, rule) -> None:
    with pytest.raises(ParamsError) as info:
        split(**changes)
    assert str(info.value).startswith(f"params.yaml: key {key}: rule {rule}: "), info.value
    assert split().fit_segments == ("current",)
    assert split(method="stratified_holdout", oot_start=None).oot_start is None


@pytest.mark.parametrize(
    "override, key, rule",
    [
        ({"binning": {"empty_bin_woe": "zero"}}, "train.binning.empty_bin_woe", "one_of"),
        ({"binning": {"monotonic_trend": "up"}}, "train.binning.monotonic_trend", "one_of"),
        ({"binning": {"min_bin_size": 0.6}}, "train.binning.min_bin_size", "in_range"),
        ({"selection": {"min_iv": 6.0}}, "train.selection.max_iv", "in_range"),
        ({"selection": {"max_correlation": 1.5}}, "train.selection.max_correlation", "in_range"),
        ({"scaling": {"pdo": 0}}, "train.scaling.pdo", "positive"),
        ({"scaling": {"base_odds": -5}}, "train.scaling.base_odds", "positive"),
        ({"reason_codes": {"baseline": "median"}}, "train.reason_codes.baseline", "one_of"),
        ({"challenger": {"clip_quantile": 0.5}}, "train.challenger.clip_quantile", "in_range"),
        ({"boosting": {"threads": 0}}, "train.boosting.threads", "in_range"),
        ({"boosting": {"learning_rate": 0}}, "train.boosting.learning_rate", "positive"),
        ({"binning": {"special_codes": ["x"]}}, "train.binning.special_codes", "type"),
    ],
)
def test_train_params_are_checked_at_stage_start(make_params, override, key, rule) -> None:
    """What WoEScorecard.fit, the challenger and the booster would reject deep inside is refused
    when the params are built, naming the params.yaml key."""
    with pytest.raises(ParamsError) as info:
        make_params(TrainParams, "train", "synthetic", override)
    assert str(info.value).startswith(f"params.yaml: key {key}: rule {rule}: "), info.value


@pytest.mark.parametrize("dataset", ["synthetic", "uci"])
def test_train_params_build_for_every_dataset(make_params, dataset) -> None:
    params = make_params(TrainParams, "train", dataset)
    assert params.scaling.base_score == 600 and isinstance(params.scaling.base_score, int)
    assert to_dict(params)["base"]["seed"] == params.base.seed
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.split.method = "x"  # type: ignore[misc]


def test_split_is_deterministic_and_order_free(split) -> None:
    snaps = panel()
    a = assign_samples(snaps, split(), seed=1)
    shuffled = snaps.sample(frac=1.0, random_state=3)
    b = assign_samples(shuffled, split(), seed=1).sort_index()
    pd.testing.assert_frame_equal(a, b)
    assert not assign_samples(snaps, split(), seed=2)["sample"].equals(a["sample"])


def test_stratified_holdout_groups_customers_and_keeps_bad_rate(split) -> None:
    snaps = panel(2000, seed=4)
    snaps = snaps.drop_duplicates("customer_id")
    params = split(method="stratified_holdout", holdout_share=0.2, calibration_share=0.25)
    s = assign_samples(snaps, params, seed=1)
    labelled = snaps["is_bad"].notna().to_numpy()
    share = s.loc[labelled, "sample"].value_counts(normalize=True)
    assert share["oot"] == pytest.approx(0.2, abs=0.01) and share["train"] == pytest.approx(
        0.6, abs=0.01
    )
    rates = snaps[labelled].groupby(s.loc[labelled, "sample"].to_numpy())["is_bad"].mean()
    assert rates.max() - rates.min() < 0.02


def test_scoring_features_checks() -> None:
    snaps = pd.DataFrame({"a": [1.0], "protected_sex": [1]})
    good = pd.DataFrame(
        {"feature": ["a", "b"], "dtype": ["numeric", "numeric"], "scoring": [True, False]}
    )
    assert scoring_features(good, snaps, "fd.csv") == {"a": "numeric"}
    bad = pd.DataFrame({"feature": ["protected_sex"], "dtype": ["numeric"], "scoring": [True]})
    with pytest.raises(PipelineError, match="protected"):
        scoring_features(bad, snaps, "fd.csv")
    absent = pd.DataFrame({"feature": ["zzz"], "dtype": ["numeric"], "scoring": ["True"]})
    with pytest.raises(PipelineError, match=r"fd.csv: row 0, column feature: 'zzz'"):
        scoring_features(absent, snaps, "fd.csv")


@pytest.fixture(scope="module")
def uci_fit(uci_csv, make_params):
    snaps = uci_snapshot_frame(uci_csv)
    specials = {"binning": {"special_codes": {"days_beyond_terms_last_invoice": [-1]}}}
    params = make_params(TrainParams, "train", "uci", specials)
    samples = assign_samples(snaps, params.split, params.base.seed)
    features = dict.fromkeys(SCORING_FEATURES, "numeric")
    fitted = train_models(snaps, samples, features, params, "uci", {}, code_version())
    return snaps, samples, fitted


def test_saved_card_reproduces_in_memory_scores_on_whole_oot(uci_fit, tmp_path) -> None:
    """Done-when: the JSON card written to disk scores the whole OOT sample as in memory."""
    snaps, samples, fitted = uci_fit
    oot = snaps[(samples["sample"] == "oot").to_numpy()]
    write_json(fitted["card"], tmp_path / "scorecard.json")
    loaded = score_frame(load_card(tmp_path / "scorecard.json"), oot)
    pd.testing.assert_frame_equal(loaded, fitted["model"].score_frame(oot), check_exact=True)
    assert np.array_equal(
        loaded["pd_model"].to_numpy(),
        fitted["predictions"]["scorecard"][(samples["sample"] == "oot").to_numpy()],
    )


def test_uci_holdout_auc_bar(uci_fit) -> None:
    """On the UCI stand-in snapshots the scorecard reaches the published bar on the holdout."""
    from sklearn.metrics import roc_auc_score

    snaps, samples, fitted = uci_fit
    mask = (samples["sample"] == "oot").to_numpy()
    y = snaps.loc[mask, "is_bad"].astype(int)
    auc = {m: roc_auc_score(y, p[mask]) for m, p in fitted["predictions"].items()}
    assert auc["scorecard"] >= 0.76, auc
    assert auc["boosting"] > auc["logistic"] - 0.01


def test_card_provenance(uci_fit) -> None:
    _, _, fitted = uci_fit
    card = fitted["card"]
    assert (
        card["schema_version"] == "1.0" and len(card["provenance"]["training_data_sha256"]) == 64
    )
    assert card["provenance"]["code_version"].startswith("0.1.0+")
    assert card["scaling"]["factor"] == pytest.approx(28.8539, abs=5e-5)


def _digest(root: Path) -> dict[str, str]:
    out = {}
    for top in ("data/processed", "models", "metrics"):
        for f in sorted((root / top).rglob("*")):
            if f.is_file():
                out[f.relative_to(root).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _stage_root(uci_csv: Path, root: Path, n_rows: int = 5000) -> tuple[list[str], dict]:
    """A scratch project with UCI stand-in snapshots and a frozen copy of the package."""
    (root / "data/processed/uci").mkdir(parents=True)
    shutil.copy2(PROJECT_ROOT / "params.yaml", root / "params.yaml")
    # a frozen copy of the package, so code_version cannot change between runs
    shutil.copytree(
        PROJECT_ROOT / "pipeline", root / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    snaps = uci_snapshot_frame(uci_csv, n_rows=n_rows)
    snaps.to_parquet(root / "data/processed/uci/snapshots.parquet")
    feature_dictionary().to_csv(root / "data/processed/uci/feature_dictionary.csv", index=False)
    env = dag_env(root)
    env["PYTHONPATH"] = str(root)
    return [sys.executable, "-m", "pipeline.train", "--dataset", "uci"], env


def _run(cmd: list[str], root: Path, env: dict) -> None:
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_stage_writes_contract_outputs(uci_csv, tmp_path) -> None:
    """``python -m pipeline.train --dataset uci`` on a scratch root: every output, no pickle."""
    root = tmp_path / "proj"
    cmd, env = _stage_root(uci_csv, root)
    _run(cmd, root, env)
    for rel in (
        "data/processed/uci/samples.parquet",
        "data/processed/uci/boosting_predictions.parquet",
        "models/uci/scorecard.json",
        "models/uci/logistic.json",
        "models/uci/train_report.json",
        "metrics/uci/train.json",
        "logs/uci/train_timing.json",
        "reports/uci/train/sample_design.json",
        "reports/uci/train/manifest.json",
    ):
        assert (root / rel).is_file(), rel
    assert not list(root.rglob("*.pkl")) and not list(root.rglob("*.pickle"))
    boost = pd.read_parquet(root / "data/processed/uci/boosting_predictions.parquet")
    assert list(boost.columns) == ["customer_id", "as_of_date", "pd_boosting"]
    assert len(boost) == 5000 and boost["pd_boosting"].between(0, 1).all()
    samples = pd.read_parquet(root / "data/processed/uci/samples.parquet")
    assert list(samples.columns) == [
        "customer_id",
        "as_of_date",
        "sample",
        "segment",
        "exclusion_reason",
    ]
    design = json.loads((root / "reports/uci/train/sample_design.json").read_text())
    assert design["customer_overlap"]["train&oot"] == 0 and design["snapshots"] == 5000
    card = load_card(root / "models/uci/scorecard.json")
    assert card["dataset"] == "uci" and card["provenance"]["params"]["split"]["method"] == (
        "stratified_holdout"
    )


@pytest.mark.slow
def test_stage_is_byte_identical_across_runs(uci_csv, tmp_path) -> None:
    """Two runs of the stage write the same bytes (timings live apart in reports/)."""
    root = tmp_path / "proj"
    cmd, env = _stage_root(uci_csv, root)
    _run(cmd, root, env)
    first = _digest(root)
    _run(cmd, root, env)
    assert _digest(root) == first


def test_stage_missing_input_is_a_clear_error(tmp_path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    shutil.copy2(PROJECT_ROOT / "params.yaml", root / "params.yaml")
    env = dag_env(root)
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.train", "--dataset", "uci"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "snapshots.parquet: not found" in proc.stderr


def test_out_of_time_fit_on_synthetic_panel_tracks_true_pd(make_params) -> None:
    """On a panel whose PD is a known function of the features, the scorecard's OOT AUC is
    within 0.03 of the AUC of the true PD (the Done-when bar for the synthetic ledger)."""
    from sklearn.metrics import roc_auc_score

    from tests.fixtures.snapshots import synthetic_panel

    snaps = synthetic_panel()
    params = make_params(TrainParams, "train", "synthetic")
    assert params.split.oot_start == "2024-01-31"
    samples = assign_samples(snaps, params.split, params.base.seed)
    assert samples.loc[snaps["label"].eq("immature"), "sample"].eq("excluded").all()
    assert samples.loc[snaps["label"].eq("indeterminate"), "sample"].ne("excluded").any()
    features = {
        "days_beyond_terms_wavg_12m": "numeric",
        "net_collection_rate_12m": "numeric",
        "competitor_share": "numeric",
        "industry": "categorical",
    }
    fitted = train_models(snaps, samples, features, params, "synthetic", {}, code_version())
    oot = (samples["sample"] == "oot").to_numpy() & snaps["is_bad"].notna().to_numpy()
    y = snaps.loc[oot, "is_bad"].astype(int)
    auc_card = roc_auc_score(y, fitted["predictions"]["scorecard"][oot])
    auc_true = roc_auc_score(y, snaps.loc[oot, "true_pd"])
    assert auc_card >= auc_true - 0.03, (auc_card, auc_true)
    kinds = {b["type"] for f in fitted["card"]["features"] for b in f["bins"]}
    assert "category" in kinds and "missing" in kinds


def test_read_snapshots_sorts_only_a_file_out_of_key_order(tmp_path) -> None:
    """A file in key order is returned as read (no file-row order); one out of order is sorted by
    customer and date, with the file row of each sorted row."""
    from pipeline.io import write_parquet
    from pipeline.train import read_fit_rows, read_snapshots

    frame = pd.DataFrame(
        {
            "customer_id": ["C2", "C1", "C2", "C1"],
            "as_of_date": pd.to_datetime(["2024-01-31", "2024-02-29", "2023-12-31", "2024-01-31"]),
            "is_bad": pd.array([0, 1, None, 0], dtype="Int8"),
            "label": ["good", "bad", "immature", "good"],
            "x": [1.0, 2.0, 3.0, 4.0],
        }
    )
    shuffled = tmp_path / "shuffled.parquet"
    write_parquet(frame, shuffled)
    got, order = read_snapshots(shuffled)
    assert order.tolist() == [3, 1, 2, 0]
    assert got["customer_id"].tolist() == ["C1", "C1", "C2", "C2"]
    assert got["label"].tolist() == ["good", "bad", "immature", "good"]
    assert list(got.index) == [0, 1, 2, 3]
    fit = np.array([True, False, False, True])  # sorted rows 0 and 3: file rows 3 and 0
    rows = read_fit_rows(shuffled, ["customer_id", "x"], order, fit)
    assert rows["x"].tolist() == [4.0, 1.0] and list(rows.index) == [0, 3]
    in_order = tmp_path / "in_order.parquet"
    write_parquet(frame.iloc[order], in_order)
    again, none = read_snapshots(in_order)
    assert none is None
    pd.testing.assert_frame_equal(again, got)
    rows = read_fit_rows(in_order, ["customer_id", "x"], None, fit)
    assert rows["x"].tolist() == [4.0, 1.0] and list(rows.index) == [0, 3]


def test_excluded_rows_share_one_string(split) -> None:
    """The ``sample`` column holds one string object per sample name, not one per row."""
    s = assign_samples(panel(60), split(), seed=1)
    assert (s["sample"] == "excluded").sum() > 1
    assert len({id(v) for v in s["sample"]}) <= len(SAMPLES)


def test_attach_predictions_from_arrays_shares_the_keys() -> None:
    from pipeline.development import attach_predictions

    keys = pd.DataFrame(
        {"customer_id": ["C1", "C2"], "as_of_date": pd.to_datetime(["2024-01-31"] * 2)}
    )
    pred = {"scorecard": np.array([0.1, 0.2]), "logistic": np.array([0.3, 0.4])}
    pred["boosting"] = np.array([0.5, 0.6])
    fitted: dict = {}
    attach_predictions(fitted, keys, pred)
    assert fitted["boosting"]["pd_boosting"].tolist() == [0.5, 0.6]
    assert list(fitted["boosting"].columns) == ["customer_id", "as_of_date", "pd_boosting"]
    assert np.shares_memory(fitted["boosting"]["customer_id"].to_numpy(), keys["customer_id"])
    assert list(fitted["predictions"]) == ["scorecard", "logistic", "boosting"]
