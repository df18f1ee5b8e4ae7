"""Stage ``monitor``: a later month scored with the published card, against the development sample.

``python -m pipeline.monitor --dataset NAME [--month YYYY-MM-DD]``; the month defaults to the
latest as-of date of the snapshots. Reads the published bundle (``exports/<ds>/scorecard.json``:
card + master scale), ``dunning_strategy.csv``, the snapshots (with the customer's credit limit at
the as-of date) and samples, the canonical claims and ``metrics/<ds>/evaluate.json`` (the
validation AUC). Writes ``metrics/<ds>/monitor.json`` (metrics), CSV tables, PNG charts and a
one-page ``report.md``. The month's review is assembled by `pipeline.monitoring_review` from the
maths in `pipeline.monitoring`; parameters: params.yaml ``monitor`` (`MonitorParams`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import monitoring_review as review
from pipeline.card.routing import scoring_columns
from pipeline.config import Paths, require_files, run_stage, stage_argparser
from pipeline.domain import SNAPSHOT_KEYS, PipelineError
from pipeline.io import read_json, write_csv, write_json, write_text
from pipeline.params import load
from pipeline.params.base import BaseParams
from pipeline.params.monitor import MonitorParams
from pipeline.params.publish import policy_from_bundle
from pipeline.score import POLICY_INPUTS, load_bundle
from pipeline.snapshot_io import population_rows, present, read_columns, read_rows, samples_of

log = logging.getLogger("pipeline.monitor")
KEYS = SNAPSHOT_KEYS


def input_files(paths: Paths) -> dict[str, Path]:
    """The monitor stage's declared inputs."""
    return {
        "bundle": paths.exports / "scorecard.json",
        "strategy": paths.exports / "dunning_strategy.csv",
        "snapshots": paths.processed / "snapshots.parquet",
        "samples": paths.processed / "samples.parquet",
        "claims": paths.interim / "claims.parquet",
        "evaluation": paths.metrics / "evaluate.json",
    }


MONITOR_COLUMNS = (
    *KEYS,
    "label",
    "is_bad",
    "segment",
    "exposure",
    "credit_limit",
    "days_beyond_terms",
    "expert_score",
    "overlay_notches",
    "override_approver",
)
"""Snapshot columns the review reads besides the card's features, the policy inputs and
``monitor.dbt_measure``."""

NARROW_COLUMNS = (
    *KEYS,
    "is_bad",
    "segment",
    "expert_score",
    "overlay_notches",
    "override_approver",
)
"""Read for every month (PSI by month, deterioration, overrides); the rest for two months only."""


def monitor_columns(bundle: dict, dbt_measure: str) -> list[str]:
    """The snapshot columns the month's review uses: `MONITOR_COLUMNS`, ``dbt_measure``, the
    card's features and what the published policy reads (size measure, limit and trigger inputs)."""
    size = policy_from_bundle(bundle["policy"]).size_measure
    return [*MONITOR_COLUMNS, dbt_measure, size, *POLICY_INPUTS, *scoring_columns(bundle)]


def monitored_month(snapshots: pd.DataFrame, month: str | None, path: Path) -> pd.Timestamp:
    """``--month`` (default: the latest as-of date), which must be an as-of date of the snapshots."""
    months = sorted(snapshots["as_of_date"].unique())
    chosen = pd.Timestamp(month) if month else pd.Timestamp(months[-1])
    if chosen not in set(pd.to_datetime(months)):
        raise PipelineError(
            f"{path}: no snapshots at --month {chosen:%Y-%m-%d}; "
            f"as-of dates run {pd.Timestamp(months[0]):%Y-%m-%d} to "
            f"{pd.Timestamp(months[-1]):%Y-%m-%d}"
        )
    return chosen


def check_columns(inputs: dict[str, Path], tables: dict[str, pd.DataFrame], dbt_col: str) -> None:
    """The columns the review needs, named with the file that lacks them."""
    for name, columns in (
        ("snapshots", [*KEYS, "is_bad", "exposure", dbt_col]),
        ("strategy", ["letter_grade", "dpd_min", "amount_min", "action", "wait_days"]),
        ("claims", ["customer_id", "claim_date"]),
    ):
        missing = [c for c in columns if c not in tables[name].columns]
        if missing:
            raise PipelineError(
                f"{inputs[name]}: column(s) {', '.join(missing)} missing (rule: monitor input "
                "contract); rerun the stage that writes it, or set monitor.dbt_measure in "
                "params.yaml"
            )


