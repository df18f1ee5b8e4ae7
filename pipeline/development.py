"""Model development: the candidate characteristics, the three fitted models and what they show.

The WoE points scorecard (`pipeline.scorecard.WoEScorecard`, the published model), the raw logistic
challenger (`pipeline.challenger`) and the gradient-boosting benchmark (`pipeline.boosting`) are fitted
on the same rows (`pipeline.samples.fit_rows`) and scored on every snapshot; the development metrics
give each model's AUC per sample and segment, and the development report the selection decisions,
coefficients, VIF, IV and rounding drift a validator reviews.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.boosting import fit_boosting, predict_boosting
from pipeline.card import score_frame
from pipeline.card.routing import SEGMENT_CARDS, main_card, segment_card
from pipeline.challenger import fit_challenger, predict_pd
from pipeline.domain import SAMPLES, SEGMENTS, SNAPSHOT_KEYS, PipelineError
from pipeline.io import frame_sha256
from pipeline.params import to_dict
from pipeline.params.train import TrainParams
from pipeline.samples import SEGMENT_NONE, fit_rows, sample_rule
from pipeline.scorecard import WoEScorecard
from pipeline.snapshot_io import batch_rows, map_batches
from pipeline.sufficiency import MINIMUMS

TRUE_FLAGS = ("true", "1", "yes")


def scoring_features(
    dictionary: pd.DataFrame, snapshots: pd.DataFrame | list[str], path: Any
) -> dict[str, str]:
    """Feature → dtype of the dictionary rows with scoring = True, checked against the snapshots
    (a frame, or the file's column names)."""
    columns = set(snapshots.columns if isinstance(snapshots, pd.DataFrame) else snapshots)
    for col in ("feature", "dtype", "scoring"):
        if col not in dictionary.columns:
            raise PipelineError(
                f"{path}: column '{col}' missing (rule: feature dictionary layout)"
            )
    flag = dictionary["scoring"].astype(str).str.strip().str.lower().isin(TRUE_FLAGS)
    rows = dictionary.loc[flag]
    features = dict(zip(rows["feature"], rows["dtype"], strict=True))
    for i, name, dtype in zip(rows.index, rows["feature"], rows["dtype"], strict=True):
        if name.startswith("protected_"):
            raise PipelineError(
                f"{path}: row {i}, column feature: '{name}' is a protected attribute "
                "and must never be scored (rule: fairness); set scoring = False"
            )
        if name not in columns:
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


def reason_texts(dictionary: pd.DataFrame, features: dict[str, str]) -> dict[str, str]:
    """Reason-code text per scored feature, from the dictionary's ``definition`` column."""
    definitions = (
        dictionary["definition"] if "definition" in dictionary.columns else dictionary["feature"]
    )
    texts = dict(zip(dictionary["feature"], definitions, strict=True))
    return {f: f"Unfavourable: {texts.get(f, f)}" for f in features}


def build_scorecard(params: TrainParams, features: dict[str, str]) -> WoEScorecard:
    """The scorecard estimator configured from the train params."""
    b, s, scaling, reasons = params.binning, params.selection, params.scaling, params.reason_codes
    return WoEScorecard(
        monotonic_trend=b.monotonic_trend,
        min_bin_size=b.min_bin_size,
        max_n_prebins=b.max_n_prebins,
        special_codes=to_dict(b.special_codes) or None,
        categorical_features=[f for f, d in features.items() if d == "categorical"],
        empty_bin_woe=b.empty_bin_woe,
        min_iv=s.min_iv,
        max_iv=s.max_iv,
        max_correlation=s.max_correlation,
        max_vif=s.max_vif,
        max_features=s.max_features,
        base_score=scaling.base_score,
        base_odds=scaling.base_odds,
        pdo=scaling.pdo,
        reason_baseline=reasons.baseline,
        top_n_reasons=reasons.top_n,
    )


def fit_models(
    train: pd.DataFrame,
    features: dict[str, str],
    params: TrainParams,
    dataset: str,
    reason_texts: dict[str, str],
    code_version: str,
) -> dict[str, Any]:
    """Fit the three models on the ``train`` rows (the `fit_rows`, or their bounded sample); return
    the artefacts, the fitted estimators and the fit timings. ``code_version`` stamps the
    provenance of both model files."""
    names = list(features)
    if train["is_bad"].nunique() < 2:
        raise PipelineError("train sample has only one outcome; check the label and split params")
    y = train["is_bad"].astype(int)
    timing: dict[str, float] = {}

    t = time.perf_counter()
    card_model = build_scorecard(params, features).set_params(reason_texts=reason_texts)
    card_model.fit(train[names], y)
    timing["scorecard_fit_s"] = time.perf_counter() - t
    provenance = {
        "code_version": code_version,
        "training_data_sha256": frame_sha256(train[SNAPSHOT_KEYS + names + ["is_bad"]]),
        "params": to_dict(params),
    }
    card = card_model.to_spec(dataset=dataset, provenance=provenance)

    t = time.perf_counter()
    logistic = fit_challenger(
        train[names],
        y,
        clip_quantile=params.challenger.clip_quantile,
        max_correlation=params.challenger.max_correlation,
    )
    logistic["dataset"] = dataset
    logistic["provenance"] = provenance
    timing["logistic_fit_s"] = time.perf_counter() - t

    booster, usable, timing["boosting_fit_s"] = fit_boosting(
        train, y, features, params.boosting, params.base.seed
    )
    return {
        "card": card,
        "logistic": logistic,
        "model": card_model,
        "booster": (booster, usable),
        "timing": timing,
    }


def fit_segment_cards(
    fitted: dict[str, Any],
    snapshots: pd.DataFrame,
    samples: pd.DataFrame,
    read: Callable[[np.ndarray], pd.DataFrame],
    features: dict[str, str],
    params: TrainParams,
    reason_texts: dict[str, str],
) -> dict[str, dict]:
    """Offer each of ``split.segment_cards`` its own scorecard and keep it where it earns its place.

    A segment card is fitted on the segment's train rows (good/bad) with the train params, and kept
    when it ranks the segment's calibration rows (customers it never saw) better than the main card
    does: AUC strictly higher. The out-of-time sample plays no part in the choice, so its figures
    stay out of sample. ``read(mask)`` returns the candidate features of the snapshots in ``mask``.
    A kept card goes into ``fitted["card"]`` (`pipeline.card.routing`); the decisions, each with
    its counts, AUCs and reason, are returned for the development report.
    """
    names, outcome = list(features), snapshots["is_bad"]
    decisions: dict[str, dict] = {}
    for segment in params.split.segment_cards:
        in_segment = (samples["segment"] == segment).to_numpy() & outcome.notna().to_numpy()
        train = in_segment & (samples["sample"] == "train").to_numpy()
        bads = int(outcome[train].sum())
        goods = int(train.sum()) - bads
        decision: dict[str, Any] = {"train_bads": bads, "train_goods": goods, "kept": False}
        decisions[segment] = decision
        if bads < MINIMUMS["bads_train"] or goods < MINIMUMS["goods_train"]:
            decision["reason"] = (
                f"too few train rows to fit a card: {bads} bads, {goods} goods (need "
                f"{MINIMUMS['bads_train']} bads and {MINIMUMS['goods_train']} goods)"
            )
            continue
        frame = read(train)
        card_model = build_scorecard(params, features).set_params(reason_texts=reason_texts)
        try:
            card_model.fit(frame[names], frame["is_bad"].astype(int))
        except PipelineError as exc:  # the offer is optional: the main card keeps the segment
            decision["reason"] = f"no card could be fitted: {exc}"
            continue
        candidate = segment_card(segment, card_model.to_spec())
        check = read(in_segment & (samples["sample"] == "calibration").to_numpy())
        y = check["is_bad"].astype(int)
        solo = {**main_card(fitted["card"]), **candidate}
        decision["calibration_rows"], decision["calibration_bads"] = len(y), int(y.sum())
        if y.nunique() < 2:
            decision["reason"] = "the calibration rows of the segment have one outcome"
            continue
        auc_own = float(roc_auc_score(y, score_frame(solo, check)["pd_model"]))
        auc_main = float(roc_auc_score(y, score_frame(fitted["card"], check)["pd_model"]))
        decision.update(auc_segment_card=auc_own, auc_main_card=auc_main, kept=auc_own > auc_main)
        decision["reason"] = (
            "ranks the calibration rows better than the main card"
            if auc_own > auc_main
            else "does not rank the calibration rows better than the main card"
        )
        if auc_own > auc_main:
            fitted["card"].setdefault(SEGMENT_CARDS, {})[segment] = candidate
    return decisions


def predict_models(
    fitted: dict[str, Any], frame: pd.DataFrame, params: TrainParams
) -> pd.DataFrame:
    """P(bad) of the scorecard, the logistic challenger and the boosting benchmark for every row of
    ``frame`` (a per-row map: the stages call it on slices)."""
    booster, usable = fitted["booster"]
    return pd.DataFrame(
        {
            "scorecard": score_frame(fitted["card"], frame)["pd_model"].to_numpy(),
            "logistic": predict_pd(fitted["logistic"], frame),
            "boosting": predict_boosting(booster, usable, frame, params.boosting),
        }
    )


MODELS = ("scorecard", "logistic", "boosting")
"""The three fitted models, in the order of their predictions."""


def attach_predictions(
    fitted: dict[str, Any], keys: pd.DataFrame, pred: pd.DataFrame | dict[str, np.ndarray]
) -> None:
    """Store the predictions (rows of ``keys``; a frame or arrays by model) in ``fitted`` as
    train_metrics and the boosting predictions file want them; the key columns are shared with
    ``keys``, not copied."""
    fitted["predictions"] = {m: np.asarray(pred[m]) for m in MODELS}
    columns = {k: keys[k].to_numpy() for k in SNAPSHOT_KEYS}
    columns["pd_boosting"] = fitted["predictions"]["boosting"]
    fitted["boosting"] = pd.DataFrame(columns, copy=False)


def train_models(
    snapshots: pd.DataFrame,
    samples: pd.DataFrame,
    features: dict[str, str],
    params: TrainParams,
    dataset: str,
    reason_texts: dict[str, str],
    code_version: str,
) -> dict[str, Any]:
    """Fit the three models on the `fit_rows` of an in-memory ``snapshots`` and predict every
    snapshot; return the artefacts, predictions and timings (`fit_models`, `predict_models`)."""
    train = snapshots.loc[fit_rows(snapshots, samples, params.split)]
    fitted = fit_models(train, features, params, dataset, reason_texts, code_version)
    rows = batch_rows(params.base.budget_bytes, prediction_row_bytes(len(features)))
    pred = map_batches(lambda part: predict_models(fitted, part, params), snapshots, rows)
    attach_predictions(fitted, snapshots, pred.reset_index(drop=True))
    return fitted


def prediction_row_bytes(n_features: int) -> int:
    """Working bytes per row of `predict_models` (feature copies of the boosting frame and the
    challenger, the points block of the card, a few output columns)."""
    return 8 * (3 * n_features + 16) + 256


def _auc(y: pd.Series, p: np.ndarray) -> float | None:
    """AUC on the rows with a good/bad outcome (indeterminates left out); None with one class."""
    known = y.notna().to_numpy()
    y, p = y[known].astype(int), np.asarray(p)[known]
    return float(roc_auc_score(y, p)) if y.nunique() == 2 else None


def train_metrics(
    snapshots: pd.DataFrame, samples: pd.DataFrame, fitted: dict, features: dict, split_method: str
) -> dict[str, Any]:
    """AUC of each model per sample (and per segment within it), sample sizes and bad rates."""
    out: dict[str, Any] = {
        "split_method": split_method,
        "oot_is": "out_of_time" if split_method == "out_of_time" else "stratified_holdout",
        "n_features_candidate": len(features),
        "n_features_scorecard": len(fitted["card"]["features"]),
        "n_features_logistic": len(fitted["logistic"]["features"]),
    }
    segments = samples["segment"].fillna(SEGMENT_NONE).to_numpy()
    scored = SAMPLES[:-1]  # every sample but "excluded"
    groups = [(name, None) for name in scored] + [
        (name, seg) for name in scored for seg in SEGMENTS
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
    params: TrainParams,
    snapshots_sha256: str,
    code_version: str,
    fit_sample: dict[str, Any] | None = None,
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
        "inputs": {"snapshots_sha256": snapshots_sha256, "code_version": code_version},
        "params": to_dict(params),
        "samples": {
            "counts": samples["sample"].value_counts().reindex(SAMPLES, fill_value=0).to_dict(),
            "customers_in_development_and_oot": overlap,
            "fit_segments": list(params.split.fit_segments),
            "rule": sample_rule(params.split.method),
            **({"fit_sample": fit_sample} if fit_sample is not None else {}),
        },
        "selection": fitted["card"]["selection"],
        "coefficients": coefs.to_dict(orient="records"),
        "vif": {k: float(v) for k, v in model.vif_.items()},
        "iv": {e["feature"]: e["iv"] for e in fitted["card"]["selection"]},
        "rounding": fitted["card"]["rounding"],
        "challenger_dropped": fitted["logistic"]["dropped"],
        "boosting": {"published": False, "purpose": "benchmark of what the data allows"},
    }
