"""Typed, frozen stage parameters, built and checked once at stage start.

Each ``params.yaml`` block has a frozen dataclass in a module of this package (``pipeline.params.train``
for the ``train`` block, ...). `load` overlays ``datasets.<ds>.<block>`` on the block, then `build`
turns the dict into the dataclass: every field must be present (defaults live in params.yaml only),
unknown keys are refused, values are checked against the field's type, and a dataclass's
``__post_init__`` may add rules with `require`. Every error is one line naming the params.yaml key:

    params.yaml: key train.split.calibration_share: rule in_range: must be in (0, 1), got 1.5

Library functions take these objects (or plain arguments), never the raw dict.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from pipeline.domain import PipelineError

T = TypeVar("T")

_NONE = type(None)


class ParamsError(PipelineError):
    """A params.yaml value that breaks a rule; the message names the key."""


def fail(key: str, rule: str, message: str) -> typing.NoReturn:
    """Raise the one-line error for ``key`` (dotted path from the params.yaml root)."""
    raise ParamsError(f"params.yaml: key {key}: rule {rule}: {message}")


def require(condition: bool, key: str, rule: str, message: str) -> None:
    """`fail` unless ``condition``; for ``__post_init__`` rules across fields."""
    if not condition:
        fail(key, rule, message)


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and _NONE in args:
            return None
        for arm in (a for a in args if a is not _NONE):
            try:
                return _convert(arm, value, key)
            except ParamsError:
                continue
        fail(key, "type", f"expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            fail(key, "one_of", f"expected one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            fail(key, "type", f"expected a list, got {value!r}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                fail(key, "length", f"expected {len(args)} items, got {len(value)}")
            return tuple(
                _convert(a, v, f"{key}[{i}]")
                for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
        item = args[0] if args else Any
        return tuple(_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            fail(key, "type", f"expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return types.MappingProxyType(
            {_convert(kt, k, key): _convert(vt, v, f"{key}.{k}") for k, v in value.items()}
        )
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(key, "type", f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            fail(key, "type", f"expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            fail(key, "type", f"expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            fail(key, "type", f"expected a string, got {value!r}")
        return value
    if tp is _NONE:
        if value is not None:
            fail(key, "type", f"expected null, got {value!r}")
        return None
    raise TypeError(f"pipeline.params: unsupported field type {tp!r} at {key}")


def _key(field: dataclasses.Field) -> str:
    """The params.yaml key of a field: its name, or ``metadata["key"]`` where the key is a Python
    keyword (``publish.triggers.raise`` is the field ``raise_``)."""
    return field.metadata.get("key", field.name)


def build(cls: type[T], raw: Any, key: str) -> T:
    """The frozen dataclass ``cls`` from the mapping ``raw`` found at params.yaml key ``key``.

    Lists become tuples and mappings read-only mappings, so the object is immutable all the way down.
    """
    if not isinstance(raw, dict):
        fail(key, "type", f"expected a mapping, got {raw!r}")
    hints = get_type_hints(cls)
    fields = {_key(f): f.name for f in dataclasses.fields(cls) if f.init}
    names = list(fields)
    unknown = sorted(set(raw) - set(names))
    if unknown:
        fail(
            f"{key}.{unknown[0]}",
            "known_key",
            f"not a parameter of {key} (known: {', '.join(names)})",
        )
    values = {}
    for name in names:
        if name not in raw:
            fail(f"{key}.{name}", "required", "missing; every parameter is set in params.yaml")
        values[fields[name]] = _convert(hints[fields[name]], raw[name], f"{key}.{name}")
    return cls(**values)


def load(cls: type[T], block: str, dataset: str, params: dict[str, Any] | None = None) -> T:
    """The ``block`` parameters for ``dataset`` as ``cls``: the block overlaid with
    ``datasets.<dataset>.<block>``, plus ``base`` when ``cls`` has a ``base`` field."""
    from pipeline.config import stage_params

    merged = stage_params(block, dataset, params)
    field_names = {f.name for f in dataclasses.fields(cls)}
    if "base" not in field_names:
        merged.pop("base", None)
    return build(cls, merged, block)


def to_dict(obj: Any) -> Any:
    """Plain JSON-able form of a params object (tuples as lists, mappings as dicts): for reports."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {_key(f): to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, (dict, types.MappingProxyType)):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
