"""Score → PD calibration, the master scale (grade cutoffs) and calibration tests.

Reference: docs/methodology.md §4.1–4.3.

Conventions: a higher score is lower risk, so every PD mapping here is non-increasing in the score.
Calibrators are fitted on a calibration sample disjoint from training; their fitted state is a
plain JSON dict (``to_dict`` / :func:`calibrator_from_dict`) and a reloaded calibrator gives
identical predictions because both paths use the same stored numbers and the same ``predict_pd``.

Tests per grade and for the portfolio (N obligors, D defaults, PD assigned, ODR = D/N):
binomial, Jeffreys and normal z (one-sided, H0: the PD is not underestimated), Hosmer–Lemeshow
(df explicit), Spiegelhalter (individual PDs) and one-sided two-proportion tests between adjacent
grades. Traffic lights use the significance 1 − p: green < 95%, yellow 95–99.9%, red ≥ 99.9%.
All tests assume independent defaults; correlated defaults make them reject too often.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression

from pipeline.domain import LETTER_GRADES, PipelineError

METHODS = ("auto", "platt", "isotonic")
SCALES = ("letter", "numeric")
LETTERS = LETTER_GRADES
MAX_LETTER_GRADES = 12
MIN_NUMERIC_GRADES = 7
_EPS = 1e-12


# ---------------------------------------------------------------------------------- helpers
def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def _check_xy(score: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(score, dtype=float).ravel()
    t = np.asarray(y, dtype=float).ravel()
    if len(s) != len(t):
        raise PipelineError(f"calibration: {len(s)} scores but {len(t)} outcomes")
    if len(s) == 0:
        raise PipelineError("calibration: the calibration sample is empty")
    if np.isnan(s).any() or np.isnan(t).any():
        raise PipelineError("calibration: scores and outcomes must not be missing")
    if not np.isin(t, (0.0, 1.0)).all():
        raise PipelineError("calibration: outcomes must be 0 (good) or 1 (bad)")
    if t.min() == t.max():
        raise PipelineError("calibration: the calibration sample needs both goods and bads")
    return s, t


def anchor_shift(raw_pd: np.ndarray, central_tendency: float, pd_floor: float) -> float:
    """Logit-scale intercept shift δ: mean(max(floor, sigmoid(logit(p) + δ))) = central tendency.

    PDtoolkit's ``log.odds.a``: only the intercept moves, so the ranking is unchanged. Solved
    with Brent's method; the mean is increasing in δ so the root is unique.
    """
    if not 0.0 < central_tendency < 1.0:
        raise PipelineError(
            f"params.yaml calibrate.central_tendency: {central_tendency} must lie in (0, 1)"
        )
    if central_tendency <= pd_floor:
        raise PipelineError(
            f"params.yaml calibrate.central_tendency ({central_tendency}) must exceed "
            f"pd_floor ({pd_floor})"
        )
    z = _logit(raw_pd)

    def gap(delta: float) -> float:
        return float(np.maximum(pd_floor, _sigmoid(z + delta)).mean() - central_tendency)

    return float(optimize.brentq(gap, -50.0, 50.0, xtol=1e-14, rtol=1e-14, maxiter=500))


# ------------------------------------------------------------------------------ calibrators
class _Calibrator(BaseEstimator):
    """Shared anchoring, floor and serialisation; subclasses give the raw score → PD map."""

    kind = ""

    def _raw_pd(self, score: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finish(self, score: np.ndarray) -> None:
        self.shift_ = 0.0
        if self.central_tendency is not None:
            self.shift_ = anchor_shift(
                self._raw_pd(score), float(self.central_tendency), float(self.pd_floor)
            )

    def predict_pd(self, score: Any) -> np.ndarray:
        """Calibrated PD per score: raw map, logit shift to the central tendency, then floor."""
        raw = self._raw_pd(np.asarray(score, dtype=float))
        if self.shift_ != 0.0:
            raw = _sigmoid(_logit(raw) + self.shift_)
        return np.maximum(float(self.pd_floor), raw)

    def predict_proba(self, score: Any) -> np.ndarray:
        """sklearn-style two columns: P(good), P(bad)."""
        p = self.predict_pd(score)
        return np.column_stack([1.0 - p, p])

    def _common(self) -> dict:
        return {
            "method": self.kind,
            "central_tendency": self.central_tendency,
            "pd_floor": float(self.pd_floor),
            "intercept_shift": float(self.shift_),
            "n_fit": int(self.n_fit_),
            "n_bad_fit": int(self.n_bad_fit_),
        }


class PlattCalibrator(_Calibrator):
    """Logistic (Platt) calibration: PD = 1 / (1 + exp(−(a + b·score))), fitted by statsmodels.

    The score is centred and scaled for the fit; ``a`` and ``b`` are stored on the raw score.
    """

    kind = "platt"

    def __init__(self, central_tendency: float | None = None, pd_floor: float = 0.0):
        self.central_tendency = central_tendency
        self.pd_floor = pd_floor

    def fit(self, score: Any, y: Any) -> PlattCalibrator:
        import statsmodels.api as sm

        s, t = _check_xy(score, y)
        center, scale = float(np.mean(s)), float(np.std(s)) or 1.0
        X = sm.add_constant((s - center) / scale, has_constant="add")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sm.Logit(t, X).fit(disp=0, method="newton", maxiter=100)
        except Exception as exc:  # perfect separation, singular matrix
            raise PipelineError(
                f"calibration: Platt fit failed on the calibration sample: {exc}"
            ) from exc
        if not res.mle_retvals.get("converged", False) or not np.all(np.isfinite(res.params)):
            raise PipelineError(
                "calibration: Platt fit did not converge on the calibration sample (scores "
                "separate goods from bads perfectly?); use a larger calibration sample"
            )
        c0, c1 = (float(v) for v in res.params)
        se0, se1 = (float(v) for v in res.bse)
        if c1 >= 0:
            raise PipelineError(
                f"calibration: the Platt slope is {c1 / scale:+.5f} per point (s.e. "
                f"{se1 / scale:.5f}): on the calibration sample the PD does not fall as the score "
                "rises, so the score ranks these customers backwards or not at all. Cause: the "
                "card's points run the wrong way (train.scaling.base_odds must be good:bad) or "
                "the outcome is inverted (features.label: is_bad = 1 for a bad); no PD map is "
                "published from a score that does not rank"
            )
        self.slope_ = c1 / scale
        self.intercept_ = c0 - c1 * center / scale
        self.slope_se_ = se1 / scale
        self.intercept_se_ = se0
        self.n_fit_, self.n_bad_fit_ = len(t), int(t.sum())
        self._finish(s)
        return self

    def _raw_pd(self, score: np.ndarray) -> np.ndarray:
        return _sigmoid(self.intercept_ + self.slope_ * score)

    def to_dict(self) -> dict:
        """Fitted state as JSON-ready numbers."""
        out = self._common()
        out.update(
            intercept=float(self.intercept_),
            slope=float(self.slope_),
            intercept_std_error=float(self.intercept_se_),
            slope_std_error=float(self.slope_se_),
        )
        return out


class IsotonicCalibrator(_Calibrator):
    """Isotonic regression (non-increasing in the score), linear between fitted thresholds and
    flat beyond them; only for large samples (it overfits small ones, docs/methodology.md §4.1).
    """

    kind = "isotonic"

    def __init__(self, central_tendency: float | None = None, pd_floor: float = 0.0):
        self.central_tendency = central_tendency
        self.pd_floor = pd_floor

    def fit(self, score: Any, y: Any) -> IsotonicCalibrator:
        s, t = _check_xy(score, y)
        iso = IsotonicRegression(increasing=False, out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(s, t)
        self.x_thresholds_ = np.asarray(iso.X_thresholds_, dtype=float)
        self.y_thresholds_ = np.asarray(iso.y_thresholds_, dtype=float)
        self.n_fit_, self.n_bad_fit_ = len(t), int(t.sum())
        self._finish(s)
        return self

    def _raw_pd(self, score: np.ndarray) -> np.ndarray:
        return np.interp(score, self.x_thresholds_, self.y_thresholds_)

    def to_dict(self) -> dict:
        """Fitted state as JSON-ready numbers."""
        out = self._common()
        out.update(
            x_thresholds=[float(v) for v in self.x_thresholds_],
            y_thresholds=[float(v) for v in self.y_thresholds_],
        )
        return out


def choose_method(method: str, n: int, isotonic_min_sample: int) -> str:
    """``auto``: isotonic when the sample has ``isotonic_min_sample`` rows or more, else Platt."""
    if method not in METHODS:
        raise PipelineError(f"params.yaml calibrate.method: '{method}' (use {', '.join(METHODS)})")
    if method == "auto":
        return "isotonic" if n >= int(isotonic_min_sample) else "platt"
    return method


def fit_calibrator(
    score: Any,
    y: Any,
    method: str = "auto",
    isotonic_min_sample: int = 5000,
    central_tendency: float | None = None,
    pd_floor: float = 0.0,
) -> PlattCalibrator | IsotonicCalibrator:
    """Fit the calibrator named by ``method`` (:func:`choose_method`) on the calibration sample."""
    chosen = choose_method(method, len(np.asarray(score).ravel()), isotonic_min_sample)
    cls = IsotonicCalibrator if chosen == "isotonic" else PlattCalibrator
    return cls(central_tendency=central_tendency, pd_floor=pd_floor).fit(score, y)


def calibrator_from_dict(spec: dict) -> PlattCalibrator | IsotonicCalibrator:
    """Rebuild a fitted calibrator from :meth:`to_dict` output (no refit)."""
    method = spec.get("method")
    if method == "platt":
        cal: _Calibrator = PlattCalibrator(spec.get("central_tendency"), spec["pd_floor"])
        cal.intercept_, cal.slope_ = float(spec["intercept"]), float(spec["slope"])
        cal.intercept_se_ = float(spec.get("intercept_std_error", float("nan")))
        cal.slope_se_ = float(spec.get("slope_std_error", float("nan")))
    elif method == "isotonic":
        cal = IsotonicCalibrator(spec.get("central_tendency"), spec["pd_floor"])
        cal.x_thresholds_ = np.asarray(spec["x_thresholds"], dtype=float)
        cal.y_thresholds_ = np.asarray(spec["y_thresholds"], dtype=float)
    else:
        raise PipelineError(f"calibration spec: unknown method {method!r}")
    cal.shift_ = float(spec.get("intercept_shift", 0.0))
    cal.n_fit_, cal.n_bad_fit_ = int(spec.get("n_fit", 0)), int(spec.get("n_bad_fit", 0))
    return cal


# ------------------------------------------------------------------------------ master scale
def grade_labels(n_grades: int, scale: str) -> tuple[list[str], list[str]]:
    """Grade names (best first) and the A–D letter each belongs to.

    Letters are spread over the grades in order (grade i → letter ⌊4i/K⌋). On the letter scale a
    letter with m grades is sub-graded by repetition, best first (m = 3: AAA, AA, A); on the
    numeric scale the grades are 1…K.
    """
    if scale not in SCALES:
        raise PipelineError(f"params.yaml calibrate.scale: '{scale}' (use letter or numeric)")
    k = int(n_grades)
    if scale == "letter" and not 4 <= k <= MAX_LETTER_GRADES:
        raise PipelineError(
            f"params.yaml calibrate.n_grades: {k} grades on the letter scale; use 4 to "
            f"{MAX_LETTER_GRADES} (AAA…D)"
        )
    if scale == "numeric" and k < MIN_NUMERIC_GRADES:
        raise PipelineError(
            f"params.yaml calibrate.n_grades: {k}; the numeric scale needs at least "
            f"{MIN_NUMERIC_GRADES} non-default grades (CRR Art. 170)"
        )
    letters = [LETTERS[(4 * i) // k] for i in range(k)]
    if scale == "numeric":
        return [str(i + 1) for i in range(k)], letters
    names = []
    for i, letter in enumerate(letters):
        m = letters.count(letter)
        pos = i - letters.index(letter)
        names.append(letter * (m - pos))
    return names, letters


def pd_band_boundaries(
    pd_sorted: np.ndarray, n_grades: int, min_grade_share: float, bands: str, pd_targets: Sequence
) -> np.ndarray:
    """The K−1 interior PD boundaries b_1 < … < b_{K−1} the search aims at.

    ``geometric``: b_1 = the PD below which a share ``min_grade_share`` of customers lie,
    b_{K−1} = the PD above which that share lies, geometric in between (docs/methodology.md §4.2:
    b_k = b_1·r^(k−1), r = (b_{K−1}/b_1)^(1/(K−2))). ``targets``: the given K−1 boundaries.
    """
    k = int(n_grades)
    if bands == "targets":
        targets = np.asarray(list(pd_targets), dtype=float)
        if len(targets) != k - 1 or not np.all(np.diff(targets) > 0):
            raise PipelineError(
                f"params.yaml calibrate.pd_targets: give {k - 1} strictly increasing PD "
                "boundaries "
                f"for {k} grades (got {list(pd_targets)})"
            )
        if targets[0] <= 0 or targets[-1] >= 1:
            raise PipelineError("params.yaml calibrate.pd_targets: boundaries must lie in (0, 1)")
        return targets
    if bands != "geometric":
        raise PipelineError(
            f"params.yaml calibrate.pd_bands: '{bands}' (use geometric or targets)"
        )
    lo = max(float(np.quantile(pd_sorted, min_grade_share)), _EPS)
    hi = max(float(np.quantile(pd_sorted, 1.0 - min_grade_share)), lo * (1 + 1e-9))
    return lo * (hi / lo) ** (np.arange(k - 1) / max(k - 2, 1))


def master_scale(
    score: Any,
    pd_of_score: Any,
    n_grades: int = 10,
    scale: str = "letter",
    min_grade_share: float = 0.02,
    bands: str = "geometric",
    pd_targets: Sequence = (),
    pd_floor: float = 0.0,
    customer_id: Any = None,
    min_customers: int = 0,
    min_expected_defaults: float = 0.0,
    keep_spacing: bool = False,
) -> pd.DataFrame:
    """Grade cutoffs on the score, best grade first: ``grade, letter_grade, score_min, score_max,
    pd, count, share`` (and ``customers``, ``expected_defaults`` when ``customer_id`` is given); a
    grade holds scores in [score_min, score_max) (NaN = unbounded).

    With ``customer_id``, every grade must also hold ``min_customers`` distinct customers and
    ``min_expected_defaults`` expected defaults (= its customers × its PD: a customer's repeated
    snapshots count once), so that each grade PD rests on enough independent evidence. With
    ``keep_spacing`` a grade whose minimums push its PD past the next grade's target boundary is
    an error too (the grades would crowd together instead of spreading over the PD range).

    Search (greedy, one pass from the best grade down, on the distinct scores of the sample):

    1. target PD boundaries from :func:`pd_band_boundaries` (geometric or ``pd_targets``);
    2. each boundary b_k becomes a score cutoff c_k = the lowest sample score whose PD is < b_k
       (PD is non-increasing in the score, so the grade above the cutoff has PDs below b_k);
    3. walking down, c_k is then moved to the nearest distinct score that makes grade k hold at
       least ``min_grade_share`` of customers and a mean PD strictly above grade k−1's, while
       leaving at least ``min_grade_share`` for each of the K−k grades still to come;
    4. the grade PD is the mean calibrated PD of its customers, floored at ``pd_floor``.

    If ties in the score make the constraints impossible, a ``PipelineError`` says so (use fewer
    grades or a smaller minimum share). The result is checked: PDs strictly increase, every
    grade meets the minimum share.
    """
    names, letters = grade_labels(n_grades, scale)
    k = len(names)
    if not 0.0 <= min_grade_share <= 1.0 / k:
        raise PipelineError(
            f"params.yaml calibrate.min_grade_share: {min_grade_share} must lie in [0, 1/{k}]"
        )
    search = _GradeSearch(
        score,
        pd_of_score,
        customer_id,
        min_grade_share,
        pd_floor,
        min_customers,
        min_expected_defaults,
    )
    targets = pd_band_boundaries(np.sort(search.p), k, min_grade_share, bands, pd_targets)
    cut_idx = search.cutoffs(names, targets, keep_spacing)
    table = search.table(names, letters, cut_idx)
    check_master_scale(table, min_grade_share)
    if customer_id is None:
        table = table.drop(columns=["customers", "expected_defaults"])
    return table


class _GradeSearch:
    """The greedy cutoff search of `master_scale` on one calibration sample, sorted best first."""

    def __init__(
        self,
        score: Any,
        pd_of_score: Any,
        customer_id: Any,
        min_grade_share: float,
        pd_floor: float,
        min_customers: int,
        min_expected_defaults: float,
    ) -> None:
        s = np.asarray(score, dtype=float).ravel()
        p = np.asarray(pd_of_score, dtype=float).ravel()
        n = len(s)
        if n == 0 or len(p) != n:
            raise PipelineError("master scale: needs one PD per score and a non-empty sample")
        order = np.argsort(-s, kind="stable")
        self.s, self.p, self.n = s[order], p[order], n
        if customer_id is None:
            self.cust_codes = np.arange(n)
        else:
            self.cust_codes = pd.factorize(pd.Series(np.asarray(customer_id)).astype(str))[0][
                order
            ]
        # previous row (in score order) of the same customer, -1 if none: distinct customers in
        # rows [a, b) = rows i in [a, b) whose previous occurrence lies before a
        self.prev_same = (
            pd.Series(np.arange(n))
            .groupby(self.cust_codes)
            .shift(1)
            .fillna(-1)
            .to_numpy(dtype=int)
        )
        self.uniq = np.unique(self.s)[::-1]  # distinct scores, best first
        # rows with score >= uniq[j]: first index past the last such row
        self.ends = np.searchsorted(-self.s, -self.uniq, side="right")
        self.cum_pd = np.concatenate([[0.0], np.cumsum(self.p)])
        self.need = max(math.ceil(min_grade_share * n - 1e-9), 1)  # every grade holds a customer
        self.pd_at = np.array([self.p[e - 1] for e in self.ends])  # PD of the lowest row per score
        self.min_grade_share, self.pd_floor = min_grade_share, pd_floor
        self.min_customers, self.min_expected_defaults = min_customers, min_expected_defaults

    def mean_pd(self, a: int, b: int) -> float:
        return (self.cum_pd[b] - self.cum_pd[a]) / (b - a)

    def distinct_from(self, a: int) -> np.ndarray:
        """Distinct customers in rows [a, a + 1), [a, a + 2), … [a, n)."""
        return np.cumsum(self.prev_same[a:] < a)

    def shortfall(self, a: int, b: int, distinct: np.ndarray) -> str:
        """Why rows [a, b) cannot be a grade ('' when they can)."""
        n_cust = int(distinct[b - a - 1])
        expected = n_cust * max(float(self.pd_floor), self.mean_pd(a, b))
        if n_cust < self.min_customers:
            return f"{n_cust} customers < calibrate.min_grade_customers ({self.min_customers})"
        if expected < self.min_expected_defaults - 1e-12:
            return (
                f"{expected:.2f} expected defaults < calibrate.min_grade_expected_defaults "
                f"({self.min_expected_defaults:g})"
            )
        return ""

    def _cutoff(self, g: int, k: int, start: int, target: float, prev_pd: float) -> int:
        """Index into ``uniq`` of grade g's lowest score (steps 2 and 3 of `master_scale`)."""
        below = np.nonzero(self.pd_at >= target)[0]
        j = (below[0] - 1) if len(below) else len(self.uniq) - 1
        lo_j = int(np.searchsorted(self.ends, start + self.need, side="left"))  # meets share
        j = max(j, lo_j)
        distinct = self.distinct_from(start)
        while j < len(self.uniq) and (
            self.mean_pd(start, self.ends[j]) <= prev_pd
            or self.shortfall(start, self.ends[j], distinct)
        ):
            j += 1
        hi_j = int(np.searchsorted(self.ends, self.n - (k - 1 - g) * self.need, side="right")) - 1
        return min(j, hi_j)

    def cutoffs(self, names: list[str], targets: np.ndarray, keep_spacing: bool) -> list[int]:
        """Cutoff indices into ``uniq`` of the K − 1 grade boundaries, best grade first."""
        k, n, ends = len(names), self.n, self.ends
        cut_idx: list[int] = []  # grade g holds uniq[..cut_g]
        start, prev_pd = 0, -np.inf
        for g in range(k - 1):
            j = self._cutoff(g, k, start, targets[g], prev_pd)
            if j < 0 or j >= len(self.uniq) - 1 or ends[j] - start < self.need:
                raise PipelineError(
                    f"master scale: cannot form {k} grades each with at least "
                    f"{self.min_grade_share:.2%} of "
                    f"{n} customers from {len(self.uniq)} distinct scores (grade {names[g]}); "
                    "use fewer grades or a smaller calibrate.min_grade_share"
                )
            why = self.shortfall(start, ends[j], self.distinct_from(start))
            if why:
                raise PipelineError(
                    f"master scale: cannot form {k} grades: grade {names[g]} would hold {why}"
                )
            grade_pd = self.mean_pd(start, ends[j])
            if keep_spacing and g + 1 < k - 1 and grade_pd >= targets[g + 1]:
                raise PipelineError(
                    f"master scale: cannot form {k} distinct grades: to meet the minimums grade "
                    f"{names[g]} needs PD {grade_pd:.2%}, past the next grade's "
                    f"boundary {targets[g + 1]:.2%} (calibrate.min_grade_customers "
                    f"{self.min_customers}, calibrate.min_grade_expected_defaults "
                    f"{self.min_expected_defaults:g}, calibrate.min_grade_share "
                    f"{self.min_grade_share:g})"
                )
            cut_idx.append(j)
            prev_pd, start = grade_pd, ends[j]
        if start < n:
            why = self.shortfall(start, n, self.distinct_from(start))
            if why:
                raise PipelineError(
                    f"master scale: cannot form {k} grades: the last grade {names[-1]} would "
                    f"hold {why}"
                )
        return cut_idx

    def table(self, names: list[str], letters: list[str], cut_idx: list[int]) -> pd.DataFrame:
        """The master scale rows (step 4: grade PD = mean calibrated PD, floored)."""
        k, n, uniq = len(names), self.n, self.uniq
        bounds = [0] + [int(self.ends[j]) for j in cut_idx] + [n]
        rows = []
        for g in range(k):
            a, b = bounds[g], bounds[g + 1]
            rows.append(
                {
                    "grade": names[g],
                    "letter_grade": letters[g],
                    "score_min": float(uniq[cut_idx[g]]) if g < k - 1 else np.nan,
                    "score_max": float(uniq[cut_idx[g - 1]]) if g > 0 else np.nan,
                    "pd": max(float(self.pd_floor), self.mean_pd(a, b)) if b > a else np.nan,
                    "count": b - a,
                    "customers": int(len(np.unique(self.cust_codes[a:b]))),
                }
            )
        table = pd.DataFrame(rows)
        table["share"] = table["count"] / n
        table["expected_defaults"] = table["customers"] * table["pd"]
        return table


