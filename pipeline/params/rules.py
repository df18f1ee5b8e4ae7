"""The ``rules`` block: the seed's A/B/C/D rule grading and the expert overlay (docs/rule_grading.md).

The vocabulary (completions, timing measures, the six Cs) is the rule library's (`pipeline.rules`);
this module checks a block against it once, naming the params.yaml key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.params import require


@dataclass(frozen=True)
class CollectionThresholds:
    """Net collection rate: ``>= a_min`` A, ``>= b_min`` B, ``>= c_min`` C, below D (veto)."""

    a_min: float
    b_min: float
    c_min: float

    def __post_init__(self) -> None:
        require(
            self.c_min <= self.b_min <= self.a_min,
            "rules.collection_thresholds",
            "ordered",
            f"need c_min <= b_min <= a_min, got {self.c_min}, {self.b_min}, {self.a_min}",
        )


@dataclass(frozen=True)
class TimingThresholds:
    """Days beyond terms: ``<= a_max`` A, ``< b_below`` B, ``< c_below`` C, else D (veto)."""

    a_max: float
    b_below: float
    c_below: float

    def __post_init__(self) -> None:
        require(
            self.a_max < self.b_below <= self.c_below,
            "rules.timing_thresholds",
            "ordered",
            f"need a_max < b_below <= c_below, got {self.a_max}, {self.b_below}, {self.c_below}",
        )


@dataclass(frozen=True)
class CompetitorShareThresholds:
    """Competitors' share of the customer's sales: ``<= a_max`` A ... above ``c_max`` D."""

    a_max: float
    b_max: float
    c_max: float

    def __post_init__(self) -> None:
        require(
            0 <= self.a_max <= self.b_max <= self.c_max <= 1,
            "rules.competitor_share_thresholds",
            "ordered",
            f"need 0 <= a_max <= b_max <= c_max <= 1, got {self.a_max}, {self.b_max}, {self.c_max}",
        )


@dataclass(frozen=True)
class OverlayParams:
    """Expert (6C / Delphi) overlay: the weighted score moves the rule grade by whole notches of
    ``points_per_notch`` away from ``neutral_score``, at most ``max_notches_up`` / ``_down``; a D
    (veto) is lifted only with ``upgrade_d``."""

    enabled: bool
    weights: dict[str, float]
    neutral_score: float
    points_per_notch: float
    max_notches_up: int
    max_notches_down: int
    upgrade_d: bool

    def __post_init__(self) -> None:
        from pipeline.rules import EXPERT_CS

        unknown = sorted(set(self.weights) - set(EXPERT_CS))
        total = sum(self.weights.values())
        require(
            not unknown and math.isclose(total, 1.0, abs_tol=1e-6),
            "rules.overlay.weights",
            "weights",
            f"need weights for {list(EXPERT_CS)} summing to 1, got {dict(self.weights)}",
        )
        require(
            self.points_per_notch > 0,
            "rules.overlay.points_per_notch",
            "positive",
            f"must be > 0, got {self.points_per_notch}",
        )
        for name in ("max_notches_up", "max_notches_down"):
            value = getattr(self, name)
            require(value >= 0, f"rules.overlay.{name}", "in_range", f"must be >= 0, got {value}")


@dataclass(frozen=True)
class RulesParams:
    """The ``rules`` block: which columns the three indicators read, their thresholds, how the letters
    combine (``completion`` for the textbook's open cells, ``missing_competitor_rule`` for a customer
    without competitor share) and the expert overlay."""

    timing_measure: str
    timing_window_months: int
    collection_window_months: int
    collection_thresholds: CollectionThresholds
    timing_thresholds: TimingThresholds
    competitor_share_thresholds: CompetitorShareThresholds
    completion: str
    missing_competitor_rule: str
    overlay: OverlayParams

    def __post_init__(self) -> None:
        from pipeline.rules import COMPLETIONS, MISSING_RULES, TIMING_MEASURES

        for name, allowed in (
            ("timing_measure", tuple(TIMING_MEASURES)),
            ("completion", COMPLETIONS),
            ("missing_competitor_rule", MISSING_RULES),
        ):
            value = getattr(self, name)
            require(
                value in allowed,
                f"rules.{name}",
                "one_of",
                f"expected one of {', '.join(map(repr, allowed))}, got {value!r}",
            )
        for name in ("timing_window_months", "collection_window_months"):
            value = getattr(self, name)
            require(value >= 1, f"rules.{name}", "in_range", f"must be >= 1, got {value}")