def run(dataset: str, month: str | None = None, root: Path | None = None) -> dict[str, Any]:
    """Review ``month`` of ``dataset`` and write monitoring/<ds>/; returns monitor.json's content."""
    p = load(MonitorParams, "monitor", dataset)
    paths = Paths(dataset) if root is None else Paths(dataset, root)
    inputs = input_files(paths)
    require_files(inputs, "run the stages before monitor (dvc repro)")
    bundle = load_bundle(inputs["bundle"])
    rows = population_rows(inputs["snapshots"])
    dates = read_rows(inputs["snapshots"], ["as_of_date"], rows)
    chosen = monitored_month(dates, month, inputs["snapshots"])
    previous = dates.loc[dates["as_of_date"] < chosen, "as_of_date"].nlargest(1)
    columns = present(inputs["snapshots"], monitor_columns(bundle, p.dbt_measure))
    log.info("monitor %s: scoring %d snapshots with the published card", dataset, len(dates))
    scored, detail = review.score_population(
        bundle,
        inputs["snapshots"],
        columns,
        rows,
        [c for c in NARROW_COLUMNS if c in columns],
        [chosen, *previous],
        load(BaseParams, "base", dataset).budget_bytes,
    )
    del dates
    samples = read_columns(inputs["samples"], [*KEYS, "sample"])
    scored = review.compact(samples_of(scored, samples, inputs["snapshots"], rows))
    development = scored.loc[scored["sample"] == "train", ["is_bad", "score"]]
    tables = {
        "snapshots": detail,
        "claims": pd.read_parquet(inputs["claims"]),
        "strategy": pd.read_csv(inputs["strategy"]),
    }
    check_columns(inputs, tables, p.dbt_measure)
    reference = review.validation_reference(read_json(inputs["evaluation"]), inputs["evaluation"])
    res = review.monitor_month(
        scored,
        development,
        bundle,
        list(bundle["master_scale"]["grades"]),
        chosen,
        p,
        tables["claims"],
        tables["strategy"],
        reference,
        detail,
    )
    n_cur = int((scored["as_of_date"] == chosen).sum())
    log.info(
        "monitor %s %s: score PSI %.4f, %d features red, %d early warnings",
        dataset,
        f"{chosen:%Y-%m-%d}",
        res["score_psi"],
        int((res["csi"]["status"] == "red").sum()),
        len(res["early_warning"]),
    )
    summary = review.metrics_json(res, dataset, chosen, len(development), n_cur, bundle)
    write_outputs(res, summary, paths.monitoring, paths.metrics / "monitor.json")
    return summary


def write_outputs(
    res: dict[str, Any], summary: dict[str, Any], out: Path, summary_path: Path | None = None
) -> None:
    """monitor.json (to ``summary_path`` if given), the tables, charts and report.md under ``out``."""
    from pipeline.monitor_report import render_report, write_charts

    write_json(summary, summary_path or out / "monitor.json")
    write_csv(res["score_psi_table"], out / "score_psi.csv")
    write_csv(res["psi_over_time"], out / "psi_over_time.csv")
    write_csv(res["csi"], out / "csi.csv")
    write_csv(res["csi_bins"], out / "csi_bins.csv")
    write_csv(res["discrimination"], out / "discrimination_over_time.csv")
    write_csv(res["concentration"], out / "concentration.csv")
    write_csv(res["migration"].reset_index(), out / "migration_matrix.csv")
    write_csv(res["early_warning"], out / "early_warning.csv")
    write_csv(res["overrides_by_date"], out / "overrides_by_date.csv")
    write_csv(res["overrides_by_approver"], out / "overrides_by_approver.csv")
    write_charts(res, out)
    write_text(render_report(res, summary), out / "report.md")


def main() -> None:
    parser = stage_argparser("monitor", "Monitor a later month against the development sample.")
    parser.add_argument(
        "--month", default=None, help="as-of date to monitor (YYYY-MM-DD); default latest"
    )
    args = parser.parse_args()
    run(args.dataset, args.month)


if __name__ == "__main__":
    run_stage(main, "monitor")
