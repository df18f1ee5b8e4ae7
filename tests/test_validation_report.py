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
from tests.test_evaluate import PARAMS, fabricate, tiny_card

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CAL_PARAMS = {
    "method": "platt",
    "central_tendency": "long_run",
    "pd_floor": 0.0003,
    "scale": "letter",
    "n_grades": 6,
    "min_grade_share": 0.02,
    "min_grade_customers": 10,
    "min_grade_expected_defaults": 0.5,
    "pd_bands": "geometric",
    "true_pd_tolerance": 0.2,
}


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, str]:
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
    evaluate.run("tiny", root=root, params=PARAMS)
    result = calibrate(scored_samples(tiny_card(), snaps, samples), CAL_PARAMS)
    write_json(validation_record(result), paths.stage_dir("calibrate") / "calibration_backtests.json")
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


def test_train_stage_design_is_merged(tmp_path):
    base = {"source": "parquet", "by_sample": [], "exclusions_by_reason": {"x": 1}, "overlap": {}}
    assert validate.merge_train_design(base, tmp_path / "none.json") == base
    write_json(
        {
            "exclusions": {"in_default": 7, "immature": 3},
            "customer_overlap": {"train&oot": 0, "oot&oot_known": 0},
            "oot_is": "customer-disjoint and later in time",
            "as_of_range": {"oot": ["2024-07-31", "2024-12-31"]},
        },
        tmp_path / "sample_design.json",
    )
    out = validate.merge_train_design(base, tmp_path / "sample_design.json")
    assert out["exclusions_by_reason"] == {"in_default": 7, "immature": 3}
    assert out["overlap"] == {
        "customers in both train and oot": 0,
        "customers in both oot and oot_known": 0,
    }
    assert "oot sample: customer-disjoint and later in time" in out["notes"]
    assert "sample_design.json" in out["source"]
