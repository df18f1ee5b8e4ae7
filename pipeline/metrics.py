"""Discrimination and champion/challenger maths: AUC with confidence intervals, paired DeLong test,
Gini, KS, gains tables, the ECB AUC deterioration test, grade migration and swap sets.

Pure functions on arrays, used by the ``evaluate`` and ``monitor`` stages. Conventions:

- ``is_bad`` is 1 for a bad, 0 for a good (no missing values: callers keep matured outcomes only).
- ``risk`` is any score where a **higher value means more likely bad** (a PD, a rule grade coded
  A=1 … D=4, or minus a scorecard score). AUC is P(risk of a random bad > risk of a random good) +
  ½·P(tie).
- ``weights`` (optional) are non-negative case weights, e.g. the open balance for exposure-weighted
  figures. ``None`` means every case counts once; unit weights give exactly the unweighted figures.

Weighted DeLong: the placement values are weighted means, and the variance is the linearised
(sandwich) variance Σ w_i²(V_i − A)² / W² per class, times m/(m − 1) with m the number of cases in
the class, so unit weights give DeLong's S10/m + S01/n exactly. Hanley–McNeil under weights uses
Kish's effective sample size (Σw)²/Σw² per class. Confidence intervals are normal (Wald) on the AUC
scale, clipped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve


# ---------------------------------------------------------------------------------------- inputs
def _prepare(
    is_bad: Any, risk: Any, weights: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrays of outcome (int 0/1), risk (float) and weight (float ≥ 0), checked for the usual
    mistakes.
    """
    y = np.asarray(is_bad, dtype=float)
    s = np.asarray(risk, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(
            f"is_bad and risk must be 1-d and the same length, got {y.shape} and {s.shape}"
        )
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("is_bad must be 0/1 with no missing values")
    if np.isnan(s).any():
        raise ValueError("risk has missing values; score every case or drop it first")
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != s.shape or np.isnan(w).any() or (w < 0).any():
        raise ValueError("weights must be non-negative, non-missing and as long as risk")
    return y.astype(int), s, w


def _class_totals(y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    w_bad, w_good = float(w[y == 1].sum()), float(w[y == 0].sum())
    if w_bad <= 0 or w_good <= 0:
        raise ValueError("AUC needs at least one bad and one good with positive weight")
    return w_bad, w_good


# ----------------------------------------------------------------------------------------- AUC
def auc(is_bad: Any, risk: Any, weights: Any = None) -> float:
    """Area under the ROC curve (sklearn), optionally weighted."""
    y, s, w = _prepare(is_bad, risk, weights)
    _class_totals(y, w)
    return float(roc_auc_score(y, s, sample_weight=None if weights is None else w))


def gini(auc_value: float) -> float:
    """Gini coefficient = accuracy ratio = 2·AUC − 1."""
    return 2.0 * auc_value - 1.0


def _weighted_below(
    sorted_values: np.ndarray, cum_weights: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """Σ weight of sorted_values < x plus ½ Σ weight of sorted_values == x, for each x."""
    left = np.searchsorted(sorted_values, x, side="left")
    right = np.searchsorted(sorted_values, x, side="right")
    cum = np.concatenate([[0.0], cum_weights])
    return cum[left] + 0.5 * (cum[right] - cum[left])


def placement_values(is_bad: Any, risk: Any, weights: Any = None) -> dict[str, np.ndarray | float]:
    """DeLong placement values: for each bad, the (weighted) share of goods it outranks (ties ½),
    and for each good, the share of bads that outrank it. Their weighted means both equal the AUC.
    """
    y, s, w = _prepare(is_bad, risk, weights)
    w_bad, w_good = _class_totals(y, w)
    bad_s, bad_w = s[y == 1], w[y == 1]
    good_s, good_w = s[y == 0], w[y == 0]
    g_order, b_order = np.argsort(good_s, kind="stable"), np.argsort(bad_s, kind="stable")
    v10 = _weighted_below(good_s[g_order], np.cumsum(good_w[g_order]), bad_s) / w_good
    # share of bads above a good = 1 − share of bads below it (ties count ½ either way)
    v01 = 1.0 - _weighted_below(bad_s[b_order], np.cumsum(bad_w[b_order]), good_s) / w_bad
    return {
        "v10": v10,
        "v01": v01,
        "w_bad": bad_w,
        "w_good": good_w,
        "auc": float(np.dot(bad_w, v10) / w_bad),
    }


def _class_covariance(va: np.ndarray, vb: np.ndarray, w: np.ndarray, a: float, b: float) -> float:
    """Linearised covariance of two weighted means of placement values within one class."""
    m = len(w)
    if m < 2:
        return 0.0
    total = w.sum()
    return float(np.sum(w**2 * (va - a) * (vb - b)) / total**2 * m / (m - 1))


def delong_se(is_bad: Any, risk: Any, weights: Any = None) -> float:
    """DeLong standard error of the AUC (weighted by the linearised variance when weights are
    given).
    """
    p = placement_values(is_bad, risk, weights)
    a = p["auc"]
    var = _class_covariance(p["v10"], p["v10"], p["w_bad"], a, a) + _class_covariance(
        p["v01"], p["v01"], p["w_good"], a, a
    )
    return float(np.sqrt(max(var, 0.0)))


def hanley_mcneil_se(auc_value: float, n_bad: float, n_good: float) -> float:
    """Hanley & McNeil (1982) standard error of an AUC from the class sizes alone.

    Q1 = A/(2−A), Q2 = 2A²/(1+A), SE² = [A(1−A) + (n_b−1)(Q1−A²) + (n_g−1)(Q2−A²)] / (n_b·n_g).
    """
    a = float(auc_value)
    if n_bad <= 0 or n_good <= 0:
        raise ValueError("Hanley-McNeil SE needs n_bad > 0 and n_good > 0")
    q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
    var = (a * (1 - a) + (n_bad - 1) * (q1 - a * a) + (n_good - 1) * (q2 - a * a)) / (
        n_bad * n_good
    )
    return float(np.sqrt(max(var, 0.0)))


def effective_size(weights: np.ndarray) -> float:
    """Kish's effective sample size (Σw)² / Σw²; the count itself for equal weights."""
    w = np.asarray(weights, dtype=float)
    sq = float(np.sum(w**2))
    return float(w.sum() ** 2 / sq) if sq > 0 else 0.0


def _wald_ci(estimate: float, se: float, level: float) -> tuple[float, float]:
    z = stats.norm.ppf(0.5 + level / 2.0)
    return float(max(0.0, estimate - z * se)), float(min(1.0, estimate + z * se))


def auc_with_ci(
    is_bad: Any, risk: Any, weights: Any = None, level: float = 0.95
) -> dict[str, float]:
    """AUC, Gini and both standard errors (DeLong, Hanley–McNeil) with their Wald intervals."""
    y, s, w = _prepare(is_bad, risk, weights)
    p = placement_values(y, s, w)
    a = p["auc"]
    se_d = delong_se(y, s, w)
    n_bad_eff, n_good_eff = effective_size(p["w_bad"]), effective_size(p["w_good"])
    se_hm = hanley_mcneil_se(a, n_bad_eff, n_good_eff)
    lo_d, hi_d = _wald_ci(a, se_d, level)
    lo_h, hi_h = _wald_ci(a, se_hm, level)
    return {
        "auc": a,
        "gini": gini(a),
        "ci_level": level,
        "se_delong": se_d,
        "ci_low": lo_d,
        "ci_high": hi_d,
        "se_hanley_mcneil": se_hm,
        "ci_low_hanley_mcneil": lo_h,
        "ci_high_hanley_mcneil": hi_h,
        "gini_ci_low": gini(lo_d),
        "gini_ci_high": gini(hi_d),
        "n": int(len(y)),
        "n_bad": int(y.sum()),
        "n_good": int(len(y) - y.sum()),
        "weight_bad": float(p["w_bad"].sum()),
        "weight_good": float(p["w_good"].sum()),
        "n_bad_effective": n_bad_eff,
        "n_good_effective": n_good_eff,
    }


def delong_paired_test(
    is_bad: Any, risk_a: Any, risk_b: Any, weights: Any = None, level: float = 0.95
) -> dict[str, float]:
    """DeLong, DeLong & Clarke-Pearson (1988) test of AUC_a = AUC_b for two scores on the same
    cases.

    Returns both AUCs, the difference a − b, its standard error (from the covariance of the
    placement values), the Wald interval, z and the two-sided p-value. Identical rankings give
    difference 0, p = 1.
    """
    y, sa, w = _prepare(is_bad, risk_a, weights)
    _, sb, _ = _prepare(y, risk_b, w)
    pa, pb = placement_values(y, sa, w), placement_values(y, sb, w)
    a, b = pa["auc"], pb["auc"]

    def cov(x: str, xa: float, z: str, za: float) -> float:
        px, pz = (pa if x == "a" else pb), (pa if z == "a" else pb)
        return _class_covariance(px["v10"], pz["v10"], px["w_bad"], xa, za) + _class_covariance(
            px["v01"], pz["v01"], px["w_good"], xa, za
        )

    var = cov("a", a, "a", a) + cov("b", b, "b", b) - 2.0 * cov("a", a, "b", b)
    se = float(np.sqrt(max(var, 0.0)))
    diff = a - b
    zcrit = stats.norm.ppf(0.5 + level / 2.0)
    if se > 1e-12:
        z = diff / se
        p_value = float(2.0 * stats.norm.sf(abs(z)))
    else:
        z, p_value = (0.0, 1.0) if abs(diff) < 1e-12 else (float(np.sign(diff) * np.inf), 0.0)
    return {
        "auc_a": a,
        "auc_b": b,
        "difference": diff,
        "se": se,
        "z": float(z),
        "p_value": p_value,
        "ci_low": float(diff - zcrit * se),
        "ci_high": float(diff + zcrit * se),
        "ci_level": level,
        "gini_difference": 2.0 * diff,
    }


def auc_deterioration_test(
    auc_current: float, auc_reference: float, n_bad: float, n_good: float, se: float | None = None
) -> dict[str, float]:
    """ECB-style one-sided test that the current AUC has fallen below the reference (initial
    validation) AUC.

    The reference AUC is treated as fixed; z = (AUC_current − AUC_reference) / SE with the
    Hanley–McNeil SE of the current AUC on the current sample (or ``se`` if given, e.g. DeLong). p
    = Φ(z): a small p means the discriminatory power has deteriorated significantly.
    """
    se_used = hanley_mcneil_se(auc_current, n_bad, n_good) if se is None else float(se)
    if se_used <= 0:
        raise ValueError("the standard error of the current AUC must be > 0")
    z = (auc_current - auc_reference) / se_used
    return {
        "auc_current": float(auc_current),
        "auc_reference": float(auc_reference),
        "se": se_used,
        "se_method": "hanley_mcneil" if se is None else "given",
        "z": float(z),
        "p_value": float(stats.norm.cdf(z)),
    }


# ------------------------------------------------------------------------------------------ KS
def ks_statistic(is_bad: Any, risk: Any, weights: Any = None) -> dict[str, float]:
    """Kolmogorov–Smirnov distance max_s |F_bad(s) − F_good(s)| of the (weighted) score
    distributions, with the risk value where it is reached (cases with risk ≥ that value on the
    bad-rich side)."""
    y, s, w = _prepare(is_bad, risk, weights)
    _class_totals(y, w)
    fpr, tpr, thresholds = roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    gap = np.abs(tpr - fpr)
    k = int(
        np.flatnonzero(gap >= gap.max() - 1e-12)[0]
    )  # first (riskiest) cut reaching the maximum
    return {"ks": float(gap[k]), "ks_risk": float(thresholds[k])}


def roc_points(is_bad: Any, risk: Any, weights: Any = None) -> pd.DataFrame:
    """ROC curve (false-positive rate = share of goods flagged, true-positive rate = share of bads
    flagged).
    """
    y, s, w = _prepare(is_bad, risk, weights)
    fpr, tpr, thr = roc_curve(y, s, sample_weight=w, drop_intermediate=True)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr})


def roc_on_grid(is_bad: Any, risk: Any, grid: np.ndarray, weights: Any = None) -> np.ndarray:
    """True-positive rate at each false-positive rate of ``grid``, linear between ROC points
    (ties).
    """
    roc = roc_points(is_bad, risk, weights).groupby("fpr", sort=True)["tpr"].max()
    return np.interp(grid, roc.index.to_numpy(), roc.to_numpy())


# ----------------------------------------------------------------------------------- bands, gains
def bands_by_shares(risk: Any, shares: Sequence[float], weights: Any = None) -> np.ndarray:
    """Band number (0 = riskiest) cutting ``risk`` from the riskiest case down into bands holding
    the given (weighted) population shares. Tied risks always share a band: a tie group goes to the
    band that holds the midpoint of its cumulative share, so realised shares can differ slightly
    from ``shares``."""
    s = np.asarray(risk, dtype=float)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=float)
    shares = np.asarray(shares, dtype=float)
    if (shares < 0).any() or shares.sum() <= 0:
        raise ValueError("band shares must be non-negative and sum to more than 0")
    edges = np.cumsum(shares / shares.sum())[:-1]
    frame = pd.DataFrame({"risk": s, "w": w})
    groups = frame.groupby("risk", sort=True)["w"].sum().iloc[::-1]
    total = groups.sum()
    if total <= 0:
        raise ValueError("banding needs a positive total weight")
    after = groups.cumsum() / total
    midpoint = after - groups / total / 2.0
    band_of_value = pd.Series(
        np.searchsorted(edges, midpoint.to_numpy(), side="right"), index=groups.index
    )
    return band_of_value.reindex(s).to_numpy()


