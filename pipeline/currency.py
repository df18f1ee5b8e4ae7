"""Currency of ledger rows: the dataset's currency, or a conversion through a dated FX table.

A dataset states its currency (``datasets.<ds>.ingest.currency``, an ISO 4217 code; required, never
defaulted). A row in another currency is converted with the latest rate dated on or before the row's
own date from the optional FX table (``datasets.<ds>.ingest.fx_rates``: a CSV under
``data/raw/<ds>/`` with columns ``date, currency, rate_to_base``, where ``rate_to_base`` is units of
the dataset's currency per one unit of ``currency``). A row with no such rate is quarantined with
rule ``currency``. Converting at the row's date (not the invoice's) is how a receivables ledger books
a foreign-currency payment; the difference to the invoice's booked amount is the FX gain or loss.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.domain import PipelineError

ISO_CODE = re.compile(r"^[A-Z]{3}$")
FX_COLUMNS = ("date", "currency", "rate_to_base")


def read_fx_table(path: Path, base: str) -> pd.DataFrame:
    """The FX table sorted by currency and date; any unreadable row is a one-line error (it is
    reference data: a wrong rate would mis-state every converted amount)."""
    if not path.is_file():
        raise PipelineError(
            f"{path}: FX table not found (params ingest.fx_rates); put it under the dataset's raw "
            "folder or remove the key"
        )
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: row ?, column ?, rule readable_csv: {exc}") from None
    missing = [c for c in FX_COLUMNS if c not in raw.columns]
    if missing:
        raise PipelineError(
            f"{path}: row 1, column {missing[0]}, rule required_column: the FX table needs "
            "columns date, currency, rate_to_base"
        )
    date = pd.to_datetime(raw["date"], format="ISO8601", errors="coerce")
    code = raw["currency"].str.strip().str.upper()
    rate = pd.to_numeric(raw["rate_to_base"], errors="coerce")
    checks = [
        ("date", date.isna(), "parses_as_date"),
        ("currency", ~code.str.match(ISO_CODE), "iso_currency"),
        ("rate_to_base", ~(np.isfinite(rate) & (rate > 0)), "positive_rate"),
    ]
    for column, bad, rule in checks:
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise PipelineError(
                f"{path}: row {i + 2}, column {column}, rule {rule}: value {raw[column].iloc[i]!r}"
            )
    table = pd.DataFrame({"date": date.dt.normalize(), "currency": code, "rate": rate})
    dup = table.duplicated(["date", "currency"], keep=False)
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise PipelineError(
            f"{path}: row {i + 2}, column date, rule unique_rate: two rates for "
            f"{table['currency'].iloc[i]} on {table['date'].iloc[i].date()}"
        )
    table = table[table["currency"] != base]
    return table.sort_values(["date", "currency"], ignore_index=True)


def rates_for(
    currency: pd.Series, date: pd.Series, fx: pd.DataFrame | None, base: str
) -> pd.Series:
    """Per row, units of ``base`` per unit of the row's currency: 1 for ``base``, the latest FX rate
    on or before the row's date otherwise, NaN when there is none."""
    code = currency.astype("string").str.strip().str.upper()
    same = (code == base).fillna(False).to_numpy(bool)
    out = pd.Series(np.where(same, 1.0, np.nan), index=currency.index)
    foreign = pd.Series(~same, index=currency.index) & code.notna() & date.notna()
    if fx is None or not foreign.any():
        return out
    left = pd.DataFrame(
        {"date": date[foreign].astype("datetime64[ns]"), "currency": code[foreign].astype(object)}
    )
    left["_pos"] = np.arange(len(left))
    merged = pd.merge_asof(
        left.sort_values("date", kind="stable"),
        fx.astype({"currency": object}),
        on="date",
        by="currency",
        direction="backward",
    ).sort_values("_pos")
    out[foreign] = merged["rate"].to_numpy()
    return out
