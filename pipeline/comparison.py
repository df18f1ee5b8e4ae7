"""Comparison maths of the ``evaluate`` stage: scorecard vs logistic challenger vs boosting reference
vs rule grading on the same out-of-time rows.

Pure functions on DataFrames, used by the stage, the validation report and notebook 03. The
headline sample is the *current* segment of ``oot`` (matured goods and bads only). Every method
gets AUC, Gini and KS by count and exposure-weighted (weight = open balance at the as-of date,
negative or missing balances count 0). Intervals and paired tests come from a bootstrap over
customers (`pipeline.metrics.cluster_bootstrap`), because monthly snapshots of one customer are not
independent; the DeLong / Hanley-McNeil figures, which assume they are, are kept beside them as
``*_independent``.

The rule grading is an ordinal score A < B < C < D in risk. ``UNDEFINED`` (no grade from the rules)
is either left out of the comparison for every method (``exclude``) or ranked with D (``worst``).
The scorecard is cut into A-D with the same shares as the rule grades, so its accepted grades
approve exactly the rules' approval rate (up to tied scores) and the migration table and the swap
set describe the same decision.

Not to be confused with `pipeline.monitoring`, which tracks one published score month by month
(`score_discrimination`, `month_migration_summary`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline import metrics
from pipeline.card import score_frame
from pipeline.card.routing import all_features
from pipeline.challenger import predict_pd
from pipeline.domain import LETTER_GRADES, SNAPSHOT_KEYS, PipelineError
from pipeline.snapshot_io import batch_rows, map_batches, same_keys
from pipeline.sufficiency import no_oot_error

log = logging.getLogger("pipeline.evaluate")

UNDEFINED = "UNDEFINED"
METHODS = {  # method -> label for people
    "scorecard": "WoE points scorecard",
    "logistic": "Logistic challenger (raw features)",
    "boosting": "Gradient boosting (benchmark only)",
    "rules": "Rule grading A-D",
}
PAIRS = (("scorecard", "rules"), ("scorecard", "logistic"), ("scorecard", "boosting"))
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
HOLDOUT_LABEL = "customer-disjoint holdout at the single observation date (not out of time)"
SAMPLE_LABELS = {
    "oot": "out of time (dates on/after the out-of-time start)",
    "oot_known": "known customers, later dates (development customers after oot_start)",
}


# ---------------------------------------------------------------------------------------- sample
def _unique_keys(tables: dict[str, pd.DataFrame]) -> None:
    for name, table in tables.items():
        dup = table.duplicated(SNAPSHOT_KEYS)
        if dup.any():
            raise PipelineError(
                f"{name}.parquet: row {int(np.flatnonzero(dup.to_numpy())[0])}, columns "
                f"customer_id/as_of_date: duplicated key (rule: one row per customer and date)"
            )


def _observation_population(frame: pd.DataFrame, counts: dict[str, Any]) -> pd.DataFrame:
    """Rows inside the observation population (segment known); those outside counted by reason.
    Without a ``segment`` column every row is ``current``."""
    if "segment" not in frame.columns:
        counts["outside_population"] = 0
        counts["outside_population_by_reason"] = {}
        return frame.assign(segment="current")
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
    return frame


def _rule_risk(frame: pd.DataFrame, rule_undefined: str, counts: dict[str, Any]) -> pd.DataFrame:
    """``rule_grade_used`` and the ordinal ``risk_rules`` = 1..4, UNDEFINED excluded or ranked D."""
    keys = SNAPSHOT_KEYS
    grade = frame["rule_grade"].astype("string").fillna(UNDEFINED)
    unknown = ~grade.isin([*LETTER_GRADES, UNDEFINED])
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        key = frame[keys].iloc[i].to_dict()
        raise PipelineError(
            f"snapshots.parquet: row {i} of the OOT sample {key}, column rule_grade: "
            f"{grade.iloc[i]!r} is not one of {', '.join(LETTER_GRADES)} or {UNDEFINED}"
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
        frame["rule_grade_used"].map({g: i + 1 for i, g in enumerate(LETTER_GRADES)}).astype(float)
    )
    return frame


def _sample_rows(
    snapshots: pd.DataFrame, samples: pd.DataFrame, chosen: np.ndarray
) -> pd.DataFrame:
    """The snapshots of the ``chosen`` samples rows, keys first, indexed by the rows' positions in
    ``samples``: read off by position when ``snapshots`` holds the samples' keys row by row (the
    stage reads them so), else joined on the keys (a key without a snapshot is an input error)."""
    keys = SNAPSHOT_KEYS
    wanted = samples.loc[chosen, keys].reset_index(drop=True)
    if same_keys(snapshots, samples):
        rest = snapshots.loc[chosen, [c for c in snapshots.columns if c not in keys]]
        frame = pd.concat([wanted, rest.reset_index(drop=True)], axis=1)
    else:
        frame = wanted.merge(snapshots, on=keys, how="left", indicator=True, validate="one_to_one")
        lost = frame["_merge"] != "both"
        if lost.any():
            row = frame.loc[lost, keys].iloc[0].to_dict()
            raise PipelineError(
                f"snapshots.parquet: OOT key {row} (row {int(np.flatnonzero(lost)[0])} of the OOT "
                "sample) has no snapshot; samples.parquet and snapshots.parquet are out of step"
            )
        frame = frame.drop(columns="_merge")
    frame.index = np.flatnonzero(chosen)
    return frame


def _with_boosting(
    frame: pd.DataFrame, samples: pd.DataFrame, boosting: pd.DataFrame
) -> pd.DataFrame:
    """``frame`` (indexed by positions in ``samples``) with each row's ``pd_boosting``: read off by
    position when the predictions follow the samples row by row, else joined on the keys."""
    if same_keys(samples, boosting):
        frame["pd_boosting"] = boosting["pd_boosting"].to_numpy()[frame.index.to_numpy()]
        return frame
    keys = SNAPSHOT_KEYS
    return frame.merge(
        boosting[[*keys, "pd_boosting"]], on=keys, how="left", validate="one_to_one"
    )


def oot_sample(
    snapshots: pd.DataFrame,
    samples: pd.DataFrame,
    boosting: pd.DataFrame,
    rule_undefined: str,
    sample_name: str = "oot",
    oot_start: str | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Matured goods and bads of one sample (``oot`` by default, or ``oot_known``) with the
    boosting PD, the ordinal rule score and the delinquency segment attached.

    Returns the frame (with ``risk_rules`` = 1..4, ``weight`` = exposure ≥ 0 and ``segment``) and
    counts of what was left out. Rows whose segment is missing are outside the observation
    population (e.g. already in default) and are counted by reason. A key in the sample with no
    snapshot or no boosting prediction is an input error; an empty ``oot`` sample names
    ``train.split.oot_start`` (``oot_start``) and the value that would fit. Snapshots and
    predictions that hold the samples' keys row by row are read off by position, not joined."""
    keys = SNAPSHOT_KEYS
    _unique_keys({"snapshots": snapshots, "samples": samples, "boosting_predictions": boosting})
    chosen = (samples["sample"] == sample_name).to_numpy()
    if not chosen.any():
        if sample_name == "oot":
            raise no_oot_error(snapshots, oot_start)
        raise PipelineError(
            f"samples.parquet: no row with sample == '{sample_name}'; rerun the train stage"
        )
    frame = _sample_rows(snapshots, samples, chosen)
    counts: dict[str, Any] = {"oot_rows": int(len(frame))}
    frame = _observation_population(frame, counts)
    n_population = int(len(frame))
    frame = frame[frame["is_bad"].notna()].copy()
    counts["immature_or_indeterminate"] = n_population - int(len(frame))
    frame = _with_boosting(frame, samples, boosting)
    if frame["pd_boosting"].isna().any():
        row = frame.loc[frame["pd_boosting"].isna(), keys].iloc[0].to_dict()
        raise PipelineError(
            f"boosting_predictions.parquet: no pd_boosting for OOT key {row} "
            "(column pd_boosting, rule: every OOT row is predicted); rerun the train stage"
        )
    frame = _rule_risk(frame, rule_undefined, counts)
    frame["is_bad"] = frame["is_bad"].astype(int)
    frame["weight"] = pd.to_numeric(frame["exposure"], errors="coerce").fillna(0.0).clip(lower=0.0)
    counts["compared"] = int(len(frame))
    return frame.reset_index(drop=True), counts


