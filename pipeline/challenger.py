"""Logistic challenger on the raw (unbinned) characteristics, saved as JSON.

Preprocessing is a scikit-learn Pipeline (±inf → missing, winsorising at fitted quantiles, median
imputation, standardisation); the logistic regression itself is fitted with statsmodels so the spec
carries standard errors and p-values. ``models/<ds>/logistic.json`` holds every fitted constant,
and :func:`predict_pd` reproduces the PD from it alone.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from pipeline.card import numeric_column
from pipeline.domain import PipelineError
from pipeline.io import stored_form

SCHEMA_VERSION = "1.0"
KIND = "raw_logistic"


def _finite(X: Any) -> np.ndarray:
    """±inf (e.g. a ratio over a zero balance) is treated as missing."""
    if isinstance(X, pd.DataFrame):
        X = X.astype("float64").to_numpy(na_value=np.nan)  # nullable dtypes: pd.NA -> NaN
    X = np.asarray(X, dtype=float).copy()
    X[~np.isfinite(X)] = np.nan
    return X


class QuantileClipper(TransformerMixin, BaseEstimator):
    """Winsorise each column at the fitted ``quantile`` and ``1 - quantile`` (NaN ignored)."""

    def __init__(self, quantile: float = 0.01):
        self.quantile = quantile

    def fit(self, X: Any, y: Any = None) -> QuantileClipper:
        X = np.asarray(X, dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.lower_ = np.nanquantile(X, self.quantile, axis=0)
            self.upper_ = np.nanquantile(X, 1.0 - self.quantile, axis=0)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "lower_")
        return np.clip(np.asarray(X, dtype=float), self.lower_, self.upper_)


def preprocessing(clip_quantile: float) -> Pipeline:
    """The raw-feature preprocessing pipeline (unfitted), winsorising at ``clip_quantile``."""
    return Pipeline(
        [
            ("finite", FunctionTransformer(_finite, feature_names_out="one-to-one")),
            ("clip", QuantileClipper(clip_quantile)),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    )


def _usable_columns(
    X: pd.DataFrame, max_correlation: float, clip_quantile: float
) -> tuple[list[str], dict[str, str], Pipeline, pd.DataFrame]:
    """The numeric columns the challenger can use, the others with the reason they are left out,
    the preprocessing fitted on the usable numeric columns and its output ``Z``."""
    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    dropped = {
        c: "not numeric (the challenger uses raw numeric features only)"
        for c in X.columns
        if c not in numeric
    }
    if X[numeric].isna().all().any():
        for c in X[numeric].columns[X[numeric].isna().all()]:
            dropped[c] = "all values missing"
        numeric = [c for c in numeric if c not in dropped]
    pipe = preprocessing(clip_quantile).fit(X[numeric])
    Z = pd.DataFrame(pipe.transform(X[numeric]), columns=numeric, index=X.index)
    kept: list[str] = []
    corr = Z.corr().fillna(0.0)
    for c in numeric:
        if Z[c].std() == 0:
            dropped[c] = "constant after preprocessing"
        elif any(abs(corr.loc[c, k]) > max_correlation for k in kept):
            other = max(kept, key=lambda k: abs(corr.loc[c, k]))
            dropped[c] = (
                f"|correlation| {abs(corr.loc[c, other]):.3f} with {other} > {max_correlation}"
            )
        else:
            kept.append(c)
    if not kept:
        raise PipelineError(
            "logistic challenger: no usable numeric feature in the training sample"
        )
    return kept, dropped, pipe, Z


def _feature_entries(
    pipe: Pipeline, numeric: list[str], kept: list[str], model: Any
) -> list[dict]:
    """Every fitted constant of each kept feature: clip bounds, impute value, mean, scale, coefficient."""
    idx = {c: i for i, c in enumerate(numeric)}
    clip, imp, scale = (
        pipe.named_steps["clip"],
        pipe.named_steps["impute"],
        pipe.named_steps["scale"],
    )
    return [
        {
            "name": c,
            "clip_lower": float(clip.lower_[idx[c]]),
            "clip_upper": float(clip.upper_[idx[c]]),
            "impute_value": float(imp.statistics_[idx[c]]),
            "mean": float(scale.mean_[idx[c]]),
            "scale": float(scale.scale_[idx[c]]),
            "coefficient": float(model.params[c]),
            "std_error": float(model.bse[c]),
            "p_value": float(model.pvalues[c]),
        }
        for c in kept
    ]


def fit_challenger(
    X: pd.DataFrame, y: Any, *, clip_quantile: float, max_correlation: float
) -> dict:
    """Fit the challenger on numeric columns of ``X`` and return its JSON spec (in its stored form,
    so the spec in memory predicts exactly as the file written from it).

    Columns that are constant after preprocessing, or correlated above ``max_correlation`` with an
    earlier column, are left out (an exactly collinear design has no unique fit); the spec says
    why. ``clip_quantile`` and ``max_correlation`` are ``train.challenger``'s settings.
    """
    import statsmodels.api as sm

    y = np.asarray(y, dtype=float)
    kept, dropped, pipe, Z = _usable_columns(X, max_correlation, clip_quantile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = sm.Logit(y, sm.add_constant(Z[kept], has_constant="add")).fit(
                disp=0, maxiter=200, method="newton"
            )
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise PipelineError(f"logistic challenger fit failed ({exc})") from None
    spec = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "target": {"event": "bad", "link": "logit P(bad) = intercept + sum(coefficient * z)"},
        "preprocessing": {
            "steps": [
                "non-finite -> missing",
                f"clip at quantiles {clip_quantile}/{1 - clip_quantile}",
                "impute median",
                "standardise z = (x - mean) / scale",
            ],
        },
        "intercept": float(model.params["const"]),
        "intercept_std_error": float(model.bse["const"]),
        "features": _feature_entries(pipe, list(Z.columns), kept, model),
        "dropped": [{"feature": c, "reason": r} for c, r in dropped.items()],
        "sample": {"n_train": int(len(y)), "n_bad": int(y.sum())},
        "fit": {
            "log_likelihood": float(model.llf),
            "pseudo_r2": float(model.prsquared),
            "converged": bool(model.mle_retvals.get("converged", True)),
        },
    }
    return stored_form(spec)


def predict_pd(spec: dict, X: pd.DataFrame) -> np.ndarray:
    """P(bad) from a challenger spec: the stored clip, impute, scale and coefficients, nothing
    else.
    """
    if spec.get("kind") != KIND:
        raise PipelineError(f"not a logistic challenger spec (kind={spec.get('kind')!r})")
    logit = np.full(len(X), spec["intercept"], dtype=float)
    for f in spec["features"]:
        if f["name"] not in X.columns:
            raise PipelineError(
                f"input: column '{f['name']}' required by the logistic challenger is missing"
            )
        x = _finite(numeric_column(X[f["name"]], f["name"]))
        x = np.clip(x, f["clip_lower"], f["clip_upper"])
        x = np.where(np.isnan(x), f["impute_value"], x)
        logit += f["coefficient"] * (x - f["mean"]) / f["scale"]
    return 1.0 / (1.0 + np.exp(-logit))
