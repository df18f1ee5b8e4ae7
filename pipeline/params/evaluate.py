"""The ``evaluate`` block: how scorecard, challenger, boosting reference and rule grading are compared."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.domain import LETTER_GRADES
from pipeline.params import require
from pipeline.params.base import BaseParams


@dataclass(frozen=True)
class EvaluateParams:
    """``bootstrap_resamples`` cluster-bootstrap resamples over customers (seed ``base.seed``);
    ``n_bands`` risk bands of the gains tables; ``ci_level`` of every interval;
    ``rule_reject_grades`` the grades the rules decline (sets the approval rate compared);
    ``rule_undefined``: rule grade UNDEFINED is ``exclude``d from every method or ranked ``worst``."""

    base: BaseParams
    bootstrap_resamples: int
    n_bands: int
    ci_level: float
    rule_reject_grades: tuple[str, ...]
    rule_undefined: Literal["exclude", "worst"]

    def __post_init__(self) -> None:
        require(
            self.bootstrap_resamples >= 10,
            "evaluate.bootstrap_resamples",
            "at_least",
            f"must be >= 10 for a percentile interval, got {self.bootstrap_resamples}",
        )
        require(
            self.n_bands >= 2, "evaluate.n_bands", "at_least", f"must be >= 2, got {self.n_bands}"
        )
        require(
            0.0 < self.ci_level < 1.0,
            "evaluate.ci_level",
            "in_range",
            f"must be in (0, 1), got {self.ci_level}",
        )
        unknown = [g for g in self.rule_reject_grades if g not in LETTER_GRADES]
        require(
            not unknown,
            "evaluate.rule_reject_grades",
            "letter_grade",
            f"{unknown} not among {', '.join(LETTER_GRADES)}",
        )
        require(
            set(self.rule_reject_grades) != set(LETTER_GRADES),
            "evaluate.rule_reject_grades",
            "some_accepted",
            "rejecting every grade leaves no approval rate to compare",
        )
