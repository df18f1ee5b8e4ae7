"""Sources that map raw files into the canonical tables: ``canonical`` files, or a named adapter.

Each adapter has ``open_tables(raw_dir, params) -> (dict[table, TableSource], notes)``; the ingest
stage validates whatever they produce with the same schemas, so adapters only reshape, never filter
silently.
"""

from __future__ import annotations

from pipeline.adapters import canonical, ledger, uci

ADAPTERS = {
    "canonical": canonical.open_tables,
    "uci_credit_card": uci.open_tables,
    "invoice_ledger": ledger.open_tables,
}
