"""Stage ``train``: samples, the WoE scorecard, a raw logistic challenger, a boosting benchmark.

Inputs: ``data/processed/<ds>/snapshots.parquet`` and ``feature_dictionary.csv`` (rows with scoring
= True). Outputs: ``data/processed/<ds>/samples.parquet``, ``boosting_predictions.parquet``,
``models/<ds>/scorecard.json``, ``logistic.json``, ``train_report.json``,
``metrics/<ds>/train.json``, ``reports/<ds>/train/sample_design.json`` and ``reports/<ds>/train/sufficiency.json``;
wall-clock times go to ``logs/<ds>/train_timing.json``, a run log that is neither a DVC output nor tracked
by git, so every artefact is byte-identical from run to run.

Samples (docs/validation.md). ``out_of_time``: development customers (those with a good/bad snapshot
dated before ``split.oot_start``) are split whole by a seeded hash of customer_id: a share
``oot_customer_share`` is held out, the rest go to ``calibration`` (share ``calibration_share``) or
``train``; their development-period snapshots are ``train`` / ``calibration`` (held-out customers':
``excluded``, reason ``oot_customer_before_oot_start``). Snapshots dated on/after ``oot_start`` are
``oot`` when the customer has no train or calibration snapshot (held-out and new customers: disjoint by
customer *and* later in time) and ``oot_known`` when it has (the "known customers, later dates" figure,
reported beside, never as, the out-of-time result). ``stratified_holdout`` (one observation point, e.g.
UCI): customers are split, stratified by their outcome, into ``oot`` (a customer-disjoint holdout, not
out of time), ``calibration`` and ``train``. Matured snapshots (good, bad and indeterminate) belong to
their customer's sample: an indeterminate snapshot (worst 30-89 days beyond terms in the window) is an
observed "not bad" outcome that calibration and back-tests count (docs/validation.md), though no model is
fitted on it. Immature and in_default snapshots are ``excluded`` (reason = the label). Every sample keeps
both segments (``current``, ``delinquent``); the models are fitted on the ``train`` rows with a good/bad
outcome of ``split.fit_segments``. No cross-validation is run; any added
CV must group by customer_id.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from pipeline.challenger import fit_challenger, predict_pd
from pipeline.config import (
    Paths,
    PipelineError,
    require_files,
    run_stage,
    stage_argparser,
    stage_params,
)
from pipeline.io import (
    code_version,
    file_sha256,
    frame_sha256,
    write_json,
    write_parquet,
    write_run_log,
)
from pipeline.scorecard import WoEScorecard, score_frame
from pipeline.sufficiency import check_samples

log = logging.getLogger("pipeline.train")
KEYS = ["customer_id", "as_of_date"]
SAMPLES = ("train", "calibration", "oot", "oot_known", "excluded")
SEGMENT_NONE = "none"  # report key of the rows with no segment (already in default at t)
HOLDOUT_REASON = "oot_customer_before_oot_start"


def _hash_share(customer_id: pd.Series, seed: int) -> np.ndarray:
    """A stable pseudo-uniform number in [0, 1) per customer, whatever the row order."""
    key = f"{seed:016d}"[-16:]
    h = pd.util.hash_pandas_object(customer_id.astype(str), index=False, hash_key=key).to_numpy()
    return h / float(2**64)


def _share(split: dict, key: str, default: float) -> float:
    value = split.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise PipelineError(
            f"params.yaml train.split.{key}: need a number in [0, 1), got {value!r}"
        )
    return float(value)


def matured(snapshots: pd.DataFrame) -> np.ndarray:
    """Snapshots with an observed outcome: good, bad or indeterminate (matured, not bad). Without a
    ``label`` column, the rows with ``is_bad``."""
    has_outcome = snapshots["is_bad"].notna().to_numpy()
    if "label" not in snapshots:
        return has_outcome
    return has_outcome | (snapshots["label"].astype(str) == "indeterminate").to_numpy()


def assign_samples(snapshots: pd.DataFrame, split: dict, seed: int) -> pd.DataFrame:
    """``customer_id, as_of_date, sample, segment, exclusion_reason`` for every snapshot (rules in the
    module docstring). ``segment`` is copied from the snapshots (NULL when absent or excluded) and
    ``exclusion_reason`` is NULL unless ``sample == "excluded"``."""
    out = snapshots[KEYS].copy()
    eligible = matured(snapshots)
    sample = np.full(len(out), "excluded", dtype=object)
    reason = np.where(
        eligible,
        None,
        snapshots.get("label", pd.Series("unlabelled", index=out.index)).astype(str),
    ).astype(object)
    method = split.get("method", "out_of_time")
    cal_share = _share(split, "calibration_share", 0.25)
    if method == "out_of_time":
        if not split.get("oot_start"):
            raise PipelineError(
                "params.yaml train.split.oot_start: a date is required for out_of_time"
            )
        hold_share = _share(split, "oot_customer_share", 0.3)
        later = (snapshots["as_of_date"] >= pd.Timestamp(split["oot_start"])).to_numpy()
        dev = eligible & ~later
        u = _hash_share(snapshots["customer_id"], seed)
        held = u < hold_share
        in_cal = (u - hold_share) / (1.0 - hold_share) < cal_share
        sample[dev & ~held & in_cal] = "calibration"
        sample[dev & ~held & ~in_cal] = "train"
        sample[dev & held] = "excluded"
        reason[dev & held] = HOLDOUT_REASON
        known_ids = snapshots.loc[dev & ~held, "customer_id"].unique()
        known = snapshots["customer_id"].isin(known_ids).to_numpy()
        sample[eligible & later & known] = "oot_known"
        sample[eligible & later & ~known] = "oot"
    elif method == "stratified_holdout":
        outcome = (
            snapshots.loc[eligible]
            .groupby("customer_id")["is_bad"]
            .max()
            .fillna(0)
            .astype(int)
            .sort_index()
        )
        rest, hold = train_test_split(
            outcome.index.to_numpy(),
            test_size=_share(split, "holdout_share", 0.2),
            stratify=outcome.to_numpy(),
            random_state=seed,
        )
        rest = np.sort(rest)
        _, cal = train_test_split(
            rest, test_size=cal_share, stratify=outcome.loc[rest].to_numpy(), random_state=seed
        )
        where = pd.Series("train", index=outcome.index, dtype=object)
        where.loc[hold], where.loc[cal] = "oot", "calibration"
        sample[eligible] = snapshots.loc[eligible, "customer_id"].map(where).to_numpy()
    else:
        raise PipelineError(
            f"params.yaml train.split.method: unknown '{method}' "
            "(use out_of_time or stratified_holdout)"
        )
    out["sample"] = sample
    segment = snapshots["segment"] if "segment" in snapshots else pd.Series(None, index=out.index)
    out["segment"] = segment.astype(object).where(segment.notna(), None).to_numpy()
    out["exclusion_reason"] = reason
    return out


def fit_mask(samples: pd.DataFrame, fit_segments: list[str] | None) -> np.ndarray:
    """Rows the models are fitted on: the ``train`` sample, restricted to ``fit_segments`` when the
    snapshots carry segments (all ``train`` rows when they do not); the caller keeps the rows with a
    good/bad outcome (``is_bad`` not null)."""
    is_train = (samples["sample"] == "train").to_numpy()
    if not fit_segments or samples["segment"].isna().all():
        return is_train
    return is_train & samples["segment"].isin(list(fit_segments)).to_numpy()


def validate_split(split: dict) -> list[str]:
    """Check ``train.split`` once at stage start; returns ``fit_segments``."""
    from pipeline.feature_sql import SEGMENTS

    fit = split.get("fit_segments", ["current"])
    if not isinstance(fit, list) or not fit or any(f not in SEGMENTS for f in fit):
        raise PipelineError(
            f"params.yaml train.split.fit_segments: need a non-empty list from {SEGMENTS}, got {fit!r}"
        )
    for key in ("calibration_share", "oot_customer_share", "holdout_share"):
        if key in split:
            _share(split, key, 0.0)
    return fit


def sample_design(samples: pd.DataFrame, snapshots: pd.DataFrame, split: dict) -> dict[str, Any]:
    """The sample-design report (reports/<ds>/train/sample_design.json): snapshots by sample x segment x
    label, customers and bad customers per sample, date ranges, exclusions by reason, the customer
    overlaps between samples (0 where the design promises disjointness) and the rows the models are
    fitted on. Totals reconcile to the snapshot count."""
    frame = samples.assign(
        label=snapshots["label"].astype(str).to_numpy(),
        is_bad=snapshots["is_bad"].to_numpy(),
        segment=samples["segment"].fillna(SEGMENT_NONE),
    )
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for (smp, seg, lab), n in frame.groupby(["sample", "segment", "label"]).size().items():
        counts.setdefault(str(smp), {}).setdefault(str(seg), {})[str(lab)] = int(n)
    customers = {
        str(k): int(v) for k, v in frame.groupby("sample")["customer_id"].nunique().items()
    }
    bads = frame[frame["is_bad"].fillna(0).astype(int) == 1]
    bad_customers = {
        str(k): int(v) for k, v in bads.groupby("sample")["customer_id"].nunique().items()
    }
    ids = {s: set(frame.loc[frame["sample"] == s, "customer_id"]) for s in SAMPLES}
    pairs = [
        ("train", "calibration"),
        ("train", "oot"),
        ("calibration", "oot"),
        ("oot", "oot_known"),
    ]
    dates = frame.groupby("sample")["as_of_date"].agg(["min", "max"])
    fit_segments = split.get("fit_segments", ["current"])
    fitted = fit_mask(samples, fit_segments) & snapshots["is_bad"].notna().to_numpy()
    excluded = frame.loc[frame["sample"] == "excluded", "exclusion_reason"].value_counts()
    return {
        "schema_version": "1.0",
        "method": split.get("method", "out_of_time"),
        "oot_start": split.get("oot_start")
        if split.get("method", "out_of_time") == "out_of_time"
        else None,
        "oot_is": (
            "customer-disjoint and later in time"
            if split.get("method", "out_of_time") == "out_of_time"
            else "customer-disjoint holdout at the single observation date (not out of time)"
        ),
        "snapshots": int(len(frame)),
        "counts": counts,
        "snapshots_per_sample": {s: int((frame["sample"] == s).sum()) for s in SAMPLES},
        "customers": {s: customers.get(s, 0) for s in SAMPLES},
        "bad_customers": {s: bad_customers.get(s, 0) for s in SAMPLES if s != "excluded"},
        "as_of_range": {
            str(s): [f"{r['min']:%Y-%m-%d}", f"{r['max']:%Y-%m-%d}"] for s, r in dates.iterrows()
        },
        "exclusions": {str(k): int(v) for k, v in sorted(excluded.items())},
        "customer_overlap": {f"{a}&{b}": len(ids[a] & ids[b]) for a, b in pairs},
        "fit": {"sample": "train", "segments": list(fit_segments), "snapshots": int(fitted.sum())},
    }


def scoring_features(
    dictionary: pd.DataFrame, snapshots: pd.DataFrame, path: Any
) -> dict[str, str]:
    """Feature → dtype of the dictionary rows with scoring = True, checked against snapshots."""
    for col in ("feature", "dtype", "scoring"):
        if col not in dictionary.columns:
            raise PipelineError(
                f"{path}: column '{col}' missing (rule: feature dictionary layout)"
            )
    flag = dictionary["scoring"].astype(str).str.strip().str.lower().isin(["true", "1", "yes"])
    rows = dictionary.loc[flag]
    features = dict(zip(rows["feature"], rows["dtype"], strict=True))
    for i, name, dtype in zip(rows.index, rows["feature"], rows["dtype"], strict=True):
        if name.startswith("protected_"):
            raise PipelineError(
                f"{path}: row {i}, column feature: '{name}' is a protected attribute "
                "and must never be scored (rule: fairness); set scoring = False"
            )
        if name not in snapshots.columns:
            raise PipelineError(
                f"{path}: row {i}, column feature: '{name}' is not a snapshots column"
            )
        if dtype not in ("numeric", "categorical"):
            raise PipelineError(
                f"{path}: row {i}, column dtype: '{dtype}' must be numeric|categorical"
            )
    if not features:
        raise PipelineError(f"{path}: no feature has scoring = True")
    return features


def _auc(y: pd.Series, p: np.ndarray) -> float | None:
    """AUC on the rows with a good/bad outcome (indeterminates left out); None with one class."""
    known = y.notna().to_numpy()
    y, p = y[known].astype(int), np.asarray(p)[known]
    return float(roc_auc_score(y, p)) if y.nunique() == 2 else None


def build_scorecard(params: dict, features: dict[str, str]) -> WoEScorecard:
    """The scorecard estimator configured from the train params block."""
    b, s = params["binning"], params["selection"]
    return WoEScorecard(
        monotonic_trend=b["monotonic_trend"],
        min_bin_size=b["min_bin_size"],
        max_n_prebins=b["max_n_prebins"],
        special_codes=b.get("special_codes") or None,
        categorical_features=[f for f, d in features.items() if d == "categorical"],
        empty_bin_woe=b.get("empty_bin_woe", "worst"),
        min_iv=s["min_iv"],
        max_iv=s["max_iv"],
        max_correlation=s["max_correlation"],
        max_vif=s["max_vif"],
        max_features=s["max_features"],
        base_score=params["scaling"]["base_score"],
        base_odds=params["scaling"]["base_odds"],
        pdo=params["scaling"]["pdo"],
        reason_baseline=params["reason_codes"]["baseline"],
        top_n_reasons=params["reason_codes"]["top_n"],
    )


def boosting_frame(X: pd.DataFrame, features: dict[str, str]) -> pd.DataFrame:
    """Raw features for HistGradientBoosting: categoricals as categories, ±inf as missing."""
    out = X.copy()
    for f, d in features.items():
        if d == "categorical":
            out[f] = out[f].astype("string").astype("category")
        else:
            out[f] = pd.to_numeric(out[f]).astype(float).replace([np.inf, -np.inf], np.nan)
    return out


def train_models(
    snapshots: pd.DataFrame,
    samples: pd.DataFrame,
    features: dict[str, str],
    params: dict,
    dataset: str,
    reason_texts: dict[str, str],
) -> dict[str, Any]:
    """Fit the three models on the ``train`` rows of ``split.fit_segments``; return the artefacts,
    predictions (every snapshot) and timings."""
    seed = int(params["base"]["seed"])
    names = list(features)
    is_train = fit_mask(samples, params["split"].get("fit_segments", ["current"])) & (
        snapshots["is_bad"].notna().to_numpy()
    )
    train = snapshots.loc[is_train]
    if train["is_bad"].nunique() < 2:
        raise PipelineError("train sample has only one outcome; check the label and split params")
    y = train["is_bad"].astype(int)
    timing: dict[str, float] = {}

    t = time.perf_counter()
    card_model = build_scorecard(params, features).set_params(reason_texts=reason_texts)
    card_model.fit(train[names], y)
    timing["scorecard_fit_s"] = time.perf_counter() - t
    provenance = {
        "code_version": code_version(),
        "training_data_sha256": frame_sha256(train[KEYS + names + ["is_bad"]]),
        "params": {k: v for k, v in params.items()},
    }
    card = card_model.to_spec(dataset=dataset, provenance=provenance)

    t = time.perf_counter()
    ch = params.get("challenger", {})
    logistic = fit_challenger(
        train[names],
        y,
        clip_quantile=ch.get("clip_quantile", 0.01),
        max_correlation=ch.get("max_correlation", 0.95),
    )
    logistic["dataset"] = dataset
    logistic["provenance"] = provenance
    timing["logistic_fit_s"] = time.perf_counter() - t

    t = time.perf_counter()
    bparams = params["boosting"]
    booster = HistGradientBoostingClassifier(
        max_iter=bparams["max_iter"],
        learning_rate=bparams["learning_rate"],
        categorical_features="from_dtype",
        random_state=seed,
    )
    usable = {f: d for f, d in features.items() if train[f].notna().any()}  # all-missing: no split
    # OpenMP threads spin badly on a shared 2-core box; the thread count is a param
    with threadpool_limits(limits=int(bparams.get("threads", 1)), user_api="openmp"):
        booster.fit(boosting_frame(train[list(usable)], usable), y)
        timing["boosting_fit_s"] = time.perf_counter() - t
        pd_boost = booster.predict_proba(boosting_frame(snapshots[list(usable)], usable))[:, 1]

    pd_card = score_frame(card, snapshots)["pd_model"].to_numpy()
    pd_logistic = predict_pd(logistic, snapshots)
    boosting = snapshots[KEYS].copy()
    boosting["pd_boosting"] = pd_boost
    return {
        "card": card,
        "logistic": logistic,
        "model": card_model,
        "timing": timing,
        "predictions": {"scorecard": pd_card, "logistic": pd_logistic, "boosting": pd_boost},
        "boosting": boosting,
    }


def train_metrics(
    snapshots: pd.DataFrame, samples: pd.DataFrame, fitted: dict, features: dict, split_method: str
) -> dict[str, Any]:
    """AUC of each model per sample, sample sizes and bad rates."""
    out: dict[str, Any] = {
        "split_method": split_method,
        "oot_is": "out_of_time" if split_method == "out_of_time" else "stratified_holdout",
        "n_features_candidate": len(features),
        "n_features_scorecard": len(fitted["card"]["features"]),
        "n_features_logistic": len(fitted["logistic"]["features"]),
    }
    segments = samples["segment"].fillna(SEGMENT_NONE).to_numpy()
    groups = [(name, None) for name in SAMPLES[:-1]] + [
        (name, seg) for name in SAMPLES[:-1] for seg in ("current", "delinquent")
    ]
    for name, seg in groups:
        mask = (samples["sample"] == name).to_numpy()
        if seg is not None:
            if not (segments == seg).any():
                continue
            mask &= segments == seg
        key = name if seg is None else f"{name}_{seg}"
        y = snapshots.loc[mask, "is_bad"]
        out[f"n_{key}"] = int(mask.sum())
        out[f"bad_rate_{key}"] = float(y.astype(float).mean()) if mask.any() else None
        for model, p in fitted["predictions"].items():
            out[f"auc_{model}_{key}"] = _auc(y, p[mask]) if mask.any() else None
    out["n_excluded"] = int((samples["sample"] == "excluded").sum())
    return out


def train_report(
    fitted: dict,
    samples: pd.DataFrame,
    snapshots: pd.DataFrame,
    params: dict,
    snapshots_sha256: str,
) -> dict[str, Any]:
    """Selection decisions, coefficient table with VIF and IV, rounding drift and sample rules."""
    model: WoEScorecard = fitted["model"]
    coefs = model.coefficient_table().replace({np.nan: None})
    dev = samples["sample"].isin(["train", "calibration"])
    overlap = len(
        set(samples.loc[dev, "customer_id"])
        & set(samples.loc[samples["sample"] == "oot", "customer_id"])
    )
    return {
        "schema_version": "1.0",
        "inputs": {"snapshots_sha256": snapshots_sha256, "code_version": code_version()},
        "params": params,
        "samples": {
            "counts": samples["sample"].value_counts().reindex(SAMPLES, fill_value=0).to_dict(),
            "customers_in_development_and_oot": overlap,
            "fit_segments": list(params["split"].get("fit_segments", ["current"])),
            "rule": (
                "out_of_time: development customers split whole by seeded hash into held-out "
                "(oot_customer_share), calibration and train; as_of_date >= oot_start -> oot for "
                "customers with no train/calibration snapshot, oot_known for those with one; "
                "details in reports/<ds>/sample_design.json"
                if params["split"].get("method", "out_of_time") == "out_of_time"
                else "stratified_holdout: single observation point; customers split stratified by "
                "outcome into oot (a customer-disjoint holdout, not out of time), calibration, train"
            ),
        },
        "selection": fitted["card"]["selection"],
        "coefficients": coefs.to_dict(orient="records"),
        "vif": {k: float(v) for k, v in model.vif_.items()},
        "iv": {e["feature"]: e["iv"] for e in fitted["card"]["selection"]},
        "rounding": fitted["card"]["rounding"],
        "challenger_dropped": fitted["logistic"]["dropped"],
        "boosting": {"published": False, "purpose": "benchmark of what the data allows"},
    }


def main() -> None:
    args = stage_argparser(
        "train", "Fit the WoE scorecard, logistic challenger and boosting benchmark."
    ).parse_args()
    params = stage_params("train", args.dataset)
    validate_split(params["split"])
    paths = Paths(args.dataset)
    snap_path = paths.processed / "snapshots.parquet"
    dict_path = paths.processed / "feature_dictionary.csv"
    require_files(
        {"snapshots": snap_path, "feature_dictionary": dict_path}, "run the features stage first"
    )
    snapshots = pd.read_parquet(snap_path)
    for col in KEYS + ["is_bad"]:
        if col not in snapshots.columns:
            raise PipelineError(f"{snap_path}: column '{col}' missing (rule: snapshots contract)")
    snapshots = snapshots.sort_values(KEYS, kind="mergesort").reset_index(drop=True)
    dictionary = pd.read_csv(dict_path)
    features = scoring_features(dictionary, snapshots, dict_path)
    texts = dict(
        zip(
            dictionary["feature"], dictionary.get("definition", dictionary["feature"]), strict=True
        )
    )
    reason_texts = {f: f"Unfavourable: {texts.get(f, f)}" for f in features}

    t0 = time.perf_counter()
    samples = assign_samples(snapshots, params["split"], int(params["base"]["seed"]))
    sufficiency = check_samples(snapshots, samples, params["split"], dataset=args.dataset)
    design = sample_design(samples, snapshots, params["split"])
    fitted = train_models(snapshots, samples, features, params, args.dataset, reason_texts)
    metrics = train_metrics(
        snapshots, samples, fitted, features, params["split"].get("method", "out_of_time")
    )
    report = train_report(fitted, samples, snapshots, params, file_sha256(snap_path))
    timing = {
        **fitted["timing"],
        "total_s": time.perf_counter() - t0,
        "n_snapshots": len(snapshots),
    }

    write_parquet(samples, paths.processed / "samples.parquet")
    write_parquet(fitted["boosting"], paths.processed / "boosting_predictions.parquet")
    write_json(fitted["card"], paths.models / "scorecard.json")
    write_json(fitted["logistic"], paths.models / "logistic.json")
    write_json(report, paths.models / "train_report.json")
    write_json(metrics, paths.metrics / "train.json")
    write_run_log(timing, paths.root / "logs" / args.dataset / "train_timing.json")
    write_json(sufficiency, paths.stage_dir("train") / "sufficiency.json")
    write_json(design, paths.stage_dir("train") / "sample_design.json")
    log.info(
        "train %s: AUC oot scorecard %.4f, logistic %.4f, boosting %.4f; %d features in the card",
        args.dataset,
        metrics["auc_scorecard_oot"] or float("nan"),
        metrics["auc_logistic_oot"] or float("nan"),
        metrics["auc_boosting_oot"] or float("nan"),
        metrics["n_features_scorecard"],
    )


if __name__ == "__main__":
    run_stage(main, "train")