def min_grades(scale: str) -> int:
    """Fewest grades a scale allows: 4 letters (A–D) or 7 numeric grades (CRR Art. 170)."""
    return 4 if scale == "letter" else MIN_NUMERIC_GRADES


def adaptive_master_scale(
    score: Any,
    pd_of_score: Any,
    customer_id: Any,
    n_grades: int = 10,
    min_customers: int = 0,
    min_expected_defaults: float = 0.0,
    **kwargs: Any,
) -> tuple[pd.DataFrame, list[dict]]:
    """The master scale with the most grades (``n_grades`` at most) whose every grade meets the
    share, customer and expected-default minimums; fewer grades, each attempt's reason recorded,
    rather than a failure. When not even the scale's fewest grades meet them, those grades are
    formed on the share minimum alone and the grades short of the minimums are named in the last
    attempt's reason; raises only when even that is impossible, naming the params keys to change.
    """
    attempts: list[dict] = []
    floor = min_grades(kwargs.get("scale", "letter"))
    for k in range(int(n_grades), floor - 1, -1):
        try:
            table = master_scale(
                score,
                pd_of_score,
                n_grades=k,
                customer_id=customer_id,
                min_customers=min_customers,
                min_expected_defaults=min_expected_defaults,
                keep_spacing=True,
                **kwargs,
            )
        except PipelineError as exc:
            attempts.append({"n_grades": k, "formed": False, "reason": str(exc)})
            continue
        attempts.append({"n_grades": k, "formed": True, "reason": ""})
        return table, attempts
    # at the scale's fewest grades: form them on the share minimum alone and say which grades
    # miss the customer / expected-default minimums, rather than stop the pipeline
    try:
        table = master_scale(score, pd_of_score, n_grades=floor, customer_id=customer_id, **kwargs)
    except PipelineError:
        table = None
    if table is not None:
        short = table[
            (table["customers"] < min_customers)
            | (table["expected_defaults"] < min_expected_defaults - 1e-12)
        ]["grade"].tolist()
        attempts.append(
            {
                "n_grades": floor,
                "formed": True,
                "reason": f"minimums relaxed at the scale's fewest grades ({floor}): grades "
                f"{', '.join(short) or 'none'} hold fewer than calibrate.min_grade_customers "
                f"({min_customers}) customers or calibrate.min_grade_expected_defaults "
                f"({min_expected_defaults:g}) expected defaults; their PDs rest on thin evidence",
            }
        )
        return table, attempts
    raise PipelineError(
        f"master scale: not even {floor} grades can be formed from the calibration sample "
        f"({len(np.unique(np.asarray(customer_id).astype(str)))} customers); last attempt: "
        f"{attempts[-1]['reason']}. Lower calibrate.min_grade_customers, "
        "calibrate.min_grade_expected_defaults or calibrate.min_grade_share, or enlarge the "
        "calibration sample (train.split.calibration_share)"
    )


