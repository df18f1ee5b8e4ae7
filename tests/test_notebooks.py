"""The analyst notebooks (jupytext percent .py under notebooks/) execute against the stage outputs.

Each notebook is converted with jupytext and run top to bottom with nbclient on the ``python3``
kernel of this interpreter, against the outputs of the end-to-end ``dvc repro`` run (the
``dag_root`` fixture), so they are tested on a fresh clone too. A notebook whose declared inputs
that run did not produce fails, naming them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
DATASET = "synthetic"
REQUIRED = {
    "01-data-quality.py": [
        "reports/{ds}/ingest/ingest.json",
        "data/processed/{ds}/snapshots.parquet",
        "reports/{ds}/features/vintage.csv",
        "reports/{ds}/features/features_vintage.png",
        "reports/{ds}/features/roll_rates.csv",
    ],
    "02-scorecard-review.py": [
        "models/{ds}/scorecard.json",
        "models/{ds}/train_report.json",
        "data/processed/{ds}/samples.parquet",
    ],
    "03-rules-vs-scorecard.py": [
        "metrics/{ds}/evaluate.json",
        "reports/{ds}/evaluate/comparison.md",
        "models/{ds}/scorecard.json",
        "models/{ds}/logistic.json",
        "data/processed/{ds}/boosting_predictions.parquet",
    ],
    "04-calibration-and-limits.py": [
        "models/{ds}/grade_cutoffs.json",
        "exports/{ds}/scorecard.json",
        "exports/{ds}/limit_table.csv",
        "exports/{ds}/limit_review.csv",
        "exports/{ds}/value_loyalty_grid.csv",
        "exports/{ds}/value_grade_strategy.csv",
        "data/interim/{ds}/customer_history.parquet",
    ],
}


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.py"))


def test_every_notebook_declares_its_inputs() -> None:
    """A new notebook must list the stage outputs it reads, so the skip rule stays honest."""
    assert _notebooks(), "no notebooks found"
    assert {p.name for p in _notebooks()} <= set(REQUIRED)


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_notebook_executes(path: Path, tmp_path: Path, dag_root: Path) -> None:
    """The notebook runs top to bottom on the DAG's outputs and renders at least one chart."""
    import jupytext
    import nbclient

    missing = [
        r.format(ds=DATASET)
        for r in REQUIRED[path.name]
        if not (dag_root / r.format(ds=DATASET)).is_file()
    ]
    assert not missing, f"stage outputs missing under {dag_root}: {', '.join(missing)}"
    notebook = jupytext.read(path)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    env_before = os.environ.get("MPLBACKEND")
    root_before = os.environ.get("CREDIT_PIPELINE_ROOT")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ["CREDIT_PIPELINE_ROOT"] = str(dag_root)
    try:
        client = nbclient.NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.execute()
    finally:
        for key, before in (("MPLBACKEND", env_before), ("CREDIT_PIPELINE_ROOT", root_before)):
            if before is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = before
    images = sum(
        1
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    )
    assert images >= 1, f"{path.name} rendered no chart"