MODEL_COLUMNS = ("score", "pd_scorecard", "reason_1", "pd_logistic")
"""What `model_scores` adds: the scorecard's score, PD and first reason code, the logistic PD."""


def scoring_rows(card: dict, n_columns: int, budget_bytes: int | None) -> int | None:
    """Rows per scoring slice of ``n_columns`` input columns within ``base.memory_budget``
    (``budget_bytes``; None: in one piece)."""
    if budget_bytes is None:
        return None
    n_features = len(all_features(card))
    return batch_rows(budget_bytes, 8 * (n_columns + 3 * n_features + 16) + 256)


def model_scores(
    frame: pd.DataFrame, card: dict, logistic: dict, keep: Sequence[str] | None = None
) -> pd.DataFrame:
    """``frame`` (only its ``keep`` columns where given) with the `MODEL_COLUMNS`. A per-row map:
    the stage scores the snapshots slice by slice as it reads them and lets the two models' feature
    columns go before any sample is put together."""
    scored = score_frame(card, frame)
    out = frame if keep is None else frame[[c for c in frame.columns if c in set(keep)]]
    out = out.copy()
    out["score"] = scored["score"].to_numpy()
    out["pd_scorecard"] = scored["pd_model"].to_numpy()
    out["reason_1"] = scored["reason_1"].to_numpy() if "reason_1" in scored else None
    del scored
    out["pd_logistic"] = predict_pd(logistic, frame)
    return out