def check_master_scale(table: pd.DataFrame, min_grade_share: float) -> None:
    """Raise if grade PDs do not rise strictly or a grade holds less than the minimum share."""
    pds = table["pd"].to_numpy(dtype=float)
    if np.isnan(pds).any() or not np.all(np.diff(pds) > 0):
        raise PipelineError(
            "master scale: grade PDs do not rise strictly from grade to grade "
            f"({', '.join(f'{g}={v:.4%}' for g, v in zip(table['grade'], pds, strict=True))}); "
            "use fewer grades or lower calibrate.pd_floor"
        )
    small = table.loc[table["share"] < min_grade_share - 1e-12, "grade"].tolist()
    if small:
        raise PipelineError(
            f"master scale: grades {small} hold less than calibrate.min_grade_share "
            f"({min_grade_share:.2%})"
        )


def assign_grade(score: Any, table: pd.DataFrame | list[dict]) -> np.ndarray:
    """Grade per score from a master-scale table (a DataFrame or the ``grades`` list of
    grade_cutoffs.json, best grade first): score_min ≤ score < score_max.
    """
    if not isinstance(table, pd.DataFrame):
        table = pd.DataFrame(list(table))
    table = table.assign(score_min=pd.to_numeric(table["score_min"]).astype(float))
    s = np.asarray(score, dtype=float)
    if np.isnan(s).any():
        raise PipelineError("assign_grade: a score is missing")
    mins = table["score_min"].to_numpy(dtype=float)[:-1]  # descending cutoffs
    idx = np.searchsorted(-mins, -s, side="left")  # number of cutoffs above the score
    return table["grade"].to_numpy()[idx]


