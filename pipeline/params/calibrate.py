"""The ``calibrate`` block: score → PD calibration, the master scale and its minimums."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.params import require


@dataclass(frozen=True)
class CalibrateParams:
    """How scores become PDs and grades (docs/validation.md section 7).

    ``method``: platt (default), isotonic, or auto (isotonic only with at least
    ``isotonic_min_sample`` rows and strictly rising grade PDs over as many grades as Platt).
    ``central_tendency``: ``long_run`` (mean annual cohort default rate over every matured cohort), a
    PD in (0, 1), or null (point-in-time level of the calibration sample). ``n_grades`` is the most
    grades; a grade needs ``min_grade_share`` of the calibration snapshots, ``min_grade_customers``
    customers and ``min_grade_expected_defaults`` expected defaults. ``pd_bands``: geometric bands or
    the K−1 increasing ``pd_targets``. ``true_pd_tolerance``: the truth check's relative tolerance
    (synthetic data only).
    """

    method: Literal["platt", "isotonic", "auto"]
    isotonic_min_sample: int
    central_tendency: Literal["long_run"] | float | None
    pd_floor: float
    scale: Literal["letter", "numeric"]
    n_grades: int
    min_grade_share: float
    min_grade_customers: int
    min_grade_expected_defaults: float
    pd_bands: Literal["geometric", "targets"]
    pd_targets: tuple[float, ...]
    true_pd_tolerance: float

    def __post_init__(self) -> None:
        key = "calibrate"
        if isinstance(self.central_tendency, float):
            require(
                0.0 < self.central_tendency < 1.0,
                f"{key}.central_tendency",
                "in_range",
                f"a PD must be in (0, 1), got {self.central_tendency} (or use long_run or null)",
            )
        require(
            0.0 <= self.pd_floor < 1.0,
            f"{key}.pd_floor",
            "in_range",
            f"must be in [0, 1), got {self.pd_floor}",
        )
        letter = self.scale == "letter"
        require(
            4 <= self.n_grades <= 12 if letter else self.n_grades >= 7,
            f"{key}.n_grades",
            "in_range",
            (
                "the letter scale takes 4 to 12 grades (A…D, AAA…D)"
                if letter
                else "the numeric scale needs at least 7 non-default grades (CRR Art. 170)"
            )
            + f", got {self.n_grades}",
        )
        require(
            self.isotonic_min_sample >= 1,
            f"{key}.isotonic_min_sample",
            "at_least",
            f"must be >= 1, got {self.isotonic_min_sample}",
        )
        require(
            0.0 <= self.min_grade_share < 1.0,
            f"{key}.min_grade_share",
            "in_range",
            f"must be in [0, 1), got {self.min_grade_share}",
        )
        require(
            self.min_grade_customers >= 0,
            f"{key}.min_grade_customers",
            "at_least",
            f"must be >= 0, got {self.min_grade_customers}",
        )
        require(
            self.min_grade_expected_defaults >= 0.0,
            f"{key}.min_grade_expected_defaults",
            "at_least",
            f"must be >= 0, got {self.min_grade_expected_defaults}",
        )
        require(
            all(0.0 < t < 1.0 for t in self.pd_targets)
            and all(a < b for a, b in zip(self.pd_targets, self.pd_targets[1:], strict=False)),
            f"{key}.pd_targets",
            "increasing_pds",
            f"must be increasing PDs in (0, 1), got {list(self.pd_targets)}",
        )
        require(
            self.pd_bands != "targets" or len(self.pd_targets) >= 1,
            f"{key}.pd_targets",
            "required",
            "pd_bands: targets needs the K-1 PD boundaries between grades",
        )
        require(
            self.true_pd_tolerance > 0.0,
            f"{key}.true_pd_tolerance",
            "positive",
            f"must be > 0, got {self.true_pd_tolerance}",
        )