def gains_table(is_bad: Any, risk: Any, weights: Any = None, n_bands: int = 10) -> pd.DataFrame:
    """Gains table by risk band (band 1 = riskiest 1/n of the population, by weight when weighted).

    Tied risks share a band, so a heavily tied score can give fewer than ``n_bands`` bands
    (numbered 1..k).

    Columns: band, risk_min, risk_max, count (cases), weight, bads (weighted), bad_rate,
    population_share, cum_population_share, bad_capture (share of all bads in the band),
    cum_bad_capture, lift (band bad rate / overall bad rate) and cum_lift. With ``weights=None``
    weight = count.
    """
    y, s, w = _prepare(is_bad, risk, weights)
    band = np.unique(bands_by_shares(s, np.ones(n_bands), w), return_inverse=True)[1]
    frame = pd.DataFrame({"band": band + 1, "risk": s, "w": w, "bad_w": w * y})
    table = (
        frame.groupby("band", sort=True)
        .agg(
            risk_min=("risk", "min"),
            risk_max=("risk", "max"),
            count=("risk", "size"),
            weight=("w", "sum"),
            bads=("bad_w", "sum"),
        )
        .reset_index()
    )
    total_w, total_bad = table["weight"].sum(), table["bads"].sum()
    overall = total_bad / total_w if total_w > 0 else np.nan
    table["bad_rate"] = np.where(
        table["weight"] > 0, table["bads"] / table["weight"].where(table["weight"] > 0), np.nan
    )
    table["population_share"] = table["weight"] / total_w
    table["cum_population_share"] = table["population_share"].cumsum()
    table["bad_capture"] = table["bads"] / total_bad if total_bad > 0 else np.nan
    table["cum_bad_capture"] = table["bad_capture"].cumsum()
    table["lift"] = table["bad_rate"] / overall
    table["cum_lift"] = table["cum_bad_capture"] / table["cum_population_share"]
    return table


