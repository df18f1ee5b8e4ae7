"""Paths and parameters: the one place that knows where every stage reads and writes.

Every stage runs per dataset (``synthetic``, ``uci`` or a customer's own ledger). A stage's parameters are
its block in ``params.yaml`` overlaid with ``datasets.<name>.<stage>`` so one dataset can differ from the
defaults without copying them.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.domain import PipelineError

PROJ_ROOT = Path(os.environ.get("CREDIT_PIPELINE_ROOT") or Path(__file__).resolve().parents[1])
PARAMS_FILE = "params.yaml"
MANIFEST_NAME = "manifest.json"

log = logging.getLogger("pipeline")


@dataclass(frozen=True)
class Paths:
    """All stage inputs and outputs for one dataset, relative to the project root.

    Layout: data/{raw,interim,quarantine,processed}/<ds>/ (ledgers, snapshots, samples), models/<ds>/
    (fitted JSON), reports/<ds>/<stage>/ (each stage's reports, charts and manifest), metrics/<ds>/
    (<stage>.json), exports/<ds>/ (publish) and monitoring/<ds>/ (monitor): a stage's outputs are a few
    folders, so dvc.yaml declares folders, not files.
    """

    dataset: str
    root: Path = PROJ_ROOT

    def _p(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    @property
    def raw(self) -> Path:
        return self._p("data", "raw", self.dataset)

    @property
    def interim(self) -> Path:
        return self._p("data", "interim", self.dataset)

    @property
    def quarantine(self) -> Path:
        return self._p("data", "quarantine", self.dataset)

    @property
    def processed(self) -> Path:
        return self._p("data", "processed", self.dataset)

    @property
    def models(self) -> Path:
        return self._p("models", self.dataset)

    def stage_dir(self, stage: str) -> Path:
        """``reports/<ds>/<stage>/``: the stage's reports, charts and manifest; one DVC out per stage."""
        return self._p("reports", self.dataset, stage)

    def manifest(self, stage: str) -> Path:
        """``reports/<ds>/<stage>/manifest.json``: what the stage last committed (`pipeline.io`)."""
        return self.stage_dir(stage) / MANIFEST_NAME

    @property
    def metrics(self) -> Path:
        """``metrics/<ds>/``: one ``<stage>.json`` per stage, the DVC metrics."""
        return self._p("metrics", self.dataset)

    @property
    def exports(self) -> Path:
        return self._p("exports", self.dataset)

    @property
    def monitoring(self) -> Path:
        return self._p("monitoring", self.dataset)


def deep_merge(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged in recursively (override wins); inputs are not mutated."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_params(root: Path = PROJ_ROOT) -> dict[str, Any]:
    """Read the whole ``params.yaml``."""
    path = root / PARAMS_FILE
    if not path.exists():
        raise PipelineError(f"{path}: params file not found; run from the project root")
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def stage_params(stage: str, dataset: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``stage`` block overlaid with ``datasets.<dataset>.<stage>``, plus ``base`` under key ``base``."""
    params = load_params() if params is None else params
    datasets = params.get("datasets", {})
    if dataset not in datasets:
        raise PipelineError(
            f"params.yaml: dataset '{dataset}' is not declared under 'datasets' "
            f"(known: {', '.join(sorted(datasets)) or 'none'})"
        )
    merged = deep_merge(params.get(stage, {}), datasets[dataset].get(stage))
    merged["base"] = deep_merge(params.get("base", {}), datasets[dataset].get("base"))
    return merged


def stage_argparser(stage: str, description: str) -> argparse.ArgumentParser:
    """The common command line of a stage: ``python -m pipeline.<stage> --dataset NAME``."""
    parser = argparse.ArgumentParser(prog=f"python -m pipeline.{stage}", description=description)
    parser.add_argument("--dataset", default="synthetic", help="dataset name from params.yaml")
    return parser


def setup_logging() -> None:
    """One line per step, with the stage name; quiet third-party loggers."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    for noisy in ("matplotlib", "numexpr", "py4j", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _dataset_argument() -> str | None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dataset", default="synthetic")
    return parser.parse_known_args()[0].dataset


def run_stage(main_fn, stage: str, atomic: bool = True) -> None:
    """Run a stage's ``main`` so that a ``PipelineError`` ends with one clear line and exit code 2.

    With ``atomic`` (every DVC stage) all outputs written through `pipeline.io` are committed together
    at the end with the stage's manifest (`pipeline.io.stage_outputs`): a failed or killed stage leaves
    its previous outputs as they were.
    """
    import contextlib
    import sys

    from pipeline.io import stage_outputs

    setup_logging()
    dataset = _dataset_argument() if atomic else None
    try:
        with (
            stage_outputs(Paths(dataset).manifest(stage)) if dataset else contextlib.nullcontext()
        ):
            main_fn()
    except PipelineError as exc:
        print(f"[{stage}] ERROR: {_one_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def progress(iterable, desc: str, **kwargs):
    """A tqdm progress bar for long loops; silent when stderr is not a terminal (CI, dvc logs)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, disable=None, leave=False, **kwargs)


def require_files(files: dict[str, Path], hint: str) -> None:
    """Stop with one clear line when a stage input is missing, or disagrees with the manifest of the
    stage that wrote it (size, Parquet rows, SHA-256): which file, which input, what to run."""
    from pipeline.io import verify_recorded

    for name, path in files.items():
        if not Path(path).is_file():
            raise PipelineError(f"{path}: not found (input '{name}'); {hint}")
        problem = verify_recorded(path, PROJ_ROOT)
        if problem:
            raise PipelineError(
                f"{path}: input '{name}' refused, rule recorded_output: {problem}; rerun the stage "
                "that writes it (dvc repro)"
            )