def model_risks(frame: pd.DataFrame) -> pd.DataFrame:
    """``risk_<method>`` of the three models on scored rows (`model_scores`, with ``pd_boosting``):
    higher is riskier."""
    out = frame.copy()
    out["risk_scorecard"] = -out["score"].astype(float)
    out["risk_logistic"] = out["pd_logistic"]
    out["risk_boosting"] = out["pd_boosting"].astype(float)
    return out


def add_model_scores(
    frame: pd.DataFrame, card: dict, logistic: dict, budget_bytes: int | None = None
) -> pd.DataFrame:
    """Scorecard score, PD and first reason code, and the logistic PD; ``risk_<method>`` = higher
    is riskier. Scored in slices sized from ``budget_bytes`` (``base.memory_budget``; None: in one
    piece).
    """
    rows = scoring_rows(card, 0, budget_bytes) or len(frame) or 1
    return model_risks(map_batches(lambda part: model_scores(part, card, logistic), frame, rows))


def headline_sample(
    frame: pd.DataFrame, counts: dict[str, Any], all_oot: pd.DataFrame, holdout: bool
) -> dict[str, Any]:
    """What the headline comparison was run on: counts of what was left out, segment sizes, bads,
    exposure, date range and customers of the current-segment rows ``frame``."""
    return {
        **counts,
        "segments": {
            str(k): int(v) for k, v in all_oot["segment"].value_counts().sort_index().items()
        },
        "name": "oot",
        "segment": "current",
        "kind": "stratified_holdout" if holdout else "out_of_time",
        "compared": int(len(frame)),
        "n_bad": int(frame["is_bad"].sum()),
        "bad_rate": float(frame["is_bad"].mean()),
        "exposure": float(frame["weight"].sum()),
        "as_of_first": frame["as_of_date"].min(),
        "as_of_last": frame["as_of_date"].max(),
        "customers": int(frame["customer_id"].nunique()),
    }


