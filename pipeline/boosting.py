"""Gradient-boosting benchmark: what the data allows with no binning and no linearity.

A scikit-learn ``HistGradientBoostingClassifier`` on the raw characteristics (categoricals as
categories, ±inf as missing). It is never published: its out-of-time AUC is the bar the scorecard is
compared with. Its predictions are kept (``boosting_predictions.parquet``), not the model.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from pipeline.params.train import BoostingParams


def boosting_frame(X: pd.DataFrame, features: dict[str, str]) -> pd.DataFrame:
    """Raw features for HistGradientBoosting: categoricals as categories, ±inf as missing."""
    out = X.copy()
    for f, d in features.items():
        if d == "categorical":
            out[f] = out[f].astype("string").astype("category")
        else:
            out[f] = pd.to_numeric(out[f]).astype(float).replace([np.inf, -np.inf], np.nan)
    return out


def fit_boosting(
    train: pd.DataFrame,
    y: pd.Series,
    features: dict[str, str],
    params: BoostingParams,
    seed: int,
) -> tuple[HistGradientBoostingClassifier, dict[str, str], float]:
    """Fit on the ``train`` rows; return the booster, the features it uses and the fit seconds.

    Features missing on every training row are left out (no split is possible on them). OpenMP runs
    on ``params.threads`` threads: its spinning threads starve a small shared machine."""
    booster = HistGradientBoostingClassifier(
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        categorical_features="from_dtype",
        random_state=seed,
    )
    usable = {f: d for f, d in features.items() if train[f].notna().any()}
    with threadpool_limits(limits=params.threads, user_api="openmp"):
        t = time.perf_counter()
        booster.fit(boosting_frame(train[list(usable)], usable), y)
    return booster, usable, time.perf_counter() - t


def predict_boosting(
    booster: HistGradientBoostingClassifier,
    usable: dict[str, str],
    score: pd.DataFrame,
    params: BoostingParams,
) -> np.ndarray:
    """P(bad) for every row of ``score`` (a per-row map: callable on slices)."""
    with threadpool_limits(limits=params.threads, user_api="openmp"):
        return booster.predict_proba(boosting_frame(score[list(usable)], usable))[:, 1]


def fit_predict_boosting(
    train: pd.DataFrame,
    y: pd.Series,
    score: pd.DataFrame,
    features: dict[str, str],
    params: BoostingParams,
    seed: int,
) -> tuple[np.ndarray, float]:
    """Fit on the ``train`` rows and return P(bad) for every row of ``score`` and the fit seconds."""
    booster, usable, seconds = fit_boosting(train, y, features, params, seed)
    return predict_boosting(booster, usable, score, params), seconds
