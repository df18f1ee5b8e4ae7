"""Tests of the evaluate stage on small fabricated inputs (a tiny card following
docs/architecture.md).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipeline import comparison, evaluate
from pipeline.config import Paths, PipelineError
from pipeline.io import write_json, write_parquet
from pipeline.params import ParamsError
from pipeline.params.evaluate import EvaluateParams

# the two train.split fields evaluate reads (a stand-in for TrainParams.split without a start date)
OOT_SPLIT = SimpleNamespace(method="out_of_time", oot_start=None)
HOLDOUT_SPLIT = SimpleNamespace(method="stratified_holdout", oot_start=None)


@pytest.fixture(scope="session")
def eval_params(make_params) -> EvaluateParams:
    """params.yaml's evaluate block with a faster bootstrap and five bands."""
    return make_params(
        EvaluateParams, "evaluate", "synthetic", {"bootstrap_resamples": 200, "n_bands": 5}
    )


FACTOR, OFFSET = 20 / math.log(2), 600 - 20 / math.log(2) * math.log(50)


def tiny_card() -> dict:
    """Two characteristics; points fall with days beyond terms and rise with the net collection
    rate.
    """

    def rng(lower, upper, points):
        return {"type": "range", "lower": lower, "upper": upper, "points": points}

    return {
        "schema_version": "1.0",
        "kind": "woe_logistic_scorecard",
        "dataset": "tiny",
        "scaling": {
            "base_score": 600,
            "base_odds": 50,
            "pdo": 20,
            "factor": FACTOR,
            "offset": OFFSET,
        },
        "intercept": -1.0,
        "features": [
            {
                "name": "days_beyond_terms_max_12m",
                "dtype": "numeric",
                "reason_code": "R01",
                "reason_text": "Worst days beyond terms is high",
                "baseline_points": 300,
                "unseen_points": 200,
                "bins": [
                    rng(None, 10, 300),
                    rng(10, 30, 260),
                    rng(30, 60, 220),
                    rng(60, None, 180),
                    {"type": "missing", "points": 240},
                ],
            },
            {
                "name": "net_collection_rate_12m",
                "dtype": "numeric",
                "reason_code": "R02",
                "reason_text": "Net collection rate is low",
                "baseline_points": 90,
                "unseen_points": 50,
                "bins": [
                    rng(None, 0.9, 50),
                    rng(0.9, 0.97, 70),
                    rng(0.97, None, 90),
                    {"type": "missing", "points": 60},
                ],
            },
        ],
        "reason_codes": {"top_n": 4},
    }


def tiny_logistic() -> dict:
    return {
        "schema_version": "1.0",
        "kind": "raw_logistic",
        "intercept": -2.0,
        "features": [
            {
                "name": "days_beyond_terms_max_12m",
                "clip_lower": 0.0,
                "clip_upper": 120.0,
                "impute_value": 5.0,
                "mean": 20.0,
                "scale": 20.0,
                "coefficient": 0.9,
            },
            {
                "name": "net_collection_rate_12m",
                "clip_lower": 0.5,
                "clip_upper": 1.0,
                "impute_value": 0.98,
                "mean": 0.95,
                "scale": 0.05,
                "coefficient": -0.4,
            },
        ],
    }


