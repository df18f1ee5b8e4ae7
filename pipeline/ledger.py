"""Validating a receivables ledger table: raw chunks -> accepted canonical rows + quarantined rows.

`validate_table` streams one table from its `TableSource` and applies, per chunk and in this order:
rows flagged while reading, numeric text (`pipeline.schemas.strict_numbers`), parsing
(`parse_schema`), FX conversion to the dataset currency (`pipeline.currency`), the row and
cross-table rules (`rules_schema` with the `RuleContext` of the tables validated before it) and, for
payments, the overpayment rule. A rejected row is quarantined with every rule it broke
(`pipeline.quarantine`); the counts say rows and amounts read = accepted + quarantined.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.adapters.files import TableSource, open_table, printable
from pipeline.currency import rates_for
from pipeline.domain import PipelineError
from pipeline.params.ingest import IngestParams
from pipeline.quarantine import (
    META,
    TableSink,
    empty_reasons,
    exact_total,
    first_reason,
    problem_reasons,
    reasons,
    reconciled,
    summable,
)
from pipeline.schemas import (
    AMOUNT,
    COLUMNS,
    KEYS,
    PARSE_RULE,
    REQUIRED,
    InvoiceLookup,
    KeySet,
    RuleContext,
    conform,
    empty_table,
    parse_schema,
    rules_schema,
    strict_numbers,
    validate,
    with_invoice_lookup,
)

EVENT_DATE = {"invoices": "invoice_date", "payments": "payment_date", "claims": "claim_date"}


def strict_number_columns(
    data: pd.DataFrame, table: str, counts: dict[str, int]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric text normalised by the declared rules; values no rule reads are reasons."""
    found = []
    data = data.copy()
    for column, kind in COLUMNS[table].items():
        if kind not in ("float64", "Int64") or column not in data:
            continue
        if not (
            pd.api.types.is_object_dtype(data[column])
            or pd.api.types.is_string_dtype(data[column])
        ):
            continue
        text, invalid, n = strict_numbers(data[column])
        for k, v in n.items():
            counts[k] = counts.get(k, 0) + v
        if invalid.any():
            rule = PARSE_RULE[kind]
            shown = data.loc[invalid, column].astype(str).str.slice(0, 60)
            found.append(reasons(rule, column, rule + "(" + column + "=" + shown + ")"))
        data[column] = text.astype(object).where(text.notna(), None)
    if not found:
        return data, empty_reasons()
    return data, pd.concat(found)


def _source_currency(parsed: pd.DataFrame, table: str, ctx: RuleContext, home: str) -> pd.Series:
    """Invoices: their ``currency``; payments and claims: their linked invoice's, else ``home``."""
    if table == "invoices":
        text = parsed["currency"].astype("string").str.strip().str.upper()
        return text.astype(object).where((text.notna() & (text != "")).fillna(False), None)
    inv = ctx.invoices
    if inv is not None and inv.currencies and "invoice_id" in parsed:
        pos = inv.ids.positions(parsed["invoice_id"].to_numpy(object))
        codes = np.where(pos >= 0, inv.currency[np.maximum(pos, 0)], -1)
        out = pd.Categorical.from_codes(codes, categories=inv.currencies)
        return pd.Series(np.asarray(out, dtype=object), index=parsed.index).fillna(home)
    return pd.Series(home, index=parsed.index)


