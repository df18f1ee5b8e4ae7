"""Atomic stage outputs: a stage killed with SIGKILL at any point leaves its previous complete outputs
(and a manifest that still vouches for them) or a manifest marked incomplete that makes every later
stage refuse the files, never a partial file that is read.

``PIPELINE_FAULT_AT`` (pipeline/io.py) kills the stage process at a named point: during the n-th output
write (``write:n``), just before the commit, after n outputs were moved into place (``commit:n``) or
right after the commit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.config import PipelineError, require_files
from pipeline.io import (
    file_sha256,
    stage_manifest_path,
    stage_outputs,
    verify_recorded,
    write_json,
    write_parquet,
)

PROJECT = Path(__file__).resolve().parents[1]
BASE = PROJECT / "tests" / "fixtures" / "bad_input" / "base"
INGEST_OUTPUTS = [
    *(f"data/interim/tiny/{t}.parquet" for t in ("customers", "invoices", "payments", "claims")),
    *(
        f"data/quarantine/tiny/{t}.parquet"
        for t in ("customers", "invoices", "payments", "claims")
    ),
    "reports/tiny/ingest/ingest.json",
    "metrics/tiny/ingest.json",
]


def tiny_project(root: Path) -> None:
    """A scratch project root: params.yaml with a ``tiny`` dataset on the bad-input base files."""
    params = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    params["datasets"] = {
        "tiny": {"ingest": {"source": "canonical", "data_cutoff": "2024-12-31", "currency": "CNY"}}
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    shutil.copytree(BASE, root / "data" / "raw" / "tiny")


def run_stage(root: Path, stage: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CREDIT_PIPELINE_ROOT": str(root), "PYTHONPATH": str(PROJECT)}
    env.pop("PIPELINE_FAULT_AT", None)
    if fault:
        env["PIPELINE_FAULT_AT"] = fault
    return subprocess.run(
        [sys.executable, "-m", f"pipeline.{stage}", "--dataset", "tiny"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def digests(root: Path, rels: list[str]) -> dict[str, str | None]:
    return {r: file_sha256(root / r) if (root / r).is_file() else None for r in rels}


def manifest(root: Path, stage: str) -> dict:
    return json.loads(stage_manifest_path(root, "tiny", stage).read_text(encoding="utf-8"))


def refused(root: Path, rels: list[str]) -> list[str]:
    return [r for r in rels if verify_recorded(root / r, root)]


def add_invoice(root: Path) -> None:
    path = root / "data" / "raw" / "tiny" / "invoices.csv"
    path.write_text(
        path.read_text(encoding="utf-8") + "I7,C1,2024-06-01,2024-07-01,99.00,CNY\n",
        encoding="utf-8",
    )


@pytest.mark.parametrize(
    "fault",
    ["write:1", "write:5", "write:10", "before_commit", "commit:1", "commit:6", "after_commit"],
)
def test_killed_ingest_leaves_old_outputs_or_refused_ones(tmp_path: Path, fault: str) -> None:
    root = tmp_path / "proj"
    tiny_project(root)
    first = run_stage(root, "ingest")
    assert first.returncode == 0, first.stderr
    old = digests(root, INGEST_OUTPUTS)
    assert manifest(root, "ingest")["complete"] and not refused(root, INGEST_OUTPUTS)

    add_invoice(root)  # the rerun would write different invoices, report and metrics
    killed = run_stage(root, "ingest", fault)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)

    now = digests(root, INGEST_OUTPUTS)
    body = manifest(root, "ingest")
    if fault.startswith("write") or fault == "before_commit":
        assert now == old, "a stage killed before its commit must leave every old output"
        assert body["complete"] and not refused(root, INGEST_OUTPUTS)
    elif fault.startswith("commit"):
        assert not body["complete"]  # some outputs new, some old: none may be read
        assert refused(root, INGEST_OUTPUTS) == INGEST_OUTPUTS  # every output refused, old or new
        with pytest.raises(PipelineError, match="rule recorded_output"):
            require_files_at(root, INGEST_OUTPUTS[1])
    else:
        assert body["complete"] and not refused(root, INGEST_OUTPUTS)
    for rel in INGEST_OUTPUTS:  # whatever is there is a complete file
        if rel.endswith(".parquet"):
            pd.read_parquet(root / rel)
        else:
            json.loads((root / rel).read_text(encoding="utf-8"))

    again = run_stage(root, "ingest")
    assert again.returncode == 0, again.stderr
    assert manifest(root, "ingest")["complete"] and not refused(root, INGEST_OUTPUTS)
    assert len(pd.read_parquet(root / "data/interim/tiny/invoices.parquet")) == 7
    leftovers = [p for p in (root / "data").rglob("*") if p.name.endswith(".~tmp")]
    assert not leftovers, leftovers


def require_files_at(root: Path, rel: str) -> None:
    """`require_files` as a stage run under ``root`` calls it."""
    import pipeline.config as config

    saved = config.PROJ_ROOT
    config.PROJ_ROOT = root
    try:
        require_files({"input": root / rel}, "rerun ingest")
    finally:
        config.PROJ_ROOT = saved


def test_features_refuses_half_replaced_ingest_outputs(tmp_path: Path) -> None:
    """The reported failure: ingest killed while replacing its outputs, then features ran with exit
    0 on new invoices beside old payments. Now features stops with exit 2 and one line."""
    root = tmp_path / "proj"
    tiny_project(root)
    assert run_stage(root, "ingest").returncode == 0
    add_invoice(root)
    assert run_stage(root, "ingest", "commit:2").returncode == -signal.SIGKILL
    features = run_stage(root, "features")
    assert features.returncode == 2, features.stderr
    assert "rule recorded_output" in features.stderr and "Traceback" not in features.stderr


def test_edited_output_is_refused(tmp_path: Path) -> None:
    """A recorded output changed after its stage finished (size, rows or hash) is refused."""
    manifest_path = stage_manifest_path(tmp_path, "d", "s")
    target = tmp_path / "data" / "t.parquet"
    other = tmp_path / "reports" / "d" / "x.json"
    with stage_outputs(manifest_path):
        write_parquet(pd.DataFrame({"a": [1, 2, 3]}), target)
        write_json({"a": 1.0}, other)
    assert verify_recorded(target, tmp_path) is None and verify_recorded(other, tmp_path) is None
    write_parquet(pd.DataFrame({"a": [1, 2]}), target)  # outside the stage: not recorded
    assert "rows" in verify_recorded(target, tmp_path) or "bytes" in verify_recorded(
        target, tmp_path
    )
    other.write_text('{\n  "a": 2.0\n}\n', encoding="utf-8")  # same size, other content
    assert "hash" in verify_recorded(other, tmp_path)
    assert verify_recorded(tmp_path / "unrecorded.csv", tmp_path) is None


def test_failed_stage_keeps_previous_outputs(tmp_path: Path) -> None:
    """An exception inside a stage discards every new output: the old ones stay, no temp files."""
    manifest_path = stage_manifest_path(tmp_path, "d", "s")
    target = tmp_path / "out" / "a.json"
    with stage_outputs(manifest_path):
        write_json({"v": 1}, target)
    with pytest.raises(RuntimeError), stage_outputs(manifest_path):
        write_json({"v": 2}, target)
        raise RuntimeError("boom")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]
    assert verify_recorded(target, tmp_path) is None


STAGES = list(
    yaml.safe_load((PROJECT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
)  # DAG order
# a stage that reads the killed stage's outputs (and must refuse them)
CONSUMER = {
    "ingest": "settle",
    "settle": "features",
    "features": "train",
    "train": "evaluate",
    "evaluate": "publish",
    "calibrate": "validate",
    "publish": "monitor",
}


@pytest.mark.slow
def test_every_stage_killed_at_several_points(tmp_path: Path) -> None:
    """Each DVC stage of the uci chain is killed before, during and after its commit; each time the
    next stage either sees the previous complete outputs or refuses them, and a rerun repairs."""
    root = tmp_path / "proj"
    root.mkdir()
    shutil.copy(PROJECT / "params.yaml", root / "params.yaml")
    shutil.copytree(PROJECT / "data" / "raw" / "uci", root / "data" / "raw" / "uci")

    def stage(name: str, fault: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "CREDIT_PIPELINE_ROOT": str(root), "PYTHONPATH": str(PROJECT)}
        env.pop("PIPELINE_FAULT_AT", None)
        if fault:
            env["PIPELINE_FAULT_AT"] = fault
        return subprocess.run(
            [sys.executable, "-m", f"pipeline.{name}", "--dataset", "uci"],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )

    for name in STAGES:
        assert stage(name).returncode == 0, name
    for name in STAGES:
        path = stage_manifest_path(root, "uci", name)
        before = json.loads(path.read_text())
        rels = list(before["outputs"])
        old = digests(root, rels)
        for fault in (
            ("write:1", "commit:1")
            if name != "ingest"
            else ("write:1", "before_commit", "commit:1")
        ):
            proc = stage(name, fault)
            assert proc.returncode == -signal.SIGKILL, (name, fault, proc.stderr[-500:])
            body = json.loads(path.read_text())
            if fault == "commit:1":
                assert not body["complete"] and refused(root, rels) == rels, (name, fault)
                if name in CONSUMER:
                    nxt = stage(CONSUMER[name])
                    assert nxt.returncode == 2 and "recorded_output" in nxt.stderr, (
                        name,
                        nxt.stderr,
                    )
            else:
                assert body["complete"] and digests(root, rels) == old, (name, fault)
                assert not [r for r in rels if verify_recorded(root / r, root)], (name, fault)
            assert stage(name).returncode == 0, name
            assert json.loads(path.read_text())["complete"]
            assert digests(root, rels) == old, f"{name}: a rerun must give the same bytes"
