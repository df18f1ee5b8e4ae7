"""Scoring throughput: Python (pipeline.card.score_frame and the full score command) and the
SQL export on DuckDB, on N rows (default 1M).

    .venv/bin/python benchmarks/scoring_bench.py [--rows N] [--card exports/uci/scorecard.json]

Without --card a synthetic card is used: 10 numeric characteristics of 6 range bins (plus special
and missing bins) and 2 categorical ones of 8 labels. Inputs are drawn over each feature's bin
edges (so every bin is visited), with 2% missing, 1% special values and unseen labels.

What is timed (best of --repeat, wall clock, rows/s = N / time):
- python score_frame: ``score_frame(card, X)`` on an in-memory DataFrame -> score, pd_model,
  points per feature and reason codes (a DataFrame; nothing written);
- python score command: ``pipeline.score.score_customers`` (bundle only): adds calibrated PD,
  grade, limits, reason texts (file reading and CSV writing excluded);
- duckdb SQL (select): the exported SELECT scanning the in-memory table ``scorecard_input`` and
  computing every points column, score, pd_model and grade, reduced to one row by
  ``sum/min/max`` so that no result is written or fetched;
- duckdb SQL (materialised): ``CREATE OR REPLACE TABLE scored AS <export>`` (also copies the
  input columns into a new table: includes the cost of writing the result).
The load average is printed before and after: on a busy machine the figures are lower.
"""

from __future__ import annotations

import argparse
import os
import time

import duckdb
import numpy as np
import pandas as pd

from pipeline.card import load_card, score_frame
from pipeline.card.routing import ROUTE_COLUMN, all_features, is_routed, segment_cards
from pipeline.exports import SQL_INPUT_TABLE, scorecard_sql


def synthetic_card(n_numeric: int = 10, n_categorical: int = 2) -> dict:
    features = []
    for j in range(n_numeric):
        edges = [float(e) for e in np.linspace(0, 100, 7)[1:-1]]
        bins = [
            {"type": "range", "lower": lo, "upper": up, "points": 10 + 5 * k}
            for k, (lo, up) in enumerate(zip([None, *edges], [*edges, None], strict=False))
        ]
        bins += [
            {"type": "special", "values": [-1.0], "points": 12},
            {"type": "missing", "points": 11},
        ]
        features.append(
            {
                "name": f"x{j}",
                "dtype": "numeric",
                "reason_code": f"N{j}",
                "reason_text": f"x{j} is poor",
                "baseline_points": 35,
                "unseen_points": 10,
                "bins": bins,
            }
        )
    for j in range(n_categorical):
        bins = [
            {
                "type": "category",
                "categories": [f"c{2 * k}", f"c{2 * k + 1}"],
                "points": 10 + 6 * k,
            }
            for k in range(4)
        ]
        bins.append({"type": "missing", "points": 15})
        features.append(
            {
                "name": f"cat{j}",
                "dtype": "categorical",
                "reason_code": f"C{j}",
                "reason_text": f"cat{j} is poor",
                "baseline_points": 28,
                "unseen_points": 10,
                "bins": bins,
            }
        )
    from pipeline.config import load_params

    grades = [
        {"grade": g, "letter_grade": g, "score_min": lo, "pd": p}
        for g, lo, p in (("A", 360, 0.005), ("B", 300, 0.02), ("C", 240, 0.08), ("D", None, 0.3))
    ]
    return {
        "schema_version": "1.0",
        "kind": "woe_logistic_scorecard",
        "features": features,
        "scaling": {"factor": 28.85390081777927, "offset": 487.1228762045055},
        "intercept": -2.0,
        "reason_codes": {"top_n": 4},
        "master_scale": {"grades": grades},
        "calibration": {
            "parameters": {
                "method": "platt",
                "intercept": 12.0,
                "slope": -0.04,
                "pd_floor": 0.0003,
            }
        },
        "policy": load_params()["publish"],
    }


def synthetic_input(card: dict, n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {}
    if is_routed(card):  # a card with segment cards routes rows by segment
        cols[ROUTE_COLUMN] = rng.choice(["current", *segment_cards(card)], n)
    for f in all_features(card):
        if f["dtype"] == "numeric":
            edges = [
                b["upper"] for b in f["bins"] if b["type"] == "range" and b["upper"] is not None
            ]
            lo, hi = (min(edges), max(edges)) if edges else (0.0, 1.0)
            span = (hi - lo) or 1.0
            x = rng.uniform(lo - span / 4, hi + span / 4, n)
            x[rng.random(n) < 0.02] = np.nan
            specials = [v for b in f["bins"] if b["type"] == "special" for v in b["values"]]
            if specials:
                pick = rng.random(n) < 0.01
                x[pick] = rng.choice(specials, int(pick.sum()))
            cols[f["name"]] = x
        else:
            labels = [c for b in f["bins"] if b["type"] == "category" for c in b["categories"]]
            cols[f["name"]] = pd.Categorical(rng.choice(labels + ["unseen"], n)).astype(str)
    return pd.DataFrame(cols)


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--card", help="a card or published bundle; default: synthetic card")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    card = load_card(args.card) if args.card else synthetic_card()
    X = synthetic_input(card, args.rows)  # noqa: N806
    n = len(X)
    print(
        f"card: {args.card or 'synthetic'}; {len(all_features(card))} characteristics; {n:,} rows"
    )
    print(f"load average (1/5/15 min) before: {load_average()}; cpus: {os.cpu_count()}")

    def report(label: str, t: float, extra: str = "") -> None:
        print(f"{label:<30}: {n / t:>12,.0f} rows/s ({t:.3f} s{extra})")

    report("python score_frame", best_of(lambda: score_frame(card, X), args.repeat))
    if "master_scale" in card:
        from pipeline.score import score_customers

        report(
            "python score command (full)", best_of(lambda: score_customers(card, X), args.repeat)
        )

    con = duckdb.connect()
    con.execute(f"CREATE TABLE {SQL_INPUT_TABLE} AS SELECT * FROM X")
    sql = scorecard_sql(card, card.get("master_scale", {}).get("grades"))
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    grade = ", min(grade), max(grade)" if "master_scale" in card else ""
    select = f"SELECT sum(score), sum(pd_model){grade} FROM ({sql})"
    t = best_of(lambda: con.execute(select).fetchall(), args.repeat)
    report("duckdb scorecard.sql (select)", t, f", threads={threads}")
    t = best_of(lambda: con.execute(f"CREATE OR REPLACE TABLE scored AS {sql}"), args.repeat)
    report("duckdb sql (materialised)", t, f", threads={threads}")
    print(f"load average (1/5/15 min) after: {load_average()}")


if __name__ == "__main__":
    main()
