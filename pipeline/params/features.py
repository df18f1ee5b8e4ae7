"""The ``features`` block: as-of grid, windows, label definition, segments, engine and its resources.

Every rule the feature code relies on is checked here, once, naming the params.yaml key; the SQL builders
and runners take a `FeaturesParams` (or plain arguments) and trust it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from pipeline.params import fail, require
from pipeline.params.settle import check_resources

PLATFORM_GRADES = ("A", "B", "C")


def _date(value: str | None, key: str) -> None:
    if value is None:
        return
    try:
        pd.Timestamp(value)
    except (ValueError, TypeError):
        fail(key, "date", f"expected a date such as 2025-12-31, got {value!r}")


@dataclass(frozen=True)
class AsOfParams:
    """As-of dates ``pd.date_range(start, end, freq)``; a null ``end`` is the data cut-off, a null
    ``start`` the end (one date)."""

    start: str | None
    end: str | None
    freq: str

    def __post_init__(self) -> None:
        _date(self.start, "features.as_of.start")
        _date(self.end, "features.as_of.end")
        try:
            pd.tseries.frequencies.to_offset(self.freq)
        except ValueError:
            fail("features.as_of.freq", "pandas_freq", f"not a pandas frequency: {self.freq!r}")
        if self.start and self.end:
            require(
                pd.Timestamp(self.start) <= pd.Timestamp(self.end),
                "features.as_of.start",
                "not_after_end",
                f"{self.start} is after features.as_of.end {self.end}",
            )


@dataclass(frozen=True)
class LabelParams:
    """The bad / good definition over the performance window (docs/methodology.md)."""

    source: Literal["ledger", "customer_flag"]
    performance_window_months: int
    bad_days_beyond_terms: int
    good_max_days_beyond_terms: int
    material_amount: float
    material_share: float

    def __post_init__(self) -> None:
        key = "features.label."
        require(
            self.performance_window_months >= 1,
            key + "performance_window_months",
            "positive",
            f"must be >= 1, got {self.performance_window_months}",
        )
        require(
            self.bad_days_beyond_terms >= 1,
            key + "bad_days_beyond_terms",
            "positive",
            f"must be >= 1, got {self.bad_days_beyond_terms}",
        )
        require(
            0 <= self.good_max_days_beyond_terms <= self.bad_days_beyond_terms,
            key + "good_max_days_beyond_terms",
            "in_range",
            f"must lie in [0, bad_days_beyond_terms = {self.bad_days_beyond_terms}], "
            f"got {self.good_max_days_beyond_terms}",
        )
        require(
            self.material_amount >= 0,
            key + "material_amount",
            "non_negative",
            f"must be >= 0, got {self.material_amount}",
        )
        require(
            0 <= self.material_share < 1,
            key + "material_share",
            "in_range",
            f"must lie in [0, 1), got {self.material_share}",
        )

    @property
    def material_cents(self) -> int:
        """The absolute materiality in integer cents (the SQL's money unit)."""
        return int(round(self.material_amount * 100))


@dataclass(frozen=True)
class SegmentsParams:
    """``delinquent_days_beyond_terms``: from this many days beyond terms a material open invoice puts a
    customer not (yet) in default into the *delinquent* segment."""

    delinquent_days_beyond_terms: int


@dataclass(frozen=True)
class PlatformGrade:
    """Thresholds of one platform grade: rating at least, refund and complaint rates at most."""

    min_rating: float
    max_refund_rate: float
    max_complaint_rate: float


@dataclass(frozen=True)
class PlatformParams:
    """Shrinkage prior of the platform rates and the platform grade thresholds (pipeline.features.platform)."""

    prior_transactions: float
    prior_refund_rate: float
    prior_complaint_rate: float
    grade_thresholds: dict[str, PlatformGrade]

    def __post_init__(self) -> None:
        key = "features.platform."
        require(
            self.prior_transactions >= 0,
            key + "prior_transactions",
            "non_negative",
            f"must be >= 0, got {self.prior_transactions}",
        )
        for rate in ("prior_refund_rate", "prior_complaint_rate"):
            value = getattr(self, rate)
            require(0 <= value <= 1, key + rate, "in_range", f"must lie in [0, 1], got {value}")
        missing = [g for g in PLATFORM_GRADES if g not in self.grade_thresholds]
        require(
            not missing,
            key + f"grade_thresholds.{missing[0] if missing else ''}",
            "required",
            "missing; grades A, B and C each need thresholds",
        )
        ratings = [self.grade_thresholds[g].min_rating for g in PLATFORM_GRADES]
        require(
            ratings == sorted(ratings, reverse=True),
            key + "grade_thresholds",
            "ordered",
            f"min_rating must not rise from A to C, got {ratings}",
        )


@dataclass(frozen=True)
class SparkParams:
    """Spark session for ``engine: spark``: ``master`` (null: local[threads] or spark-submit's),
    application name and extra Spark configuration."""

    master: str | None
    app_name: str
    conf: dict[str, Any]


@dataclass(frozen=True)
class FeaturesParams:
    """The ``features`` block (overlaid with ``datasets.<ds>.features``)."""

    engine: Literal["duckdb", "spark"]
    memory_limit: str
    customer_chunks: int | Literal["auto"]
    threads: int
    as_of: AsOfParams
    windows_months: tuple[int, ...]
    label: LabelParams
    paydex_floor: float
    data_cutoff: str | None
    temp_directory: str | None
    segments: SegmentsParams
    roll_rate_months: int
    vintage_months: int
    platform: PlatformParams
    spark: SparkParams

    def __post_init__(self) -> None:
        check_resources("features", self.memory_limit, self.threads)
        require(
            self.customer_chunks == "auto" or self.customer_chunks >= 1,
            "features.customer_chunks",
            "positive",
            f"must be auto or >= 1 (1 = no split), got {self.customer_chunks}",
        )
        require(
            len(self.windows_months) > 0
            and all(w >= 1 for w in self.windows_months)
            and len(set(self.windows_months)) == len(self.windows_months),
            "features.windows_months",
            "distinct_positive",
            f"need one or more distinct month counts >= 1, got {list(self.windows_months)}",
        )
        _date(self.data_cutoff, "features.data_cutoff")
        bad = self.label.bad_days_beyond_terms
        seg = self.segments.delinquent_days_beyond_terms
        require(
            1 <= seg < bad,
            "features.segments.delinquent_days_beyond_terms",
            "below_bad_threshold",
            f"need an integer in [1, {bad}) (below features.label.bad_days_beyond_terms), got {seg}",
        )
        require(
            0 <= self.paydex_floor <= 20,
            "features.paydex_floor",
            "in_range",
            f"must lie in [0, 20] (the key reaches 20 points at 120 days), got {self.paydex_floor}",
        )
        for key in ("roll_rate_months", "vintage_months"):
            value = getattr(self, key)
            require(value >= 1, f"features.{key}", "positive", f"must be >= 1, got {value}")

    @property
    def windows(self) -> list[int]:
        """Windows computed: the configured ones plus 12 months (the rule inputs always need 12)."""
        return sorted(set(self.windows_months) | {12})


def stated_cutoff(features_cutoff: str | None, ingest_cutoff: str | None, dataset: str) -> str:
    """The features cut-off: ``features.data_cutoff`` if set, else the dataset's required
    ``ingest.data_cutoff``; never the latest event date, so no single row can move it."""
    value = features_cutoff or ingest_cutoff
    if not value:
        fail(
            f"datasets.{dataset}.ingest.data_cutoff",
            "required",
            "the features cut-off is the stated data cut-off, never the latest event date",
        )
    try:
        return str(pd.Timestamp(str(value)).date())
    except (ValueError, TypeError):
        fail(
            f"datasets.{dataset}.ingest.data_cutoff",
            "date",
            f"{value!r} is not a date, e.g. 2025-12-31",
        )


# ---------------------------------------------------------------------------------------------------
