"""Stage ``validate``: the self-contained validation report reports/<ds>/validate/validation.html.

Reads metrics/<ds>/evaluate.json (discrimination with clustered intervals per sample and segment),
reports/<ds>/calibrate/calibration_backtests.json (cohort back-tests, central tendency, grade count, truth
comparison), reports/<ds>/evaluate/evaluate_roc.csv, and samples.parquet + snapshots.parquet for the sample
design and the exclusions by reason. Where the train stage has written reports/<ds>/
sample_design.json its figures are shown as well. The page is rendered by
:mod:`pipeline.validation_report` and written atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import Paths, PipelineError, require_files, run_stage, stage_argparser
from pipeline.io import read_json, write_text
from pipeline.validation_report import render

log = logging.getLogger("pipeline.validate")
KEYS = ["customer_id", "as_of_date"]
DEVELOPMENT = ("train", "calibration")


def sample_design(samples: pd.DataFrame, snapshots: pd.DataFrame) -> dict[str, Any]:
    """Snapshots, customers, bads per sample x segment; exclusions by reason; customer overlap
    between development and the later samples."""
    cols = [c for c in ("is_bad", "label", "segment", "exclusion_reason") if c in snapshots]
    frame = samples[[*KEYS, "sample"]].merge(snapshots[[*KEYS, *cols]], on=KEYS, how="left")
    if "segment" not in frame:
        frame["segment"] = "current"
    frame["segment"] = frame["segment"].astype("string").fillna("(outside population)")
    rows = []
    for (sample, segment), part in frame.groupby(["sample", "segment"], sort=True):
        known = part["is_bad"].dropna() if "is_bad" in part else pd.Series(dtype=float)
        rows.append(
            {
                "sample": sample,
                "segment": segment,
                "snapshots": int(len(part)),
                "customers": int(part["customer_id"].nunique()),
                "bads": int(known.sum()) if len(known) else None,
                "bad_rate": float(known.mean()) if len(known) else None,
            }
        )
    excluded = frame[
        (frame["sample"] == "excluded") | (frame["segment"] == "(outside population)")
    ]
    reason_col = next((c for c in ("exclusion_reason", "label") if c in excluded), None)
    reasons = (
        excluded[reason_col].astype("string").fillna("unlabelled").value_counts().sort_index()
        if reason_col
        else pd.Series(dtype=int)
    )
    customers = {
        s: set(frame.loc[frame["sample"] == s, "customer_id"]) for s in frame["sample"].unique()
    }
    dev = set().union(*(customers.get(s, set()) for s in DEVELOPMENT))
    overlap = {
        f"customers in development and {s}": len(dev & customers[s])
        for s in ("oot", "oot_known")
        if s in customers
    }
    return {
        "source": "samples.parquet and snapshots.parquet (validate stage)",
        "by_sample": rows,
        "exclusions_by_reason": {str(k): int(v) for k, v in reasons.items()},
        "overlap": overlap,
    }


def merge_train_design(design: dict, path: Path) -> dict:
    """Add the train stage's own sample_design.json where it exists: its exclusions by reason,
    customer overlaps between samples, what the oot sample is, and the date range per sample."""
    if not path.is_file():
        return design
    extra = read_json(path)
    out = dict(design)
    reasons = extra.get("exclusions_by_reason") or extra.get("exclusions")
    if isinstance(reasons, dict) and all(isinstance(v, (int, float)) for v in reasons.values()):
        out["exclusions_by_reason"] = {str(k): int(v) for k, v in reasons.items()}
    overlap = extra.get("customer_overlap")
    if isinstance(overlap, dict):
        out["overlap"] = {
            f"customers in both {k.replace('&', ' and ')}": v for k, v in overlap.items()
        }
    notes = []
    if extra.get("oot_is"):
        notes.append(f"oot sample: {extra['oot_is']}")
    for sample, (first, last) in (extra.get("as_of_range") or {}).items():
        notes.append(f"{sample}: as-of dates {first} to {last}")
    out["notes"] = notes
    out["source"] = design["source"] + f"; exclusions and overlaps from {path.name} (train stage)"
    return out


def run(dataset: str, root: Path | None = None) -> Path:
    """Build reports/<dataset>/validate/validation.html from the stage outputs under ``root``."""
    paths = Paths(dataset) if root is None else Paths(dataset, root)
    files = {
        "evaluation": paths.metrics / "evaluate.json",
        "calibration": paths.stage_dir("calibrate") / "calibration_backtests.json",
        "roc": paths.stage_dir("evaluate") / "evaluate_roc.csv",
        "samples": paths.processed / "samples.parquet",
        "snapshots": paths.processed / "snapshots.parquet",
    }
    require_files(files, "run the evaluate and calibrate stages first (dvc repro)")
    evaluation, calibration = read_json(files["evaluation"]), read_json(files["calibration"])
    for key, doc, path in (
        ("methods", evaluation, files["evaluation"]),
        ("back_tests", calibration, files["calibration"]),
    ):
        if key not in doc:
            raise PipelineError(f"{path}: key '{key}' missing; rerun the stage that writes it")
    samples = pd.read_parquet(files["samples"])
    wanted = {"customer_id", "as_of_date", "is_bad", "label", "segment", "exclusion_reason"}
    import pyarrow.parquet as pq

    present = [c for c in pq.read_schema(files["snapshots"]).names if c in wanted]
    snapshots = pd.read_parquet(files["snapshots"], columns=present)
    design = merge_train_design(
        sample_design(samples, snapshots), paths.stage_dir("train") / "sample_design.json"
    )
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
