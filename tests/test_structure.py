"""The shape of the code base (docs/architecture.md): slim stages, short functions, parameters typed once.

These are the restructuring's acceptance checks, kept so the code base does not drift back.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from pipeline.stages import import_closure, stage_code, stage_code_version, stage_module

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipeline"
PARAMS_LAYER = {PACKAGE / "config.py", *(PACKAGE / "params").rglob("*.py")}
MAX_STAGE_LINES = 200
MAX_FUNCTION_LINES = 80


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _stage_modules() -> list[Path]:
    stages = re.findall(r"python -m pipeline\.(\w+)", (ROOT / "dvc.yaml").read_text())
    out = []
    for stage in sorted(set(stages)):
        module = PACKAGE / f"{stage}.py"
        out.append(module if module.exists() else PACKAGE / stage / "__main__.py")
    return out


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_dvc_yaml_is_short() -> None:
    lines = (ROOT / "dvc.yaml").read_text().splitlines()
    assert len(lines) < 120, len(lines)


# ----------------------------------------------------------------------------- DVC wiring
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
STAGES = sorted(DVC["stages"])
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
PARAMS_LAYER_MODULES = {PACKAGE / "config.py", *(PACKAGE / "params").rglob("*.py")}


def _entries(stage: str, field: str) -> list[str]:
    """Paths (or params keys) a stage declares under ``field``, as written (``${item.ds}`` kept)."""
    out = []
    for entry in DVC["stages"][stage].get(field, []):
        out += list(entry) if isinstance(entry, dict) else [entry]
    return out


def _covered(path: str, declared: list[str]) -> bool:
    """A file is declared by itself or by a declared folder above it."""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in declared)


def test_every_dvc_stage_runs_its_own_module() -> None:
    for stage in STAGES:
        cmd = DVC["stages"][stage]["cmd"]
        assert cmd == f"python -m pipeline.{stage} --dataset ${{item.ds}}", cmd
        assert stage_module(stage).is_file(), stage


@pytest.mark.parametrize("stage", STAGES)
def test_stage_code_is_declared(stage: str) -> None:
    """Every module the stage imports (its import closure in pipeline/, read from the source) is a
    declared dependency, so editing it re-runs the stage; the artefact stamps hash the same files."""
    declared = _entries(stage, "deps")
    missing = [_rel(f) for f in stage_code(stage) if not _covered(_rel(f), declared)]
    assert not missing, f"dvc.yaml stages.{stage}.deps lacks {missing}"
    gone = [d for d in declared if d.startswith("pipeline/") and not (ROOT / d).exists()]
    assert not gone, f"dvc.yaml stages.{stage}.deps names code that no longer exists: {gone}"


def _blocks_read(module: Path) -> tuple[set[str], list[str]]:
    """params.yaml blocks ``module`` reads through ``stage_params("<block>", ...)`` or
    ``pipeline.params.load(Cls, "<block>", ...)``; calls whose block is not a literal are returned apart."""
    blocks, unknown = set(), []
    tree = ast.parse(module.read_text())
    load_names = {
        a.asname or a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module == "pipeline.params"
        for a in n.names
        if a.name == "load"
    }
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
        if name == "stage_params":
            arg = node.args[0] if node.args else None
        elif (name == "load" and receiver.endswith("params")) or (
            isinstance(func, ast.Name) and name in load_names
        ):
            arg = node.args[1] if len(node.args) > 1 else None
        else:
            continue
        arg = next((k.value for k in node.keywords if k.arg in ("stage", "block")), arg)
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            blocks.add(arg.value)
        else:
            unknown.append(f"{_rel(module)}:{node.lineno}")
    return blocks, unknown


def _stage_reads(stage: str) -> tuple[set[str], list[str]]:
    blocks, unknown = set(), []
    for module in sorted(import_closure(stage_module(stage)) - PARAMS_LAYER_MODULES):
        found, odd = _blocks_read(module)
        blocks |= found
        unknown += odd
    return blocks, unknown


def _key_declared(key: str, declared: list[str]) -> bool:
    """``key`` is declared by itself or by a declared block above it (``train`` declares ``train.split``)."""
    return any(key == d or key.startswith(d + ".") for d in declared)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_params_are_declared(stage: str) -> None:
    """Every params block the stage's code reads (and its per-dataset override, and ``base``, which
    every block carries) is a declared params dependency: editing it re-runs the stage."""
    blocks, unknown = _stage_reads(stage)
    assert not unknown, f"params block not a literal (cannot be checked): {unknown}"
    declared = _entries(stage, "params")
    needed = {"base"} if blocks else set()
    for block in blocks:
        needed.add(block)
        top = block.split(".")[0]
        if any(top in (ds or {}) for ds in PARAMS["datasets"].values()):
            needed.add(f"datasets.${{item.ds}}.{block}")
    missing = sorted(k for k in needed if not _key_declared(k, declared))
    assert not missing, f"dvc.yaml stages.{stage}.params lacks {missing} (read by its code)"
    for key in (k for k in declared if k.startswith("datasets.${item.ds}.")):
        for ds, block in PARAMS["datasets"].items():
            node = block
            for part in key.removeprefix("datasets.${item.ds}.").split("."):
                assert isinstance(node, dict) and part in node, (
                    f"params.yaml datasets.{ds} lacks {key}"
                )
                node = node[part]


def test_params_reads_are_found() -> None:
    """The reads above are derived from the code: publish reads the features label definition."""
    assert "features" in _stage_reads("publish")[0]
    assert {"train", "evaluate"} <= _stage_reads("evaluate")[0]


@pytest.mark.parametrize("stage", STAGES)
def test_stage_writes_one_folder_per_dataset(stage: str) -> None:
    """Reports, charts and the manifest of a stage sit in its own folder (Paths.stage_dir), declared
    as one output; no two stages declare the same output."""
    outs = _entries(stage, "outs")
    assert f"reports/${{item.ds}}/{stage}" in outs, outs
    others = {
        o for s in STAGES if s != stage for o in _entries(s, "outs") + _entries(s, "metrics")
    }
    assert not set(outs) & others


def test_stamp_covers_the_stage_code_only(tmp_path: Path) -> None:
    """The stamp changes when a module in the stage's closure changes, not when another does."""
    import shutil

    copy = tmp_path / "pipeline"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = {s: stage_code_version(s, copy) for s in ("validate", "train")}
    (copy / "train.py").write_text((copy / "train.py").read_text() + "\n# edited\n")
    after = {s: stage_code_version(s, copy) for s in ("validate", "train")}
    assert after["validate"] == before["validate"]
    assert after["train"] != before["train"]


