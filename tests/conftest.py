"""Shared fixtures: the shared public datasets and one end-to-end run of the DAG in a scratch copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
UCI_CSV = SHARED_DATA / "uci_credit_card" / "UCI_Credit_Card.csv"

COPIED = ["pipeline", "params.yaml", "dvc.yaml", "pyproject.toml", "data/raw"]


@pytest.fixture(scope="session")
def make_params():
    """Typed stage parameters from the project's params.yaml, optionally with ``override`` merged into the
    block: ``make_params(TrainParams, "train", "synthetic", {"split": {"calibration_share": 0.3}})``.
    The override wins over the dataset's own ``datasets.<dataset>.<block>`` values too. The one way tests
    build parameters, so they never copy params.yaml blocks by hand."""
    from pipeline.config import deep_merge, load_params
    from pipeline.params import load

    raw = load_params(PROJECT_ROOT)

    def make(cls, block: str, dataset: str = "synthetic", override: dict | None = None):
        override = override or {}
        params = deep_merge(raw, {block: override, "datasets": {dataset: {block: override}}})
        return load(cls, block, dataset, params)

    return make


@pytest.fixture(scope="session")
def uci_csv() -> Path:
    """The real UCI credit-card file from ../shared/data."""
    if not UCI_CSV.exists():
        pytest.skip(f"shared dataset not found at {UCI_CSV}")
    return UCI_CSV


def dag_env(root: Path) -> dict[str, str]:
    """Environment for running stages in a scratch project: this interpreter first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["CREDIT_PIPELINE_ROOT"] = str(root)
    env["MPLBACKEND"] = "Agg"
    return env


def run_dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``dvc ARGS`` in ``root``; fail the test with DVC's own output when it fails."""
    dvc = Path(sys.executable).parent / "dvc"
    proc = subprocess.run(
        [str(dvc), *args], cwd=root, env=dag_env(root), capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.fail(f"dvc {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def dag_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of the project on which ``dvc repro`` has run the whole DAG once."""
    root = tmp_path_factory.mktemp("dag")
    for item in COPIED:
        src = PROJECT_ROOT / item
        dst = root / item
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    run_dvc(root, "init", "--no-scm", "-q")
    run_dvc(root, "config", "core.analytics", "false")
    run_dvc(root, "repro")
    return root
