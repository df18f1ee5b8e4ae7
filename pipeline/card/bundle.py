"""The published card bundle's integrity: a JSON Schema, a content hash and declared value domains.

`seal_bundle` (called by the publish stage) adds to the bundle

- ``features[].domain``: the values a characteristic can take (``{"min": 0, "max": 1}`` for a
  share, ``{"min": 0}`` for an amount, a count or a number of days past due), from the unit in the
  feature dictionary; the score command rejects a value outside it per row;
- ``content_sha256``: SHA-256 of the bundle's JSON text (`pipeline.io.json_text`, the same bytes
  the publish stage writes) without this key.

`load_bundle` reads a bundle and checks, in order: readable JSON, a JSON object, the JSON Schema
(`BUNDLE_SCHEMA`, published beside the bundle as ``scorecard.schema.json``), the content hash, then
what a schema cannot say (range bins in increasing order, grades with falling score minimums). Every
failure is one line naming the file, the JSON path and the rule. The schema allows unknown keys and
edges written as short decimals with an ``edge_digits`` key (bin edges stay JSON numbers).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.card.routing import SEGMENT_CARDS
from pipeline.domain import PipelineError
from pipeline.io import json_text

HASH_KEY = "content_sha256"
SCHEMA_FILE = "scorecard.schema.json"
BUNDLE_KEYS = ("calibration", "master_scale", "policy")

_number = {"type": "number"}
_edge = {"type": ["number", "null"]}
_int = {"type": "integer"}
BUNDLE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "scorecard.schema.json",
    "title": "Published scorecard bundle (python -m pipeline.score --card)",
    "type": "object",
    "required": [
        "kind",
        "schema_version",
        "scaling",
        "intercept",
        "features",
        *BUNDLE_KEYS,
        HASH_KEY,
    ],
    "properties": {
        "kind": {"type": "string"},
        "schema_version": {"type": "string"},
        "edge_digits": {"type": "integer", "minimum": 1, "maximum": 17},
        HASH_KEY: {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "intercept": _number,
        "scaling": {
            "type": "object",
            "required": ["factor", "offset"],
            "properties": {"factor": {"type": "number", "exclusiveMinimum": 0}, "offset": _number},
        },
        "reason_codes": {
            "type": "object",
            "properties": {"top_n": {"type": "integer", "minimum": 0, "maximum": 20}},
        },
        "features": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "dtype", "bins", "unseen_points", "baseline_points"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "dtype": {"enum": ["numeric", "categorical"]},
                    "unseen_points": _int,
                    "baseline_points": _number,
                    "reason_code": {"type": ["string", "null"]},
                    "edge_digits": {"type": "integer", "minimum": 1, "maximum": 17},
                    "domain": {
                        "type": "object",
                        "properties": {"min": _edge, "max": _edge},
                        "additionalProperties": False,
                    },
                    "bins": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "points"],
                            "properties": {
                                "type": {"enum": ["range", "missing", "special", "category"]},
                                "points": _int,
                                "lower": _edge,
                                "upper": _edge,
                                "values": {"type": "array", "items": _number},
                                "categories": {"type": "array"},
                            },
                            "allOf": [
                                {
                                    "if": {"properties": {"type": {"const": "range"}}},
                                    "then": {"required": ["lower", "upper"]},
                                },
                                {
                                    "if": {"properties": {"type": {"const": "category"}}},
                                    "then": {"required": ["categories"]},
                                },
                                {
                                    "if": {"properties": {"type": {"const": "special"}}},
                                    "then": {"required": ["values"]},
                                },
                            ],
                        },
                    },
                },
            },
        },
        "calibration": {
            "type": "object",
            "required": ["method", "parameters"],
            "properties": {"parameters": {"type": "object"}},
        },
        "master_scale": {
            "type": "object",
            "required": ["grades"],
            "properties": {
                "grades": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["grade", "letter_grade", "pd", "score_min"],
                        "properties": {
                            "grade": {"type": "string"},
                            "letter_grade": {"type": "string"},
                            "pd": {"type": "number", "minimum": 0, "maximum": 1},
                            "score_min": _edge,
                        },
                    },
                }
            },
        },
        "policy": {"type": "object"},
    },
}

BUNDLE_SCHEMA["properties"][SEGMENT_CARDS] = {
    "type": "object",
    "description": "segment -> the card scoring rows whose 'segment' column has that value",
    "additionalProperties": {
        "type": "object",
        "required": ["intercept", "features"],
        "properties": {
            "intercept": _number,
            "features": BUNDLE_SCHEMA["properties"]["features"],
        },
    },
}

# the value domain of a characteristic by its unit in the feature dictionary; a share is a ratio
# whose name says share
UNIT_DOMAIN: dict[str, dict[str, float]] = {
    "count": {"min": 0},
    "currency": {"min": 0},
    "months": {"min": 0},
    "probability": {"min": 0, "max": 1},
    "points 1–100": {"min": 0, "max": 100},
}
NON_NEGATIVE_DAYS = ("worst_days_past_due", "days_since_", "dso_", "best_possible_dso_")


def feature_domain(name: str, unit: str | None) -> dict[str, float]:
    """The declared domain of one characteristic (empty: any finite number)."""
    if "share" in name and unit in ("ratio", None):
        return {"min": 0, "max": 1}
    if unit == "days" and name.startswith(NON_NEGATIVE_DAYS):
        return {"min": 0}
    if unit is None and name in ("competitor_share",):
        return {"min": 0, "max": 1}
    return dict(UNIT_DOMAIN.get(unit or "", {}))


def units_from_dictionary(path: Path | str | None) -> dict[str, str]:
    """Feature → unit from a feature_dictionary.csv (empty when there is none)."""
    if path is None or not Path(path).is_file():
        return {}
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return dict(zip(table["feature"], table["unit"], strict=True))


def content_hash(bundle: dict) -> str:
    """SHA-256 of the bundle's JSON text without the hash key."""
    body = {k: v for k, v in bundle.items() if k != HASH_KEY}
    return hashlib.sha256(json_text(body).encode("utf-8")).hexdigest()


