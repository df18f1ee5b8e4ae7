"""WoE logistic points scorecard estimator: OptBinning bins, selection, statsmodels fit, points.

:class:`WoEScorecard` fits the card; the card itself (``models/<ds>/scorecard.json``, schema in
docs/architecture.md) and everything that scores with it live in `pipeline.card`, which imports
no fitting library. The estimator builds its card with `pipeline.card.card_spec` and scores
through the same `pipeline.card.score_frame`, so a saved and reloaded card gives exactly the
in-memory scores.

Conventions (Siddiqi / OptBinning): WoE = ln(%good / %bad), odds are good:bad, a higher score is
lower risk, logit P(bad) = intercept + sum(coefficient * WoE), so every coefficient must be
negative.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from pipeline.card import (
    HALDANE,
    assign_bins,
    attribute_points,
    card_spec,
    category_key,
    numeric_column,
    scaling_constants,
    score_frame,
)
from pipeline.config import progress
from pipeline.domain import PipelineError
from pipeline.io import stable_float

EMPTY_BIN_RULES = ("worst", "neutral")
BASELINE_METHODS = ("max", "mean")


# ------------------------------------------------------------------------------------ fitting
@dataclass
class _Binned:
    """One characteristic after binning: its bins (card dicts), IV and the solver status."""

    name: str
    dtype: str
    bins: list[dict] = field(default_factory=list)
    iv: float = 0.0
    status: str = ""
    edge_digits: int | None = None


MAX_EDGE_DIGITS = 17


def _finite(values: Any) -> np.ndarray:
    out = np.asarray([float(v) for v in values], dtype=float)
    return out[np.isfinite(out)]


def round_significant(x: np.ndarray, digits: int) -> list[float]:
    """Each value rounded to ``digits`` significant decimal digits (via its decimal text, so
    the result is the double nearest that short decimal, which JSON writes back as it)."""
    return [float(f"{float(v):.{digits - 1}e}") + 0.0 for v in x]


def short_decimal_edges(splits: np.ndarray, x: np.ndarray) -> tuple[int, list[float]]:
    """The fewest significant digits (1..17) at which the rounded split points keep every
    development value in its bin, and the rounded edges.

    Bin edges that are short decimals mean the same number in every client that reads them
    (SQL, spreadsheets, PMML): an edge such as -5.001561880111694 (an OptBinning midpoint) makes
    values one ulp away ambiguous to a spreadsheet, -5.0016 does not. The rounding must not
    move any development row across an edge, so counts, WoE and points are those of the fit.

    With strictly increasing splits and edges, every row keeps its bin exactly when no value
    lies between a split and its rounded edge (in ``[min, max)`` of the two): one sort of the
    values, then two binary searches per edge and candidate precision, instead of re-binning
    every row at every precision.
    """
    if splits.size == 0:
        return 1, []
    x = np.sort(x[~np.isnan(x)])
    increasing = bool(np.all(np.diff(splits) > 0))
    want = None if increasing else np.searchsorted(splits, x, side="right")
    for digits in range(1, MAX_EDGE_DIGITS + 1):
        edges = round_significant(splits, digits)
        if np.any(np.diff(edges) <= 0):
            continue
        rounded = np.asarray(edges)
        if want is None:
            lo, hi = np.minimum(splits, rounded), np.maximum(splits, rounded)
            keeps = np.array_equal(np.searchsorted(x, lo), np.searchsorted(x, hi))
        else:
            keeps = np.array_equal(np.searchsorted(rounded, x, side="right"), want)
        if keeps:
            return digits, edges
    return MAX_EDGE_DIGITS, [float(v) for v in splits]


def _woe_table(bins: list[dict], goods: np.ndarray, bads: np.ndarray, empty_bin_woe: str) -> None:
    """Fill count, count_bad, bad_rate, woe (ln(%good/%bad)) and woe_basis into ``bins`` in place.

    A bin with goods but no bads (or the reverse) gets 0.5 added to both counts (Haldane) so its
    WoE is finite and still observed. An empty bin (no training rows, e.g. no missing values at
    fit) gets the worst observed WoE of the feature (``worst``) or 0 (``neutral``), stated in
    ``woe_basis``.
    """
    total_good, total_bad = goods.sum(), bads.sum()
    observed = []
    for b, g, d in zip(bins, goods, bads, strict=True):
        b["count"], b["count_bad"] = int(g + d), int(d)
        b["bad_rate"] = float(d / (g + d)) if g + d else None
        if g + d == 0:
            continue
        if g == 0 or d == 0:
            g, d = g + HALDANE, d + HALDANE
            b["woe_basis"] = "observed_haldane"
        else:
            b["woe_basis"] = "observed"
        b["woe"] = float(math.log((g / total_good) / (d / total_bad)))
        observed.append(b["woe"])
    fill = min(observed) if empty_bin_woe == "worst" else 0.0
    for b in bins:
        if b["count"] == 0:
            b["woe"], b["woe_basis"] = fill, f"empty_bin_{empty_bin_woe}"


def _information_value(bins: list[dict]) -> float:
    total_good = sum(b["count"] - b["count_bad"] for b in bins)
    total_bad = sum(b["count_bad"] for b in bins)
    iv = 0.0
    for b in bins:
        g, d = b["count"] - b["count_bad"], b["count_bad"]
        if g + d:
            iv += (g / total_good - d / total_bad) * b["woe"]
    return float(iv)


def bin_feature(
    name: str,
    values: pd.Series,
    y: np.ndarray,
    *,
    dtype: str,
    special_codes: list,
    monotonic_trend: str,
    min_bin_size: float,
    max_n_prebins: int,
    empty_bin_woe: str = "worst",
) -> _Binned:
    """Optimal bins of one characteristic (OptBinning), with our own counts and observed WoE."""
    from optbinning import OptimalBinning

    binned = _Binned(name=name, dtype=dtype)
    if dtype == "numeric":
        x = numeric_column(values, name)
        ob = OptimalBinning(
            name=name,
            dtype="numerical",
            monotonic_trend=monotonic_trend,
            min_bin_size=min_bin_size,
            max_n_prebins=max_n_prebins,
            special_codes=list(special_codes) or None,
        )
    else:  # categories are ordered by bad rate by OptBinning; no trend constraint
        x = np.array([None if pd.isna(v) else category_key(v) for v in values], dtype=object)
        ob = OptimalBinning(
            name=name,
            dtype="categorical",
            min_bin_size=min_bin_size,
            max_n_prebins=max_n_prebins,
            monotonic_trend=None,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ob.fit(x, y)
    binned.status = str(ob.status)
    if dtype == "numeric":
        digits, splits = short_decimal_edges(
            np.asarray(ob.splits, dtype=float), x[~np.isin(x, _finite(special_codes))]
        )
        binned.edge_digits = digits
        edges = [None, *splits, None]
        binned.bins = [
            {"type": "range", "lower": lo, "upper": up}
            for lo, up in zip(edges[:-1], edges[1:], strict=False)
        ]
        binned.bins.append({"type": "special", "values": sorted(float(v) for v in special_codes)})
    else:
        groups = [sorted(category_key(c) for c in grp) for grp in ob.splits]
        binned.bins = [{"type": "category", "categories": grp} for grp in groups]
    if dtype == "numeric" and not special_codes:
        binned.bins.pop()  # no special values declared: no special bin
    binned.bins.append({"type": "missing"})
    spec = {"name": name, "dtype": dtype, "bins": binned.bins}
    idx = assign_bins(spec, pd.Series(x, dtype="float64" if dtype == "numeric" else object))
    seen = idx >= 0
    bads = np.bincount(idx[seen], weights=y[seen], minlength=len(binned.bins))
    counts = np.bincount(idx[seen], minlength=len(binned.bins))
    _woe_table(binned.bins, counts - bads, bads, empty_bin_woe)
    binned.iv = _information_value(binned.bins)
    return binned


def woe_matrix(features: list[dict], X: pd.DataFrame) -> pd.DataFrame:
    """WoE-encode ``X`` with the bins of ``features``; unseen categories get the worst observed
    WoE.
    """
    out = {}
    for feat in features:
        woe = np.array([b["woe"] for b in feat["bins"]] + [min(b["woe"] for b in feat["bins"])])
        out[feat["name"]] = woe[assign_bins(feat, X[feat["name"]])]
    return pd.DataFrame(out, index=X.index)


def vif_table(W: pd.DataFrame) -> pd.Series:
    """Variance inflation factor of each column (with an intercept).

    VIF_j = 1 / (1 - R²_j) of the OLS of column j on the others and a constant, which is the
    j-th diagonal element of the inverse correlation matrix: one small k x k inversion instead
    of k OLS fits on every row (statsmodels' ``variance_inflation_factor``, kept as the
    reference for a constant column or a (near) singular matrix, where it reports the limit).
    """
    if W.shape[1] < 2:
        return pd.Series(1.0, index=W.columns)
    A = W.to_numpy(dtype=float)
    Z = A - A.mean(axis=0)
    S = Z.T @ Z
    d = np.diag(S)
    if np.all(d > 0) and np.all(np.isfinite(S)):
        C = S / np.sqrt(np.outer(d, d))
        if np.linalg.cond(C) < 1e8:
            vifs = np.diag(np.linalg.inv(C))
            return pd.Series(vifs, index=W.columns, dtype=float)
    return _vif_statsmodels(W)


def _vif_statsmodels(W: pd.DataFrame) -> pd.Series:
    """VIF by one statsmodels OLS per column (the definition; slow on many rows)."""
    import statsmodels.api as sm
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    exog = sm.add_constant(W.to_numpy(), has_constant="add")
    with np.errstate(divide="ignore", invalid="ignore"):
        vifs = [variance_inflation_factor(exog, i + 1) for i in range(W.shape[1])]
    return pd.Series(vifs, index=W.columns, dtype=float)


def fit_logit(W: pd.DataFrame, y: np.ndarray):
    """statsmodels Logit of P(bad) on the WoE columns (Newton, no penalty)."""
    import statsmodels.api as sm

    exog = sm.add_constant(W, has_constant="add")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return sm.Logit(y, exog).fit(disp=0, maxiter=200, method="newton")
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise PipelineError(
            f"logistic fit on WoE of {list(W.columns)} failed ({exc}); "
            "lower train.selection.max_vif or max_correlation"
        ) from None


class WoEScorecard(ClassifierMixin, TransformerMixin, BaseEstimator):
    """WoE points scorecard as a scikit-learn estimator.

    ``fit(X, y)`` with y = 1 bad, 0 good; ``transform`` gives the WoE of the selected
    characteristics; ``predict_proba`` the card's PD (from the integer score); ``to_spec()`` the
    JSON card.
    """

    def __init__(
        self,
        monotonic_trend: str = "auto_asc_desc",
        min_bin_size: float = 0.05,
        max_n_prebins: int = 20,
        special_codes: list | dict | None = None,
        categorical_features: list | None = None,
        empty_bin_woe: str = "worst",
        min_iv: float = 0.02,
        max_iv: float = 5.0,
        max_correlation: float = 0.8,
        max_vif: float = 5.0,
        max_features: int = 15,
        base_score: float = 600,
        base_odds: float = 50,
        pdo: float = 20,
        reason_baseline: str = "max",
        top_n_reasons: int = 4,
        reason_texts: dict | None = None,
    ):
        self.monotonic_trend = monotonic_trend
        self.min_bin_size = min_bin_size
        self.max_n_prebins = max_n_prebins
        self.special_codes = special_codes
        self.categorical_features = categorical_features
        self.empty_bin_woe = empty_bin_woe
        self.min_iv = min_iv
        self.max_iv = max_iv
        self.max_correlation = max_correlation
        self.max_vif = max_vif
        self.max_features = max_features
        self.base_score = base_score
        self.base_odds = base_odds
        self.pdo = pdo
        self.reason_baseline = reason_baseline
        self.top_n_reasons = top_n_reasons
        self.reason_texts = reason_texts

    # ---- helpers
    def _specials_for(self, name: str) -> list:
        codes = self.special_codes
        if codes is None:
            return []
        if isinstance(codes, dict):
            return list(codes.get(name, []))
        return list(codes)

    def _dtype_for(self, X: pd.DataFrame, name: str) -> str:
        if self.categorical_features is not None:
            return "categorical" if name in self.categorical_features else "numeric"
        col = X[name]
        numeric = pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
        return "numeric" if numeric else "categorical"

    def _decide(self, name: str, decision: str, reason: str) -> None:
        self.selection_[name].update(decision=decision, reason=reason)

    def _bin_and_screen(self, X: pd.DataFrame, y: np.ndarray) -> None:
        """Bin every column (OptBinning); drop all-missing, unsolved, weak or too-strong ones."""
        self.binned_: dict[str, _Binned] = {}
        self.selection_: dict[str, dict] = {}
        for name in progress(X.columns, "binning", unit="feature"):
            dtype = self._dtype_for(X, name)
            entry = {"feature": name, "dtype": dtype, "iv": None, "n_bins": None}
            self.selection_[name] = entry
            if X[name].isna().all():
                entry.update(
                    decision="dropped", reason="all values missing in the training sample"
                )
                continue
            b = bin_feature(
                name,
                X[name],
                y,
                dtype=dtype,
                special_codes=self._specials_for(name),
                monotonic_trend=self.monotonic_trend,
                min_bin_size=self.min_bin_size,
                max_n_prebins=self.max_n_prebins,
                empty_bin_woe=self.empty_bin_woe,
            )
            self.binned_[name] = b
            entry.update(iv=b.iv, n_bins=len(b.bins), binning_status=b.status)
            if b.status not in ("OPTIMAL", "FEASIBLE"):
                entry.update(decision="dropped", reason=f"binning solver status {b.status}")
            elif b.iv < self.min_iv:
                entry.update(
                    decision="dropped", reason=f"IV {b.iv:.4f} < min_iv {self.min_iv} (weak)"
                )
            elif b.iv > self.max_iv:
                entry.update(
                    decision="dropped",
                    reason=f"IV {b.iv:.4f} > max_iv {self.max_iv} (too good: check for leakage)",
                )
            else:
                entry.update(decision="kept", reason="")

    def _filter_correlated(self, X: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """In IV order, drop a feature whose WoE correlates above the limit with a kept one."""
        candidates = sorted(
            (n for n, e in self.selection_.items() if e["decision"] == "kept"),
            key=lambda n: (-self.selection_[n]["iv"], n),
        )
        specs = [
            {"name": n, "dtype": self.binned_[n].dtype, "bins": self.binned_[n].bins}
            for n in candidates
        ]
        W = woe_matrix(specs, X)
        corr = W.corr().fillna(0.0).abs()
        kept: list[str] = []
        for name in candidates:
            clash = [
                (corr.loc[name, k], k) for k in kept if corr.loc[name, k] > self.max_correlation
            ]
            if clash:
                r, other = max(clash)
                reason = (
                    f"|correlation| {r:.3f} with {other} (higher IV) > "
                    f"max_correlation {self.max_correlation}"
                )
                self._decide(name, "dropped", reason)
            elif len(kept) >= self.max_features:
                self._decide(name, "dropped", f"IV rank beyond max_features {self.max_features}")
            else:
                kept.append(name)
        return W, kept

    def _filter_vif(self, W: pd.DataFrame, kept: list[str]) -> list[str]:
        """Drop the feature with the largest VIF until all are within ``max_vif``."""
        kept = list(kept)
        while len(kept) > 1:
            vif = vif_table(W[kept])
            worst = vif.idxmax()
            if not vif[worst] > self.max_vif:
                break
            kept.remove(worst)
            self._decide(worst, "dropped", f"VIF {vif[worst]:.2f} > max_vif {self.max_vif}")
        return kept

    def _fit_with_sign_check(self, W: pd.DataFrame, kept: list[str], y: np.ndarray):
        """Fit; while a coefficient is >= 0, remove the most positive one and refit."""
        kept = list(kept)
        while True:
            if not kept:
                raise PipelineError(
                    "no characteristic survived selection; lower train.selection.min_iv"
                )
            model = fit_logit(W[kept], y)
            coefs = model.params.drop("const")
            if (coefs < 0).all():
                return model, kept
            worst = coefs.idxmax()
            kept.remove(worst)
            reason = (
                f"coefficient {coefs[worst]:+.4f} >= 0 contradicts the WoE order of its bins "
                "(sign check); removed and refitted"
            )
            self._decide(worst, "dropped", reason)

    # ---- fit
    def fit(self, X: pd.DataFrame, y: Any) -> WoEScorecard:
        """Bin, select, fit the logistic model with the sign check, scale and round points."""
        if not isinstance(X, pd.DataFrame):
            raise PipelineError(
                "WoEScorecard.fit: X must be a pandas DataFrame with named columns"
            )
        if self.empty_bin_woe not in EMPTY_BIN_RULES:
            raise PipelineError(
                f"empty_bin_woe must be one of {EMPTY_BIN_RULES}, got {self.empty_bin_woe!r}"
            )
        if self.reason_baseline not in BASELINE_METHODS:
            raise PipelineError(f"reason_baseline must be one of {BASELINE_METHODS}")
        y = np.asarray(y, dtype=float)
        if len(y) != len(X) or not np.isin(y, (0.0, 1.0)).all():
            raise PipelineError(
                "WoEScorecard.fit: y must be 0 (good) / 1 (bad) for every row of X"
            )
        if y.sum() == 0 or y.sum() == len(y):
            raise PipelineError("WoEScorecard.fit: the training sample needs both goods and bads")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.classes_ = np.array([0, 1])
        # at the stored precision, so the card read back from JSON scores exactly as the model
        self.factor_, self.offset_ = (
            stable_float(v) for v in scaling_constants(self.base_score, self.base_odds, self.pdo)
        )

        self._bin_and_screen(X, y)
        W, kept = self._filter_correlated(X)
        kept = self._filter_vif(W, kept)
        model, kept = self._fit_with_sign_check(W, kept, y)
        self.model_ = model
        self.vif_ = vif_table(W[kept])
        self.selected_ = list(kept)
        self.n_train_, self.n_bad_ = int(len(y)), int(y.sum())
        self._build_card(X, W[kept])
        return self

    def _build_card(self, X: pd.DataFrame, W: pd.DataFrame) -> None:
        """Integer points per bin, unseen points, reason-code baselines and the rounding drift."""
        params, bse, pvalues = self.model_.params, self.model_.bse, self.model_.pvalues
        intercept, n = float(params["const"]), len(self.selected_)
        texts = self.reason_texts or {}
        features, unrounded = [], np.zeros(len(W))
        for j, name in enumerate(self.selected_):
            beta = float(params[name])
            bins = [dict(b) for b in self.binned_[name].bins]
            raw = attribute_points(
                beta, [b["woe"] for b in bins], intercept, n, self.factor_, self.offset_
            )
            for b, p in zip(bins, raw, strict=True):
                b["points"] = int(np.round(p))
                b["points_unrounded"] = float(p)
            unrounded += attribute_points(
                beta, W[name].to_numpy(), intercept, n, self.factor_, self.offset_
            )
            feat = {
                "name": name,
                "dtype": self.binned_[name].dtype,
                "coefficient": beta,
                "std_error": float(bse[name]),
                "p_value": float(pvalues[name]),
                "vif": float(self.vif_[name]),
                "iv": float(self.binned_[name].iv),
                "reason_code": f"R{j + 1:02d}",
                "reason_text": texts.get(name, f"{name}: value scores below the reference"),
                "unseen_points": min(b["points"] for b in bins),
                "bins": bins,
            }
            if self.binned_[name].edge_digits is not None:
                feat["edge_digits"] = self.binned_[name].edge_digits
            train_points = np.array([b["points"] for b in bins])[assign_bins(feat, X[name])]
            if self.reason_baseline == "max":
                feat["baseline_points"] = int(max(b["points"] for b in bins))
            else:
                feat["baseline_points"] = float(round(train_points.mean(), 4))
            features.append((feat, train_points))
        self.card_features_ = [f for f, _ in features]
        score = np.sum([p for _, p in features], axis=0)
        drift = np.abs(score - unrounded)
        bound = sum(
            max(abs(b["points"] - b["points_unrounded"]) for b in f["bins"])
            for f in self.card_features_
        )
        self.intercept_ = stable_float(intercept)
        self.rounding_ = {
            "method": "round_half_even",
            "max_abs_drift": float(drift.max()),
            "mean_abs_drift": float(drift.mean()),
            "max_abs_drift_bound": float(bound),
        }

    # ---- outputs
    def to_spec(self, dataset: str = "", provenance: dict | None = None) -> dict:
        """The JSON card (schema_version 1.0, docs/architecture.md)."""
        check_is_fitted(self, "card_features_")
        prov = {"params": self.get_params()}
        prov.update(provenance or {})
        return card_spec(
            dataset=dataset,
            provenance=prov,
            sample={"n_train": self.n_train_, "n_bad": self.n_bad_},
            scaling={
                "base_score": self.base_score,
                "base_odds": self.base_odds,
                "pdo": self.pdo,
                "factor": self.factor_,
                "offset": self.offset_,
            },
            intercept=self.intercept_,
            features=self.card_features_,
            rounding=self.rounding_,
            reason_baseline=self.reason_baseline,
            top_n=self.top_n_reasons,
            empty_bin_woe=self.empty_bin_woe,
            selection=[self.selection_[n] for n in self.feature_names_in_],
        )

    def coefficient_table(self) -> pd.DataFrame:
        """Intercept and coefficients with standard errors, z, p-values, VIF and IV."""
        check_is_fitted(self, "model_")
        m = self.model_
        out = pd.DataFrame(
            {
                "term": m.params.index,
                "coefficient": m.params.to_numpy(),
                "std_error": m.bse.to_numpy(),
                "z": m.tvalues.to_numpy(),
                "p_value": m.pvalues.to_numpy(),
            }
        )
        out["term"] = out["term"].replace({"const": "intercept"})
        out["vif"] = out["term"].map(self.vif_)
        out["iv"] = out["term"].map({n: self.binned_[n].iv for n in self.selected_})
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Selected characteristics, in card order."""
        check_is_fitted(self, "selected_")
        return np.asarray(self.selected_, dtype=object)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """WoE of the selected characteristics."""
        check_is_fitted(self, "card_features_")
        return woe_matrix(self.card_features_, X)

    def score(self, X: pd.DataFrame, y: Any, sample_weight: Any = None) -> float:
        """ROC AUC of the card's PD (higher is better), the usual scorecard ranking measure."""
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(y, self.predict_proba(X)[:, 1], sample_weight=sample_weight))

    def score_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """Points, score, PD and reason codes, through the one card scoring function."""
        return score_frame(self.to_spec(), X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """[P(good), P(bad)] with P(bad) = the card's pd_model from the integer score."""
        p_bad = self.score_frame(X)["pd_model"].to_numpy()
        return np.column_stack([1.0 - p_bad, p_bad])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 (bad) where P(bad) > 0.5."""
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)
