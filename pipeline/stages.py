"""What a stage's code is: the modules a stage imports within ``pipeline/``, found from the source.

A stage ``python -m pipeline.<stage>`` runs ``pipeline/<stage>.py`` (or ``pipeline/<stage>/__main__.py``).
Its import closure, read from the syntax tree without importing anything, is the code that can change
its outputs. Two consumers share it, so they cannot disagree: the DVC wiring test checks that every
module of the closure is a declared dependency of the stage in ``dvc.yaml``, and `code_version` stamps
each artefact with a hash of that closure only (an edit to another stage's module rewrites nothing).
"""

from __future__ import annotations

import ast
import hashlib
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name
DATA_SUFFIXES = (".sql", ".yaml", ".yml", ".json")  # definitions shipped inside a subpackage


def stage_module(stage: str, package_dir: Path = PACKAGE_DIR) -> Path:
    """The file ``python -m pipeline.<stage>`` runs."""
    module = package_dir / f"{stage}.py"
    return module if module.is_file() else package_dir / stage / "__main__.py"


def _module_file(dotted: str, package_dir: Path) -> Path | None:
    """``pipeline.a.b`` as a file under ``package_dir`` (module or package ``__init__``), if any."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package_dir.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if len(parts) > 1 and candidate.is_file():
            return candidate
    return package_dir / "__init__.py" if len(parts) == 1 else None


def _dotted(path: Path, package_dir: Path) -> str:
    rel = path.relative_to(package_dir).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PACKAGE, *parts])


def _imported_names(path: Path, package_dir: Path) -> set[str]:
    """Dotted names of every ``pipeline`` module ``path`` imports (at any depth, lazy imports too)."""
    here = _dotted(path, package_dir).split(".")
    if path.name != "__init__.py":
        here = here[:-1]  # the package a plain module sits in
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = here[: len(here) - node.level + 1]
                module = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # submodules
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def import_closure(start: Path, package_dir: Path = PACKAGE_DIR) -> frozenset[Path]:
    """Every file of ``package_dir`` that running ``start`` imports, ``start`` included.

    Importing ``pipeline.a.b`` runs ``pipeline/__init__.py`` and ``pipeline/a/__init__.py`` as well,
    so package initialisers are part of the closure.
    """
    start, package_dir = Path(start).resolve(), Path(package_dir).resolve()
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        inits = (package_dir / p / "__init__.py" for p in path.relative_to(package_dir).parents)
        todo += [init for init in inits if init.is_file()]
        for name in _imported_names(path, package_dir):
            found = _module_file(name, package_dir)
            if found is not None:
                todo.append(found.resolve())
    return frozenset(seen)


def stage_code(stage: str, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The stage's import closure plus the definition files (SQL, YAML, JSON) that sit inside a
    subpackage of it: everything whose change can change the stage's outputs."""
    package_dir = Path(package_dir).resolve()
    files = set(import_closure(stage_module(stage, package_dir), package_dir))
    for folder in {f.parent for f in files} - {package_dir}:
        files.update(p.resolve() for p in folder.iterdir() if p.suffix in DATA_SUFFIXES)
    return sorted(files)


def code_digest(files: Iterable[Path], package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 over the files' package-relative names and bytes, in name order."""
    digest = hashlib.sha256()
    for file in sorted(files, key=lambda f: f.relative_to(package_dir).as_posix()):
        digest.update(file.relative_to(package_dir).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def stage_code_version(stage: str | None, package_dir: Path = PACKAGE_DIR) -> str:
    """``<package version>+<12 hex of the stage's code digest>``: the stamp written in artefacts.

    Without a stage (code run outside any stage) the digest covers every module of the package.
    """
    from pipeline import __version__

    package_dir = Path(package_dir).resolve()
    if stage is None:
        files = [p for p in package_dir.rglob("*.py") if "__pycache__" not in p.parts]
    else:
        files = stage_code(stage, package_dir)
    return f"{__version__}+{code_digest(files, package_dir)[:12]}"


def _is_stage(stage: str, package_dir: Path = PACKAGE_DIR) -> bool:
    """A stage module runs its ``main`` through `pipeline.config.run_stage`."""
    module = stage_module(stage, package_dir)
    if not module.is_file():
        return False
    calls = (
        n
        for n in ast.walk(ast.parse(module.read_text(encoding="utf-8")))
        if isinstance(n, ast.Call)
    )
    return any(getattr(c.func, "id", getattr(c.func, "attr", None)) == "run_stage" for c in calls)


def running_stage() -> str | None:
    """The stage whose code is running: the innermost module on the call stack that is a stage
    (``pipeline.<stage>``) or inside a stage package (``pipeline.<stage>.<module>``); ``python -m``
    runs the stage as ``__main__``, its spec keeps the name. None outside any stage."""
    frame = sys._getframe(1)
    while frame is not None:
        spec = frame.f_globals.get("__spec__")
        name = getattr(spec, "name", None) or frame.f_globals.get("__name__", "")
        parts = name.split(".")
        if (
            len(parts) >= 2
            and parts[0] == PACKAGE
            and parts[1] != "config"
            and _is_stage(parts[1])
        ):
            return parts[1]
        frame = frame.f_back
    return None