def seal_bundle(bundle: dict, units: dict[str, str] | None = None) -> dict:
    """The bundle with each feature's declared ``domain`` and the content hash."""
    units = units or {}

    def with_domains(features: list[dict]) -> list[dict]:
        return [
            {**f, "domain": f.get("domain") or feature_domain(f["name"], units.get(f["name"]))}
            for f in features
        ]

    out = dict(bundle)
    out["features"] = with_domains(bundle["features"])
    if SEGMENT_CARDS in bundle:
        out[SEGMENT_CARDS] = {
            seg: {**sub, "features": with_domains(sub["features"])}
            for seg, sub in bundle[SEGMENT_CARDS].items()
        }
    out.pop(HASH_KEY, None)
    # hash what is written: the JSON text round-trips to the same text (floats already rounded)
    out = json.loads(json_text(out))
    out[HASH_KEY] = content_hash(out)
    return out


def _where(path) -> str:
    parts = []
    for p in path:
        parts.append(f"[{p}]" if isinstance(p, int) else f".{p}")
    return "$" + "".join(parts)


def _described(bundle: dict, path) -> str:
    """A JSON path with the feature's name when it points into ``features``."""
    where = _where(path)
    items = list(path)
    if len(items) >= 2 and items[0] == "features" and isinstance(items[1], int):
        try:
            where += f" (feature {bundle['features'][items[1]]['name']!r})"
        except (KeyError, IndexError, TypeError):
            pass
    return where


