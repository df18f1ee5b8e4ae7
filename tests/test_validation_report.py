"""The validation report: built from small fabricated stage outputs (with segments, oot_known and
a true PD), self-contained, and opened in headless Chromium like a person would open it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import evaluate, validate
from pipeline.calibrate import calibrate, scored_samples, validation_record
from pipeline.config import Paths, PipelineError
from pipeline.io import read_json, write_json, write_parquet
from pipeline.params.calibrate import CalibrateParams
from pipeline.params.evaluate import EvaluateParams
from tests.test_evaluate import OOT_SPLIT, fabricate, tiny_card

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CAL_OVERRIDE = {  # over params.yaml's calibrate block (built with make_params)
    "method": "platt",
    "central_tendency": "long_run",
    "n_grades": 6,
    "min_grade_customers": 10,
    "min_grade_expected_defaults": 0.5,
}


def train_design(samples: pd.DataFrame, snaps: pd.DataFrame) -> dict:
    """The fixture's sample design in the train stage's sample_design.json layout (counts by
    sample x segment x label, exclusions by reason, customer overlaps, date ranges)."""
    frame = samples[["customer_id", "as_of_date", "sample"]].merge(
        snaps[["customer_id", "as_of_date", "segment", "label"]]
    )
    frame["segment"] = frame["segment"].fillna("none")
    counts: dict = {}
    for (smp, seg, lab), n in frame.groupby(["sample", "segment", "label"]).size().items():
        counts.setdefault(smp, {}).setdefault(seg, {})[lab] = int(n)
    ids = {
        s: set(frame.loc[frame["sample"] == s, "customer_id"]) for s in frame["sample"].unique()
    }
    dates = frame.groupby("sample")["as_of_date"].agg(["min", "max"])
    return {
        "counts": counts,
        "exclusions": {"in_default": int((frame["label"] == "in_default").sum())},
        "customer_overlap": {
            f"{a}&{b}": len(ids.get(a, set()) & ids.get(b, set()))
            for a, b in (("train", "calibration"), ("train", "oot"), ("oot", "oot_known"))
        },
        "oot_is": "customer-disjoint and later in time",
        "as_of_range": {
            s: [f"{r['min']:%Y-%m-%d}", f"{r['max']:%Y-%m-%d}"] for s, r in dates.iterrows()
        },
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory, make_params) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("validate")
    snaps = fabricate(root, n_customers=400)
    paths = Paths("tiny", root)
    dbt = snaps["days_beyond_terms_max_12m"].fillna(0)
    segment = np.where(dbt > 60, "delinquent", "current").astype(object)
    segment[::97] = None  # outside the observation population (label kept)
    snaps = snaps.assign(segment=segment, label=np.where(segment == None, "in_default", "good"))  # noqa: E711
    write_parquet(snaps, paths.processed / "snapshots.parquet")
    samples = pd.read_parquet(paths.processed / "samples.parquet")
    num = samples["customer_id"].str[1:].astype(int)
    dev = samples["as_of_date"] < pd.Timestamp("2024-07-31")
    samples.loc[dev & (num < 130), "sample"] = "calibration"
    samples.loc[~dev & (num >= 300), "sample"] = "oot_known"
    samples.loc[dev & (num >= 300), "sample"] = "train"
    write_parquet(samples, paths.processed / "samples.parquet")
    params = make_params(EvaluateParams, "evaluate", "synthetic", {"bootstrap_resamples": 200})
    evaluate.run("tiny", root=root, params=params, split=OOT_SPLIT)
    write_json(train_design(samples, snaps), paths.stage_dir("train") / "sample_design.json")
    cal_params = make_params(CalibrateParams, "calibrate", "synthetic", CAL_OVERRIDE)
    result = calibrate(scored_samples(tiny_card(), snaps, samples), cal_params)
    write_json(
        validation_record(result), paths.stage_dir("calibrate") / "calibration_backtests.json"
    )
    out = validate.run("tiny", root=root)
    return out, out.read_text(encoding="utf-8")


def test_page_holds_every_section(report):
    _, page = report
    for heading in (
        "Sample design and exclusions",
        "Discrimination by sample and delinquency segment",
        "Inference: repeated customers",
        "Back-tests by annual cohort",
        "Against the truth",
    ):
        assert heading in page
    assert "known customers, later dates" in page and "delinquent" in page
    assert "in_default" in page  # exclusions counted by reason
    assert "cluster-bootstrap" in page and "pooled over" in page


def test_page_is_self_contained(report):
    _, page = report
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page.lower() and "@import" not in page
    imgs = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(imgs) >= 3 and all(s.startswith("data:image/png;base64,") for s in imgs)


def test_page_is_byte_identical_when_rebuilt(report):
    path, page = report
    root = path.parents[3]  # reports/<ds>/validate/validation.html
    assert validate.run("tiny", root=root).read_text(encoding="utf-8") == page


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(PipelineError, match="evaluate.json.*not found"):
        validate.run("tiny", root=tmp_path)


def _chromium(url: str, shot: Path, user_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={user_dir}",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={shot}",
            "--window-size=1400,1000",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": str(user_dir)},
    )


def _console_errors(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if ":CONSOLE" in line or "Uncaught" in line or "Failed to load resource" in line
    ]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium not installed (.ci/run installs it)")
def test_page_renders_in_chromium_without_console_errors(report, tmp_path):
    path, _ = report
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "validation_report.png"
    shot.unlink(missing_ok=True)
    proc = _chromium(path.as_uri(), shot, tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _console_errors(proc.stderr) == []
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (1000, 1400) and pixels[..., :3].std() > 0.05  # not blank

    # the console check can fail: a page with a script error is caught
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><p>x</p><script>undefinedFunction()</script></body></html>")
    bad = _chromium(broken.as_uri(), tmp_path / "broken.png", tmp_path / "profile2")
    assert _console_errors(bad.stderr), bad.stderr[-2000:]


def test_record_round_trips_through_json(report):
    path, _ = report
    rec = read_json(path.parents[1] / "calibrate" / "calibration_backtests.json")
    assert rec["back_tests"]["cohorts"] and rec["grade_count"]["chosen"] >= 4


def test_design_is_read_from_the_train_stage(tmp_path):
    """Counts, exclusions and overlaps come from train's sample_design.json; only the customers per
    sample x segment from samples.parquet. Bad rate = bads / (goods + bads); no outcome -> n/a."""
    design = {
        "counts": {
            "oot": {"current": {"bad": 3, "good": 27, "indeterminate": 5}},
            "excluded": {"none": {"in_default": 4}, "current": {"immature": 6}},
        },
        "exclusions": {"in_default": 4, "immature": 6},
        "customer_overlap": {"train&oot": 0, "oot&oot_known": 0},
        "oot_is": "customer-disjoint and later in time",
        "as_of_range": {"oot": ["2024-07-31", "2024-12-31"]},
    }
    samples = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c", "c"],
            "sample": ["oot", "oot", "oot", "excluded", "excluded"],
            "segment": ["current", "current", "current", None, "current"],
        }
    )
    out = validate.sample_design(design, samples, tmp_path / "sample_design.json")
    assert out["by_sample"] == [
        {
            "sample": "excluded",
            "segment": "(outside population)",
            "snapshots": 4,
            "customers": 1,
            "bads": None,
            "bad_rate": None,
        },
        {
            "sample": "excluded",
            "segment": "current",
            "snapshots": 6,
            "customers": 1,
            "bads": None,
            "bad_rate": None,
        },
        {
            "sample": "oot",
            "segment": "current",
            "snapshots": 35,
            "customers": 2,
            "bads": 3,
            "bad_rate": 0.1,
        },
    ]
    assert out["exclusions_by_reason"] == {"in_default": 4, "immature": 6}
    assert out["overlap"] == {
        "customers in both train and oot": 0,
        "customers in both oot and oot_known": 0,
    }
    assert "oot sample: customer-disjoint and later in time" in out["notes"]
    assert "sample_design.json" in out["source"]
    with pytest.raises(PipelineError, match="sample_design.json: key 'exclusions'"):
        validate.sample_design({"counts": {}}, samples, tmp_path / "sample_design.json")
