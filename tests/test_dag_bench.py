"""The whole-DAG benchmark's scratch params and output comparison (benchmarks/dag_bench.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.dag_bench import UNLIMITED, output_differences, scratch_params
from pipeline.params import load
from pipeline.params.base import BaseParams
from pipeline.params.features import FeaturesParams
from pipeline.params.ingest import IngestParams
from pipeline.params.train import TrainParams


def test_scratch_params_fit_a_24_month_ledger_and_stay_valid():
    params = scratch_params("2024-01-01", 24, "6GB", None)
    assert list(params["datasets"]) == ["synthetic"]
    assert load(BaseParams, "base", "synthetic", params).budget_bytes == 6 * 10**9
    features = load(FeaturesParams, "features", "synthetic", params)
    assert (features.as_of.start, features.as_of.end) == ("2024-06-30", "2025-12-31")
    assert load(IngestParams, "ingest", "synthetic", params).data_cutoff == "2025-12-31"
    assert load(TrainParams, "train", "synthetic", params).split.oot_start == "2024-10-31"
    free = scratch_params("2024-01-01", 24, UNLIMITED, "20GB")
    assert load(FeaturesParams, "features", "synthetic", free).memory_limit == "20GB"


def _write(root: Path, card_text: str, amounts: list[float]) -> None:
    (root / "models" / "synthetic").mkdir(parents=True)
    (root / "data" / "processed").mkdir(parents=True)
    (root / "models" / "synthetic" / "scorecard.json").write_text(card_text)
    pd.DataFrame({"amount": amounts}).to_parquet(root / "data" / "processed" / "s.parquet")


def test_output_differences_masks_stamps_and_budgets_but_not_figures(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _write(
        a,
        '{"code_version": "0.1.0+0123456789ab", "memory_budget": "6GB", "auc": 0.71}',
        [1.0, 2.0],
    )
    _write(
        b,
        '{"code_version": "0.1.0+ba9876543210", "memory_budget": "1000GB", "auc": 0.71}',
        [1.0, 2.0],
    )
    _write(
        c,
        '{"code_version": "0.1.0+0123456789ab", "memory_budget": "6GB", "auc": 0.72}',
        [1.0, 2.5],
    )
    assert output_differences(a, b) == []
    assert output_differences(a, c) == [
        "content differs: data/processed/s.parquet",
        "text differs: models/synthetic/scorecard.json",
    ]


def test_the_fit_row_cap_is_a_budget_setting_but_whether_it_binds_is_compared(tmp_path):
    def report(cap: int, bound: bool) -> str:
        rule = f"fit rows capped at {cap} = floor((0.8 x base.memory_budget - ...))"
        return f'{{"fit_sample": {{"max_rows": {cap}, "bound": {str(bound).lower()}, "rule": "{rule}"}}}}'

    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _write(a, report(903_614, False), [1.0])
    _write(b, report(166_000_000, False), [1.0])
    _write(c, report(903_614, True), [1.0])
    assert output_differences(a, b) == []
    assert output_differences(a, c) == ["text differs: models/synthetic/scorecard.json"]