# ---------------------------------------------------------------------------------- tests
def traffic_light(p_value: float) -> str | None:
    """green when significance 1 − p < 95%, yellow below 99.9%, red at or above (OeNB)."""
    if p_value is None or not np.isfinite(p_value):
        return None
    significance = 1.0 - float(p_value)
    if significance < 0.95:
        return "green"
    return "yellow" if significance < 0.999 else "red"


def binomial_test(n: int, d: int, pd_: float) -> float:
    """One-sided binomial p = P(X ≥ D | N, PD) = 1 − F_Bin(D − 1; N, PD)."""
    return float(stats.binom.sf(d - 1, n, pd_))


def jeffreys_test(n: int, d: int, pd_: float) -> float:
    """Jeffreys (ECB) p = F_Beta(PD; D + ½, N − D + ½): small when the PD is underestimated."""
    return float(stats.beta.cdf(pd_, d + 0.5, n - d + 0.5))


def normal_test(n: int, d: int, pd_: float) -> tuple[float, float]:
    """z = (ODR − PD) / √(PD(1 − PD)/N), one-sided p = 1 − Φ(z).

    At PD 0 or 1 the variance is 0: an observed rate equal to the PD gives z = 0, p = ½ (nothing
    to test); any other rate is impossible under the PD (z = ±inf, p = 0 or 1).
    """
    gap = d / n - pd_
    var = pd_ * (1.0 - pd_) / n
    if var <= 0.0:
        if abs(gap) < 1e-15:
            return 0.0, 0.5
        return (math.inf, 0.0) if gap > 0 else (-math.inf, 1.0)
    z = gap / math.sqrt(var)
    return z, float(stats.norm.sf(z))


