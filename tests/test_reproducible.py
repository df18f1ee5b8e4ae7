"""Byte-stable artefacts: the README's first command on a fresh clone leaves ``git status`` clean, and
the JSON writer fixes float precision so BLAS and thread differences cannot show in the last digits."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.io import JSON_SIGNIFICANT_DIGITS, json_text, stable_float

PROJECT = Path(__file__).resolve().parents[1]


def readme_first_command() -> str:
    """The first line of the README's first ``bash`` block, verbatim."""
    text = (PROJECT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README has no bash block"
    return block.group(1).splitlines()[0]


def test_json_floats_survive_last_digit_noise() -> None:
    """Values that differ only in the last bits (another BLAS, another thread count) write the
    same bytes; ten significant digits are kept."""
    rng = np.random.default_rng(7)
    values = rng.normal(size=200) * 10.0 ** rng.integers(-8, 8, size=200)
    noisy = values * (1 + rng.choice([-1, 1], size=200) * 4e-16)
    same = sum(
        json_text(float(a)) == json_text(float(b)) for a, b in zip(values, noisy, strict=True)
    )
    assert same >= 199  # a value can sit exactly on a rounding boundary; practically never
    assert stable_float(0.12345678901234) == 0.123456789
    assert json.loads(json_text({"x": 1234567.891234567})) == {"x": 1234567.891}
    assert JSON_SIGNIFICANT_DIGITS == 10


def test_timings_are_not_dvc_outputs() -> None:
    """Run-dependent figures (wall-clock times) are not DVC outputs, so they never change a hash."""
    dvc = (PROJECT / "dvc.yaml").read_text(encoding="utf-8")
    assert "timing" not in dvc


@pytest.mark.slow
def test_readme_first_command_leaves_git_status_clean(tmp_path: Path) -> None:
    """git clone, the README's first command verbatim (fresh venv, install, dvc repro), then
    ``git status --porcelain`` must be empty: every committed artefact is reproduced byte for byte."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(clone)], check=True)
    command = readme_first_command()
    proc = subprocess.run(
        ["bash", "-c", command], cwd=clone, capture_output=True, text=True, timeout=3600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert status.stdout == "", status.stdout
