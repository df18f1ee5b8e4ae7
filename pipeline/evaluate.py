"""Stage ``evaluate``: scorecard vs logistic challenger vs boosting reference vs rule grading, out
of time.

Headline: the *current* segment of the ``oot`` sample (matured goods and bads only; for a dataset
with one observation point it is a stratified holdout). Every method gets AUC, Gini and KS, by
count and exposure-weighted (weight = open balance at the as-of date, negative or missing balances
count 0), and a gains table by decile; the scorecard is compared with each other method by a
paired test. Intervals and paired tests come from a bootstrap over customers
(``pipeline.metrics.cluster_bootstrap``: each resample keeps all snapshots of a drawn customer,
``evaluate.bootstrap_resamples`` resamples, seed ``base.seed``), because monthly snapshots of one
customer are not independent; the DeLong / Hanley-McNeil figures, which assume they are, are kept
beside them as ``*_independent``. The same figures are reported per sample (``oot``; ``oot_known``
= known customers, later dates) and per delinquency segment (``current``, ``delinquent``; without a
``segment`` column every row is current; rows with no segment are outside the population and
counted by reason).

The rule grading is an ordinal score A < B < C < D in risk. ``UNDEFINED`` (no grade from the rules)
is, by ``evaluate.rule_undefined``: ``exclude`` - left out of the comparison sample for every
method so that all methods are compared on the same cases (the report counts them) - or ``worst`` -
ranked with D. The rules reject ``evaluate.rule_reject_grades`` (default D, the veto grade); the
scorecard is cut into A-D with the same shares as the rule grades, so its A-C accept exactly the
rules' approval rate (up to tied scores) and the migration matrix and the swap set describe the
same decision.

Outputs: metrics/<ds>/evaluate.json, reports/<ds>/evaluate/evaluate_*.csv|png, reports/<ds>/evaluate/comparison.md and
reports/<ds>/evaluate/evaluate_gains.csv.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import evaluate_report as report
from pipeline import metrics
from pipeline.challenger import predict_pd
from pipeline.config import (
    PROJ_ROOT,
    Paths,
    PipelineError,
    require_files,
    run_stage,
    stage_argparser,
    stage_params,
)
from pipeline.io import code_version, read_json, write_csv, write_json, write_text
from pipeline.scorecard import load_card, score_frame
from pipeline.sufficiency import no_oot_error

log = logging.getLogger("pipeline.evaluate")

GRADES = ("A", "B", "C", "D")
UNDEFINED = "UNDEFINED"
METHODS = {  # method -> label for people
    "scorecard": "WoE points scorecard",
    "logistic": "Logistic challenger (raw features)",
    "boosting": "Gradient boosting (benchmark only)",
    "rules": "Rule grading A-D",
}
SNAPSHOT_COLUMNS = ("customer_id", "as_of_date", "is_bad", "exposure", "rule_grade")


# ---------------------------------------------------------------------------------------- sample
def _require(frame: pd.DataFrame, columns: tuple[str, ...] | list[str], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PipelineError(
            f"{path}: column(s) {', '.join(missing)} missing (rule: evaluate input contract, "
            "docs/architecture.md); rerun the stage that writes this file"
        )


def oot_sample(
    snapshots: pd.DataFrame,
    samples: pd.DataFrame,
    boosting: pd.DataFrame,
    rule_undefined: str = "exclude",
    sample_name: str = "oot",
    split: dict | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Matured goods and bads of one sample (``oot`` by default, or ``oot_known``) with the
    boosting PD, the ordinal rule score and the delinquency segment attached.

    Returns the frame (with ``risk_rules`` = 1..4, ``weight`` = exposure ≥ 0 and ``segment``) and
    counts of what was left out. Without a ``segment`` column every row is ``current``; rows whose
    segment is missing are outside the observation population (e.g. already in default) and are
    counted by reason. A key in the sample with no snapshot or no boosting prediction is an input
    error."""
    keys = ["customer_id", "as_of_date"]
    for name, table in (
        ("snapshots", snapshots),
        ("samples", samples),
        ("boosting_predictions", boosting),
    ):
        dup = table.duplicated(keys)
        if dup.any():
            raise PipelineError(
                f"{name}.parquet: row {int(np.flatnonzero(dup.to_numpy())[0])}, columns "
                f"customer_id/as_of_date: duplicated key (rule: one row per customer and date)"
            )
    oot = samples.loc[samples["sample"] == sample_name, keys]
    if oot.empty:
        if sample_name == "oot":
            raise no_oot_error(snapshots, split or {})
        raise PipelineError(
            f"samples.parquet: no row with sample == '{sample_name}'; rerun the train stage"
        )
    frame = oot.merge(snapshots, on=keys, how="left", indicator=True, validate="one_to_one")
    lost = frame["_merge"] != "both"
    if lost.any():
        row = frame.loc[lost, keys].iloc[0].to_dict()
        raise PipelineError(
            f"snapshots.parquet: OOT key {row} (row {int(np.flatnonzero(lost)[0])} of the OOT "
            "sample) has no snapshot; samples.parquet and snapshots.parquet are out of step"
        )
    frame = frame.drop(columns="_merge")
    counts: dict[str, Any] = {"oot_rows": int(len(frame))}
    if "segment" in frame.columns:
        outside = frame["segment"].isna()
        reason = (
            frame.get(
                "exclusion_reason", frame.get("label", pd.Series("segment missing", frame.index))
            )
            .astype("string")
            .fillna("segment missing")
        )
        counts["outside_population"] = int(outside.sum())
        counts["outside_population_by_reason"] = {
            str(k): int(v) for k, v in reason[outside].value_counts().sort_index().items()
        }
        frame = frame[~outside].copy()
        frame["segment"] = frame["segment"].astype(str)
    else:
        counts["outside_population"] = 0
        counts["outside_population_by_reason"] = {}
        frame["segment"] = "current"
    n_population = int(len(frame))
    frame = frame[frame["is_bad"].notna()].copy()
    counts["immature_or_indeterminate"] = n_population - int(len(frame))
    frame = frame.merge(
        boosting[[*keys, "pd_boosting"]], on=keys, how="left", validate="one_to_one"
    )
    if frame["pd_boosting"].isna().any():
        row = frame.loc[frame["pd_boosting"].isna(), keys].iloc[0].to_dict()
        raise PipelineError(
            f"boosting_predictions.parquet: no pd_boosting for OOT key {row} "
            "(column pd_boosting, rule: every OOT row is predicted); rerun the train stage"
        )
    grade = frame["rule_grade"].astype("string").fillna(UNDEFINED)
    unknown = ~grade.isin([*GRADES, UNDEFINED])
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        key = frame[keys].iloc[i].to_dict()
        raise PipelineError(
            f"snapshots.parquet: row {i} of the OOT sample {key}, column rule_grade: "
            f"{grade.iloc[i]!r} is not one of {', '.join(GRADES)} or {UNDEFINED}"
        )
    undefined = grade == UNDEFINED
    counts["rule_grade_undefined"] = int(undefined.sum())
    if rule_undefined == "exclude":
        frame, grade = frame[~undefined].copy(), grade[~undefined]
    elif rule_undefined == "worst":
        grade = grade.where(~undefined, "D")
    else:
        raise PipelineError(
            f"params.yaml evaluate.rule_undefined: {rule_undefined!r} is not exclude|worst"
        )
    frame["rule_grade_used"] = grade.astype(str).to_numpy()
    frame["risk_rules"] = (
        frame["rule_grade_used"].map({g: i + 1 for i, g in enumerate(GRADES)}).astype(float)
    )
    frame["is_bad"] = frame["is_bad"].astype(int)
    frame["weight"] = pd.to_numeric(frame["exposure"], errors="coerce").fillna(0.0).clip(lower=0.0)
    counts["compared"] = int(len(frame))
    return frame.reset_index(drop=True), counts