def fabricate(
    root: Path, dataset: str = "tiny", n_customers: int = 300, seed: int = 7
) -> pd.DataFrame:
    """Snapshots (two OOT dates, one development date), samples, boosting PDs, a card and a
    challenger.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for date in ("2024-06-30", "2024-07-31", "2024-08-31"):
        dbt = rng.gamma(1.5, 15.0, n_customers)
        ncr = np.clip(1 - rng.gamma(1.0, 0.04, n_customers), 0, 1)
        logit = -3.2 + 0.04 * dbt - 8 * (ncr - 0.96)
        pd_true = 1 / (1 + np.exp(-logit))
        bad = (rng.random(n_customers) < pd_true).astype(int)
        grade = np.select([dbt < 10, dbt < 25, dbt < 50], ["A", "B", "C"], "D").astype(object)
        rows.append(
            pd.DataFrame(
                {
                    "customer_id": [f"c{i:04d}" for i in range(n_customers)],
                    "as_of_date": pd.Timestamp(date),
                    "is_bad": pd.array(bad, dtype="Int8"),
                    "exposure": rng.gamma(2.0, 5000.0, n_customers),
                    "days_beyond_terms_max_12m": dbt,
                    "net_collection_rate_12m": ncr,
                    "rule_grade": grade,
                    "rule_subgrade": np.where(grade == "D", "DAB", "AAA"),
                    "true_pd": pd_true,
                }
            )
        )
    snaps = pd.concat(rows, ignore_index=True)
    snaps.loc[[5, n_customers + 100], "rule_grade"] = "UNDEFINED"
    snaps.loc[[6, 7], "is_bad"] = pd.NA
    snaps.loc[[8], "exposure"] = -50.0  # a credit balance counts as zero exposure
    snaps.loc[[9], "days_beyond_terms_max_12m"] = np.nan
    paths = Paths(dataset, root)
    write_parquet(snaps, paths.processed / "snapshots.parquet")
    sample = np.where(snaps["as_of_date"] >= pd.Timestamp("2024-07-31"), "oot", "train")
    write_parquet(
        snaps[["customer_id", "as_of_date"]].assign(sample=sample),
        paths.processed / "samples.parquet",
    )
    noisy = 1 / (
        1
        + np.exp(
            -(np.log(snaps["true_pd"] / (1 - snaps["true_pd"])) + rng.normal(0, 0.3, len(snaps)))
        )
    )
    write_parquet(
        snaps[["customer_id", "as_of_date"]].assign(pd_boosting=noisy),
        paths.processed / "boosting_predictions.parquet",
    )
    write_json(tiny_card(), paths.models / "scorecard.json")
    write_json(tiny_logistic(), paths.models / "logistic.json")
    return snaps


OUTPUTS = [
    "metrics/{ds}/evaluate.json",
    "reports/{ds}/evaluate/comparison.md",
    "reports/{ds}/evaluate/evaluate_gains.csv",
    *[
        f"reports/{{ds}}/evaluate/evaluate_{n}.{ext}"
        for n in ("roc", "ks", "score_distribution", "bad_rate_by_band")
        for ext in ("csv", "png")
    ],
    "reports/{ds}/evaluate/evaluate_migration.png",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, eval_params) -> tuple[Path, pd.DataFrame, dict]:
    root = tmp_path_factory.mktemp("evaluate")
    snaps = fabricate(root)
    result = evaluate.run("tiny", root=root, params=eval_params, split=OOT_SPLIT)
    return root, snaps, result


def test_stage_writes_every_output(tiny_run):
    root, _, _ = tiny_run
    for rel in OUTPUTS:
        path = root / rel.format(ds="tiny")
        assert path.is_file() and path.stat().st_size > 0, rel
    assert (root / "reports/tiny/evaluate/evaluate_roc.png").read_bytes()[:4] == b"\x89PNG"


def test_sample_counts_and_auc_agree_with_sklearn(tiny_run):
    root, snaps, result = tiny_run
    oot = snaps[snaps["as_of_date"] >= pd.Timestamp("2024-07-31")]
    kept = oot[oot["is_bad"].notna() & (oot["rule_grade"] != "UNDEFINED")]
    s = result["sample"]
    assert (
        s["oot_rows"] == 600 and s["immature_or_indeterminate"] == 0
    )  # rows 6, 7 are development rows
    assert s["rule_grade_undefined"] == 1 and s["compared"] == len(kept) == 599
    assert result["methods"]["boosting"]["count"]["auc"] == pytest.approx(
        roc_auc_score(
            kept["is_bad"].astype(int),
            kept.merge(pd.read_parquet(root / "data/processed/tiny/boosting_predictions.parquet"))[
                "pd_boosting"
            ],
        )
    )
    rule_rank = kept["rule_grade"].map({"A": 1, "B": 2, "C": 3, "D": 4})
    assert result["methods"]["rules"]["count"]["auc"] == pytest.approx(
        roc_auc_score(kept["is_bad"].astype(int), rule_rank)
    )
    exposure = kept["exposure"].clip(lower=0)
    assert result["methods"]["rules"]["exposure"]["auc"] == pytest.approx(
        roc_auc_score(kept["is_bad"].astype(int), rule_rank, sample_weight=exposure)
    )
    assert "true_pd" in result
    everything = result["models_all_matured_oot"]
    boost = pd.read_parquet(root / "data/processed/tiny/boosting_predictions.parquet")
    all_oot = oot.merge(boost)
    assert everything["n"] == 600
    assert everything["boosting"] == pytest.approx(
        roc_auc_score(all_oot["is_bad"].astype(int), all_oot["pd_boosting"])
    )
    saved = json.loads((root / "metrics/tiny/evaluate.json").read_text())
    assert saved["paired_tests"]["scorecard_vs_rules"]["count"]["auc_a"] == pytest.approx(
        saved["methods"]["scorecard"]["count"]["auc"]
    )


def test_migration_and_swap_set_are_consistent(tiny_run):
    _, _, result = tiny_run
    d = result["decision"]
    swap = d["swap_set"]
    assert sum(v["count"] for v in swap.values()) == result["sample"]["compared"]
    n = result["sample"]["compared"]
    rules_accept = (
        swap["accepted by both"]["count"] + swap["accepted by champion only (swap-out)"]["count"]
    )
    card_accept = (
        swap["accepted by both"]["count"] + swap["accepted by challenger only (swap-in)"]["count"]
    )
    assert rules_accept / n == pytest.approx(d["approval_rate_rules"])
    assert card_accept / n == pytest.approx(d["approval_rate_scorecard"])
    assert (
        abs(d["approval_rate_rules"] - d["approval_rate_scorecard"]) < 0.1
    )  # ties in a 2-feature card
    mig = d["migration"]
    assert mig["upgraded"]["count"] + mig["same"]["count"] + mig["downgraded"]["count"] == n


def test_report_is_readable(tiny_run):
    root, _, result = tiny_run
    text = (root / "reports/tiny/evaluate/comparison.md").read_text()
    for heading in (
        "Which method ranks risk better",
        "Bad rate per grade",
        "Migration",
        "Swap set",
        "What changes for which customers",
    ):
        assert heading in text
    assert "out-of-time sample" in text and "True PD of the generator" in text
    assert "R01" in text or "R02" in text
    plots = pd.read_csv(root / "reports/tiny/evaluate/evaluate_roc.csv")
    assert list(plots.columns) == [
        "fpr",
        "tpr_scorecard",
        "tpr_logistic",
        "tpr_boosting",
        "tpr_rules",
    ]
    assert plots.iloc[0, 1:].ge(0).all() and (plots.iloc[-1, 1:] == 1).all()


def test_outputs_are_byte_identical_across_runs(tiny_run, tmp_path, eval_params):
    root, _, _ = tiny_run
    fabricate(tmp_path)
    evaluate.run("tiny", root=tmp_path, params=eval_params, split=OOT_SPLIT)
    for rel in OUTPUTS:
        first = (root / rel.format(ds="tiny")).read_bytes()
        second = (tmp_path / rel.format(ds="tiny")).read_bytes()
        if rel.startswith("metrics"):  # the code version hashes pipeline/*.py, edited concurrently
            first, second = (re.sub(rb'"code_version": "[^"]*"', b"", x) for x in (first, second))
        assert first == second, rel


def test_holdout_is_named_as_such(tmp_path, eval_params):
    fabricate(tmp_path, dataset="tinyholdout", n_customers=120)
    result = evaluate.run("tinyholdout", root=tmp_path, params=eval_params, split=HOLDOUT_SPLIT)
    assert result["sample"]["kind"] == "stratified_holdout"
    assert (
        "stratified hold-out"
        in (tmp_path / "reports/tinyholdout/evaluate/comparison.md").read_text()
    )


# ------------------------------------------------------------------------------------ pure parts
def _mini() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    keys = pd.DataFrame({"customer_id": list("abcdef"), "as_of_date": pd.Timestamp("2024-08-31")})
    snaps = keys.assign(
        is_bad=pd.array([0, 0, 1, 1, 0, pd.NA], dtype="Int8"),
        exposure=[1.0, np.nan, 3.0, 4.0, 5.0, 6.0],
        rule_grade=["A", "B", "D", "UNDEFINED", None, "C"],
    )
    samples = keys.assign(sample="oot")
    boosting = keys.assign(pd_boosting=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    return snaps, samples, boosting


def test_undefined_rule_exclude_and_worst():
    snaps, samples, boosting = _mini()
    frame, counts = comparison.oot_sample(snaps, samples, boosting, "exclude")
    # f is immature; d (UNDEFINED) and e (missing grade = UNDEFINED) are excluded
    assert counts == {
        "oot_rows": 6,
        "outside_population": 0,
        "outside_population_by_reason": {},
        "immature_or_indeterminate": 1,
        "rule_grade_undefined": 2,
        "compared": 3,
    }
    assert frame["risk_rules"].tolist() == [1.0, 2.0, 4.0]
    assert frame["weight"].tolist() == [1.0, 0.0, 3.0]
    frame, _ = comparison.oot_sample(snaps, samples, boosting, "worst")
    assert frame["rule_grade_used"].tolist() == ["A", "B", "D", "D", "D"]
    with pytest.raises(PipelineError, match="rule_undefined"):
        comparison.oot_sample(snaps, samples, boosting, "ignore")


def test_oot_sample_by_position_equals_the_join_on_keys():
    """Snapshots and predictions in the samples' row order are read off by position; in another
    order they are joined on the keys: the same frame and counts either way. Sample: a, c, d, e, f
    (b is train); f is immature; d and e are UNDEFINED, ranked D."""
    snaps, samples, boosting = _mini()
    samples = samples.assign(sample=["oot", "train", "oot", "oot", "oot", "oot"])
    frame, counts = comparison.oot_sample(snaps, samples, boosting, "worst")
    assert frame["customer_id"].tolist() == ["a", "c", "d", "e"]
    assert frame["rule_grade_used"].tolist() == ["A", "D", "D", "D"]
    assert frame["pd_boosting"].tolist() == [0.1, 0.3, 0.4, 0.5]
    assert frame["weight"].tolist() == [1.0, 3.0, 4.0, 5.0]
    assert counts["oot_rows"] == 5 and counts["immature_or_indeterminate"] == 1
    assert counts["rule_grade_undefined"] == 2 and counts["compared"] == 4
    shuffled_snaps = snaps.iloc[[3, 0, 5, 1, 4, 2]].reset_index(drop=True)
    shuffled_boosting = boosting.iloc[::-1].reset_index(drop=True)
    for other_snaps, other_boosting in (
        (shuffled_snaps, boosting),
        (snaps, shuffled_boosting),
        (shuffled_snaps, shuffled_boosting),
    ):
        got, got_counts = comparison.oot_sample(other_snaps, samples, other_boosting, "worst")
        pd.testing.assert_frame_equal(got, frame)
        assert got_counts == counts


def test_model_scores_keep_the_named_columns_and_add_the_scores():
    """Scores by hand from tiny_card: 300 + 90, 220 + 50, missing 240 + 70; the first reason is
    the largest shortfall (none when every feature has its baseline points)."""
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "days_beyond_terms_max_12m": [5.0, 40.0, np.nan],
            "net_collection_rate_12m": [0.99, 0.8, 0.95],
        }
    )
    got = comparison.model_scores(frame, tiny_card(), tiny_logistic(), keep=["customer_id"])
    assert list(got.columns) == ["customer_id", *comparison.MODEL_COLUMNS]
    assert got["score"].tolist() == [390, 270, 310]
    assert got["reason_1"].tolist() == [None, "R01", "R01"]
    pd_card = [1 / (1 + math.exp((s - OFFSET) / FACTOR)) for s in (390, 270, 310)]
    assert got["pd_scorecard"].tolist() == pytest.approx(pd_card)
    logit = [
        -2.0 + 0.9 * (5 - 20) / 20 - 0.4 * (0.99 - 0.95) / 0.05,
        -2.0 + 0.9 * (40 - 20) / 20 - 0.4 * (0.8 - 0.95) / 0.05,
        -2.0 + 0.9 * (5 - 20) / 20 - 0.4 * (0.95 - 0.95) / 0.05,
    ]
    assert got["pd_logistic"].tolist() == pytest.approx([1 / (1 + math.exp(-z)) for z in logit])
    risks = comparison.add_model_scores(
        frame.assign(pd_boosting=0.2), tiny_card(), tiny_logistic()
    )
    assert risks["risk_scorecard"].tolist() == [-390.0, -270.0, -310.0]
    assert risks["risk_logistic"].tolist() == got["pd_logistic"].tolist()


def test_bad_inputs_name_file_row_and_column():
    snaps, samples, boosting = _mini()
    with pytest.raises(PipelineError, match=r"row 1 of the OOT sample .*'b'.*column rule_grade"):
        comparison.oot_sample(
            snaps.assign(rule_grade=["A", "E", "D", "A", "B", "C"]), samples, boosting, "exclude"
        )
    with pytest.raises(PipelineError, match="samples.parquet: row 6.*duplicated key"):
        comparison.oot_sample(snaps, pd.concat([samples, samples.iloc[[2]]]), boosting, "exclude")
    with pytest.raises(PipelineError, match="boosting_predictions.parquet.*pd_boosting"):
        comparison.oot_sample(snaps, samples, boosting.iloc[:2], "exclude")
    extra = pd.concat(
        [
            samples,
            pd.DataFrame(
                {
                    "customer_id": ["z"],
                    "as_of_date": [pd.Timestamp("2024-08-31")],
                    "sample": ["oot"],
                }
            ),
        ],
        ignore_index=True,
    )
    with pytest.raises(PipelineError, match="snapshots.parquet.*no snapshot"):
        comparison.oot_sample(snaps, extra, boosting, "exclude")


def test_missing_input_file_is_a_pipeline_error(tmp_path, eval_params):
    with pytest.raises(PipelineError, match="samples.parquet|snapshots.parquet"):
        evaluate.run("tiny", root=tmp_path, params=eval_params, split=OOT_SPLIT)


def test_matched_grades_copy_rule_shares():
    # 10 cases: rules give 4 A, 3 B, 2 C, 1 D; the best 4 scores become A, the next 3 B, ...
    frame = pd.DataFrame(
        {
            "rule_grade_used": list("AAAABBBCCD"),
            "risk_scorecard": -np.array([500, 490, 480, 470, 460, 450, 440, 430, 420, 410.0]),
        }
    )
    frame = frame.sample(frac=1.0, random_state=3)
    grades = comparison.matched_grades(frame)
    assert grades.sort_index().tolist() == list("AAAABBBCCD")
    assert grades.value_counts().to_dict() == frame["rule_grade_used"].value_counts().to_dict()


def test_segments_samples_and_clustered_intervals(tmp_path, eval_params):
    """With a segment column and an oot_known sample: the headline is oot x current, delinquent
    and oot_known are reported on their own, rows outside the population are counted by reason,
    the true PD is compared on the rows that have one, and a second run gives identical figures."""
    snaps = fabricate(tmp_path, n_customers=300)
    paths = Paths("tiny", tmp_path)
    dbt = snaps["days_beyond_terms_max_12m"].fillna(0)
    segment = np.where(dbt > 60, "delinquent", "current").astype(object)
    segment[::101] = None
    snaps = snaps.assign(
        segment=segment,
        label=np.where(pd.isna(segment), "in_default", "good"),
        true_pd=snaps["true_pd"].where(np.arange(len(snaps)) % 7 != 0),
    )
    write_parquet(snaps, paths.processed / "snapshots.parquet")
    samples = pd.read_parquet(paths.processed / "samples.parquet")
    known = (samples["sample"] == "oot") & (samples["customer_id"].str[1:].astype(int) >= 200)
    samples.loc[known, "sample"] = "oot_known"
    write_parquet(samples, paths.processed / "samples.parquet")

    result = evaluate.run("tiny", root=tmp_path, params=eval_params, split=OOT_SPLIT)
    s = result["sample"]
    oot = samples[samples["sample"] == "oot"].merge(snaps, on=["customer_id", "as_of_date"])
    assert s["outside_population"] == int(oot["segment"].isna().sum()) > 0
    assert s["outside_population_by_reason"] == {"in_default": s["outside_population"]}
    head = oot[(oot["segment"] == "current") & (oot["rule_grade"] != "UNDEFINED")]
    assert s["compared"] == len(head) and s["customers"] == head["customer_id"].nunique()
    cells = {(c["sample"], c["segment"]): c for c in result["segments"]}
    assert set(cells) == {
        ("oot", "current"),
        ("oot", "delinquent"),
        ("oot_known", "current"),
        ("oot_known", "delinquent"),
    }
    assert (
        cells[("oot", "current")]["headline"] and not cells[("oot_known", "current")]["headline"]
    )
    assert "known customers, later dates" in cells[("oot_known", "current")]["sample_label"]
    card = result["methods"]["scorecard"]["count"]
    assert card["auc"] == pytest.approx(cells[("oot", "current")]["methods"]["scorecard"]["auc"])
    assert card["ci_low"] < card["auc"] < card["ci_high"]
    assert card["customers"] == s["customers"] and result["inference"]["n_resamples"] == 200
    assert "se_delong_independent" in card and "ci_low_delong_independent" in card
    truth = result["true_pd"]["count"]
    with_truth = head[head["true_pd"].notna()]
    assert truth["n_rows_with_truth"] == len(with_truth)
    assert truth["auc"] == pytest.approx(
        roc_auc_score(with_truth["is_bad"].astype(int), with_truth["true_pd"])
    )
    again = evaluate.run("tiny", root=tmp_path, params=eval_params, split=OOT_SPLIT)
    for key in ("segments", "paired_tests", "methods"):  # NaN-safe comparison via JSON text
        assert json.dumps(again[key], sort_keys=True, default=str) == json.dumps(
            result[key], sort_keys=True, default=str
        )


def test_rules_to_scorecard_migration_by_hand():
    """Rule A -> card B (worse, 10 cases, 2 bads), B -> A (better, 30, 3), C -> C (same, 60, 12)."""
    migration = pd.DataFrame(
        {
            "grade_from": ["A", "B", "C"],
            "grade_to": ["B", "A", "C"],
            "count": [10, 30, 60],
            "bads": [2, 3, 12],
        }
    )
    out = comparison.rules_to_scorecard_migration(migration)
    assert out["upgraded"] == {"count": 30, "share": 0.3, "bad_rate": 0.1}
    assert out["downgraded"] == {"count": 10, "share": 0.1, "bad_rate": 0.2}
    assert out["same"] == {"count": 60, "share": 0.6, "bad_rate": 0.2}


@pytest.mark.parametrize(
    "override, key, rule",
    [
        ({"ci_level": 1.0}, "evaluate.ci_level", "in_range"),
        ({"rule_reject_grades": ["E"]}, "evaluate.rule_reject_grades", "letter_grade"),
        (
            {"rule_reject_grades": ["A", "B", "C", "D"]},
            "evaluate.rule_reject_grades",
            "some_accepted",
        ),
        ({"rule_undefined": "ignore"}, "evaluate.rule_undefined", "one_of"),
        ({"n_bands": 1}, "evaluate.n_bands", "at_least"),
        ({"bootstrap_resamples": 5}, "evaluate.bootstrap_resamples", "at_least"),
    ],
)
def test_bad_evaluate_params_name_the_key(make_params, override, key, rule):
    with pytest.raises(ParamsError, match=rf"^params\.yaml: key {re.escape(key)}: rule {rule}: "):
        make_params(EvaluateParams, "evaluate", "synthetic", override)


def test_evaluated_rows_keep_the_oot_samples_and_their_aligned_predictions():
    from pipeline.evaluate import evaluated_rows

    keys = {"customer_id": ["a", "a", "b", "c"], "as_of_date": pd.to_datetime(["2024-01-31"] * 4)}
    samples = pd.DataFrame({**keys, "sample": ["train", "oot", "oot_known", "calibration"]})
    boosting = pd.DataFrame({**keys, "pd_boosting": [0.1, 0.2, 0.3, 0.4]})
    got = evaluated_rows(samples, boosting)
    assert got["samples"]["sample"].tolist() == ["oot", "oot_known"]
    assert got["boosting"]["pd_boosting"].tolist() == [0.2, 0.3]
    shuffled = boosting.iloc[::-1].reset_index(drop=True)  # another order: every prediction kept
    pd.testing.assert_frame_equal(evaluated_rows(samples, shuffled)["boosting"], shuffled)
