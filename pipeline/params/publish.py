"""The ``publish`` block: limits, credit policy, behaviour triggers, dunning, limit review, customer value.

Amounts and thresholds typed `Number` keep the type params.yaml writes (``0`` stays an integer,
``0.1`` a float), so the policy echoed in the published bundle reads exactly as the params file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from pipeline.domain import LETTER_GRADES
from pipeline.params import build, require

Number = int | float
Strategy = Literal["grow", "keep", "secure", "exit"]
GRID_VALUE = ("high", "low")
LOYALTY = ("high", "medium", "low")
TIERS = ("high", "medium", "low")


def _rising(edges: tuple[Number, ...], key: str, from_zero: bool = False) -> None:
    require(len(edges) > 0, key, "non_empty", "at least one edge")
    require(
        all(b > a for a, b in zip(edges[:-1], edges[1:], strict=False)),
        key,
        "increasing",
        f"band edges must rise strictly, got {list(edges)}",
    )
    if from_zero:
        require(edges[0] == 0, key, "from_zero", f"the first edge must be 0, got {edges[0]}")


def _covers_grades(table: Mapping[str, Any], key: str) -> None:
    missing = [g for g in LETTER_GRADES if g not in table]
    require(not missing, key, "covers_grades", f"no value for letter grades {missing}")


def _share(value: float, key: str, low_open: bool = False) -> None:
    ok = (0 < value <= 1) if low_open else (0 <= value <= 1)
    interval = "(0, 1]" if low_open else "[0, 1]"
    require(ok, key, "in_range", f"must be in {interval}, got {value}")


@dataclass(frozen=True)
class RaiseTrigger:
    """Steady on-time growth raises the limit by ``step``."""

    max_late_invoice_share: float
    min_sales_growth: float
    min_tenure_months: Number
    step: float

    def __post_init__(self) -> None:
        require(self.step > 0, "publish.triggers.raise.step", "positive", f"got {self.step}")


@dataclass(frozen=True)
class CutTrigger:
    """Large orders paid late cut the limit by ``step``."""

    min_largest_invoice_share: float
    min_days_beyond_terms: Number
    step: float

    def __post_init__(self) -> None:
        _share(self.step, "publish.triggers.cut.step", low_open=True)


@dataclass(frozen=True)
class SuspendTrigger:
    """Deteriorating finances suspend the limit (cash in advance until the next review)."""

    min_net_worth_drop: float
    min_days_beyond_terms_trend: Number
    min_worst_days_past_due: Number


@dataclass(frozen=True)
class Triggers:
    """Behaviour triggers checked at every review and on new data (``raise`` is the field ``raise_``)."""

    raise_: RaiseTrigger = field(metadata={"key": "raise"})
    cut: CutTrigger
    suspend: SuspendTrigger


@dataclass(frozen=True)
class DunningParams:
    """Collection strategy: grade x days past due x amount band -> ladder step and wait."""

    dpd_bands: tuple[int, ...]
    amount_bands: tuple[Number, ...]
    ladder: tuple[str, ...]
    wait_days: tuple[int, ...]
    grade_escalation: dict[str, int]
    amount_escalation: tuple[int, ...]
    wait_multiplier: dict[str, float]
    stop_shipment_from_step: int

    def __post_init__(self) -> None:
        key = "publish.dunning"
        _rising(self.dpd_bands, f"{key}.dpd_bands")
        _rising(self.amount_bands, f"{key}.amount_bands")
        require(
            len(self.ladder) == len(self.wait_days) > 0,
            f"{key}.wait_days",
            "same_length",
            f"one wait per ladder step: {len(self.ladder)} steps, {len(self.wait_days)} waits",
        )
        require(
            len(self.amount_escalation) == len(self.amount_bands),
            f"{key}.amount_escalation",
            "same_length",
            f"one step per amount band: {len(self.amount_bands)} bands, "
            f"{len(self.amount_escalation)} steps",
        )
        _covers_grades(self.grade_escalation, f"{key}.grade_escalation")
        missing = [g for g in self.grade_escalation if g not in self.wait_multiplier]
        require(not missing, f"{key}.wait_multiplier", "covers_grades", f"no value for {missing}")


@dataclass(frozen=True)
class LimitReviewParams:
    """Limit review proposals and the approval-authority table."""

    months: int
    roles: tuple[str, ...]
    exposure_bands: tuple[Number, ...]
    exposure_level: tuple[int, ...]
    change_bands: tuple[Number, ...]
    change_escalation: tuple[int, ...]
    grade_escalation: dict[str, int]
    suspend_role: str
    keep_tolerance: float
    overrides: str | None

    def __post_init__(self) -> None:
        key = "publish.limit_review"
        require(self.months >= 1, f"{key}.months", "positive", f"got {self.months}")
        require(len(self.roles) > 0, f"{key}.roles", "non_empty", "at least one role")
        _rising(self.exposure_bands, f"{key}.exposure_bands", from_zero=True)
        _rising(self.change_bands, f"{key}.change_bands", from_zero=True)
        require(
            len(self.exposure_level) == len(self.exposure_bands),
            f"{key}.exposure_level",
            "same_length",
            "one level per exposure band",
        )
        require(
            len(self.change_escalation) == len(self.change_bands),
            f"{key}.change_escalation",
            "same_length",
            "one step per change band",
        )
        _covers_grades(self.grade_escalation, f"{key}.grade_escalation")
        require(
            self.suspend_role in self.roles,
            f"{key}.suspend_role",
            "one_of",
            f"'{self.suspend_role}' is not one of roles {list(self.roles)}",
        )
        require(self.keep_tolerance >= 0, f"{key}.keep_tolerance", "non_negative", "must be >= 0")


@dataclass(frozen=True)
class CustomerValueParams:
    """Customer value, lifetime value, loyalty, the value-loyalty grid and the value x grade strategy."""

    gross_margin_rate: float
    cost_of_capital: float
    collection_cost_rate: float
    collection_cost_per_late_invoice: float
    lgd: float
    horizon_years: int
    discount_rate: float
    min_segment_customers: int
    full_tenure_months: Number
    missing_share_of_wallet: float
    loyalty_high: float
    loyalty_medium: float
    grid_value_quantile: float
    tier_quantiles: tuple[float, float]
    grid_strategy: dict[str, str]
    grade_strategy: dict[str, dict[str, Strategy]]

    def __post_init__(self) -> None:
        key = "publish.customer_value"
        _share(self.gross_margin_rate, f"{key}.gross_margin_rate")
        _share(self.lgd, f"{key}.lgd")
        _share(self.missing_share_of_wallet, f"{key}.missing_share_of_wallet")
        require(self.horizon_years >= 1, f"{key}.horizon_years", "positive", "must be >= 1")
        require(self.full_tenure_months > 0, f"{key}.full_tenure_months", "positive", "> 0")
        q = self.tier_quantiles
        require(
            0 < q[0] < q[1] < 1,
            f"{key}.tier_quantiles",
            "increasing",
            f"two increasing quantiles in (0, 1), got {list(q)}",
        )
        require(
            0 <= self.loyalty_medium <= self.loyalty_high <= 1,
            f"{key}.loyalty_medium",
            "in_range",
            "0 <= loyalty_medium <= loyalty_high <= 1",
        )
        for v in GRID_VALUE:
            for loy in LOYALTY:
                cell = f"{v}_value_{loy}_loyalty"
                require(
                    cell in self.grid_strategy,
                    f"{key}.grid_strategy.{cell}",
                    "required",
                    "missing",
                )
        for tier in TIERS:
            require(
                tier in self.grade_strategy, f"{key}.grade_strategy.{tier}", "required", "missing"
            )
            _covers_grades(self.grade_strategy[tier], f"{key}.grade_strategy.{tier}")


@dataclass(frozen=True)
class LimitPolicy:
    """The credit policy per letter grade that limits, reviews and behaviour triggers apply: the part
    of the ``publish`` block a published bundle's ``policy`` must carry for scoring."""

    lgd: float
    el_budget: float
    credit_period_days: dict[str, int]
    grade_factor: dict[str, float]
    net_worth_share: dict[str, float]
    turnover_share: dict[str, float]
    review_months: dict[str, int]
    size_measure: str
    days_per_month: Number
    triggers: Triggers

    def __post_init__(self) -> None:
        _share(self.lgd, "publish.lgd", low_open=True)
        require(self.el_budget > 0, "publish.el_budget", "positive", f"got {self.el_budget}")
        require(self.days_per_month > 0, "publish.days_per_month", "positive", "must be > 0")
        for name in (
            "credit_period_days",
            "grade_factor",
            "net_worth_share",
            "turnover_share",
            "review_months",
        ):
            table = getattr(self, name)
            _covers_grades(table, f"publish.{name}")
            negative = [g for g, v in table.items() if v < 0]
            require(not negative, f"publish.{name}", "non_negative", f"negative for {negative}")
        for name in ("net_worth_share", "turnover_share"):
            for g, v in getattr(self, name).items():
                _share(v, f"publish.{name}.{g}")


