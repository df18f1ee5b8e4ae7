"""The ``settle`` block: DuckDB resources of the settlement stage."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.params import require
from pipeline.params.base import MEMORY_SIZE


def check_resources(block: str, memory_limit: str, threads: int) -> None:
    """DuckDB ``memory_limit`` (e.g. ``4GB``) and ``threads`` (>= 1) of ``block``."""
    require(
        bool(MEMORY_SIZE.match(memory_limit)),
        f"{block}.memory_limit",
        "memory_size",
        f"expected a size such as 4GB or 512MB, got {memory_limit!r}",
    )
    require(threads >= 1, f"{block}.threads", "positive", f"must be >= 1, got {threads}")


@dataclass(frozen=True)
class SettleParams:
    """``memory_limit`` is DuckDB's memory limit (within 75% of ``base.memory_budget``, checked at stage
    start), ``threads`` its DuckDB threads and ``temp_directory`` where DuckDB spills (null: a fresh
    temporary directory)."""

    memory_limit: str
    threads: int
    temp_directory: str | None

    def __post_init__(self) -> None:
        check_resources("settle", self.memory_limit, self.threads)