@pytest.mark.parametrize("module", _stage_modules(), ids=_rel)
def test_stage_module_is_orchestration(module: Path) -> None:
    """A stage module reads params and inputs, calls libraries and writes outputs: a page or two."""
    assert len(module.read_text().splitlines()) <= MAX_STAGE_LINES


def _sql_text(node: ast.FunctionDef) -> bool:
    """Functions that build SQL text (named *_sql) may be long: the text is the definition."""
    return node.name.endswith("_sql")


@pytest.mark.parametrize("module", _modules(), ids=_rel)
def test_functions_are_short(module: Path) -> None:
    tree = ast.parse(module.read_text())
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
        and not _sql_text(node)
    ]
    assert not long, long


def _params_defaults(module: Path) -> list[str]:
    """``.get("key", default)`` on anything named like a params block, and raw params reads."""
    found = []
    for node in ast.walk(ast.parse(module.read_text())):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr in ("stage_params", "load_params"):
            found.append(f"line {node.lineno}: {node.func.attr}(")
        receiver = ast.unparse(node.func.value)
        if node.func.attr == "get" and re.search(
            r"param|split|binning|selection|cfg|^p$", receiver
        ):
            found.append(f"line {node.lineno}: {receiver}.get(")
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "pipeline.config":
            names = {a.name for a in node.names}
            if names & {"stage_params", "load_params"}:
                found.append(
                    f"line {node.lineno}: imports {sorted(names & {'stage_params', 'load_params'})}"
                )
    return found


@pytest.mark.parametrize("module", [m for m in _modules() if m not in PARAMS_LAYER], ids=_rel)
def test_params_are_read_once_through_the_typed_layer(module: Path) -> None:
    """Defaults live in params.yaml only: no module outside pipeline/params reads the raw dict."""
    assert not _params_defaults(module)


def test_nothing_points_outside_the_repository() -> None:
    texts = [
        *PACKAGE.rglob("*.py"),
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "notebooks").glob("*.py"),
    ]
    texts += [ROOT / "README.md", *(ROOT / "tests").glob("*.py")]
    pattern = re.compile(r"DESIGN\.md|domain\.md|\.\./shared/(?:DESIGN|reference)")
    hits = [_rel(p) for p in texts if p != Path(__file__) and pattern.search(p.read_text())]
    assert not hits, hits
