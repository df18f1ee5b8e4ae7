"""The ``train`` block: sample design, binning, selection, scaling, reason codes and the two benchmarks.

Every rule the train stage and its libraries rely on is checked here, once, at stage start, with the
params.yaml key in the message: the split method and its dates and shares (`pipeline.samples`), the
binning and selection settings of the WoE scorecard (`pipeline.scorecard.WoEScorecard`), the points
scaling, the challenger and the boosting benchmark.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from pipeline.domain import SEGMENTS
from pipeline.params import require
from pipeline.params.base import BaseParams

Number = int | float
"""A number kept as params.yaml writes it (``600`` stays an integer), so reports echo the file."""

SplitMethod = Literal["out_of_time", "stratified_holdout"]
MonotonicTrend = Literal[
    "auto",
    "auto_heuristic",
    "auto_asc_desc",
    "ascending",
    "descending",
    "convex",
    "concave",
    "peak",
    "valley",
    "peak_heuristic",
    "valley_heuristic",
]
SpecialCodes = tuple[Number, ...] | dict[str, tuple[Number, ...]]


def _share(value: float, key: str, *, zero_ok: bool) -> None:
    low_ok = value >= 0 if zero_ok else value > 0
    interval = "[0, 1)" if zero_ok else "(0, 1)"
    require(low_ok and value < 1, key, "share", f"must be in {interval}, got {value}")


@dataclass(frozen=True)
class SplitParams:
    """How snapshots become samples (docs/validation.md; rules in `pipeline.samples`).

    ``out_of_time`` needs ``oot_start`` (ISO date); ``oot_customer_share`` of the development customers
    is held out whole. ``stratified_holdout`` (one observation date) holds out ``holdout_share`` of the
    customers. ``calibration_share`` of the remaining customers form the calibration sample. Models are
    fitted on the train rows of ``fit_segments``; each of ``segment_cards`` gets its own scorecard
    (`pipeline.development.fit_segment_cards`), kept where it ranks that segment's calibration rows
    better than the main card."""

    method: SplitMethod
    oot_start: str | None
    calibration_share: float
    oot_customer_share: float
    fit_segments: tuple[str, ...]
    segment_cards: tuple[str, ...]
    holdout_share: float

    def __post_init__(self) -> None:
        key = "train.split"
        if self.method == "out_of_time":
            require(
                bool(self.oot_start),
                f"{key}.oot_start",
                "required",
                "a date is required for method out_of_time",
            )
        if self.oot_start is not None:
            try:
                dt.date.fromisoformat(self.oot_start)
            except ValueError:
                require(
                    False,
                    f"{key}.oot_start",
                    "iso_date",
                    f'expected a date such as "2024-07-31", got {self.oot_start!r}',
                )
        _share(self.calibration_share, f"{key}.calibration_share", zero_ok=False)
        _share(self.oot_customer_share, f"{key}.oot_customer_share", zero_ok=True)
        _share(self.holdout_share, f"{key}.holdout_share", zero_ok=False)
        require(
            bool(self.fit_segments) and set(self.fit_segments) <= set(SEGMENTS),
            f"{key}.fit_segments",
            "segments",
            f"need a non-empty list from {list(SEGMENTS)}, got {list(self.fit_segments)}",
        )
        require(
            set(self.segment_cards) <= set(SEGMENTS) - set(self.fit_segments),
            f"{key}.segment_cards",
            "segments",
            f"need segments from {list(SEGMENTS)} outside fit_segments "
            f"{list(self.fit_segments)}, got {list(self.segment_cards)}",
        )


@dataclass(frozen=True)
class BinningParams:
    """Optimal binning of each characteristic (OptBinning's settings); ``special_codes`` is a list for
    every numeric feature or a ``{feature: [codes]}`` mapping; ``empty_bin_woe`` is the WoE of a
    missing/special bin without training rows (``worst`` or ``neutral`` = 0)."""

    monotonic_trend: MonotonicTrend
    min_bin_size: float
    max_n_prebins: int
    special_codes: SpecialCodes
    empty_bin_woe: Literal["worst", "neutral"]

    def __post_init__(self) -> None:
        require(
            0 < self.min_bin_size <= 0.5,
            "train.binning.min_bin_size",
            "in_range",
            f"must be in (0, 0.5], got {self.min_bin_size}",
        )
        require(
            self.max_n_prebins >= 2,
            "train.binning.max_n_prebins",
            "in_range",
            f"must be at least 2, got {self.max_n_prebins}",
        )


@dataclass(frozen=True)
class SelectionParams:
    """Characteristic selection: IV window, |correlation| and VIF caps, most features kept."""

    min_iv: float
    max_iv: float
    max_correlation: float
    max_vif: float
    max_features: int

    def __post_init__(self) -> None:
        key = "train.selection"
        require(
            0 <= self.min_iv < self.max_iv,
            f"{key}.max_iv",
            "in_range",
            f"need 0 <= min_iv < max_iv, got min_iv {self.min_iv}, max_iv {self.max_iv}",
        )
        require(
            0 < self.max_correlation <= 1,
            f"{key}.max_correlation",
            "in_range",
            f"must be in (0, 1], got {self.max_correlation}",
        )
        require(
            self.max_vif >= 1, f"{key}.max_vif", "in_range", f"must be >= 1, got {self.max_vif}"
        )
        require(
            self.max_features >= 1,
            f"{key}.max_features",
            "in_range",
            f"must be >= 1, got {self.max_features}",
        )


@dataclass(frozen=True)
class ScalingParams:
    """Points scaling: ``base_score`` at odds ``base_odds`` (good:bad), ``pdo`` points to double them."""

    base_score: Number
    base_odds: Number
    pdo: Number

    def __post_init__(self) -> None:
        for name in ("base_odds", "pdo"):
            value = getattr(self, name)
            require(value > 0, f"train.scaling.{name}", "positive", f"must be > 0, got {value}")


@dataclass(frozen=True)
class ReasonCodeParams:
    """Reason codes: points short of the ``baseline`` (``max`` or ``mean`` of the characteristic),
    the ``top_n`` largest shortfalls reported."""

    baseline: Literal["max", "mean"]
    top_n: int

    def __post_init__(self) -> None:
        require(
            self.top_n >= 1,
            "train.reason_codes.top_n",
            "in_range",
            f"must be >= 1, got {self.top_n}",
        )


@dataclass(frozen=True)
class ChallengerParams:
    """Raw logistic challenger: winsorise at ``clip_quantile`` / ``1 - clip_quantile``; drop a feature
    correlated above ``max_correlation`` with an earlier one."""

    clip_quantile: float
    max_correlation: float

    def __post_init__(self) -> None:
        require(
            0 <= self.clip_quantile < 0.5,
            "train.challenger.clip_quantile",
            "in_range",
            f"must be in [0, 0.5), got {self.clip_quantile}",
        )
        require(
            0 < self.max_correlation <= 1,
            "train.challenger.max_correlation",
            "in_range",
            f"must be in (0, 1], got {self.max_correlation}",
        )


@dataclass(frozen=True)
class BoostingParams:
    """HistGradientBoosting benchmark (never published): iterations, learning rate, OpenMP threads."""

    max_iter: int
    learning_rate: float
    threads: int

    def __post_init__(self) -> None:
        for name, value in (("max_iter", self.max_iter), ("threads", self.threads)):
            require(value >= 1, f"train.boosting.{name}", "in_range", f"must be >= 1, got {value}")
        require(
            self.learning_rate > 0,
            "train.boosting.learning_rate",
            "positive",
            f"must be > 0, got {self.learning_rate}",
        )


@dataclass(frozen=True)
class TrainParams:
    """The ``train`` block for one dataset (``datasets.<ds>.train`` overlaid), with ``base``."""

    split: SplitParams
    binning: BinningParams
    selection: SelectionParams
    scaling: ScalingParams
    reason_codes: ReasonCodeParams
    challenger: ChallengerParams
    boosting: BoostingParams
    base: BaseParams
