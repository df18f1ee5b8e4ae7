"""Onboard a ledger in one command: profile the raw files, map the columns, derive the settings.

``python -m pipeline.onboard data/raw/<name>/`` (or ``credit-onboard data/raw/<name>/``)

1. **profile** every CSV/Parquet file: encoding, header row, columns, rows;
2. **map** the headers to canonical names (`ALIASES`: canonical names, Chinese ERP headers, common
   English AR-export headers) and **pick the source type**: ``canonical`` (customers / invoices /
   payments / claims files), ``invoice_ledger`` (one row per invoice with a settled date or days late)
   or ``uci_credit_card`` (a UCI-like monthly statement panel);
3. read the ledger through the same adapter the ingest stage uses and **profile** it: date formats,
   date range, customers, invoices, amount scale, currencies, lateness (days beyond terms, FIFO);
4. **derive** the dataset's settings from the data (`derive_settings`): data cut-off, as-of grid,
   out-of-time start with matured outcomes, feature windows that fit the history, materiality relative
   to the invoice amounts, a bad definition the data supports (a non-default proxy, labelled as such,
   when too few customers reach 90 days), the number of grades the bads support, and the currency;
5. write the ``datasets.<name>`` block into params.yaml (text insertion: the rest of the file and its
   comments stay byte for byte), a comment beside every derived value, and print a one-screen summary
   with what to check. An existing block is never replaced without ``--force``.

`profile_ledger`, `propose_column_map`, `classify_table`, `choose_source`, `derive_settings`,
`render_block` and `insert_block` are pure; file reading and writing happen in `scan_files`,
`load_ledger` and `main`.

Modules: `columns` (map and source type), `profile` (ledger profile), `derive` (the block's
values), `block` (params.yaml text), `command` (file I/O and the command line).
"""

from __future__ import annotations

from pipeline.onboard.block import insert_block, render_block
from pipeline.onboard.columns import (
    ALIASES,
    DATE_FORMATS,
    ISO_FORMATS,
    UCI_DUE_DAYS,
    choose_source,
    classify_table,
    detect_date_format,
    normalise,
    propose_column_map,
)
from pipeline.onboard.command import header_row, load_ledger, main, onboard, scan_files, summary
from pipeline.onboard.derive import STAGES, Derived, _set, derive_currency, derive_settings
from pipeline.onboard.profile import (
    choose_cutoff,
    estimate_outcomes,
    invoice_lateness,
    lateness_profile,
    profile_ledger,
    settle_fifo,
)

__all__ = [
    "ALIASES",
    "DATE_FORMATS",
    "ISO_FORMATS",
    "STAGES",
    "UCI_DUE_DAYS",
    "Derived",
    "_set",
    "choose_cutoff",
    "choose_source",
    "classify_table",
    "derive_currency",
    "derive_settings",
    "detect_date_format",
    "estimate_outcomes",
    "header_row",
    "insert_block",
    "invoice_lateness",
    "lateness_profile",
    "load_ledger",
    "main",
    "normalise",
    "onboard",
    "profile_ledger",
    "propose_column_map",
    "render_block",
    "scan_files",
    "settle_fifo",
    "summary",
]