def hosmer_lemeshow(n: Any, d: Any, pd_: Any, df: int) -> tuple[float, float]:
    """HL = Σ (D_g − N_g·PD_g)² / (N_g·PD_g·(1 − PD_g)) ~ χ²(df); returns (HL, p)."""
    n, d, p = (np.asarray(v, dtype=float) for v in (n, d, pd_))
    keep = n > 0
    n, d, p = n[keep], d[keep], p[keep]
    var = n * p * (1 - p)
    gap2 = (d - n * p) ** 2
    # PD 0 or 1: a cell matching its PD exactly adds nothing, any other count is impossible
    terms = np.where(
        var > 0, gap2 / np.where(var > 0, var, 1.0), np.where(gap2 < 1e-24, 0.0, np.inf)
    )
    hl = float(np.sum(terms))
    if df <= 0:
        return hl, float("nan")
    return hl, float(stats.chi2.sf(hl, df))


def hl_degrees_of_freedom(rule: str | int, k: int) -> int:
    """``k`` (out of sample, PDtoolkit) or ``k-2`` (in sample) for k grades."""
    if str(rule) == "k":
        return k
    if str(rule) in ("k-2", "k − 2"):
        return k - 2
    raise PipelineError(f"params.yaml calibrate.hl_df: '{rule}' (use k or k-2)")


