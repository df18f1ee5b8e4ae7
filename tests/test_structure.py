"""The shape of the code base (docs/architecture.md): slim stages, short functions, parameters typed once.

These are the restructuring's acceptance checks, kept so the code base does not drift back.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

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