# ------------------------------------------------------------------------------- grades, swap sets
def grade_table(
    grade: pd.Series, is_bad: Any, order: Sequence[str], weights: Any = None
) -> pd.DataFrame:
    """Count, share, bads and bad rate per grade (in ``order``), by count and by weight."""
    g = pd.Series(grade).reset_index(drop=True)
    y = np.asarray(is_bad, dtype=float)
    w = np.ones(len(g)) if weights is None else np.asarray(weights, dtype=float)
    frame = pd.DataFrame({"grade": g, "y": y, "w": w, "bad_w": y * w})
    agg = frame.groupby("grade").agg(
        count=("y", "size"), bads=("y", "sum"), weight=("w", "sum"), bad_weight=("bad_w", "sum")
    )
    agg = agg.reindex(list(order)).fillna(0.0)
    out = pd.DataFrame(
        {
            "grade": list(order),
            "count": agg["count"].astype(int).to_numpy(),
            "bads": agg["bads"].astype(int).to_numpy(),
        }
    )
    out["share"] = out["count"] / max(out["count"].sum(), 1)
    out["bad_rate"] = np.where(
        out["count"] > 0, out["bads"] / out["count"].where(out["count"] > 0), np.nan
    )
    out["weight"] = agg["weight"].to_numpy()
    out["bad_weight"] = agg["bad_weight"].to_numpy()
    out["weighted_bad_rate"] = np.where(
        out["weight"] > 0, out["bad_weight"] / out["weight"].where(out["weight"] > 0), np.nan
    )
    return out


