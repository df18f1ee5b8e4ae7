"""The ``ingest`` block: where the raw files are, how to read them, and the ledger rules.

The block in params.yaml sets every field (``null`` where a dataset must or may fill it in);
``datasets.<ds>.ingest`` overlays it (``source``, ``file``, ``data_cutoff``, ``currency``,
``adapter`` ...). The rules below run once at stage start, so a bad value stops the stage before
any file is read, with one line naming the key.
"""

from __future__ import annotations

import codecs
import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from pipeline.params import build, fail, load, require

ISO_CODE = re.compile(r"^[A-Z]{3}$")
SOURCES = ("canonical", "uci_credit_card", "invoice_ledger")
"""The ``ingest.source`` names; `pipeline.adapters.ADAPTERS` has one reader per name (a test checks)."""

Source = Literal["canonical", "uci_credit_card", "invoice_ledger"]


@dataclass(frozen=True)
class DelphiParams:
    """``max_iqr``: a Delphi panel converged when every criterion's last-round IQR is at most this."""

    max_iqr: float


@dataclass(frozen=True)
class AdapterParams:
    """Options of the ``uci_credit_card`` adapter: ``due_days`` after the statement month end is the
    due date; ``currency`` overrides the dataset currency for the panel (null: ``ingest.currency``)."""

    due_days: int | None
    currency: str | None


@dataclass(frozen=True)
class IngestParams:
    """How the ingest stage reads one dataset.

    ``files``: canonical file per table (CSV or Parquet) under data/raw/<ds>/; ``file``: the one
    export an adapter reads; ``customers_file``: an optional customer master for ``invoice_ledger``;
    ``data_cutoff`` (required): last day the data is complete; ``currency`` (required): ISO 4217 code
    of the amounts; ``fx_rates``: optional dated FX table; ``overpayment``: what a payment above its
    invoice becomes; ``payment_allocation``: how unallocated cash settles invoices (documented rule)."""

    source: Source
    files: dict[str, str | None]
    file: str | None
    customers_file: str | None
    adapter: AdapterParams
    delphi: DelphiParams
    encoding: str
    column_map: dict[str, dict[str, str]]
    chunksize: int
    date_format: str
    data_cutoff: str | None
    currency: str | None
    fx_rates: str | None
    overpayment: Literal["quarantine", "credit_balance"]
    overpayment_tolerance: float
    final_line_without_newline: Literal["quarantine", "accept"]
    payment_allocation: Literal["fifo_by_due_date"]

    def __post_init__(self) -> None:
        _check_cutoff(self.data_cutoff)
        require(
            self.currency is not None,
            "ingest.currency",
            "required",
            "set datasets.<ds>.ingest.currency to the ISO 4217 code of the dataset's amounts, e.g. "
            "CNY; it is never taken from base.currency",
        )
        for key, code in (
            ("ingest.currency", self.currency),
            ("ingest.adapter.currency", self.adapter.currency),
        ):
            require(
                code is None or bool(ISO_CODE.match(code)),
                key,
                "iso_4217",
                f"expected a three-letter ISO 4217 code such as CNY, USD, TWD, got {code!r}",
            )
        require(self.chunksize >= 1, "ingest.chunksize", "at_least_1", f"got {self.chunksize}")
        require(
            0 <= self.overpayment_tolerance < 1,
            "ingest.overpayment_tolerance",
            "in_range",
            f"a share of the invoice amount in [0, 1), got {self.overpayment_tolerance}",
        )
        require(
            self.date_format in ("ISO8601", "mixed") or "%" in self.date_format,
            "ingest.date_format",
            "date_format",
            f"ISO8601, mixed or a strftime format such as %d.%m.%Y, got {self.date_format!r}",
        )
        require(
            _known_encoding(self.encoding),
            "ingest.encoding",
            "known_encoding",
            f"{self.encoding!r} is not a known encoding (auto, utf-8, gb18030, ...)",
        )
        self._check_source()

    def _check_source(self) -> None:
        require(
            self.source == "canonical" or self.file is not None,
            "ingest.file",
            "required",
            f"source {self.source} reads one export: name it in datasets.<ds>.ingest.file",
        )
        require(
            self.source != "uci_credit_card" or self.adapter.due_days is not None,
            "ingest.adapter.due_days",
            "required",
            "source uci_credit_card needs the days from statement month end to due date",
        )

    @property
    def cutoff(self) -> pd.Timestamp:
        """``data_cutoff`` as a timestamp (checked at build: a date, never null)."""
        return pd.Timestamp(self.data_cutoff)


def _check_cutoff(value: str | None) -> None:
    require(
        value not in (None, ""),
        "ingest.data_cutoff",
        "required",
        'set datasets.<ds>.ingest.data_cutoff to the last day the data is complete, e.g. "2025-12-31"; '
        "events after it are quarantined (future_date) and the features stage uses it as its cut-off",
    )
    try:
        cut = pd.Timestamp(str(value))
        ok = cut is not pd.NaT and cut == cut.normalize()
    except (ValueError, TypeError, OverflowError):
        ok = False
    require(ok, "ingest.data_cutoff", "date", f"expected a date YYYY-MM-DD, got {value!r}")


def _known_encoding(name: str) -> bool:
    if name == "auto":
        return True
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def load_ingest(dataset: str, params: dict[str, Any] | None = None) -> IngestParams:
    """The dataset's ingest parameters, built and checked once (``params``: the whole params.yaml,
    read from the project when None)."""
    return load(IngestParams, "ingest", dataset, params)


def project_params(root: Path | None = None) -> dict[str, Any]:
    """The whole params.yaml as a dict: for the onboarding command, which edits the file's text and
    reads the defaults a new dataset block is derived against."""
    from pipeline.config import PROJ_ROOT, load_params

    return load_params(root or PROJ_ROOT)


def profiling_params(block: dict[str, Any]) -> IngestParams:
    """Ingest parameters for profiling a folder before its dataset block exists (onboarding): the
    ``ingest`` block overlaid with what the files show; cut-off and currency are not known yet, so
    every row is read (cut-off 2262-04-11, the last date pandas holds) and rows that carry no
    currency get ``XXX`` (ISO 4217: no currency)."""
    return build(IngestParams, {**block, "data_cutoff": "2262-04-11", "currency": "XXX"}, "ingest")


@dataclass(frozen=True)
class OnboardDefaults:
    """The project settings a new ``datasets.<name>`` block is derived against (read from
    params.yaml by `onboard_defaults`; a derived value that equals its default is not written)."""

    ingest: dict[str, Any]
    base_currency: str
    bad_days_beyond_terms: int
    good_max_days_beyond_terms: int
    calibration_share: float
    n_grades: int
    el_budget: Any


def _at(params: dict[str, Any], key: str) -> Any:
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            fail(key, "required", "missing; onboarding derives a dataset block against it")
        node = node[part]
    return node


def onboard_defaults(params: dict[str, Any]) -> OnboardDefaults:
    """The `OnboardDefaults` of the whole params.yaml ``params``; a missing key is a one-line error."""
    return OnboardDefaults(
        ingest=copy.deepcopy(_at(params, "ingest")),
        base_currency=str(_at(params, "base.currency")),
        bad_days_beyond_terms=int(_at(params, "features.label.bad_days_beyond_terms")),
        good_max_days_beyond_terms=int(_at(params, "features.label.good_max_days_beyond_terms")),
        calibration_share=float(_at(params, "train.split.calibration_share")),
        n_grades=int(_at(params, "calibrate.n_grades")),
        el_budget=_at(params, "publish.el_budget"),
    )
