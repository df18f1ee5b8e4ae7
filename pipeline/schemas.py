"""The canonical receivables ledger as pandera schemas, and per-row quarantine bookkeeping.

Validation runs in two passes, both with pandera in lazy mode so every failure is collected:

1. **parse** (`parse_schema`): each column is coerced to its canonical dtype; a value that does not
   parse (a date such as ``2024-13-01``, an amount such as ``12,5x``) fails rule
   ``parses_as_<type>``.
2. **rules** (`rules_schema`): keys, ranges and cross-table rules (payment → existing invoice or
   customer, due date not before invoice date, payment not before its invoice, amounts finite and >
   0, currency present, nothing dated after the data cut-off).

pandera reports failure cases; `quarantine_reasons` turns them into one row per rejected source row
with the first broken rule (`_rule`, `_column`) and all broken rules in `_reason`. A row is either
accepted or quarantined, never both, so rows read = rows accepted + rows quarantined.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_types
import pyarrow.compute as pc
from pandera.engines import pandas_engine

from pipeline.domain import LEDGER_TABLES

TABLES = LEDGER_TABLES
"""Validated in this order, so cross-table rules see only accepted rows."""
KEYS = {
    "customers": "customer_id",
    "invoices": "invoice_id",
    "payments": "payment_id",
    "claims": "claim_id",
}
AMOUNT = {"invoices": "amount", "payments": "amount", "claims": "amount"}
DATE = "date"
EXPERT_SCORES = [
    "expert_character",
    "expert_capacity",
    "expert_capital",
    "expert_collateral",
    "expert_conditions",
    "expert_coverage",
]

# canonical columns and dtypes (DATE = datetime64[ns] normalised to midnight), in output order
COLUMNS: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": "str",
        "name": "str",
        "segment": "str",
        "region": "str",
        "onboarding_date": DATE,
        "group_id": "str",
        "competitor_share": "float64",
        "credit_limit": "float64",
        "net_worth": "float64",
        "annual_turnover": "float64",
        **{c: "Int64" for c in EXPERT_SCORES},
        "expert_approver": "str",
        "expert_reason": "str",
        "expert_date": DATE,
        "source_default_flag": "Int64",
        "protected_sex": "str",
        "protected_marital_status": "str",
        "protected_age": "Int64",
        "protected_education": "str",
    },
    "invoices": {
        "invoice_id": "str",
        "customer_id": "str",
        "invoice_date": DATE,
        "due_date": DATE,
        "amount": "float64",
        "currency": "str",
        "write_off_date": DATE,
    },
    "payments": {
        "payment_id": "str",
        "customer_id": "str",
        "invoice_id": "str",
        "payment_date": DATE,
        "amount": "float64",
    },
    "claims": {
        "claim_id": "str",
        "invoice_id": "str",
        "customer_id": "str",
        "claim_date": DATE,
        "amount": "float64",
        "reason": "str",
    },
    "truth": {
        "customer_id": "str",
        "month_end": DATE,
        "true_pd_12m": "float64",
        "default_date": DATE,
        "payments_stopped_date": DATE,
    },
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "invoices": ("invoice_id", "customer_id", "invoice_date", "due_date", "amount"),
    "payments": ("payment_id", "customer_id", "payment_date", "amount"),
    "claims": ("claim_id", "customer_id", "claim_date", "amount"),
    "truth": ("customer_id", "month_end", "true_pd_12m"),
}
# columns that may be absent from the source file but must be non-null in the output
DEFAULTED = {"invoices": {"currency"}}

# contractual dates, allowed after the data cut-off (every other date is an event that happened)
NOT_EVENT_DATES = {"due_date", "default_date"}
# wide (row-level, several columns) rules and the column each one is reported against
WIDE_RULE_COLUMN = {
    "due_not_before_invoice": "due_date",
    "write_off_not_before_invoice": "write_off_date",
    "payment_not_before_invoice": "payment_date",
    "customer_matches_invoice": "customer_id",
}
# when a row breaks several rules, `_rule` names the first in this order
RULE_ORDER = (
    "readable_encoding",
    "control_character",
    "truncated_row",
    "parses_as_text",
    "parses_as_number",
    "parses_as_integer",
    "parses_as_date",
    "required",
    "duplicate_id",
    "customer_exists",
    "invoice_exists",
    "customer_matches_invoice",
    "amount_finite",
    "amount_positive",
    "amount_too_large",
    "currency_present",
    "currency",
    "due_not_before_invoice",
    "payment_not_before_invoice",
    "write_off_not_before_invoice",
    "future_date",
    "in_range",
    "overpayment",
)
# amounts above this (in absolute value) are mis-keyed, never a receivable: quarantined with rule
# amount_too_large, and kept out of the reconciliation sums so no sum can overflow
MAX_AMOUNT = 1e15
PARSE_RULE = {
    "str": "parses_as_text",
    "float64": "parses_as_number",
    "Int64": "parses_as_integer",
    DATE: "parses_as_date",
}


def _dtype(kind: str, date_format: str):
    if kind == DATE:
        return pandas_engine.DateTime(to_datetime_kwargs={"format": date_format})
    return kind


def parse_schema(table: str, date_format: str = "ISO8601") -> pa.DataFrameSchema:
    """Types only: coerce each canonical column present; unparseable values fail."""
    return pa.DataFrameSchema(
        {
            c: pa.Column(_dtype(k, date_format), nullable=True, required=False)
            for c, k in COLUMNS[table].items()
        },
        coerce=True,
        strict=False,
    )


# ------------------------------------------------------------------------------ compact key sets
# A Python set or an object pd.Index of 15M invoice ids holds ~1.3 GB of string objects and hash
# table. `KeySet` holds the keys as Arrow bytes (their length plus 4) and sorted runs of their 64-bit
# hashes with each key's position (insertion order): ~32 bytes per key of 12 characters. A lookup
# finds candidates by hash and then compares the bytes, so it is exact: keys sharing a hash are kept
# apart (the later one in a small dict of its own).
def key_hashes(values: np.ndarray) -> np.ndarray:
    """64-bit hashes of text keys (pandas' keyed SipHash of the UTF-8 bytes); text that is not
    valid UTF-8 (undecodable bytes kept as surrogates) is hashed by its escaped bytes."""
    try:
        return pd.util.hash_array(values, categorize=False)
    except UnicodeEncodeError:
        raw = np.array(
            [v.encode("utf-8", "surrogateescape") for v in values.tolist()], dtype=object
        )
        return pd.util.hash_array(raw, categorize=False)


def _as_text(values: np.ndarray) -> pa.Array:
    try:
        return pa_types.array(values, type=pa_types.string(), from_pandas=True).cast(
            pa_types.binary()
        )
    except (UnicodeEncodeError, pa_types.ArrowException):
        return pa_types.array(
            [v.encode("utf-8", "surrogateescape") for v in values.tolist()], type=pa_types.binary()
        )


class KeySet:
    """Distinct text keys in insertion order: ``add`` new ones, ``positions`` of any.

    The hashes are kept in sorted runs, merged when a run is no longer than the one before it (so
    there are O(log n) runs and each hash is moved O(log n) times)."""

    def __init__(self, hasher: Callable[[np.ndarray], np.ndarray] = key_hashes) -> None:
        self._hash = hasher
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted hashes, positions)
        self._text: list[pa.Array] = []
        self._joined: pa_types.ChunkedArray | None = None
        self._collided: dict[str, int] = {}
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def _keys(self) -> pa_types.ChunkedArray:
        if self._joined is None:
            self._joined = pa_types.chunked_array(self._text, type=pa_types.binary())
        return self._joined

    def _find(self, h: np.ndarray) -> np.ndarray:
        """Position of the stored key with each hash, -1 when no key has it."""
        order = np.argsort(h)
        hs = h[order]  # sorted queries: searchsorted walks each run once instead of jumping
        found = np.full(len(h), -1, dtype=np.int64)
        for hashes, where in self._runs:
            at = np.searchsorted(hashes, hs)
            inside = at < len(hashes)
            inside[inside] = hashes[at[inside]] == hs[inside]
            found[inside] = where[at[inside]]
        cand = np.empty_like(found)
        cand[order] = found
        return cand

    def positions(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Position of each value in the set (insertion order), -1 when absent or null."""
        vals = np.asarray(values, dtype=object)
        out = np.full(len(vals), -1, dtype=np.int64)
        present = pd.notna(vals)
        if not self.size or not present.any():
            return out
        idx = np.flatnonzero(present)
        sub = vals[idx]
        cand = self._find(self._hash(sub))
        hit = np.flatnonzero(cand >= 0)
        if len(hit):
            same = pc.equal(self._keys().take(pa_types.array(cand[hit])), _as_text(sub[hit]))
            same = same.to_numpy(zero_copy_only=False).astype(bool)
            out[idx[hit[same]]] = cand[hit[same]]
        if self._collided:
            for i in idx[out[idx] < 0]:
                out[i] = self._collided.get(vals[i], -1)
        return out

    def add(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Add distinct keys absent from the set (non-null, each once); return their positions."""
        vals = np.asarray(values, dtype=object)
        pos = np.arange(self.size, self.size + len(vals), dtype=np.int64)
        if not len(vals):
            return pos
        h = self._hash(vals)
        order = np.argsort(h, kind="stable")
        hs = h[order]
        clash = self._find(h) >= 0
        clash[order[1:]] |= hs[1:] == hs[:-1]
        for i in np.flatnonzero(clash):  # a different key with the same hash: kept exactly
            self._collided[vals[i]] = int(pos[i])
        keep = ~clash[order]
        self._runs.append((hs[keep], pos[order[keep]]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (h1, w1), (h2, w2) = self._runs.pop(), self._runs.pop()
            merged = np.concatenate([h2, h1])
            by = np.argsort(merged, kind="stable")
            self._runs.append((merged[by], np.concatenate([w2, w1])[by]))
        self._text.append(_as_text(vals))
        self._joined = None
        self.size += len(vals)
        return pos

    def keys(self, positions: np.ndarray) -> np.ndarray:
        """The keys at ``positions`` (all valid), as Python strings."""
        raw = self._keys().take(pa_types.array(np.asarray(positions, dtype=np.int64)))
        return np.array(
            [b.decode("utf-8", "surrogateescape") for b in raw.to_pylist()], dtype=object
        )

    def contains(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Whether each value is in the set."""
        return self.positions(values) >= 0


@dataclass
class InvoiceLookup:
    """The accepted invoices as the rules of payments and claims read them, compactly: the ids
    (`KeySet`) and, by position, the customer's position in the customer ids, the invoice date, the
    amount (dataset currency), the source currency (codes into ``currencies``) and the payments
    accepted so far (``paid``). About 60 bytes per invoice instead of ~300 in pandas objects."""

    ids: KeySet
    customer: np.ndarray
    invoice_date: np.ndarray
    amount: np.ndarray
    currency: np.ndarray
    currencies: list
    paid: np.ndarray

    @classmethod
    def from_frame(cls, invoices: pd.DataFrame, customers: KeySet) -> InvoiceLookup:
        """From accepted invoices (``invoice_id`` column or index; ``customer_id``,
        ``invoice_date``, optional ``amount`` and ``_source_currency``)."""
        inv = invoices.reset_index() if "invoice_id" not in invoices else invoices
        ids = KeySet()
        ids.add(inv["invoice_id"].to_numpy(object))
        codes, currencies = pd.factorize(inv.get("_source_currency", pd.Series(index=inv.index)))
        return cls(
            ids,
            customers.positions(inv["customer_id"].to_numpy(object)),
            inv["invoice_date"].to_numpy("datetime64[ns]"),
            inv.get("amount", pd.Series(np.nan, index=inv.index)).to_numpy(float),
            codes.astype(np.int32),
            list(currencies),
            np.zeros(len(inv)),
        )


def key_set(values) -> KeySet:
    """A `KeySet` of distinct ``values``."""
    ids = KeySet()
    ids.add(pd.unique(np.asarray(values, dtype=object)))
    return ids


@dataclass
class RuleContext:
    """What the cross-table rules of one table need from the tables validated before it.

    ``customer_ids``: accepted customers; ``invoices``: accepted invoices (`InvoiceLookup`, with the
    payments accepted so far); ``seen_ids``: keys of this table accepted from earlier chunks
    (duplicates across chunks). All three are compact exact key sets (`pipeline.keys.KeySet`).
    """

    data_cutoff: pd.Timestamp | None = None
    customer_ids: KeySet | None = None
    invoices: InvoiceLookup | None = None
    seen_ids: KeySet = field(default_factory=KeySet)


def _not_future(cutoff: pd.Timestamp | None) -> list[pa.Check]:
    if cutoff is None:
        return []
    return [pa.Check(lambda s: s.isna() | (s <= cutoff), name="future_date")]


def _in(ids: KeySet | None, name: str, nullable: bool = False) -> list[pa.Check]:
    """Membership in a `KeySet`: O(chunk) per chunk, not O(table)."""
    if ids is None:
        return []
    return [
        pa.Check(
            lambda s: (
                pd.Series(ids.contains(s.to_numpy(object)), index=s.index) | (s.isna() & nullable)
            ),
            name=name,
        )
    ]


def rules_schema(table: str, ctx: RuleContext) -> pa.DataFrameSchema:
    """Keys, ranges and cross-table rules for ``table`` (frame coerced by `parse_schema`)."""
    key = KEYS.get(table)
    amount = [
        pa.Check(lambda s: np.isfinite(s) | s.isna(), name="amount_finite"),
        pa.Check(lambda s: (s > 0) | ~np.isfinite(s), name="amount_positive"),
        pa.Check(lambda s: ~(np.isfinite(s) & (s.abs() > MAX_AMOUNT)), name="amount_too_large"),
    ]
    cols: dict[str, pa.Column] = {}
    checks: list[pa.Check] = []
    for column, kind in COLUMNS[table].items():
        required = column in REQUIRED[table] or column in DEFAULTED.get(table, ())
        col_checks: list[pa.Check] = []
        if kind == DATE and column not in NOT_EVENT_DATES:
            col_checks += _not_future(ctx.data_cutoff)
        cols[column] = pa.Column(nullable=not required, checks=col_checks, required=False)
    if key:
        cols[key].checks.append(
            pa.Check(
                lambda s: (
                    ~(
                        pd.Series(ctx.seen_ids.contains(s.to_numpy(object)), index=s.index)
                        | s.duplicated(keep="first")
                    )
                ),
                name="duplicate_id",
            )
        )
    if table in AMOUNT:
        cols["amount"].checks.extend(amount)
    if table == "customers":
        cols["competitor_share"].checks.append(pa.Check.in_range(0, 1, name="in_range"))
        for c in ("credit_limit", "net_worth", "annual_turnover"):
            cols[c].checks.append(pa.Check.ge(0, name="in_range"))
            cols[c].checks.append(pa.Check(lambda s: np.isfinite(s) | s.isna(), name="in_range"))
        for c in EXPERT_SCORES:
            cols[c].checks.append(pa.Check.isin([1, 2, 3, 4, 5], name="in_range"))
        cols["source_default_flag"].checks.append(pa.Check.isin([0, 1], name="in_range"))
    if table == "invoices":
        cols["customer_id"].checks += _in(ctx.customer_ids, "customer_exists")
        cols["currency"].checks.append(
            pa.Check(lambda s: s.str.strip().str.len() > 0, name="currency_present")
        )
        checks += [
            pa.Check(
                lambda df: ~(df["due_date"] < df["invoice_date"]), name="due_not_before_invoice"
            ),
            pa.Check(
                lambda df: ~(df["write_off_date"] < df["invoice_date"]),
                name="write_off_not_before_invoice",
            ),
        ]
    if table in ("payments", "claims"):
        cols["customer_id"].checks += _in(ctx.customer_ids, "customer_exists")
        if ctx.invoices is not None:
            cols["invoice_id"].checks += _in(ctx.invoices.ids, "invoice_exists", nullable=True)
            checks.append(
                pa.Check(
                    lambda df: (
                        (df["_invoice_customer"] < 0)
                        | (df["_customer"] == df["_invoice_customer"])
                    ),
                    name="customer_matches_invoice",
                )
            )
    if table == "payments" and ctx.invoices is not None:
        checks.append(
            pa.Check(
                lambda df: ~(df["payment_date"] < df["_invoice_date"]),
                name="payment_not_before_invoice",
            )
        )
    return pa.DataFrameSchema(cols, checks=checks, strict=False)


def with_invoice_lookup(df: pd.DataFrame, ctx: RuleContext) -> pd.DataFrame:
    """Add ``_invoice_date`` and ``_invoice_customer`` (the accepted invoice's customer as a position
    in ``ctx.customer_ids``, -1 when the invoice is unknown) and ``_customer`` (the row's)."""
    if ctx.invoices is None or "invoice_id" not in df:
        return df
    inv = ctx.invoices
    pos = inv.ids.positions(df["invoice_id"].to_numpy(object))
    found = pos >= 0
    date = np.full(len(df), np.datetime64("NaT"), dtype="datetime64[ns]")
    date[found] = inv.invoice_date[pos[found]]
    customer = np.full(len(df), -1, dtype=np.int64)
    customer[found] = inv.customer[pos[found]]
    mine = (
        ctx.customer_ids.positions(df["customer_id"].to_numpy(object)) if ctx.customer_ids else -2
    )
    return df.assign(_invoice_date=date, _invoice_customer=customer, _customer=mine)


def _rule_name(check: object, kind: str | None) -> str:
    text = str(check)
    if text.startswith(("coerce_dtype", "dtype(")):
        return PARSE_RULE.get(kind or "", "parses_as_text")
    if text in ("not_nullable", "column_in_dataframe"):
        return "required"
    if text.startswith(("in_range", "isin", "greater_than")):
        return "in_range"
    return text


def failures_by_row(err: pa.errors.SchemaErrors, table: str) -> pd.DataFrame:
    """pandera failure cases as ``index, rule, column, value`` (one per broken rule)."""
    fc = err.failure_cases
    if fc["index"].isna().any():  # a check that could not run is a bug, never a quarantine reason
        raise RuntimeError(f"{table}: schema check failed to run:\n{fc[fc['index'].isna()]}")
    fc = fc.copy()
    kinds = COLUMNS[table]
    pairs = zip(fc["check"], fc["column"], strict=True)
    fc["rule"] = [_rule_name(chk, kinds.get(col)) for chk, col in pairs]
    fc.loc[(fc["rule"] == "required") & (fc["column"] == "currency"), "rule"] = "currency_present"
    wide_column = fc["rule"].map(WIDE_RULE_COLUMN)
    fc = fc[wide_column.isna() | (fc["column"] == wide_column)]
    fc = fc.drop_duplicates(["index", "rule", "column"])
    value = [_show(v) for v in fc["failure_case"]]
    return fc[["index", "rule", "column"]].assign(value=value)


def _show(value: object) -> str:
    """A failing value as the reason text shows it (the same text whatever the chunk's dtype)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "null"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()
    return str(value)


def quarantine_reasons(failures: pd.DataFrame) -> pd.DataFrame:
    """One row per failing row: first broken ``_rule``/``_column``, all in ``_reason``."""
    order = {r: i for i, r in enumerate(RULE_ORDER)}
    f = failures.assign(_order=failures["rule"].map(order).fillna(len(order)))
    f = f.sort_values(["index", "_order", "rule", "column"], kind="stable")
    text = f["rule"] + "(" + f["column"].astype(str) + "=" + f["value"] + ")"
    reasons = text.groupby(f["index"], sort=True).agg("; ".join)
    first = f.groupby("index", sort=True).first()
    return pd.DataFrame({"_rule": first["rule"], "_column": first["column"], "_reason": reasons})


def validate(
    df: pd.DataFrame, schema: pa.DataFrameSchema, table: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate lazily: (passing rows, coerced if the schema coerces; failing rows' reasons)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandera's own concat of failure cases
            return schema.validate(df, lazy=True), _no_reasons()
    except pa.errors.SchemaErrors as err:
        reasons = quarantine_reasons(failures_by_row(err, table))
    ok = df.drop(index=reasons.index)
    if schema.coerce and len(ok):
        ok = schema.validate(ok)
    return ok, reasons


def _no_reasons() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "_rule": pd.Series(dtype=object),
            "_column": pd.Series(dtype=object),
            "_reason": pd.Series(dtype=object),
        }
    )


def empty_table(table: str) -> pd.DataFrame:
    """A zero-row canonical table with the canonical dtypes."""
    return conform(pd.DataFrame(index=pd.RangeIndex(0)), table)


ABSENT = {DATE: "datetime64[ns]", "float64": "float64", "Int64": "Int64"}
ARROW = {"str": pa_types.string(), DATE: pa_types.timestamp("ns"), "float64": pa_types.float64()}


def arrow_schema(table: str) -> pa_types.Schema:
    """The canonical table's Parquet schema, fixed from `COLUMNS` (text, timestamp[ns], double,
    int64), so a table written chunk by chunk has one schema whatever each chunk holds."""
    return pa_types.schema(
        [(c, ARROW.get(k, pa_types.int64())) for c, k in COLUMNS[table].items()]
    )


def text_columns(table: str) -> tuple[str, ...]:
    """The canonical text columns of ``table`` (written as the null type when wholly empty)."""
    return tuple(c for c, k in COLUMNS[table].items() if k == "str")


def conform(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Canonical column order and dtypes; absent columns as typed nulls; dates at midnight."""
    out = {}
    for column, kind in COLUMNS[table].items():
        if column not in df:
            out[column] = pd.Series(None, index=df.index, dtype=ABSENT.get(kind, object))
            continue
        s = df[column]
        if kind == DATE:
            s = pd.to_datetime(s).dt.normalize().astype("datetime64[ns]")
        elif kind == "str":
            s = s.astype(object).where(s.notna(), None)
        else:
            s = s.astype(kind)
        out[column] = s
    return pd.DataFrame(out, index=df.index)


# ---- the credit file (issue 15): optional tables, validated by pipeline.credit_file --------------------------
HISTORY_ATTRIBUTES = (
    "segment",
    "region",
    "competitor_share",
    "credit_limit",
    "net_worth",
    "annual_turnover",
    *EXPERT_SCORES,
)
COLUMNS["customer_history"] = {
    "customer_id": "str",
    "valid_from": DATE,
    "valid_to": DATE,
    **{c: COLUMNS["customers"][c] for c in HISTORY_ATTRIBUTES},
    "approver": "str",
    "approval_date": DATE,
    "change_reason": "str",
}
COLUMNS["expert_scores"] = {
    "panel_id": "str",
    "customer_id": "str",
    "expert": "str",
    "round": "Int64",
    "criterion": "str",
    "score": "Int64",
    "score_date": DATE,
    "comment": "str",
}
COLUMNS["platform"] = {
    "customer_id": "str",
    "period": DATE,
    "rating": "float64",
    "transactions": "Int64",
    "refunds": "Int64",
    "complaints": "Int64",
}
REQUIRED["customer_history"] = ("customer_id", "valid_from")
REQUIRED["expert_scores"] = ("customer_id", "expert", "round", "criterion", "score", "score_date")
REQUIRED["platform"] = ("customer_id", "period", "transactions")
WIDE_RULE_COLUMN.update(
    {"valid_to_after_from": "valid_to", "refunds_within_transactions": "refunds"}
)


# ------------------------------------------------------------------------------ strict numbers
PLAIN_NUMBER = re.compile(
    r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$|^[+-]?(inf|infinity)$", re.I
)
GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
NUMBER_RULES = {
    "fullwidth_digits": "full-width digits and signs (１２３．５) read as their ASCII forms (NFKC)",
    "thousands_separator": "commas between groups of exactly three digits (1,234,567.50) removed",
}


def strict_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series, dict[str, int]]:
    """Numbers as a bookkeeping export writes them, by declared rules only.

    Accepted: a plain decimal (sign, digits, one point, optional exponent), ``inf`` (so the
    ``amount_finite`` rule names it); full-width forms (NFKC) and comma thousands separators in
    groups of three, each counted (`NUMBER_RULES`). Anything else (``1_000``, ``1 000``, ``1,23``,
    ``¥100``, ``(100)``, ``12x``) is invalid. Returns (normalised text, invalid mask, counts).
    """
    if _all_plain_ascii(values):
        return (
            values.astype("string"),
            pd.Series(False, index=values.index),
            dict.fromkeys(NUMBER_RULES, 0),
        )
    text = values.astype("string").str.strip()
    present = text.notna() & (text != "")
    ascii_ = text.fillna("").map(str.isascii).astype(bool)
    nfkc = text.where(
        ascii_, text.map(lambda v: unicodedata.normalize("NFKC", v), na_action="ignore")
    )
    fullwidth = present & (nfkc != text).fillna(False)
    grouped = nfkc.str.match(GROUPED).fillna(False).astype(bool)
    out = nfkc.where(~grouped, nfkc.str.replace(",", "", regex=False))
    valid = out.str.match(PLAIN_NUMBER).fillna(False).astype(bool)
    invalid = present & ~valid
    counts = {
        "fullwidth_digits": int((fullwidth & valid).sum()),
        "thousands_separator": int((grouped & valid).sum()),
    }
    return out.where(present, None), invalid, counts


PLAIN_ASCII = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"


def _all_plain_ascii(values: pd.Series) -> bool:
    """Every non-null value is a plain ASCII decimal with nothing to strip or rewrite (the common
    case, checked in one vectorised regex pass): `strict_numbers` then returns the values as they
    are, none invalid, no rule used. Anything else takes the value-by-value path."""
    try:
        text = pa_types.array(values.to_numpy(object), type=pa_types.string(), from_pandas=True)
    except (pa_types.ArrowException, UnicodeEncodeError):
        return False
    present = text.drop_null()
    return bool(pc.all(pc.match_substring_regex(present, PLAIN_ASCII)).as_py() is not False)