def add_model_scores(frame: pd.DataFrame, card: dict, logistic: dict) -> pd.DataFrame:
    """Scorecard score, PD and first reason code, and the logistic PD; ``risk_<method>`` = higher
    is riskier.
    """
    scored = score_frame(card, frame)
    out = frame.copy()
    out["score"] = scored["score"].to_numpy()
    out["pd_scorecard"] = scored["pd_model"].to_numpy()
    out["reason_1"] = scored["reason_1"].to_numpy() if "reason_1" in scored else None
    out["pd_logistic"] = predict_pd(logistic, frame)
    out["risk_scorecard"] = -out["score"].astype(float)
    out["risk_logistic"] = out["pd_logistic"]
    out["risk_boosting"] = out["pd_boosting"].astype(float)
    return out


# ------------------------------------------------------------------------------------ comparison
def _safe(fn, *args, **kwargs) -> dict[str, Any] | None:
    """A metric that cannot be computed (e.g. no bad exposure) is reported as null."""
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        log.warning("metric skipped: %s", exc)
        return None


RENAMED_INDEPENDENT = {
    "se_delong": "se_delong_independent",
    "ci_low": "ci_low_delong_independent",
    "ci_high": "ci_high_delong_independent",
    "gini_ci_low": "gini_ci_low_delong_independent",
    "gini_ci_high": "gini_ci_high_delong_independent",
    "ci_low_hanley_mcneil": "ci_low_hanley_mcneil_independent",
    "ci_high_hanley_mcneil": "ci_high_hanley_mcneil_independent",
    "se_hanley_mcneil": "se_hanley_mcneil_independent",
}
PAIRS = (("scorecard", "rules"), ("scorecard", "logistic"), ("scorecard", "boosting"))