@dataclass(frozen=True)
class PublishParams:
    """Limits (need, capacity caps, expected-loss cap), the credit policy per letter grade, behaviour
    triggers, dunning, limit review and customer value (docs/methodology.md section 5)."""

    lgd: float
    el_budget: float
    size_bands: tuple[Number, ...]
    credit_period_days: dict[str, int]
    grade_factor: dict[str, float]
    net_worth_share: dict[str, float]
    turnover_share: dict[str, float]
    review_months: dict[str, int]
    size_measure: str
    days_per_month: Number
    triggers: Triggers
    dunning: DunningParams
    limit_review: LimitReviewParams
    customer_value: CustomerValueParams

    def __post_init__(self) -> None:
        _rising(self.size_bands, "publish.size_bands")
        self.limit_policy  # noqa: B018  (its rules checked here, once)

    @property
    def limit_policy(self) -> LimitPolicy:
        """The policy per letter grade (`LimitPolicy`) of these parameters."""
        return LimitPolicy(**{f.name: getattr(self, f.name) for f in fields(LimitPolicy)})


def policy_from_bundle(policy: Mapping[str, Any]) -> LimitPolicy:
    """The policy a bundle was published with (its ``policy`` block; other keys, such as the limit
    table, dunning or customer value, are not needed to score). Errors name the params.yaml key."""
    names = [f.name for f in fields(LimitPolicy)]
    return build(LimitPolicy, {k: policy[k] for k in names if k in policy}, "publish")