def convert_currency(
    parsed: pd.DataFrame,
    table: str,
    ctx: RuleContext,
    currency: str,
    fx: pd.DataFrame | None,
    fx_counts: dict[str, int],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Amounts in the dataset ``currency``: invoices by their ``currency``, payments and claims by
    their linked invoice's source currency (else the dataset's); rows without a rate are reasons."""
    if table not in AMOUNT or parsed.empty:
        return parsed, empty_reasons()
    date_col = EVENT_DATE[table]
    source = _source_currency(parsed, table, ctx, currency)
    rate = rates_for(source, parsed[date_col], fx, currency)
    missing = rate.isna() & source.notna() & parsed[date_col].notna()
    out = parsed.copy()
    home = (source == currency).astype(bool)
    foreign = rate.notna() & ~home
    if foreign.any():
        out.loc[foreign, "amount"] = out.loc[foreign, "amount"] * rate[foreign]
        by = source[foreign].value_counts().sort_index()
        for code, n in by.items():
            fx_counts[str(code)] = fx_counts.get(str(code), 0) + int(n)
    if table == "invoices":
        out["currency"] = out["currency"].where(~(foreign | home), currency)
        out["_source_currency"] = source.where(source.notna(), currency)
    if not missing.any():
        return out, empty_reasons()
    reason = (
        "currency(currency="
        + source[missing].astype(str)
        + ": no rate to "
        + currency
        + " on or before "
        + parsed.loc[missing, date_col].dt.strftime("%Y-%m-%d")
        + " in ingest.fx_rates)"
    )
    return out, reasons("currency", "currency", reason)


def overpayments(
    ok: pd.DataFrame, ctx: RuleContext, rule: str, tolerance: float, counts: dict[str, Any]
) -> pd.DataFrame:
    """Payments that take an invoice's cumulative payments above its amount (plus ``tolerance``).

    ``rule`` ``quarantine``: such a payment is quarantined (rule ``overpayment``);
    ``credit_balance``: it is accepted, and the rows and the excess are counted in ``counts``."""
    inv = ctx.invoices
    if inv is None or ok.empty or "invoice_id" not in ok:
        return empty_reasons()
    linked = ok["invoice_id"].notna()
    if not linked.any():
        return empty_reasons()
    p = ok.loc[linked, ["invoice_id", "amount"]]
    pos = inv.ids.positions(p["invoice_id"].to_numpy(object))
    found = pos >= 0
    billed = pd.Series(np.where(found, inv.amount[np.maximum(pos, 0)], np.nan), index=p.index)
    before = pd.Series(np.where(found, inv.paid[np.maximum(pos, 0)], 0.0), index=p.index)
    cumulative = before + p.groupby("invoice_id", sort=False)["amount"].cumsum()
    over = cumulative > billed * (1 + tolerance) + 0.01
    if rule == "quarantine":
        keep = p[~over]
    else:
        keep = p
        excess = (cumulative - billed).clip(lower=0)
        counts["overpayment_rows_accepted"] += int(over.sum())
        counts["credit_balance_amount"] += math.fsum(
            np.minimum(excess[over].to_numpy(), p.loc[over, "amount"].to_numpy())
        )
    paid = keep.groupby("invoice_id", sort=False)["amount"].sum()
    at = inv.ids.positions(paid.index.to_numpy(object))
    inv.paid[at[at >= 0]] += paid.to_numpy()[at >= 0]
    if rule != "quarantine" or not over.any():
        return empty_reasons()
    reason = (
        "overpayment(amount="
        + p.loc[over, "amount"].map("{:.2f}".format)
        + ": payments to invoice "
        + p.loc[over, "invoice_id"].astype(str)
        + " reach "
        + cumulative[over].map("{:.2f}".format)
        + " > invoice amount "
        + billed[over].map("{:.2f}".format)
        + ")"
    )
    return reasons("overpayment", "amount", reason)


class _Tally:
    """Running counts of one table across its chunks."""

    def __init__(self) -> None:
        self.rows = 0
        self.sums: dict[str, list[float]] = {"read": [], "accepted": [], "quarantined": []}
        self.unparsed = 0
        self.number_rules: dict[str, int] = {}
        self.fx: dict[str, int] = {}
        self.over: dict[str, Any] = {"overpayment_rows_accepted": 0, "credit_balance_amount": 0.0}

    def amounts(self, data: pd.DataFrame, ok: pd.Index, rejected: pd.Index) -> None:
        """Amount totals as the file states them (before FX conversion)."""
        values = pd.to_numeric(data["amount"], errors="coerce").to_numpy(dtype=float)
        pos = pd.Series(np.arange(len(data)), index=data.index)
        self.sums["read"].append(exact_total(values))
        self.unparsed += int((~summable(values)).sum())
        self.sums["accepted"].append(exact_total(values[pos.loc[ok].to_numpy()]))
        self.sums["quarantined"].append(exact_total(values[pos.loc[rejected].to_numpy()]))


def _check_chunk(
    data: pd.DataFrame,
    problem: pd.Series | None,
    bad_numbers: pd.DataFrame,
    table: str,
    ctx: RuleContext,
    params: IngestParams,
    fx: pd.DataFrame | None,
    tally: _Tally,
) -> tuple[pd.DataFrame, pd.Series | None, pd.DataFrame]:
    """One chunk (numbers already read) through every rule: (accepted rows, their source currency,
    reasons of the rest)."""
    early = first_reason(problem_reasons(problem, params.final_line_without_newline), bad_numbers)
    parsed, bad_parse = validate(
        data.drop(index=early.index), parse_schema(table, params.date_format), table
    )
    parsed = conform(parsed, table)
    parsed, bad_fx = convert_currency(parsed, table, ctx, params.currency, fx, tally.fx)
    parsed = parsed.drop(index=bad_fx.index)
    source_currency = parsed.pop("_source_currency") if "_source_currency" in parsed else None
    checked, bad_rules = validate(
        with_invoice_lookup(parsed, ctx), rules_schema(table, ctx), table
    )
    ok = parsed.loc[checked.index]
    bad_over = empty_reasons()
    if table == "payments":
        bad_over = overpayments(
            ok, ctx, params.overpayment, params.overpayment_tolerance, tally.over
        )
        ok = ok.drop(index=bad_over.index)
    return ok, source_currency, first_reason(early, bad_parse, bad_fx, bad_rules, bad_over)


def validate_table(
    source: TableSource,
    table: str,
    ctx: RuleContext,
    params: IngestParams,
    fx: pd.DataFrame | None,
    sink: TableSink,
    chunks: Any = None,
) -> dict[str, Any]:
    """Validate one table chunk by chunk into ``sink`` (accepted and quarantined rows streamed out
    in source order); return the table's counts.

    Amount sums are in the source rows' own amounts (before any FX conversion), so read = accepted
    + quarantined is checked on what the file says. ``chunks``: the chunk iterator to use (a
    progress-reporting wrapper of ``source.chunks()``); None reads ``source.chunks()``."""
    tally = _Tally()
    for chunk in source.chunks() if chunks is None else chunks:
        if chunk.empty:
            continue
        chunk = chunk.set_axis(pd.RangeIndex(tally.rows, tally.rows + len(chunk)))
        tally.rows += len(chunk)
        problem = chunk["_source_problem"] if "_source_problem" in chunk else None
        data = chunk.drop(columns=[c for c in chunk.columns if c.startswith("_")])
        if table == "invoices" and "currency" not in data:
            data["currency"] = params.currency
        data, bad_numbers = strict_number_columns(data, table, tally.number_rules)
        ok, source_currency, why = _check_chunk(
            data, problem, bad_numbers, table, ctx, params, fx, tally
        )
        ctx.seen_ids.add(ok[KEYS[table]].to_numpy(object))
        if source_currency is not None:
            source_currency = source_currency.loc[ok.index]
        sink.accept(ok.join(chunk[META]), source_currency)
        text = data.loc[why.index].astype("string")
        for column in text.columns:
            text[column] = text[column].map(printable, na_action="ignore")
        sink.reject(text.join(chunk[META]).join(why))
        if table in AMOUNT:
            tally.amounts(data, ok.index, why.index)
    return table_counts(source, table, sink, tally, params.overpayment)


def table_counts(
    source: TableSource,
    table: str,
    sink: TableSink,
    tally: _Tally,
    overpayment_rule: str,
) -> dict[str, Any]:
    """The table's entry of the ingest report: files, rows, amounts, reasons, reconciliation."""
    counts: dict[str, Any] = {
        "files": source.files,
        "encoding": source.encoding,
        "rows_read": tally.rows,
        "rows_accepted": sink.rows_accepted,
        "rows_quarantined": sink.rows_quarantined,
        **sink.rule_counts(),
        "unknown_columns_dropped": list(source.unknown_columns),
        "numbers_read_by_rule": dict(sorted(tally.number_rules.items())),
    }
    if table in AMOUNT:
        counts.update(
            {
                "amount_read": math.fsum(tally.sums["read"]),
                "amount_accepted": math.fsum(tally.sums["accepted"]),
                "amount_quarantined": math.fsum(tally.sums["quarantined"]),
                "amount_not_a_finite_number_rows": tally.unparsed,
                "fx_converted_rows": dict(sorted(tally.fx.items())),
            }
        )
    if table == "payments":
        counts["overpayment_rule"] = overpayment_rule
        counts["overpayment_rows_accepted"] = int(tally.over["overpayment_rows_accepted"])
        counts["credit_balance_amount"] = float(tally.over["credit_balance_amount"])
    counts["reconciled"] = reconciled(counts)
    return counts


