"""The derived block as params.yaml text: rendered with a comment beside every derived value and
inserted under ``datasets:`` by text, so every other line and comment of the file stays byte for byte."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import yaml

from pipeline.domain import PipelineError
from pipeline.onboard.derive import Derived


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    s = str(v)
    plain = re.fullmatch(r"[A-Za-z_\u0080-\uffff][\w\u0080-\uffff ./-]*", s) is not None
    if plain and not s.endswith(" ") and yaml.safe_load(s) == s:
        return s
    return json.dumps(s, ensure_ascii=False)


def flow_text(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {flow_text(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(flow_text(x) for x in v) + "]"
    return _scalar(v)


def render_block(name: str, d: Derived, header: str, indent: int = 2) -> str:
    """The block as YAML text: block style, short mappings/lists in flow style, a comment per value."""
    lines = [f"{' ' * indent}{name}:" + (f"  # {header}" if header else "")]

    def emit(node: dict[str, Any], depth: int, prefix: str) -> None:
        for k, v in node.items():
            path = f"{prefix}{k}"
            pad = " " * (indent + 2 * depth)
            note = d.comments.get(path)
            flowable = not isinstance(v, dict) or (
                all(not isinstance(x, (dict, list)) for x in v.values())
                and len(flow_text(v)) < 60
                and not any(p.startswith(path + ".") for p in d.comments)
            )
            if isinstance(v, dict) and not v:
                text = f"{pad}{_scalar(k)}: {{}}"
            elif flowable:
                text = f"{pad}{_scalar(k)}: {flow_text(v)}"
            else:
                lines.append(f"{pad}{_scalar(k)}:" + (f"  # {note}" if note else ""))
                emit(v, depth + 1, path + ".")
                continue
            if note:
                text = f"{text.ljust(indent + 36)} # {note}"
            lines.append(text)

    emit(d.block, 1, "")
    return "\n".join(lines) + "\n"


def _datasets_span(lines: list[str]) -> tuple[int, int]:
    """Line range [start, end) of the ``datasets:`` mapping's body."""
    try:
        start = next(i for i, ln in enumerate(lines) if re.match(r"^datasets:\s*(#.*)?$", ln))
    except StopIteration:
        raise PipelineError("params.yaml: no top-level 'datasets:' mapping") from None
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith((" ", "#"))):
        end += 1
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1
    return start + 1, end


def insert_block(params_text: str, name: str, block_text: str, force: bool = False) -> str:
    """params.yaml text with ``block_text`` as ``datasets.<name>``: appended after the last dataset, or
    (``force``) in place of the existing block; everything else byte for byte."""
    lines = params_text.splitlines(keepends=True)
    start, end = _datasets_span(lines)
    head = re.compile(rf"^  {re.escape(name)}:(\s|$)")
    at = next((i for i in range(start, end) if head.match(lines[i])), None)
    if not block_text.endswith("\n"):
        block_text += "\n"
    if at is None:
        return "".join(lines[:end] + [block_text] + lines[end:])
    if not force:
        raise PipelineError(
            f"params.yaml: datasets.{name} already exists; rerun with --force to replace it "
            "(the old block is overwritten, the rest of the file is kept)"
        )
    stop = at + 1
    while stop < end and (not lines[stop].strip() or lines[stop].startswith("   ")):
        stop += 1
    while stop > at + 1 and not lines[stop - 1].strip():
        stop -= 1
    return "".join(lines[:at] + [block_text] + lines[stop:])
