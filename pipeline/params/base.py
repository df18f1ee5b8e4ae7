"""The ``base`` block: settings every stage shares."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.params import require


@dataclass(frozen=True)
class BaseParams:
    """``seed`` drives every random draw; ``currency`` is the reporting currency (ISO 4217)."""

    seed: int
    currency: str

    def __post_init__(self) -> None:
        require(
            len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper(),
            "base.currency",
            "iso_4217",
            f"expected a three-letter ISO 4217 code such as CNY, got {self.currency!r}",
        )