class Learner:
    """What the later tables' cross-table rules need from the accepted rows, gathered chunk by chunk:
    the customer master (whole: the credit file needs it) and its ids, and the invoices compactly
    (`pipeline.schemas.InvoiceLookup`: ids, customer, date, amount, source currency)."""

    def __init__(self, ctx: RuleContext) -> None:
        self.ctx = ctx
        self.customers: list[pd.DataFrame] = []
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in ("customer", "date", "amount")}
        self.currency: list[pd.Series] = []

    def chunk(self, table: str) -> Any:
        def learn(ok: pd.DataFrame, source_currency: pd.Series | None) -> None:
            if table == "customers":
                self.customers.append(ok.drop(columns=META))
            elif table == "invoices":
                ids = self.ctx.customer_ids
                customer = ok["customer_id"].to_numpy(object)
                self.parts["customer"].append(
                    ids.positions(customer) if ids else np.full(len(ok), -1)
                )
                self.parts["date"].append(ok["invoice_date"].to_numpy("datetime64[ns]"))
                self.parts["amount"].append(ok["amount"].to_numpy(float))
                if source_currency is not None:
                    self.currency.append(source_currency)

        return learn

    def table_done(self, table: str) -> None:
        if table == "customers":
            frames = self.customers
            self.customers = pd.concat(frames, ignore_index=True) if frames else empty_table(table)
            self.ctx.customer_ids = self.ctx.seen_ids
        if table == "invoices":
            part = {k: np.concatenate(v) if v else np.empty(0) for k, v in self.parts.items()}
            codes, currencies = pd.factorize(
                pd.concat(self.currency) if self.currency else pd.Series(dtype=object)
            )
            self.parts = {}
            self.ctx.invoices = InvoiceLookup(
                self.ctx.seen_ids,
                part["customer"].astype(np.int64),
                part["date"].astype("datetime64[ns]"),
                part["amount"].astype(float),
                codes.astype(np.int32),
                list(currencies),
                np.zeros(len(part["amount"])),
            )

    def release(self) -> None:
        """Drop the key sets and the invoice lookup once every ledger table is validated: the credit
        file needs only the customer master and `first_invoice`."""
        self.ctx.invoices = None
        self.ctx.customer_ids = None
        self.ctx.seen_ids = KeySet()

    def first_invoice(self) -> pd.Series:
        """Each customer's first accepted invoice date."""
        inv, ids = self.ctx.invoices, self.ctx.customer_ids
        if inv is None or ids is None or not len(inv.customer):
            return pd.Series(dtype="datetime64[ns]")
        first = pd.Series(inv.invoice_date).groupby(inv.customer).min()
        return pd.Series(first.to_numpy(), index=ids.keys(first.index.to_numpy()))


def read_truth(path: Path, params: IngestParams) -> Iterator[pd.DataFrame]:
    """The generator's true PDs (raw truth.csv) as canonical chunks; a bad row is fatal."""
    src = open_table(
        path,
        "truth",
        list(COLUMNS["truth"]),
        REQUIRED["truth"],
        chunksize=params.chunksize,
        encoding=params.encoding,
    )
    for chunk in src.chunks():
        parsed, bad = validate(
            chunk.drop(columns=META), parse_schema("truth", params.date_format), "truth"
        )
        if len(bad):
            first = bad.iloc[0]
            raise PipelineError(
                f"{path}: row {chunk.loc[bad.index[0], '_source_row']}, column "
                f"{first['_column']}, rule {first['_rule']}: {first['_reason']}"
            )
        yield conform(parsed, "truth")
