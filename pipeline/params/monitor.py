"""The ``monitor`` block: stability, deterioration test and early-warning settings of the monthly review."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.params import require


@dataclass(frozen=True)
class MonitorParams:
    """``psi_thresholds`` (green below the first, amber below the second, else red) for PSI and
    CSI; ``psi_epsilon`` additive smoothing of bin shares; ``score_bins`` development quantile bins
    of the score; ``alpha`` level of the one-sided AUC deterioration test after the
    ``multiplicity`` adjustment over the months tested; ``min_bads`` fewest bads (and goods) for a
    month to be tested; ``dbt_measure`` the snapshot column compared month to month and
    ``dbt_jump_days`` its early-warning rise; ``dpd_column`` the days past due keying the
    collection strategy; ``downgrade_on`` the grade the downgrade trigger watches."""

    psi_thresholds: tuple[float, float]
    psi_epsilon: float
    score_bins: int
    alpha: float
    multiplicity: Literal["holm", "bonferroni", "none"]
    min_bads: int
    dbt_measure: str
    dbt_jump_days: float
    dpd_column: str
    downgrade_on: Literal["letter_grade", "grade"]

    def __post_init__(self) -> None:
        low, high = self.psi_thresholds
        require(
            0.0 < low < high,
            "monitor.psi_thresholds",
            "increasing",
            f"expected 0 < amber < red, got {list(self.psi_thresholds)}",
        )
        require(
            self.psi_epsilon >= 0.0,
            "monitor.psi_epsilon",
            "non_negative",
            f"must be >= 0, got {self.psi_epsilon}",
        )
        require(
            self.score_bins >= 2,
            "monitor.score_bins",
            "at_least",
            f"must be >= 2, got {self.score_bins}",
        )
        require(
            0.0 < self.alpha < 1.0,
            "monitor.alpha",
            "in_range",
            f"must be in (0, 1), got {self.alpha}",
        )
        require(
            self.min_bads >= 1,
            "monitor.min_bads",
            "at_least",
            f"must be >= 1, got {self.min_bads}",
        )
        require(
            self.dbt_jump_days > 0.0,
            "monitor.dbt_jump_days",
            "positive",
            f"must be > 0, got {self.dbt_jump_days}",
        )
