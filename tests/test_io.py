"""pipeline.io: spreadsheet-safe CSV cells, atomic writes, the stated features cut-off, manifests in
the stage folders, per-stage code stamps."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline import stages
from pipeline.config import Paths
from pipeline.io import (
    atomic_path,
    code_version,
    spreadsheet_safe,
    stage_manifest_path,
    stage_outputs,
    verify_recorded,
    write_csv,
    write_json,
)
from pipeline.params import load
from pipeline.params.features import stated_cutoff
from pipeline.params.ingest import IngestParams


def test_formula_leading_text_is_escaped_numbers_are_not(tmp_path) -> None:
    """OWASP CSV injection: text starting with = + - @ (or tab/CR) gets a leading quote; numbers,
    including numeric text such as -12.5, stay as they are."""
    df = pd.DataFrame(
        {
            "label": [
                '=HYPERLINK("http://x","y")',
                "+cmd",
                "-2+3",
                "@SUM(A1)",
                "\tx",
                "ok",
                "-12.5",
            ],
            "points": [1, -2, 3, -4, 5, 6, 7],
            "value": [-1.5, 2.0, -0.25, 0.0, 1e9, -3.0, 4.0],
        }
    )
    out = spreadsheet_safe(df)
    assert out["label"].tolist() == [
        '\'=HYPERLINK("http://x","y")',
        "'+cmd",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "ok",
        "-12.5",
    ]
    assert out["points"].tolist() == df["points"].tolist()
    assert out["value"].tolist() == df["value"].tolist()
    write_csv(df.rename(columns={"label": "=label"}), tmp_path / "t.csv")
    text = (tmp_path / "t.csv").read_text(encoding="utf-8")
    assert text.startswith("'=label,points,value\n")
    assert '"\'=HYPERLINK(""http://x"",""y"")"' in text and ",-1.5\n" in text
    assert not [p for p in tmp_path.iterdir() if p.name != "t.csv"]  # no temporary file left


def test_features_use_the_stated_cutoff_not_the_latest_event() -> None:
    """The features cut-off is the dataset's stated ingest.data_cutoff unless features sets one."""
    assert (
        stated_cutoff(None, load(IngestParams, "ingest", "synthetic").data_cutoff, "synthetic")
        == "2025-12-31"
    )
    assert (
        stated_cutoff(
            "2025-06-30", load(IngestParams, "ingest", "synthetic").data_cutoff, "synthetic"
        )
        == "2025-06-30"
    )


def test_manifest_sits_in_the_stage_folder_and_vouches_for_its_outputs(tmp_path: Path) -> None:
    """reports/<ds>/<stage>/manifest.json records every output; a changed output is refused."""
    paths = Paths("d", tmp_path)
    manifest = stage_manifest_path(tmp_path, "d", "s")
    assert manifest == tmp_path / "reports" / "d" / "s" / "manifest.json" == paths.manifest("s")
    out = paths.stage_dir("s") / "x.json"
    with stage_outputs(manifest):
        write_json({"v": 1}, out)
    assert '"reports/d/s/x.json"' in manifest.read_text()
    assert verify_recorded(out, tmp_path) is None
    out.write_text('{"v": 2}\n')
    assert "differs" in verify_recorded(out, tmp_path) or "bytes" in verify_recorded(out, tmp_path)


def test_a_failed_write_leaves_no_folder_it_created(tmp_path: Path) -> None:
    """A writer that fails, alone or inside a stage, removes the temporary file and the folders it
    made; a folder that existed before, or that holds another output, stays."""
    kept = tmp_path / "kept"
    kept.mkdir()
    with pytest.raises(RuntimeError), atomic_path(kept / "new" / "deeper" / "x.bin") as tmp:
        tmp.write_bytes(b"x")
        raise RuntimeError("writer failed")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept"]
    with pytest.raises(RuntimeError), stage_outputs():
        write_json({"v": 1}, tmp_path / "a" / "one.json")
        write_json({"v": 2}, tmp_path / "b" / "two.json")
        raise RuntimeError("stage failed after its writes")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept"]
    write_json({"v": 0}, tmp_path / "a" / "zero.json")
    with pytest.raises(RuntimeError), stage_outputs():
        write_json({"v": 1}, tmp_path / "a" / "one.json")
        raise RuntimeError("stage failed")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["zero.json"]


def test_code_version_stamps_the_running_stage_code() -> None:
    """Called from a stage's code the stamp hashes that stage's import closure; a stage's closure
    holds its own module and never another stage's."""
    assert re.fullmatch(r"\d+\.\d+\.\d+\+[0-9a-f]{12}", code_version("validate"))
    fake_stage = {"__name__": "pipeline.validate", "code_version": code_version}
    exec("def stamp():\n    return code_version()", fake_stage)
    assert (
        fake_stage["stamp"]() == code_version("validate") == stages.stage_code_version("validate")
    )
    assert code_version("validate") != code_version("train")
    files = {p.name for p in stages.stage_code("validate")}
    assert {"validate.py", "validation_report.py", "io.py", "__init__.py"} <= files
    assert "train.py" not in files and "evaluate.py" not in files


def test_import_closure_follows_relative_and_lazy_imports(tmp_path: Path) -> None:
    """Absolute, relative, ``from pkg import module`` and function-level imports are all followed;
    package initialisers count; modules not imported do not."""
    pkg = tmp_path / "pipeline"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "stage.py": "from pipeline import lib\ndef main():\n    from .sub import deep\n",
        "lib.py": "import pipeline.util as u\n",
        "util.py": "",
        "unused.py": "",
        "sub/__init__.py": "",
        "sub/deep.py": "from ..util import x\nfrom . import other\n",
        "sub/other.py": "",
        "sub/features.sql": "select 1",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    closure = {p.relative_to(pkg).as_posix() for p in stages.import_closure(pkg / "stage.py", pkg)}
    assert closure == set(files) - {"unused.py", "sub/features.sql"}
    code = {p.relative_to(pkg).as_posix() for p in stages.stage_code("stage", pkg)}
    assert code == closure | {"sub/features.sql"}
