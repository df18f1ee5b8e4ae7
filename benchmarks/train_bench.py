"""Fit-time benchmark: our WoEScorecard vs OptBinning's BinningProcess + Scorecard, same data.

Run: ``python -m benchmarks.train_bench --rows 1000000 --features 40 [--repeats 2]`` (prints
JSON). Both get the project's ``train`` settings from params.yaml (binning trend, min bin share,
pre-bins, scaling) and special code -1; ours is configured exactly as the train stage configures
it. Both sides bin every feature with OptBinning's ``OptimalBinning`` (same solver, same
settings). Ours then also does what the product needs and OptBinning's Scorecard does not: the
correlation/VIF filter, the statsmodels fit with standard errors, the sign check, short decimal
edges and the card's own counts and rounding drift; OptBinning's fits a scikit-learn
LogisticRegression on all binned features and builds its points table.

Fairness: every library either side uses (OptBinning, statsmodels, scikit-learn) is imported
before any clock starts (import time is not fit time), and with ``--repeats`` the two fits
alternate (ours, theirs, ours, ...) so a shared machine's load falls on both; the load average is
reported with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import pandas as pd


def benchmark_frame(
    n_rows: int, n_features: int, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Skewed, partly informative receivables-like features, 3% missing and a -1 special code."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n_rows)
    cols = {}
    for j in range(n_features):
        weight = 0.8 / (1 + j) if j % 3 != 2 else 0.0
        x = np.exp(weight * latent + rng.normal(size=n_rows))
        x[rng.random(n_rows) < 0.03] = np.nan
        if j % 4 == 0:
            x[rng.random(n_rows) < 0.02] = -1.0
        cols[f"feature_{j:02d}"] = x
    y = (rng.random(n_rows) < 1 / (1 + np.exp(-(1.2 * latent - 2.5)))).astype(int)
    return pd.DataFrame(cols), y


def fit_ours(X: pd.DataFrame, y: np.ndarray, params):
    """Our scorecard, configured as the train stage configures it (special code -1)."""
    from pipeline.development import build_scorecard

    model = build_scorecard(params, dict.fromkeys(X.columns, "numeric"))
    return model.set_params(special_codes=[-1.0], max_features=X.shape[1]).fit(X, y)


def fit_optbinning(X: pd.DataFrame, y: np.ndarray, params):
    """OptBinning's BinningProcess + Scorecard with the same binning settings and scaling."""
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression

    b, scaling = params.binning, params.scaling
    process = BinningProcess(
        list(X.columns),
        special_codes=[-1.0],
        binning_fit_params={
            c: {
                "monotonic_trend": b.monotonic_trend,
                "min_bin_size": b.min_bin_size,
                "max_n_prebins": b.max_n_prebins,
            }
            for c in X.columns
        },
    )
    theirs = Scorecard(
        binning_process=process,
        estimator=LogisticRegression(max_iter=1000),
        scaling_method="pdo_odds",
        scaling_method_params={
            "pdo": scaling.pdo,
            "odds": scaling.base_odds,
            "scorecard_points": scaling.base_score,
        },
    )
    return theirs.fit(X, y)


def _timed(fit, *args) -> tuple[float, float, object]:
    """Wall and CPU seconds of one fit (CPU time of this process: on a shared, overloaded
    machine it varies far less than the wall clock)."""
    t, c = time.perf_counter(), time.process_time()
    model = fit(*args)
    return time.perf_counter() - t, time.process_time() - c, model


def bench_fit(
    n_rows: int = 1_000_000, n_features: int = 40, seed: int = 0, repeats: int = 1
) -> dict:
    """Seconds to fit each way (alternating, ``repeats`` times): the ratio of the median wall
    times ours / OptBinning, the per-pair ratios, the same for CPU time, both training AUCs and
    the load average."""
    import optbinning  # noqa: F401  (warm imports: no clock pays for loading a library)
    import statsmodels.api  # noqa: F401
    from sklearn.metrics import roc_auc_score

    import pipeline.scorecard  # noqa: F401
    from pipeline.params import load
    from pipeline.params.train import TrainParams

    params = load(TrainParams, "train", "synthetic")
    X, y = benchmark_frame(n_rows, n_features, seed)
    t_ours, t_theirs, c_ours, c_theirs = [], [], [], []
    for _ in range(max(1, repeats)):
        s, c, ours = _timed(fit_ours, X, y, params)
        t_ours.append(s)
        c_ours.append(c)
        s, c, theirs = _timed(fit_optbinning, X, y, params)
        t_theirs.append(s)
        c_theirs.append(c)
    m_ours, m_theirs = statistics.median(t_ours), statistics.median(t_theirs)
    cpu_ours, cpu_theirs = statistics.median(c_ours), statistics.median(c_theirs)
    return {
        "n_rows": n_rows,
        "n_features": n_features,
        "repeats": len(t_ours),
        "ours_fit_s": round(m_ours, 2),
        "optbinning_scorecard_fit_s": round(m_theirs, 2),
        "ratio_ours_over_optbinning": round(m_ours / m_theirs, 3),
        "ours_runs_s": [round(v, 2) for v in t_ours],
        "optbinning_runs_s": [round(v, 2) for v in t_theirs],
        "pair_ratios": [round(a / b, 3) for a, b in zip(t_ours, t_theirs, strict=True)],
        "ours_cpu_s": round(cpu_ours, 2),
        "optbinning_cpu_s": round(cpu_theirs, 2),
        "cpu_ratio_ours_over_optbinning": round(cpu_ours / cpu_theirs, 3),
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "ours_n_selected": len(ours.selected_),
        "ours_auc_train": round(float(roc_auc_score(y, ours.predict_proba(X)[:, 1])), 4),
        "optbinning_auc_train": round(float(roc_auc_score(y, theirs.predict_proba(X)[:, 1])), 4),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(bench_fit(args.rows, args.features, repeats=args.repeats), indent=2))