def spiegelhalter_test(y: Any, p: Any) -> tuple[float, float]:
    """Z = Σ(y − p)(1 − 2p) / √(Σ(1 − 2p)²·p(1 − p)) ~ N(0, 1); two-sided p = 2(1 − Φ(|Z|))."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    num = float(np.sum((y - p) * (1.0 - 2.0 * p)))
    var = float(np.sum((1.0 - 2.0 * p) ** 2 * p * (1.0 - p)))
    if var <= 0:
        return float("nan"), float("nan")
    z = num / math.sqrt(var)
    return z, float(2.0 * stats.norm.sf(abs(z)))


def heterogeneity_test(n1: int, d1: int, n2: int, d2: int) -> tuple[float, float]:
    """One-sided pooled two-proportion z-test that the worse grade (2) has a higher default rate
    than the better grade (1); returns (z, p), small p = the grades are distinct.
    """
    from statsmodels.stats.proportion import proportions_ztest

    if d1 + d2 == 0 or d1 + d2 == n1 + n2:
        return float("nan"), float("nan")
    z, p = proportions_ztest([d2, d1], [n2, n1], alternative="larger")
    return float(z), float(p)


def _test_row(n: int, d: int, pd_: float) -> dict:
    pb = binomial_test(n, d, pd_)
    pj = jeffreys_test(n, d, pd_)
    z, pz = normal_test(n, d, pd_)
    return {
        "count": n,
        "bads": d,
        "pd": pd_,
        "observed_bad_rate": d / n,
        "binomial_p": pb,
        "binomial_light": traffic_light(pb),
        "jeffreys_p": pj,
        "jeffreys_light": traffic_light(pj),
        "normal_z": z,
        "normal_p": pz,
        "normal_light": traffic_light(pz),
    }


def calibration_tests(
    grade: Any, is_bad: Any, table: pd.DataFrame, hl_df: str | int = "k"
) -> dict:
    """All tests for one sample graded with ``table``: per grade, portfolio, HL, Spiegelhalter,
    heterogeneity between adjacent grades. Grades with no customers are listed but untested.
    """
    g = pd.Series(np.asarray(grade), dtype=object)
    y = np.asarray(is_bad, dtype=float)
    pd_by_grade = dict(zip(table["grade"], table["pd"].astype(float), strict=True))
    p_i = g.map(pd_by_grade).to_numpy(dtype=float)
    counts = g.value_counts()
    bads = pd.Series(y).groupby(g.to_numpy()).sum()
    per_grade, n_list, d_list, pd_list = [], [], [], []
    for name in table["grade"]:
        n_g, d_g = int(counts.get(name, 0)), int(bads.get(name, 0))
        if n_g == 0:
            per_grade.append({"grade": name, "count": 0, "bads": 0, "pd": pd_by_grade[name]})
            continue
        per_grade.append({"grade": name, **_test_row(n_g, d_g, pd_by_grade[name])})
        n_list.append(n_g), d_list.append(d_g), pd_list.append(pd_by_grade[name])
    n_tot, d_tot = int(len(y)), int(y.sum())
    portfolio = _test_row(n_tot, d_tot, float(np.mean(p_i))) if n_tot else {}
    df = hl_degrees_of_freedom(hl_df, len(n_list))
    hl, p_hl = hosmer_lemeshow(n_list, d_list, pd_list, df)
    z_s, p_s = spiegelhalter_test(y, p_i)
    hetero = []
    for a, b in zip(per_grade[:-1], per_grade[1:], strict=True):
        if a["count"] and b["count"]:
            z, p = heterogeneity_test(a["count"], a["bads"], b["count"], b["bads"])
        else:
            z, p = float("nan"), float("nan")
        hetero.append(
            {
                "better": a["grade"],
                "worse": b["grade"],
                "z": z,
                "p": p,
                "distinct_at_5pct": bool(np.isfinite(p) and p < 0.05),
            }
        )
    return {
        "per_grade": per_grade,
        "portfolio": portfolio,
        "hosmer_lemeshow": {
            "statistic": hl,
            "df": df,
            "df_rule": str(hl_df),
            "p": p_hl,
            "light": traffic_light(p_hl),
        },
        "spiegelhalter": {"z": z_s, "p_two_sided": p_s, "light": traffic_light(p_s)},
        "heterogeneity": hetero,
    }