def migration_table(
    grade_from: pd.Series,
    grade_to: pd.Series,
    is_bad: Any,
    order_from: Sequence[str],
    order_to: Sequence[str],
    weights: Any = None,
) -> pd.DataFrame:
    """Every cell of grade_from × grade_to (long format, both in the given order): count, share of
    all cases, bads, bad rate, and the weighted total, bad weight and weighted bad rate. Empty
    cells are kept."""
    y = np.asarray(is_bad, dtype=float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    frame = pd.DataFrame(
        {
            "grade_from": pd.Series(grade_from).to_numpy(),
            "grade_to": pd.Series(grade_to).to_numpy(),
            "y": y,
            "w": w,
            "bad_w": y * w,
        }
    )
    agg = frame.groupby(["grade_from", "grade_to"]).agg(
        count=("y", "size"), bads=("y", "sum"), weight=("w", "sum"), bad_weight=("bad_w", "sum")
    )
    full = pd.MultiIndex.from_product(
        [list(order_from), list(order_to)], names=["grade_from", "grade_to"]
    )
    out = agg.reindex(full).fillna(0.0).reset_index()
    out["count"] = out["count"].astype(int)
    out["bads"] = out["bads"].astype(int)
    out["share"] = out["count"] / max(out["count"].sum(), 1)
    out["bad_rate"] = np.where(
        out["count"] > 0, out["bads"] / out["count"].where(out["count"] > 0), np.nan
    )
    out["weighted_bad_rate"] = np.where(
        out["weight"] > 0, out["bad_weight"] / out["weight"].where(out["weight"] > 0), np.nan
    )
    return out[
        [
            "grade_from",
            "grade_to",
            "count",
            "share",
            "bads",
            "bad_rate",
            "weight",
            "bad_weight",
            "weighted_bad_rate",
        ]
    ]


def approve_by_rate(risk: Any, approval_rate: float, weights: Any = None) -> np.ndarray:
    """Accept the least risky cases up to ``approval_rate`` of the (weighted) population.

    Tied risks are never split: the accepted set is the one, among the cuts between distinct risk
    values, whose realised rate is closest to the target (the lower cut on an exact tie)."""
    s = np.asarray(risk, dtype=float)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=float)
    if not 0.0 <= approval_rate <= 1.0:
        raise ValueError(f"approval rate must be in [0, 1], got {approval_rate}")
    groups = pd.Series(w).groupby(s).sum().sort_index()
    cum = np.concatenate([[0.0], groups.cumsum().to_numpy() / groups.sum()])
    k = int(np.argmin(np.abs(cum - approval_rate)))  # first minimum = lower cut on a tie
    if k == 0:
        return np.zeros(len(s), dtype=bool)
    return s <= groups.index[k - 1]