def inference(
    frame: pd.DataFrame,
    risk_cols: dict[str, str],
    level: float,
    n_resamples: int,
    seed: int,
    weighted: bool = False,
    pairs: tuple[tuple[str, str], ...] = PAIRS,
) -> dict[str, Any] | None:
    """Cluster-bootstrap inference (customers resampled, pipeline.metrics.cluster_bootstrap) for
    several scores on the same rows, with the independence-assuming DeLong and Hanley-McNeil
    figures kept beside it under ``*_independent`` names. ``None`` when the rows lack a bad or a
    good (or positive weight).
    """
    w = frame["weight"].to_numpy() if weighted else None
    boot = _safe(
        metrics.cluster_bootstrap,
        frame["is_bad"].to_numpy(),
        {m: frame[c].to_numpy(dtype=float) for m, c in risk_cols.items()},
        frame["customer_id"].to_numpy(),
        w,
        [p for p in pairs if p[0] in risk_cols and p[1] in risk_cols],
        n_resamples,
        seed,
        level,
    )
    if boot is None:
        return None
    out: dict[str, Any] = {"scores": {}, "pairs": {}}
    for m, c in risk_cols.items():
        classic = metrics.auc_with_ci(frame["is_bad"], frame[c], w, level)
        classic = {RENAMED_INDEPENDENT.get(k, k): v for k, v in classic.items()}
        out["scores"][m] = {
            **classic,
            **boot["scores"][m],
            "customers": boot["n_customers"],
            "ci_method": "cluster bootstrap (customers), percentile",
        }
    for a, b in pairs:
        key = f"{a}_vs_{b}"
        if key not in boot["pairs"]:
            continue
        dl = _safe(
            metrics.delong_paired_test,
            frame["is_bad"],
            frame[risk_cols[a]],
            frame[risk_cols[b]],
            w,
            level,
        )
        out["pairs"][key] = {
            **boot["pairs"][key],
            "test": "cluster bootstrap (customers): z = difference / bootstrap SE",
            "delong_independent": None
            if dl is None
            else {k: dl[k] for k in ("se", "z", "p_value", "ci_low", "ci_high")},
        }
    out["bootstrap"] = {
        k: boot[k]
        for k in ("method", "n_resamples", "n_resamples_used", "seed", "n_customers", "n", "n_bad")
    }
    return out