# ------------------------------------------------------------------------------ discrimination
def _safe(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A metric that cannot be computed (e.g. no bad exposure) is reported as null."""
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        log.warning("metric skipped: %s", exc)
        return None


def _paired_tests(
    frame: pd.DataFrame,
    risk_cols: dict[str, str],
    boot: dict[str, Any],
    w: np.ndarray | None,
    level: float,
    pairs: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    out = {}
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
        out[key] = {
            **boot["pairs"][key],
            "test": "cluster bootstrap (customers): z = difference / bootstrap SE",
            "delong_independent": None
            if dl is None
            else {k: dl[k] for k in ("se", "z", "p_value", "ci_low", "ci_high")},
        }
    return out


def inference(
    frame: pd.DataFrame,
    risk_cols: dict[str, str],
    level: float,
    n_resamples: int,
    seed: int,
    weighted: bool = False,
    pairs: tuple[tuple[str, str], ...] = PAIRS,
) -> dict[str, Any] | None:
    """Cluster-bootstrap inference (customers resampled, `pipeline.metrics.cluster_bootstrap`) for
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
    out: dict[str, Any] = {"scores": {}}
    for m, c in risk_cols.items():
        classic = metrics.auc_with_ci(frame["is_bad"], frame[c], w, level)
        classic = {RENAMED_INDEPENDENT.get(k, k): v for k, v in classic.items()}
        out["scores"][m] = {
            **classic,
            **boot["scores"][m],
            "customers": boot["n_customers"],
            "ci_method": "cluster bootstrap (customers), percentile",
        }
    out["pairs"] = _paired_tests(frame, risk_cols, boot, w, level, pairs)
    out["bootstrap"] = {
        k: boot[k]
        for k in ("method", "n_resamples", "n_resamples_used", "seed", "n_customers", "n", "n_bad")
    }
    return out


def compare_discrimination(
    frame: pd.DataFrame, risk_cols: dict[str, str], level: float, n_resamples: int, seed: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Several methods on the same rows, by count and by exposure: per method ``{count: ...,
    exposure: ...}`` (AUC, Gini, KS with clustered CIs), per pair ``{count, exposure}`` paired
    tests, and the bootstrap settings."""
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


def _with_true_pd(known: pd.DataFrame) -> pd.DataFrame:
    return known.assign(risk_true_pd=known["true_pd"].astype(float))


def true_pd_ceiling(
    frame: pd.DataFrame, level: float, n_resamples: int, seed: int
) -> dict[str, Any] | None:
    """Synthetic data only: the discrimination of the true PD (the ceiling any model can reach) on
    the rows that carry one, by count and exposure, beside the scorecard's AUC on the same rows.
    ``None`` without a ``true_pd`` column."""
    if "true_pd" not in frame.columns or not frame["true_pd"].notna().any():
        return None
    known = _with_true_pd(frame[frame["true_pd"].notna()])
    truth, _, _ = compare_discrimination(
        known,
        {"scorecard": "risk_scorecard", "true_pd": "risk_true_pd"},
        level,
        n_resamples,
        seed,
    )
    return {
        basis: None
        if v is None
        else {
            **v,
            "n_rows_with_truth": int(len(known)),
            "scorecard_auc_same_rows": (truth["scorecard"][basis] or {}).get("auc"),
        }
        for basis, v in truth["true_pd"].items()
    }


def _segment_truth(
    part: pd.DataFrame, res: dict[str, Any] | None, level: float, n_resamples: int, seed: int
) -> None:
    """Add the true-PD ceiling of one sample x segment cell to ``res`` (in place)."""
    if "true_pd" not in part.columns or not part["true_pd"].notna().any():
        return
    known = part[part["true_pd"].notna()]
    truth = inference(
        _with_true_pd(known),
        {"scorecard": "risk_scorecard", "true_pd": "risk_true_pd"},
        level,
        n_resamples,
        seed,
        pairs=(("scorecard", "true_pd"),),
    )
    if res is None or truth is None:
        return
    res["scores"]["true_pd"] = {
        **truth["scores"]["true_pd"],
        "n_rows_with_truth": int(len(known)),
        "scorecard_auc_same_rows": truth["scores"]["scorecard"]["auc"],
    }
    res["pairs"]["scorecard_vs_true_pd"] = truth["pairs"].get("scorecard_vs_true_pd")


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
            res = inference(part, {m: f"risk_{m}" for m in METHODS}, level, n_resamples, seed)
            _segment_truth(part, res, level, n_resamples, seed)
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


def models_on_all_rows(
    snapshots: pd.DataFrame, samples: pd.DataFrame, boosting: pd.DataFrame
) -> dict[str, float]:
    """AUC by count of the three models on every matured OOT row of the current segment, rule
    grade UNDEFINED included (the comparison itself uses the common sample). ``snapshots`` are
    scored (`model_scores`)."""
    full = oot_sample(snapshots, samples, boosting, "worst")[0]
    full = model_risks(full[full["segment"] == "current"].reset_index(drop=True))
    return {m: metrics.auc(full["is_bad"], full[f"risk_{m}"]) for m in METHODS if m != "rules"} | {
        "n": int(len(full))
    }


def gains_tables(frame: pd.DataFrame, n_bands: int) -> pd.DataFrame:
    """Gains tables by risk band (band 1 = riskiest) of every method, by count and by exposure."""
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


# ------------------------------------------------------------------------------------ decisions
def matched_grades(frame: pd.DataFrame) -> pd.Series:
    """Scorecard grades A-D holding the same shares of the sample as the rule grades (ties kept
    together).
    """
    shares = (
        frame["rule_grade_used"]
        .value_counts(normalize=True)
        .reindex(LETTER_GRADES, fill_value=0.0)
    )
    # bands_by_shares counts from the riskiest case: D first
    band = metrics.bands_by_shares(frame["risk_scorecard"], shares.to_numpy()[::-1])
    return pd.Series(
        np.asarray(LETTER_GRADES[::-1])[band], index=frame.index, name="scorecard_grade"
    )


def decision_analysis(frame: pd.DataFrame, reject_grades: Sequence[str]) -> dict[str, Any]:
    """Bad rate per grade for both gradings, the migration table (rule grade -> matched scorecard
    grade), and the swap set at the rules' approval rate.
    """
    reject = list(reject_grades)
    w = frame["weight"].to_numpy()
    accept_rules = ~frame["rule_grade_used"].isin(reject).to_numpy()
    accept_card = ~frame["scorecard_grade"].isin(reject).to_numpy()
    grades = LETTER_GRADES
    return {
        "rule_grades": metrics.grade_table(frame["rule_grade_used"], frame["is_bad"], grades, w),
        "scorecard_grades": metrics.grade_table(
            frame["scorecard_grade"], frame["is_bad"], grades, w
        ),
        "migration": metrics.migration_table(
            frame["rule_grade_used"], frame["scorecard_grade"], frame["is_bad"], grades, grades, w
        ),
        "swap_set": metrics.swap_set(frame["is_bad"], accept_rules, accept_card, w),
        "approval_rate_rules": float(accept_rules.mean()),
        "approval_rate_scorecard": float(accept_card.mean()),
    }


def rules_to_scorecard_migration(migration: pd.DataFrame) -> dict[str, Any]:
    """Share and bad rate of the cases the scorecard grades better, the same, or worse than the
    rules (``migration``: the rule -> scorecard table of `decision_analysis`).

    Not `pipeline.monitoring.month_migration_summary`, which follows one grading from month to
    month."""
    rank = {g: i for i, g in enumerate(LETTER_GRADES)}
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


def decision_summary(decisions: dict[str, Any]) -> dict[str, Any]:
    """The decision figures of evaluate.json: approval rates, swap set and rule -> scorecard
    migration."""
    return {
        "approval_rate_rules": decisions["approval_rate_rules"],
        "approval_rate_scorecard": decisions["approval_rate_scorecard"],
        "swap_set": {
            r["segment"]: {
                k: r[k] for k in ("count", "share", "bads", "bad_rate", "weighted_bad_rate")
            }
            for r in decisions["swap_set"].to_dict("records")
        },
        "migration": rules_to_scorecard_migration(decisions["migration"]),
    }
