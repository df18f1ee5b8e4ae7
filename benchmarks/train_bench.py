"""Fit-time benchmark: our WoEScorecard vs OptBinning's BinningProcess + Scorecard, same data.

Run: ``python -m benchmarks.train_bench --rows 1000000 --features 40`` (prints JSON). Both get the
project's ``train`` settings from params.yaml (binning trend, min bin share, pre-bins, scaling) and
special code -1; ours is configured exactly as the train stage configures it. Our fit also does the
correlation/VIF filter, the statsmodels fit with standard errors and the sign check; OptBinning's
fits a scikit-learn LogisticRegression.
"""

from __future__ import annotations

import argparse
import json
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


def bench_fit(n_rows: int = 1_000_000, n_features: int = 40, seed: int = 0) -> dict:
    """Seconds to fit each way, the ratio ours / OptBinning, and both training AUCs."""
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from pipeline.development import build_scorecard
    from pipeline.params import load
    from pipeline.params.train import TrainParams

    params = load(TrainParams, "train", "synthetic")
    b, scaling = params.binning, params.scaling
    X, y = benchmark_frame(n_rows, n_features, seed)
    t = time.perf_counter()
    ours = build_scorecard(params, dict.fromkeys(X.columns, "numeric"))
    ours.set_params(special_codes=[-1.0], max_features=n_features).fit(X, y)
    t_ours = time.perf_counter() - t

    t = time.perf_counter()
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
    theirs.fit(X, y)
    t_theirs = time.perf_counter() - t
    return {
        "n_rows": n_rows,
        "n_features": n_features,
        "ours_fit_s": round(t_ours, 2),
        "optbinning_scorecard_fit_s": round(t_theirs, 2),
        "ratio_ours_over_optbinning": round(t_ours / t_theirs, 3),
        "ours_n_selected": len(ours.selected_),
        "ours_auc_train": round(float(roc_auc_score(y, ours.predict_proba(X)[:, 1])), 4),
        "optbinning_auc_train": round(float(roc_auc_score(y, theirs.predict_proba(X)[:, 1])), 4),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=40)
    args = parser.parse_args()
    print(json.dumps(bench_fit(args.rows, args.features), indent=2))
