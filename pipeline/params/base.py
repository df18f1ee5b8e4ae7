"""The ``base`` block: settings every stage shares."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.params import require

MEMORY_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
_UNIT = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
_UNIT.update({"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40})
DUCKDB_SHARE = 0.75
"""Largest share of ``base.memory_budget`` a DuckDB ``memory_limit`` (settle, features) may take: DuckDB's
limit caps its buffer manager, not the process (the interpreter, Arrow results and libraries sit on top)."""


def size_bytes(text: str) -> int:
    """Bytes in a memory size such as ``6GB`` or ``512MiB`` (DuckDB's spelling; GB = 10^9 bytes)."""
    match = MEMORY_SIZE.match(text.strip())
    if not match:
        raise ValueError(f"expected a size such as 4GB or 512MB, got {text!r}")
    return int(float(match.group(1)) * _UNIT[match.group(2)])


@dataclass(frozen=True)
class BaseParams:
    """``seed`` drives every random draw; ``currency`` is the reporting currency (ISO 4217);
    ``memory_budget`` is the peak resident memory every stage keeps within (it sizes its batches and
    samples from it; the DuckDB ``memory_limit`` of settle and features is DuckDB's share of it)."""

    seed: int
    currency: str
    memory_budget: str

    def __post_init__(self) -> None:
        require(
            len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper(),
            "base.currency",
            "iso_4217",
            f"expected a three-letter ISO 4217 code such as CNY, got {self.currency!r}",
        )
        require(
            bool(MEMORY_SIZE.match(self.memory_budget.strip()))
            and size_bytes(self.memory_budget) >= 2**28,
            "base.memory_budget",
            "memory_size",
            f"expected a size of at least 256MiB such as 6GB, got {self.memory_budget!r}",
        )

    @property
    def budget_bytes(self) -> int:
        """``memory_budget`` in bytes."""
        return size_bytes(self.memory_budget)


def check_duckdb_limit(block: str, memory_limit: str, budget_bytes: int) -> None:
    """``<block>.memory_limit`` within `DUCKDB_SHARE` of ``base.memory_budget``."""
    require(
        size_bytes(memory_limit) <= DUCKDB_SHARE * budget_bytes,
        f"{block}.memory_limit",
        "within_budget",
        f"{memory_limit} exceeds {DUCKDB_SHARE:.0%} of base.memory_budget "
        f"({budget_bytes / 1e9:.2f} GB): DuckDB's limit caps its buffers, not the process",
    )