def check_bundle(bundle: Any, path: Path | str) -> dict:
    """Validate a parsed bundle (see the module docstring); one-line PipelineError on failure."""
    import jsonschema

    if not isinstance(bundle, dict):
        raise PipelineError(
            f"{path}: $, rule json_object: the card is a JSON {type(bundle).__name__}, not an "
            "object; use exports/<dataset>/scorecard.json written by the publish stage"
        )
    if "features" in bundle and not all(k in bundle for k in BUNDLE_KEYS):
        missing = [k for k in BUNDLE_KEYS if k not in bundle]
        raise PipelineError(
            f"{path}: keys {missing} missing, rule published_bundle: this is a training card, not a "
            "published bundle; use exports/<dataset>/scorecard.json written by the publish stage"
        )
    validator = jsonschema.Draft202012Validator(BUNDLE_SCHEMA)
    errors = sorted(
        validator.iter_errors(bundle), key=lambda e: (len(e.path), list(map(str, e.path)))
    )
    if errors:
        err = errors[0]
        raise PipelineError(
            f"{path}: {_described(bundle, err.absolute_path)}, rule schema ({err.validator}): "
            f"{_short(err.message)}; the card does not match {SCHEMA_FILE}"
        )
    expected = content_hash(bundle)
    if bundle[HASH_KEY] != expected:
        raise PipelineError(
            f"{path}: $.{HASH_KEY}, rule content_hash: the card's content does not match its hash "
            f"(recorded {bundle[HASH_KEY][:12]}…, content {expected[:12]}…): it was edited or "
            "damaged after publishing; republish it (python -m pipeline.publish)"
        )
    for j, feature in enumerate(bundle["features"]):
        _check_feature(feature, f"$.features[{j}]", path)
    for seg, sub in bundle.get(SEGMENT_CARDS, {}).items():
        for j, feature in enumerate(sub["features"]):
            _check_feature(feature, f"$.{SEGMENT_CARDS}.{seg}.features[{j}]", path)
    scores = [g["score_min"] for g in bundle["master_scale"]["grades"][:-1]]
    if any(s is None for s in scores) or any(
        b >= a for a, b in zip(scores, scores[1:], strict=False)
    ):
        raise PipelineError(
            f"{path}: $.master_scale.grades, rule falling_score_min: grades must list score "
            f"minimums from high to low (got {scores})"
        )
    return bundle


def _check_feature(feature: dict, at: str, path: Path | str) -> None:
    name = feature["name"]
    where = f"{path}: {at} (feature {name!r})"
    kinds = [b["type"] for b in feature["bins"]]
    if feature["dtype"] == "numeric":
        if "category" in kinds:
            raise PipelineError(
                f"{where}, rule bin_type: a numeric characteristic has category bins (was the "
                "dtype changed?)"
            )
        ranges = [b for b in feature["bins"] if b["type"] == "range"]
        if not ranges:
            raise PipelineError(
                f"{where}, rule range_bins: a numeric characteristic has no range bin"
            )
        if ranges[0]["lower"] is not None or ranges[-1]["upper"] is not None:
            raise PipelineError(
                f"{where}, rule range_cover: range bins must run from -inf (lower null) to +inf "
                "(upper null)"
            )
        for a, b in zip(ranges, ranges[1:], strict=False):
            if (
                a["upper"] is None
                or b["lower"] is None
                or a["upper"] != b["lower"]
                or not (b["upper"] is None or b["lower"] < b["upper"])
            ):
                raise PipelineError(
                    f"{where}, rule contiguous_bins: range bins must be contiguous and increasing "
                    f"([{a.get('lower')}, {a.get('upper')}) then [{b.get('lower')}, {b.get('upper')}))"
                )
    elif "range" in kinds:
        raise PipelineError(
            f"{where}, rule bin_type: a categorical characteristic has range bins (was the dtype "
            "changed?)"
        )


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 160 else text[:157] + "..."


def load_bundle(path: Path | str) -> dict:
    """Read and check a published bundle; every malformed card is a one-line PipelineError."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: card not found; run the publish stage (dvc repro)")
    raw = path.read_bytes()
    if not raw.strip():
        raise PipelineError(f"{path}: $, rule json: the card file is empty")
    try:
        bundle = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise PipelineError(
            f"{path}: byte {exc.start}, rule json: the card is not UTF-8 text"
        ) from None
    except json.JSONDecodeError as exc:
        raise PipelineError(
            f"{path}: line {exc.lineno}, column {exc.colno}, rule json: {exc.msg} (truncated or "
            "edited card?)"
        ) from None
    return check_bundle(bundle, path)


def _no_constant(name: str):
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def write_schema(path: Path | str) -> None:
    """Publish `BUNDLE_SCHEMA` (``scorecard.schema.json``)."""
    from pipeline.io import write_json

    write_json(BUNDLE_SCHEMA, Path(path))