SWAP_SEGMENTS = (
    "accepted by both",
    "accepted by challenger only (swap-in)",
    "accepted by champion only (swap-out)",
    "rejected by both",
)


def swap_set(
    is_bad: Any, accept_champion: Any, accept_challenger: Any, weights: Any = None
) -> pd.DataFrame:
    """Swap-set table: count, share, bads and bad rate (and weighted) of the four accept/reject
    cells.
    """
    y = np.asarray(is_bad, dtype=float)
    a = np.asarray(accept_champion, dtype=bool)
    b = np.asarray(accept_challenger, dtype=bool)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    masks = (a & b, b & ~a, a & ~b, ~a & ~b)
    rows = []
    for name, m in zip(SWAP_SEGMENTS, masks, strict=True):
        count, bads, wt, bad_wt = (
            int(m.sum()),
            int(y[m].sum()),
            float(w[m].sum()),
            float((w * y)[m].sum()),
        )
        rows.append(
            {
                "segment": name,
                "count": count,
                "share": count / max(len(y), 1),
                "bads": bads,
                "bad_rate": bads / count if count else np.nan,
                "weight": wt,
                "bad_weight": bad_wt,
                "weighted_bad_rate": bad_wt / wt if wt > 0 else np.nan,
            }
        )
    return pd.DataFrame(rows)