def discrimination_block(
    frame: pd.DataFrame, risk_cols: dict[str, str], level: float, n_resamples: int, seed: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Per score ``{count: ..., exposure: ...}``, per pair ``{count, exposure}``, and the
    bootstrap settings, for one set of rows."""
    by_basis = {
        basis: inference(frame, risk_cols, level, n_resamples, seed, weighted)
        for basis, weighted in (("count", False), ("exposure", True))
    }
    methods = {
        m: {b: (r["scores"][m] if r else None) for b, r in by_basis.items()} for m in risk_cols
    }
    pairs = {
        f"{a}_vs_{b}": {
            basis: (r["pairs"].get(f"{a}_vs_{b}") if r else None) for basis, r in by_basis.items()
        }
        for a, b in PAIRS
        if a in risk_cols and b in risk_cols
    }
    settings = (by_basis["count"] or {}).get("bootstrap", {})
    return methods, pairs, settings


HOLDOUT_LABEL = "customer-disjoint holdout at the single observation date (not out of time)"
SAMPLE_LABELS = {
    "oot": "out of time (dates on/after the out-of-time start)",
    "oot_known": "known customers, later dates (development customers after oot_start)",
}


def segment_cells(
    frames: dict[str, pd.DataFrame],
    level: float,
    n_resamples: int,
    seed: int,
    holdout: bool = False,
) -> list[dict[str, Any]]:
    """Count-basis figures with clustered CIs per sample (oot, oot_known) x segment (current,
    delinquent), with the true-PD ceiling on the same rows where every row has one."""
    cells = []
    for sample_name, frame in frames.items():
        for segment in sorted(frame["segment"].unique(), key=lambda x: (x != "current", x)):
            part = frame[frame["segment"] == segment]
            cols = {m: f"risk_{m}" for m in METHODS}
            res = inference(part, cols, level, n_resamples, seed)
            truth = None
            if "true_pd" in part.columns and part["true_pd"].notna().any():
                known = part[part["true_pd"].notna()]
                truth = inference(
                    known.assign(risk_true_pd=known["true_pd"].astype(float)),
                    {"scorecard": "risk_scorecard", "true_pd": "risk_true_pd"},
                    level,
                    n_resamples,
                    seed,
                    pairs=(("scorecard", "true_pd"),),
                )
            if res is not None and truth is not None:
                res["scores"]["true_pd"] = {
                    **truth["scores"]["true_pd"],
                    "n_rows_with_truth": int(len(known)),
                    "scorecard_auc_same_rows": truth["scores"]["scorecard"]["auc"],
                }
                res["pairs"]["scorecard_vs_true_pd"] = truth["pairs"].get("scorecard_vs_true_pd")
            cells.append(
                {
                    "sample": sample_name,
                    "sample_label": HOLDOUT_LABEL
                    if holdout and sample_name == "oot"
                    else SAMPLE_LABELS.get(sample_name, sample_name),
                    "segment": segment,
                    "headline": sample_name == "oot" and segment == "current",
                    "n": int(len(part)),
                    "n_bad": int(part["is_bad"].sum()),
                    "bad_rate": float(part["is_bad"].mean()) if len(part) else None,
                    "customers": int(part["customer_id"].nunique()),
                    "methods": None if res is None else res["scores"],
                    "paired_tests": None if res is None else res["pairs"],
                    "bootstrap": None if res is None else res["bootstrap"],
                }
            )
    return cells


def matched_grades(frame: pd.DataFrame) -> pd.Series:
    """Scorecard grades A-D holding the same shares of the sample as the rule grades (ties kept
    together).
    """
    shares = frame["rule_grade_used"].value_counts(normalize=True).reindex(GRADES, fill_value=0.0)
    # bands_by_shares counts from the riskiest case: D first
    band = metrics.bands_by_shares(frame["risk_scorecard"], shares.to_numpy()[::-1])
    return pd.Series(np.asarray(GRADES[::-1])[band], index=frame.index, name="scorecard_grade")


def decision_analysis(frame: pd.DataFrame, reject_grades: list[str]) -> dict[str, Any]:
    """Bad rate per grade for both gradings, the migration table, and the swap set at the rules'
    approval rate.
    """
    w = frame["weight"].to_numpy()
    accept_rules = ~frame["rule_grade_used"].isin(reject_grades).to_numpy()
    accept_card = ~frame["scorecard_grade"].isin(reject_grades).to_numpy()
    return {
        "rule_grades": metrics.grade_table(frame["rule_grade_used"], frame["is_bad"], GRADES, w),
        "scorecard_grades": metrics.grade_table(
            frame["scorecard_grade"], frame["is_bad"], GRADES, w
        ),
        "migration": metrics.migration_table(
            frame["rule_grade_used"], frame["scorecard_grade"], frame["is_bad"], GRADES, GRADES, w
        ),
        "swap_set": metrics.swap_set(frame["is_bad"], accept_rules, accept_card, w),
        "approval_rate_rules": float(accept_rules.mean()),
        "approval_rate_scorecard": float(accept_card.mean()),
    }


def migration_summary(migration: pd.DataFrame) -> dict[str, Any]:
    """Share and bad rate of customers the scorecard grades better, the same, or worse than the
    rules.
    """
    rank = {g: i for i, g in enumerate(GRADES)}
    move = migration["grade_to"].map(rank) - migration["grade_from"].map(rank)
    out = {}
    for name, mask in (("upgraded", move < 0), ("same", move == 0), ("downgraded", move > 0)):
        part = migration[mask]
        n, bads = int(part["count"].sum()), int(part["bads"].sum())
        out[name] = {
            "count": n,
            "share": n / max(int(migration["count"].sum()), 1),
            "bad_rate": bads / n if n else None,
        }
    return out


def models_on_all_rows(
    snapshots: pd.DataFrame,
    samples: pd.DataFrame,
    boosting: pd.DataFrame,
    card: dict,
    logistic: dict,
) -> dict[str, float]:
    """AUC by count of the three models on every matured OOT row of the current segment, rule
    grade UNDEFINED included (the comparison itself uses the common sample)."""
    full = oot_sample(snapshots, samples, boosting, "worst")[0]
    full = add_model_scores(
        full[full["segment"] == "current"].reset_index(drop=True), card, logistic
    )
    return {m: metrics.auc(full["is_bad"], full[f"risk_{m}"]) for m in METHODS if m != "rules"} | {
        "n": int(len(full))
    }


def gains_tables(frame: pd.DataFrame, n_bands: int) -> pd.DataFrame:
    """Gains tables by decile (band 1 = riskiest) of every method, by count and by exposure."""
    parts = []
    for method in METHODS:
        for basis, w in (("count", None), ("exposure", frame["weight"].to_numpy())):
            table = _safe(
                metrics.gains_table, frame["is_bad"], frame[f"risk_{method}"], w, n_bands
            )
            if table is not None:
                parts.append(table.assign(method=method, basis=basis))
    out = pd.concat(parts, ignore_index=True)
    return out[["method", "basis", *[c for c in out.columns if c not in ("method", "basis")]]]


# -------------------------------------------------------------------------------------------- main
def run(dataset: str, root: Path = PROJ_ROOT, params: dict | None = None) -> dict[str, Any]:
    """Read the inputs of ``dataset`` under ``root``, compare the methods, write the outputs."""
    p = stage_params("evaluate", dataset, params)
    split = stage_params("train", dataset, params).get("split", {})
    split_method = split.get("method", "out_of_time")
    level, n_bands = float(p.get("ci_level", 0.95)), int(p.get("n_bands", 10))
    reject = list(p.get("rule_reject_grades", ["D"]))
    paths = Paths(dataset, root)
    files = {
        "snapshots": paths.processed / "snapshots.parquet",
        "samples": paths.processed / "samples.parquet",
        "boosting": paths.processed / "boosting_predictions.parquet",
        "card": paths.models / "scorecard.json",
        "logistic": paths.models / "logistic.json",
    }
    require_files(files, "run the features and train stages first")
    snapshots = pd.read_parquet(files["snapshots"])
    samples = pd.read_parquet(files["samples"])
    boosting = pd.read_parquet(files["boosting"])
    _require(snapshots, SNAPSHOT_COLUMNS, files["snapshots"])
    _require(samples, ["customer_id", "as_of_date", "sample"], files["samples"])
    _require(boosting, ["customer_id", "as_of_date", "pd_boosting"], files["boosting"])
    card, logistic = load_card(files["card"]), read_json(files["logistic"])

    rule_undefined = p.get("rule_undefined", "exclude")
    n_resamples, seed = int(p.get("bootstrap_resamples", 1000)), int(p["base"]["seed"])
    frames: dict[str, pd.DataFrame] = {}
    counts_by_sample: dict[str, dict] = {}
    for name in ("oot", "oot_known"):
        if name == "oot" or (samples["sample"] == name).any():
            f, c = oot_sample(snapshots, samples, boosting, rule_undefined, name, split)
            frames[name] = add_model_scores(f, card, logistic)
            counts_by_sample[name] = c
    all_oot, counts = frames["oot"], counts_by_sample["oot"]
    frame = all_oot[all_oot["segment"] == "current"].reset_index(drop=True)
    if frame.empty or frame["is_bad"].nunique() < 2:
        raise PipelineError(
            "OOT sample, segment current: the comparison needs both goods and bads "
            "(columns segment, is_bad)"
        )
    counts["segments"] = {
        str(k): int(v) for k, v in all_oot["segment"].value_counts().sort_index().items()
    }
    frame["scorecard_grade"] = matched_grades(frame)
    methods, pairs, settings = discrimination_block(
        frame, {m: f"risk_{m}" for m in METHODS}, level, n_resamples, seed
    )
    result: dict[str, Any] = {
        "dataset": dataset,
        "code_version": code_version(),
        "sample": {
            **counts,
            "name": "oot",
            "segment": "current",
            "kind": "stratified_holdout"
            if split_method == "stratified_holdout"
            else "out_of_time",
            "compared": int(len(frame)),
            "n_bad": int(frame["is_bad"].sum()),
            "bad_rate": float(frame["is_bad"].mean()),
            "exposure": float(frame["weight"].sum()),
            "as_of_first": frame["as_of_date"].min(),
            "as_of_last": frame["as_of_date"].max(),
            "customers": int(frame["customer_id"].nunique()),
        },
        "inference": settings,
        "methods": methods,
        "paired_tests": pairs,
        "segments": segment_cells(
            frames, level, n_resamples, seed, split_method == "stratified_holdout"
        ),
        "models_all_matured_oot": models_on_all_rows(snapshots, samples, boosting, card, logistic),
        "params": {
            "ci_level": level,
            "n_bands": n_bands,
            "bootstrap_resamples": n_resamples,
            "seed": seed,
            "rule_reject_grades": reject,
            "rule_undefined": rule_undefined,
        },
    }
    if "true_pd" in frame.columns and frame["true_pd"].notna().any():  # synthetic: the ceiling
        known = frame[frame["true_pd"].notna()].assign(
            risk_true_pd=lambda d: d["true_pd"].astype(float)
        )
        truth, _, _ = discrimination_block(
            known,
            {"scorecard": "risk_scorecard", "true_pd": "risk_true_pd"},
            level,
            n_resamples,
            seed,
        )
        result["true_pd"] = {
            basis: None
            if v is None
            else {
                **v,
                "n_rows_with_truth": int(len(known)),
                "scorecard_auc_same_rows": (truth["scorecard"][basis] or {}).get("auc"),
            }
            for basis, v in truth["true_pd"].items()
        }
    decisions = decision_analysis(frame, reject)
    result["decision"] = {
        "approval_rate_rules": decisions["approval_rate_rules"],
        "approval_rate_scorecard": decisions["approval_rate_scorecard"],
        "swap_set": {
            r["segment"]: {
                k: r[k] for k in ("count", "share", "bads", "bad_rate", "weighted_bad_rate")
            }
            for r in decisions["swap_set"].to_dict("records")
        },
        "migration": migration_summary(decisions["migration"]),
    }
    tables = {
        "roc": report.roc_table(frame),
        "ks": report.ks_table(frame),
        "score_distribution": report.score_distribution(frame),
        "bad_rate_by_band": report.bad_rate_by_band(frame, n_bands),
    }
    for name, table in tables.items():
        write_csv(table, paths.stage_dir("evaluate") / f"evaluate_{name}.csv")
    report.write_plots(tables, decisions["migration"], result, paths.stage_dir("evaluate"), dataset)
    gains = gains_tables(frame, n_bands)
    write_csv(gains, paths.stage_dir("evaluate") / "evaluate_gains.csv")
    write_json(result, paths.metrics / "evaluate.json")
    text = report.comparison_markdown(result, decisions, tables["bad_rate_by_band"], frame, card)
    paths.stage_dir("evaluate").mkdir(parents=True, exist_ok=True)
    write_text(text, paths.stage_dir("evaluate") / "comparison.md")
    log.info(
        "evaluate %s: %d OOT cases, AUC scorecard %.4f, rules %.4f",
        dataset,
        len(frame),
        result["methods"]["scorecard"]["count"]["auc"],
        result["methods"]["rules"]["count"]["auc"],
    )
    return result


def main() -> None:
    args = stage_argparser(
        "evaluate", "Compare scorecard, challenger, boosting and rule grading out of time"
    ).parse_args()
    run(args.dataset)


if __name__ == "__main__":
    run_stage(main, "evaluate")
