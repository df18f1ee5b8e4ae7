"""Done-when: a ledger unlike the embedded ones goes from raw files to a published scorecard with two
commands (`python -m pipeline.onboard data/raw/<name>/`, `dvc repro`) and no hand edits.

Each test copies the project into a scratch folder, writes a new raw folder there, onboards it and runs
`dvc repro publish@<name>` (the new dataset's whole chain). About a minute each: marked slow.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import COPIED, PROJECT_ROOT, dag_env, run_dvc
from tests.fixtures.onboard_ledgers import write_chinese_four_tables, write_english_ar_export

pytestmark = pytest.mark.slow


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for item in COPIED:
        src, dst = PROJECT_ROOT / item, root / item
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    run_dvc(root, "init", "--no-scm", "-q")
    run_dvc(root, "config", "core.analytics", "false")
    return root


def _onboard(root: Path, name: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.onboard", f"data/raw/{name}/"],
        cwd=root,
        env=dag_env(root),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _published(root: Path, name: str) -> dict:
    card = json.loads((root / "exports" / name / "scorecard.json").read_text(encoding="utf-8"))
    assert (root / "exports" / name / "scorecard.sql").stat().st_size > 0
    assert (root / "exports" / name / "limit_table.csv").stat().st_size > 0
    sufficiency = json.loads((root / "reports" / name / "train" / "sufficiency.json").read_text())
    assert (
        sufficiency["by_sample"]["oot"]["bads"] > 0
        and sufficiency["by_sample"]["oot"]["goods"] > 0
    )
    evaluate = json.loads((root / "metrics" / name / "evaluate.json").read_text())
    return {"card": card, "sufficiency": sufficiency, "evaluate": evaluate}


def test_english_usd_invoice_ledger_2012_to_2014(tmp_path):
    root = _project(tmp_path)
    params_before = (root / "params.yaml").read_text(encoding="utf-8")
    dvc_before = (root / "dvc.yaml").read_text(encoding="utf-8")
    write_english_ar_export(root / "data" / "raw" / "acme_usd", n_customers=200)
    out = _onboard(root, "acme_usd")
    assert "NON-DEFAULT PROXY" in out
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    block = params["datasets"]["acme_usd"]
    assert block["ingest"]["currency"] == "USD"
    assert block["features"]["label"]["bad_days_beyond_terms"] < 90
    assert (
        (root / "params.yaml")
        .read_text(encoding="utf-8")
        .startswith(params_before[: params_before.index("  uci:")])
    )
    run_dvc(root, "repro", "publish@acme_usd")
    assert (root / "dvc.yaml").read_text(encoding="utf-8") == dvc_before  # no per-dataset edit
    result = _published(root, "acme_usd")
    ingest = json.loads((root / "reports" / "acme_usd" / "ingest" / "ingest.json").read_text())
    assert ingest["reconciled"] and ingest["tables"]["invoices"]["rows_quarantined"] == 0
    features = json.loads((root / "metrics" / "acme_usd" / "features.json").read_text())
    assert features["data_cutoff"].startswith("2014-12-31")
    card = result["card"]
    assert card["dataset"] == "acme_usd" and len(card["features"]) >= 3
    # the number of grades follows the data: at most what onboard asked for, fewer with a stated reason
    scale = json.loads((root / "models" / "acme_usd" / "grade_cutoffs.json").read_text())["scale"]
    n_grades = len(card["master_scale"]["grades"])
    assert 4 <= n_grades <= block["calibrate"]["n_grades"] == scale["n_grades_requested"]
    assert n_grades == block["calibrate"]["n_grades"] or scale["n_grades_reason"]
    assert result["evaluate"]  # the out-of-time comparison ran
    # a second repro changes nothing
    proc = run_dvc(root, "repro", "publish@acme_usd")
    assert "Running stage" not in proc.stdout


def test_chinese_gb18030_four_table_export(tmp_path):
    root = _project(tmp_path)
    write_chinese_four_tables(root / "data" / "raw" / "huadong", n_customers=200)
    out = _onboard(root, "huadong")
    assert "gb18030" in out
    run_dvc(root, "repro", "publish@huadong")
    result = _published(root, "huadong")
    ingest = json.loads((root / "reports" / "huadong" / "ingest" / "ingest.json").read_text())
    assert ingest["reconciled"]
    assert ingest["tables"]["invoices"]["encoding"] == {"发票.csv": "gb18030"}
    assert ingest["tables"]["claims"]["rows_accepted"] > 0
    assert result["sufficiency"]["history"]["first_as_of"] == "2016-06-30"
    assert result["card"]["dataset"] == "huadong" and len(result["card"]["features"]) >= 3
