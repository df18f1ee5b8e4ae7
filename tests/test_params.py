"""The typed parameters layer: every params.yaml block builds, and bad values fail on one line naming the key."""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

import pytest

from pipeline.config import load_params
from pipeline.params import ParamsError, build, load, to_dict
from pipeline.params.base import BaseParams


@dataclasses.dataclass(frozen=True)
class _Inner:
    share: float
    method: Literal["a", "b"]


@dataclasses.dataclass(frozen=True)
class _Outer:
    inner: _Inner
    months: list[int]
    bands: dict[str, float]
    cutoff: str | None


def _raw(**over):
    raw = {
        "inner": {"share": 1, "method": "a"},
        "months": [3, 6],
        "bands": {"A": 0.5},
        "cutoff": None,
    }
    raw.update(over)
    return raw


def test_build_converts_and_freezes():
    out = build(_Outer, _raw(), "blk")
    assert out.inner.share == 1.0 and isinstance(out.inner.share, float)
    assert out.months == (3, 6)
    assert out.bands["A"] == 0.5
    with pytest.raises(TypeError):
        out.bands["A"] = 1.0  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.months = (1,)  # type: ignore[misc]
    assert to_dict(out) == {
        "inner": {"share": 1.0, "method": "a"},
        "months": [3, 6],
        "bands": {"A": 0.5},
        "cutoff": None,
    }


@pytest.mark.parametrize(
    "raw, key, rule",
    [
        (_raw(inner={"share": 1}), "blk.inner.method", "required"),
        (_raw(inner={"share": 1, "method": "c"}), "blk.inner.method", "one_of"),
        (_raw(inner={"share": "x", "method": "a"}), "blk.inner.share", "type"),
        (_raw(inner={"share": True, "method": "a"}), "blk.inner.share", "type"),
        (_raw(months=[3, "6"]), "blk.months[1]", "type"),
        (_raw(typo=1), "blk.typo", "known_key"),
        (_raw(cutoff=5), "blk.cutoff", "type"),
    ],
)
def test_build_errors_name_key_and_rule(raw, key, rule):
    with pytest.raises(ParamsError) as info:
        build(_Outer, raw, "blk")
    message = str(info.value)
    assert "\n" not in message
    assert re.match(rf"params\.yaml: key {re.escape(key)}: rule {rule}: ", message), message


def test_base_block_of_every_dataset_builds():
    params = load_params()
    for ds in params["datasets"]:
        assert load(BaseParams, "base", ds, params).seed == params["base"]["seed"]
    with pytest.raises(ParamsError, match="key base.currency: rule iso_4217"):
        build(BaseParams, {"seed": 1, "currency": "yuan", "memory_budget": "6GB"}, "base")
    with pytest.raises(ParamsError, match="key base.memory_budget: rule memory_size"):
        build(BaseParams, {"seed": 1, "currency": "CNY", "memory_budget": "6 gigs"}, "base")
    with pytest.raises(ParamsError, match="key base.memory_budget: rule memory_size"):
        build(BaseParams, {"seed": 1, "currency": "CNY", "memory_budget": "100MB"}, "base")
    assert (
        build(
            BaseParams, {"seed": 1, "currency": "CNY", "memory_budget": "1.5GiB"}, "base"
        ).budget_bytes
        == 3 * 2**29
    )


def test_load_overlays_dataset_block():
    @dataclasses.dataclass(frozen=True)
    class _Split:
        method: str
        oot_start: str | None = None

    params = {
        "base": {"seed": 1, "currency": "CNY"},
        "blk": {"method": "x", "oot_start": "2024-01-31"},
        "datasets": {"d": {"blk": {"oot_start": "2025-01-31"}}},
    }
    assert load(_Split, "blk", "d", params).oot_start == "2025-01-31"


def test_make_params_fixture_overrides_one_key(make_params):
    base = make_params(BaseParams, "base", "synthetic", {"seed": 7})
    assert base.seed == 7 and base.currency == "CNY"


def test_make_params_override_beats_the_dataset_block(make_params):
    from pipeline.params.ingest import IngestParams

    assert make_params(IngestParams, "ingest", "synthetic").data_cutoff == "2025-12-31"
    overridden = make_params(IngestParams, "ingest", "synthetic", {"data_cutoff": "2020-01-31"})
    assert overridden.data_cutoff == "2020-01-31"
