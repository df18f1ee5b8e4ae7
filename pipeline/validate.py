"""Stage ``validate``: the self-contained validation report reports/<ds>/validate/validation.html.

Reads metrics/<ds>/evaluate.json (discrimination with clustered intervals per sample and segment),
reports/<ds>/calibrate/calibration_backtests.json (cohort back-tests, central tendency, grade count, truth
comparison), reports/<ds>/evaluate/evaluate_roc.csv, and the train stage's sample design: its
reports/<ds>/train/sample_design.json (snapshots by sample x segment x label, exclusions by reason,
customer overlaps, date ranges) and samples.parquet for the one figure that file does not hold,
distinct customers per sample x segment. Nothing is recounted from the snapshots. The page is
rendered by :mod:`pipeline.validation_report` and written atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import Paths, require_files, run_stage, stage_argparser
from pipeline.domain import PipelineError
from pipeline.io import read_json, write_text
from pipeline.snapshot_io import read_columns
from pipeline.validation_report import render

log = logging.getLogger("pipeline.validate")
OUTSIDE = "(outside population)"
TRAIN_NO_SEGMENT = "none"  # sample_design.json's key for rows with no segment (in default at t)


def _segment_name(segment: str) -> str:
    return OUTSIDE if segment == TRAIN_NO_SEGMENT else segment


def design_rows(counts: dict[str, Any], samples: pd.DataFrame) -> list[dict[str, Any]]:
    """Snapshots, customers, bads and bad rate per sample x segment, from the train stage's
    ``counts`` (sample -> segment -> label -> snapshots) and the customers of samples.parquet.
    The bad rate is over matured outcomes (labels good and bad); ``None`` where there is none."""
    segment = (
        samples["segment"].astype("string").fillna(OUTSIDE)
        if "segment" in samples
        else pd.Series("current", index=samples.index)
    )
    customers = samples.assign(segment=segment).groupby(["sample", "segment"])["customer_id"]
    customers = customers.nunique()
    rows = []
    for sample, by_segment in counts.items():
        for seg, labels in by_segment.items():
            name = _segment_name(seg)
            bads, known = (
                int(labels.get("bad", 0)),
                int(labels.get("bad", 0) + labels.get("good", 0)),
            )
            rows.append(
                {
                    "sample": sample,
                    "segment": name,
                    "snapshots": int(sum(labels.values())),
                    "customers": int(customers.get((sample, name), 0)),
                    "bads": bads if known else None,
                    "bad_rate": bads / known if known else None,
                }
            )
    return sorted(rows, key=lambda r: (r["sample"], r["segment"]))


def segment_card_note(segment: str, decision: dict[str, Any]) -> str:
    """One line on the card offered to ``segment``: kept or not, and why, with its evidence."""
    verdict = "its own card, kept" if decision.get("kept") else "no card of its own"
    auc = (
        f"; calibration AUC {decision['auc_segment_card']:.3f} (own card) vs "
        f"{decision['auc_main_card']:.3f} (main card)"
        if decision.get("auc_segment_card") is not None
        else ""
    )
    return (
        f"{segment} segment: {verdict}: {decision.get('reason', '')} (train "
        f"{decision.get('train_bads')} bads, {decision.get('train_goods')} goods{auc})"
    )


def sample_design(train_design: dict[str, Any], samples: pd.DataFrame, path: Path) -> dict:
    """The page's sample-design section from the train stage's sample_design.json (``path``):
    counts per sample x segment, exclusions by reason, customer overlaps between samples, what the
    oot sample is, and the date range per sample."""
    for key in ("counts", "exclusions", "customer_overlap"):
        if not isinstance(train_design.get(key), dict):
            raise PipelineError(
                f"{path}: key '{key}' missing or not a mapping (rule: train sample-design "
                "contract); rerun the train stage"
            )
    notes = []
    if train_design.get("oot_is"):
        notes.append(f"oot sample: {train_design['oot_is']}")
    for sample, (first, last) in (train_design.get("as_of_range") or {}).items():
        notes.append(f"{sample}: as-of dates {first} to {last}")
    for segment, d in ((train_design.get("fit") or {}).get("segment_cards") or {}).items():
        notes.append(segment_card_note(segment, d))
    return {
        "source": f"{path.name} (train stage); customers per sample and segment from "
        "samples.parquet",
        "by_sample": design_rows(train_design["counts"], samples),
        "exclusions_by_reason": {str(k): int(v) for k, v in train_design["exclusions"].items()},
        "overlap": {
            f"customers in both {k.replace('&', ' and ')}": v
            for k, v in train_design["customer_overlap"].items()
        },
        "notes": notes,
    }


def run(dataset: str, root: Path | None = None) -> Path:
    """Build reports/<dataset>/validate/validation.html from the stage outputs under ``root``."""
    paths = Paths(dataset) if root is None else Paths(dataset, root)
    files = {
        "evaluation": paths.metrics / "evaluate.json",
        "calibration": paths.stage_dir("calibrate") / "calibration_backtests.json",
        "roc": paths.stage_dir("evaluate") / "evaluate_roc.csv",
        "samples": paths.processed / "samples.parquet",
        "sample_design": paths.stage_dir("train") / "sample_design.json",
    }
    require_files(files, "run the train, evaluate and calibrate stages first (dvc repro)")
    evaluation, calibration = read_json(files["evaluation"]), read_json(files["calibration"])
    for key, doc, path in (
        ("methods", evaluation, files["evaluation"]),
        ("back_tests", calibration, files["calibration"]),
    ):
        if key not in doc:
            raise PipelineError(f"{path}: key '{key}' missing; rerun the stage that writes it")
    samples = read_columns(files["samples"], ["customer_id", "sample", "segment"])
    design = sample_design(read_json(files["sample_design"]), samples, files["sample_design"])
    page = render(dataset, evaluation, calibration, design, pd.read_csv(files["roc"]))
    out = paths.stage_dir("validate") / "validation.html"
    write_text(page, out)
    log.info("validate %s: %s (%d kB)", dataset, out, len(page) // 1024)
    return out


def main() -> None:
    args = stage_argparser("validate", "Write the self-contained validation report").parse_args()
    run(args.dataset)


if __name__ == "__main__":
    run_stage(main, "validate")