def swap_set_at_rate(
    is_bad: Any, accept_champion: Any, risk_challenger: Any, weights: Any = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """Swap set of a challenger score cut at the champion's own approval rate (by count).

    Returns the table and the challenger's accept mask."""
    a = np.asarray(accept_champion, dtype=bool)
    accept_b = approve_by_rate(risk_challenger, float(a.mean()))
    return swap_set(is_bad, a, accept_b, weights), accept_b


# --------------------------------------------------------------------------- cluster bootstrap
BOOTSTRAP_METHOD = (
    "cluster bootstrap over customers (Field & Welsh 2007): each resample draws customers with "
    "replacement and keeps all their snapshots; percentile intervals; paired differences use the "
    "same resamples for both scores"
)


BOOTSTRAP_BLOCK_BYTES = 2**26
"""Bytes of one block of resample weights (float64, resamples x rows); the AUC/KS reduction keeps a
few blocks alive, so a block of at most 64 MiB bounds the bootstrap's memory at any sample size."""


def cluster_resample_weights(clusters: Any, n_resamples: int, seed: int, chunk: int = 200) -> Any:
    """Yield blocks of row weights (resamples × rows): each row's weight is how many times its
    cluster (customer) was drawn in that resample. Seeded: the same seed gives the same draws
    whatever the block size (at most ``chunk`` resamples and `BOOTSTRAP_BLOCK_BYTES` per block).
    """
    codes, uniques = pd.factorize(pd.Series(np.asarray(clusters)).astype(str), sort=True)
    chunk = max(1, min(chunk, BOOTSTRAP_BLOCK_BYTES // (8 * max(len(codes), 1))))
    n_c = len(uniques)
    if n_c < 2:
        raise ValueError("a cluster bootstrap needs at least two customers")
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_resamples:
        b = min(chunk, n_resamples - done)
        counts = rng.multinomial(n_c, np.full(n_c, 1.0 / n_c), size=b).astype(float)
        yield counts[:, codes]
        done += b


class _RankedScore:
    """One score sorted once into tie groups (riskiest first), so a weighted AUC and KS for many
    weight vectors cost two matrix reductions each.
    """

    def __init__(self, y: np.ndarray, risk: np.ndarray):
        order = np.argsort(-risk, kind="stable")
        sorted_risk = risk[order]
        starts = np.flatnonzero(np.r_[True, sorted_risk[1:] != sorted_risk[:-1]])
        self.order, self.starts, self.y_sorted = order, starts, y[order]

    def auc_ks(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """AUC and KS per row of the weight matrix ``w`` (resamples × cases)."""
        ws = w[:, self.order]
        bad = np.add.reduceat(ws * self.y_sorted, self.starts, axis=1)
        good = np.add.reduceat(ws * (1 - self.y_sorted), self.starts, axis=1)
        tb, tg = bad.sum(axis=1), good.sum(axis=1)
        # goods strictly less risky than each group = total goods − goods at or above it
        good_below = tg[:, None] - np.cumsum(good, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc_ = (bad * (good_below + 0.5 * good)).sum(axis=1) / (tb * tg)
            ks_ = np.abs(
                np.cumsum(bad, axis=1) / tb[:, None] - np.cumsum(good, axis=1) / tg[:, None]
            )
            ks_ = ks_.max(axis=1)
        valid = (tb > 0) & (tg > 0)
        return np.where(valid, auc_, np.nan), np.where(valid, ks_, np.nan)


def _percentile_ci(values: np.ndarray, level: float) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(v, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def _bootstrap_draws(
    y: np.ndarray,
    risks: dict[str, Any],
    w: np.ndarray,
    cl: np.ndarray,
    n_resamples: int,
    seed: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """AUC and KS of every score in every cluster-bootstrap resample (NaN where a resample has no
    bad or no good)."""
    ranked = {}
    for name, r in risks.items():
        _, s, _ = _prepare(y, r, w)
        ranked[name] = _RankedScore(y, s)
    boot_auc: dict[str, list] = {name: [] for name in risks}
    boot_ks: dict[str, list] = {name: [] for name in risks}
    for block in cluster_resample_weights(cl, n_resamples, seed):
        block = block * w[None, :]
        for name, rs in ranked.items():
            a, k = rs.auc_ks(block)
            boot_auc[name].append(a)
            boot_ks[name].append(k)
    aucs = {n: np.concatenate(v) for n, v in boot_auc.items()}
    kss = {n: np.concatenate(v) for n, v in boot_ks.items()}
    return aucs, kss


def _bootstrap_score(
    y: np.ndarray,
    r: Any,
    weights: np.ndarray | None,
    draws_auc: np.ndarray,
    draws_ks: np.ndarray,
    level: float,
) -> dict[str, float]:
    """Point AUC/Gini/KS of one score with its bootstrap SE, percentile intervals, the DeLong SE
    assuming independent rows and the design effect."""
    a_hat = auc(y, r, weights)
    ks_hat = ks_statistic(y, r, weights)["ks"]
    se_b = float(np.std(draws_auc, ddof=1))
    se_d = delong_se(y, r, weights)
    lo, hi = _percentile_ci(draws_auc, level)
    klo, khi = _percentile_ci(draws_ks, level)
    return {
        "auc": a_hat,
        "gini": gini(a_hat),
        "ks": ks_hat,
        "se_cluster_bootstrap": se_b,
        "ci_low": lo,
        "ci_high": hi,
        "gini_ci_low": gini(lo),
        "gini_ci_high": gini(hi),
        "ks_ci_low": klo,
        "ks_ci_high": khi,
        "se_delong_independent": se_d,
        "design_effect": (se_b / se_d) ** 2 if se_d > 0 else float("nan"),
    }


def _bootstrap_pair(
    auc_a: float, auc_b: float, d: np.ndarray, zcrit: float, level: float
) -> dict[str, float]:
    """Paired AUC difference a - b: bootstrap SE, percentile and normal intervals, z and the
    two-sided p-value."""
    diff_hat = auc_a - auc_b
    se = float(np.std(d, ddof=1))
    lo, hi = _percentile_ci(d, level)
    if se > 1e-12:
        z = diff_hat / se
        p = float(2.0 * stats.norm.sf(abs(z)))
    else:
        z, p = (0.0, 1.0) if abs(diff_hat) < 1e-12 else (float(np.sign(diff_hat) * np.inf), 0.0)
    return {
        "auc_a": auc_a,
        "auc_b": auc_b,
        "difference": diff_hat,
        "gini_difference": 2.0 * diff_hat,
        "se": se,
        "ci_low": lo,
        "ci_high": hi,
        "normal_ci_low": float(diff_hat - zcrit * se),
        "normal_ci_high": float(diff_hat + zcrit * se),
        "z": float(z),
        "p_value": p,
        "ci_level": level,
    }


def cluster_bootstrap(
    is_bad: Any,
    risks: dict[str, Any],
    clusters: Any,
    weights: Any = None,
    pairs: Sequence[tuple[str, str]] = (),
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """AUC, Gini and KS of several scores on the same cases with intervals from a bootstrap over
    clusters (customers), and paired AUC differences for ``pairs``.

    Every resample draws the customers with replacement and keeps all snapshots of each drawn
    customer (weights multiply the case weights), so the intervals allow for repeated snapshots of
    one customer. Per score: the point estimates on the data, the bootstrap SE, percentile
    intervals, the DeLong SE assuming independent rows and the design effect (SE_bootstrap /
    SE_DeLong)². Per pair a − b: the difference, bootstrap SE, percentile interval, z = difference
    / SE and the two-sided normal p-value. Resamples with no bad or no good are dropped and
    counted. Reproducible: the same seed gives the same figures.
    """
    y, _, w = _prepare(is_bad, next(iter(risks.values())), weights)
    _class_totals(y, w)
    cl = np.asarray(clusters)
    if len(cl) != len(y):
        raise ValueError("clusters must be as long as is_bad")
    if n_resamples < 2:
        raise ValueError(f"cluster bootstrap needs at least 2 resamples, got {n_resamples}")
    aucs, kss = _bootstrap_draws(y, risks, w, cl, n_resamples, seed)
    valid = np.all([np.isfinite(v) for v in aucs.values()], axis=0)
    zcrit = stats.norm.ppf(0.5 + level / 2.0)
    out: dict[str, Any] = {
        "method": BOOTSTRAP_METHOD,
        "n_resamples": int(n_resamples),
        "n_resamples_used": int(valid.sum()),
        "seed": int(seed),
        "n_customers": int(len(np.unique(cl.astype(str)))),
        "n": int(len(y)),
        "n_bad": int(y.sum()),
        "ci_level": level,
        "scores": {},
        "pairs": {},
    }
    sample_weights = None if weights is None else w
    for name, r in risks.items():
        out["scores"][name] = _bootstrap_score(
            y, r, sample_weights, aucs[name][valid], kss[name][valid], level
        )
    for a_name, b_name in pairs:
        out["pairs"][f"{a_name}_vs_{b_name}"] = _bootstrap_pair(
            out["scores"][a_name]["auc"],
            out["scores"][b_name]["auc"],
            (aucs[a_name] - aucs[b_name])[valid],
            zcrit,
            level,
        )
    return out
