"""Stage ingest: raw sources → validated canonical tables, quarantined rows and a report.

``python -m pipeline.ingest --dataset NAME`` reads data/raw/<NAME>/ through the source named in
params (``canonical`` files or an adapter), streams every table in chunks, validates it with
`pipeline.schemas` (customers → invoices → payments → claims, so cross-table rules see only
accepted rows), and writes

- data/interim/<NAME>/<table>.parquet (+ truth.parquet passed through when raw truth.csv exists),
- data/quarantine/<NAME>/<table>.parquet: rejected rows as text + ``_source_file, _source_row,
  _rule, _column, _reason``,
- reports/<NAME>/ingest/ingest.json (per table: rows and amounts read = accepted + quarantined, reasons,
  unknown columns dropped) and metrics/<NAME>/ingest.json (the counts).

Rows keep their source order (file, row); duplicate ids keep the first row and quarantine the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.adapters import ADAPTERS
from pipeline.adapters.files import open_table, printable
from pipeline.config import (
    Paths,
    PipelineError,
    log,
    progress,
    run_stage,
    stage_argparser,
    stage_params,
)
from pipeline.credit_file import ingest_credit_file
from pipeline.currency import check_code, rates_for, read_fx_table
from pipeline.io import write_json, write_parquet
from pipeline.schemas import (
    AMOUNT,
    COLUMNS,
    KEYS,
    MAX_AMOUNT,
    NUMBER_RULES,
    PARSE_RULE,
    REQUIRED,
    RULE_ORDER,
    TABLES,
    RuleContext,
    conform,
    empty_table,
    parse_schema,
    rules_schema,
    strict_numbers,
    validate,
    with_invoice_lookup,
)

META = ["_source_file", "_source_row"]
QUARANTINE_META = [*META, "_rule", "_column", "_reason"]
OVERPAYMENT_RULES = ("quarantine", "credit_balance")


@dataclass
class Options:
    """The validated ingest parameters a table needs."""

    date_format: str
    currency: str
    fx: pd.DataFrame | None
    overpayment: str
    overpayment_tolerance: float
    final_line: str


def _summable(x: np.ndarray) -> np.ndarray:
    return np.isfinite(x) & (np.abs(x) <= MAX_AMOUNT)


def _total(x: np.ndarray) -> float:
    """Exact (fsum) total of the summable values (finite, at most MAX_AMOUNT: never overflows)."""
    return math.fsum(x[_summable(x)])


def _problem_reasons(problem: pd.Series | None, final_line: str) -> pd.DataFrame:
    """Rows flagged while reading (undecodable bytes, control characters, a cut-off last row)."""
    if problem is None:
        return _empty_reasons()
    p = problem.dropna()
    if final_line == "accept":
        p = p[~p.str.startswith("truncated_row|")]
    if p.empty:
        return _empty_reasons()
    parts = p.str.split("|", n=2, expand=True)
    return pd.DataFrame(
        {
            "_rule": parts[0],
            "_column": parts[1],
            "_reason": parts[0] + "(" + parts[1] + "=" + parts[2] + ")",
        },
        index=p.index,
    )


def _empty_reasons() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in ("_rule", "_column", "_reason")})


def _strict_number_columns(
    data: pd.DataFrame, table: str, counts: dict[str, int]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric text normalised by the declared rules; values no rule reads are reasons."""
    reasons = []
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
            reasons.append(
                pd.DataFrame(
                    {
                        "_rule": rule,
                        "_column": column,
                        "_reason": rule + "(" + column + "=" + shown + ")",
                    },
                    index=shown.index,
                )
            )
        data[column] = text.astype(object).where(text.notna(), None)
    if not reasons:
        return data, _empty_reasons()
    return data, pd.concat(reasons)


def _first_reason(*frames: pd.DataFrame) -> pd.DataFrame:
    """One reason per row: the first in rule order; all of them joined in ``_reason``."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return _empty_reasons()
    allr = pd.concat(frames)
    order = {r: i for i, r in enumerate(RULE_ORDER)}
    allr = allr.assign(_o=allr["_rule"].map(order).fillna(len(order)), _i=allr.index)
    allr = allr.sort_values(["_i", "_o"], kind="stable")
    joined = allr.groupby("_i", sort=True)["_reason"].agg("; ".join)
    first = allr.groupby("_i", sort=True)[["_rule", "_column"]].first()
    out = first.assign(_reason=joined)
    out.index.name = None
    return out


def _convert_currency(
    parsed: pd.DataFrame, table: str, ctx: RuleContext, opt: Options, fx_counts: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Amounts in the dataset currency: invoices by their ``currency``, payments and claims by
    their linked invoice's source currency (else the dataset's); rows without a rate are reasons."""
    if table not in AMOUNT or parsed.empty:
        return parsed, _empty_reasons()
    date_col = {"invoices": "invoice_date", "payments": "payment_date", "claims": "claim_date"}[
        table
    ]
    if table == "invoices":
        text = parsed["currency"].astype("string").str.strip().str.upper()
        source = text.astype(object).where((text.notna() & (text != "")).fillna(False), None)
    elif ctx.invoice_currency is not None and "invoice_id" in parsed:
        source = pd.Series(
            ctx.invoice_currency.reindex(parsed["invoice_id"]).to_numpy(), index=parsed.index
        ).fillna(opt.currency)
    else:
        source = pd.Series(opt.currency, index=parsed.index)
    rate = rates_for(source, parsed[date_col], opt.fx, opt.currency)
    missing = rate.isna() & source.notna() & parsed[date_col].notna()
    out = parsed.copy()
    home = (source == opt.currency).astype(bool)
    foreign = rate.notna() & ~home
    if foreign.any():
        out.loc[foreign, "amount"] = out.loc[foreign, "amount"] * rate[foreign]
        by = source[foreign].value_counts().sort_index()
        for code, n in by.items():
            fx_counts[str(code)] = fx_counts.get(str(code), 0) + int(n)
    if table == "invoices":
        out["currency"] = out["currency"].where(~(foreign | home), opt.currency)
        ctx_source = source.where(source.notna(), opt.currency)
        out["_source_currency"] = ctx_source
    if not missing.any():
        return out, _empty_reasons()
    shown = source[missing].astype(str)
    reason = (
        "currency(currency="
        + shown
        + ": no rate to "
        + opt.currency
        + " on or before "
        + parsed.loc[missing, date_col].dt.strftime("%Y-%m-%d")
        + " in ingest.fx_rates)"
    )
    return out, pd.DataFrame({"_rule": "currency", "_column": "currency", "_reason": reason})


def _overpayments(
    ok: pd.DataFrame, ctx: RuleContext, opt: Options, counts: dict[str, Any]
) -> pd.DataFrame:
    """Payments that take an invoice's cumulative payments above its amount (plus tolerance).

    ``quarantine``: such a payment is quarantined (rule ``overpayment``); ``credit_balance``: it is
    accepted, and the rows and the excess are counted in the report."""
    if ctx.invoice_amount is None or ok.empty or "invoice_id" not in ok:
        return _empty_reasons()
    linked = ok["invoice_id"].notna()
    if not linked.any():
        return _empty_reasons()
    p = ok.loc[linked, ["invoice_id", "amount"]]
    billed = pd.Series(ctx.invoice_amount.reindex(p["invoice_id"]).to_numpy(), index=p.index)
    before = pd.Series(ctx.paid.reindex(p["invoice_id"]).fillna(0.0).to_numpy(), index=p.index)
    cumulative = before + p.groupby("invoice_id", sort=False)["amount"].cumsum()
    limit = billed * (1 + opt.overpayment_tolerance) + 0.01
    over = cumulative > limit
    excess = (cumulative - billed).clip(lower=0)
    if opt.overpayment == "quarantine":
        keep = p[~over]
    else:
        keep = p
        counts["overpayment_rows_accepted"] = counts.get("overpayment_rows_accepted", 0) + int(
            over.sum()
        )
        counts["credit_balance_amount"] = counts.get("credit_balance_amount", 0.0) + math.fsum(
            np.minimum(excess[over].to_numpy(), p.loc[over, "amount"].to_numpy())
        )
    add = keep.groupby("invoice_id", sort=False)["amount"].sum()
    ctx.paid = ctx.paid.add(add, fill_value=0.0)
    if opt.overpayment != "quarantine" or not over.any():
        return _empty_reasons()
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
    return pd.DataFrame({"_rule": "overpayment", "_column": "amount", "_reason": reason})


def ingest_table(
    source, table: str, ctx: RuleContext, opt: Options
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Validate one table chunk by chunk; return (accepted rows, quarantined rows, counts).

    Amount sums are in the source rows' own amounts (before any FX conversion), so read = accepted
    + quarantined is checked on what the file says."""
    accepted, rejected = [], []
    sums: dict[str, list[float]] = {"read": [], "accepted": [], "quarantined": []}
    unparsed = 0
    offset = 0
    number_rules: dict[str, int] = {}
    fx_counts: dict[str, int] = {}
    extra: dict[str, Any] = {}
    key = KEYS[table]
    for chunk in progress(source.chunks(), f"ingest {table}", unit="chunk"):
        if chunk.empty:
            continue
        chunk = chunk.set_axis(pd.RangeIndex(offset, offset + len(chunk)))
        offset += len(chunk)
        meta = chunk[META]
        problem = chunk["_source_problem"] if "_source_problem" in chunk else None
        data = chunk.drop(columns=[c for c in chunk.columns if c.startswith("_")])
        if table == "invoices" and "currency" not in data:
            data["currency"] = opt.currency
        data, bad_numbers = _strict_number_columns(data, table, number_rules)
        early = _first_reason(_problem_reasons(problem, opt.final_line), bad_numbers)
        rest = data.drop(index=early.index)
        parsed, bad_parse = validate(rest, parse_schema(table, opt.date_format), table)
        parsed = conform(parsed, table)
        parsed, bad_fx = _convert_currency(parsed, table, ctx, opt, fx_counts)
        parsed = parsed.drop(index=bad_fx.index)
        source_currency = parsed.pop("_source_currency") if "_source_currency" in parsed else None
        checked, bad_rules = validate(
            with_invoice_lookup(parsed, ctx.invoices), rules_schema(table, ctx), table
        )
        ok = parsed.loc[checked.index]
        bad_over = _empty_reasons()
        if table == "payments":
            bad_over = _overpayments(ok, ctx, opt, extra)
            ok = ok.drop(index=bad_over.index)
        ctx.seen_ids.update(ok[key])
        if source_currency is not None:
            ctx.new_invoice_currency.append(
                pd.Series(
                    source_currency.loc[ok.index].to_numpy(), index=ok["invoice_id"].to_numpy()
                )
            )
        accepted.append(ok.join(meta))
        reasons = _first_reason(early, bad_parse, bad_fx, bad_rules, bad_over)
        text = data.loc[reasons.index].astype("string")
        for column in text.columns:
            text[column] = text[column].map(printable, na_action="ignore")
        rejected.append(text.join(meta).join(reasons))
        if table in AMOUNT:
            values = pd.to_numeric(data["amount"], errors="coerce").to_numpy(dtype=float)
            pos = pd.Series(np.arange(len(data)), index=data.index)
            sums["read"].append(_total(values))
            unparsed += int((~_summable(values)).sum())
            sums["accepted"].append(_total(values[pos.loc[ok.index].to_numpy()]))
            sums["quarantined"].append(_total(values[pos.loc[reasons.index].to_numpy()]))
    good = _accepted_frame(accepted, table)
    bad = _quarantine_frame(rejected, table).sort_values([*META], kind="stable")
    counts: dict[str, Any] = {
        "files": source.files,
        "encoding": source.encoding,
        "rows_read": offset,
        "rows_accepted": len(good),
        "rows_quarantined": len(bad),
        "reasons": {str(k): int(v) for k, v in bad["_rule"].value_counts().sort_index().items()},
        "reasons_by_column": {
            f"{r}:{c}": int(n)
            for (r, c), n in bad.groupby(["_rule", "_column"]).size().sort_index().items()
        },
        "unknown_columns_dropped": list(source.unknown_columns),
        "numbers_read_by_rule": dict(sorted(number_rules.items())),
    }
    if table in AMOUNT:
        counts.update(
            {
                "amount_read": math.fsum(sums["read"]),
                "amount_accepted": math.fsum(sums["accepted"]),
                "amount_quarantined": math.fsum(sums["quarantined"]),
                "amount_not_a_finite_number_rows": unparsed,
                "fx_converted_rows": dict(sorted(fx_counts.items())),
            }
        )
    if table == "payments":
        counts["overpayment_rule"] = opt.overpayment
        counts["overpayment_rows_accepted"] = int(extra.get("overpayment_rows_accepted", 0))
        counts["credit_balance_amount"] = float(extra.get("credit_balance_amount", 0.0))
    counts["reconciled"] = _reconciled(counts)
    return good, bad, counts


def _accepted_frame(parts: list[pd.DataFrame], table: str) -> pd.DataFrame:
    """Accepted chunks as one canonical table in source order (file, row, key)."""
    if not parts:
        return empty_table(table)
    good = pd.concat(parts, ignore_index=True)
    parts.clear()  # free the chunks before any further copy
    in_order = good["_source_file"].nunique() == 1 and good["_source_row"].is_monotonic_increasing
    if not in_order:
        good = good.sort_values([*META, KEYS[table]], kind="stable", ignore_index=True)
    return good.drop(columns=META)


def _reconciled(c: dict[str, Any]) -> bool:
    rows = c["rows_read"] == c["rows_accepted"] + c["rows_quarantined"]
    if "amount_read" not in c:
        return rows
    gap = abs(c["amount_read"] - c["amount_accepted"] - c["amount_quarantined"])
    return rows and gap <= 1e-9 * max(1.0, abs(c["amount_read"]))


def _quarantine_frame(parts: list[pd.DataFrame], table: str) -> pd.DataFrame:
    """Rejected rows as text with every canonical column of the table (a fixed schema)."""
    columns = [*COLUMNS[table], *QUARANTINE_META]
    frame = pd.concat(parts) if parts else pd.DataFrame(columns=columns)
    out = frame.reindex(columns=columns)
    for c in [*COLUMNS[table], "_source_file", "_rule", "_column", "_reason"]:
        out[c] = out[c].astype("string")
    out["_source_row"] = out["_source_row"].astype("int64")
    return out


def _param_error(key: str, value: Any, expected: str) -> PipelineError:
    return PipelineError(
        f"params.yaml: {key} = {value!r} ({type(value).__name__}) must be {expected} "
        "(rule param_type)"
    )


def check_params(params: dict[str, Any], dataset: str = "<ds>") -> Options:
    """Validate the ingest parameters once, at stage start: one line naming the params key."""
    ds_key = f"datasets.{dataset}.ingest"
    if not isinstance(params.get("source", "canonical"), str):
        raise _param_error("ingest.source", params.get("source"), "an adapter name")
    files = params.get("files", {})
    if not isinstance(files, dict):
        raise _param_error("ingest.files", files, "a mapping of table to file name")
    for table, name in files.items():
        if name is not None and not isinstance(name, str):
            raise _param_error(f"ingest.files.{table}", name, "one file name (text)")
    for key in ("file", "customers_file", "date_format", "fx_rates"):
        value = params.get(key)
        if value is not None and not isinstance(value, str):
            raise _param_error(f"{ds_key}.{key}", value, "text")
    enc = params.get("encoding", "auto")
    if not isinstance(enc, str):
        raise _param_error("ingest.encoding", enc, "text (auto, utf-8, gb18030, ...)")
    chunksize = params.get("chunksize", 500_000)
    if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
        raise _param_error("ingest.chunksize", chunksize, "a whole number of rows >= 1")
    cmap = params.get("column_map") or {}
    if not isinstance(cmap, dict) or not all(
        isinstance(m, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in m.items())
        for m in cmap.values()
    ):
        raise _param_error("ingest.column_map", cmap, "{table: {source header: canonical name}}")
    adapter = params.get("adapter", {})
    if adapter is not None and not isinstance(adapter, dict):
        raise _param_error(f"{ds_key}.adapter", adapter, "a mapping")
    cutoff = params.get("data_cutoff")
    if cutoff in (None, ""):
        raise PipelineError(
            f"params.yaml: {ds_key}.data_cutoff is required (rule required_param): the last day "
            'the data is complete, e.g. "2025-12-31"; events after it are quarantined '
            "(future_date) and the features stage uses it as its cut-off"
        )
    try:
        cut = pd.Timestamp(str(cutoff))
        if cut is pd.NaT or cut != cut.normalize():
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        raise _param_error(f"{ds_key}.data_cutoff", cutoff, "a date, YYYY-MM-DD") from None
    overpayment = params.get("overpayment", "quarantine")
    if overpayment not in OVERPAYMENT_RULES:
        raise _param_error(f"{ds_key}.overpayment", overpayment, " or ".join(OVERPAYMENT_RULES))
    tolerance = params.get("overpayment_tolerance", 0.0)
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float))
        or not 0 <= tolerance < 1
    ):
        raise _param_error(f"{ds_key}.overpayment_tolerance", tolerance, "a share in [0, 1)")
    final_line = params.get("final_line_without_newline", "quarantine")
    if final_line not in ("quarantine", "accept"):
        raise _param_error("ingest.final_line_without_newline", final_line, "quarantine or accept")
    currency = check_code(params.get("currency"), f"{ds_key}.currency")
    return Options(
        date_format=params.get("date_format") or "ISO8601",
        currency=currency,
        fx=None,
        overpayment=overpayment,
        overpayment_tolerance=float(tolerance),
        final_line=final_line,
    )


def run_ingest(
    raw_dir: Path,
    interim_dir: Path,
    quarantine_dir: Path,
    report_path: Path,
    metrics_path: Path,
    params: dict[str, Any],
    dataset: str = "<ds>",
) -> dict[str, Any]:
    """Ingest ``raw_dir`` with the ingest ``params``; write every output; return the report.

    Stops with PipelineError (exit 2, nothing written) when a table does not reconcile."""
    opt = check_params(params, dataset)
    source = params.get("source", "canonical")
    if source not in ADAPTERS:
        raise PipelineError(
            f"params.yaml: ingest.source '{source}' is unknown (known: {', '.join(ADAPTERS)})"
        )
    if params.get("fx_rates"):
        opt.fx = read_fx_table(Path(raw_dir) / params["fx_rates"], opt.currency)
    cutoff = str(params.get("data_cutoff"))
    sources, notes = ADAPTERS[source](Path(raw_dir), {**params, "currency": opt.currency})
    ctx = RuleContext(data_cutoff=pd.Timestamp(cutoff))
    report: dict[str, Any] = {
        "source": source,
        "data_cutoff": cutoff,
        "currency": opt.currency,
        "fx_rates": params.get("fx_rates"),
        "date_format": opt.date_format,
        "number_rules": NUMBER_RULES,
        "adapter_notes": notes,
        "tables": {},
    }
    outputs: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for table in TABLES:
        ctx.seen_ids = set()
        good, bad, counts = ingest_table(sources[table], table, ctx, opt)
        log.info(
            "ingest %s: %d read, %d accepted, %d quarantined",
            table,
            counts["rows_read"],
            counts["rows_accepted"],
            counts["rows_quarantined"],
        )
        outputs[table] = (good, bad)
        report["tables"][table] = counts
        if table == "customers":
            ctx.customer_ids = pd.Index(good["customer_id"])
            customers = good
        if table == "invoices":
            ctx.invoices = good.set_index("invoice_id")[["customer_id", "invoice_date"]]
            ctx.invoice_amount = good.set_index("invoice_id")["amount"]
            ctx.paid = pd.Series(dtype=float)
            if ctx.new_invoice_currency:
                ctx.invoice_currency = pd.concat(ctx.new_invoice_currency)
    first_invoice = ctx.invoices.groupby("customer_id")["invoice_date"].min()
    report["tables"].update(  # optional credit-file tables (pipeline.credit_file)
        ingest_credit_file(
            raw_dir, interim_dir, quarantine_dir, params, customers, first_invoice,
            ctx.data_cutoff, opt.date_format,
        )
    )
    report["reconciled"] = all(t["reconciled"] for t in report["tables"].values())
    if not report["reconciled"]:
        table, c = next((t, c) for t, c in report["tables"].items() if not c["reconciled"])
        raise PipelineError(
            f"{', '.join(c['files']) or table}: row ?, column amount, rule reconciled: {table} "
            f"read {c['rows_read']} rows / {c.get('amount_read')} but accepted + quarantined = "
            f"{c['rows_accepted']} + {c['rows_quarantined']} rows / {c.get('amount_accepted')} + "
            f"{c.get('amount_quarantined')}; nothing was written"
        )
    for table, (good, bad) in outputs.items():
        write_parquet(good, Path(interim_dir) / f"{table}.parquet")
        write_parquet(bad, Path(quarantine_dir) / f"{table}.parquet")
    report["truth"] = _passthrough_truth(Path(raw_dir), Path(interim_dir), params, opt.date_format)
    report["outputs"] = {
        f"{kind}/{table}.parquet": len(frame)
        for table, pair in outputs.items()
        for kind, frame in zip(("interim", "quarantine"), pair, strict=True)
    }
    write_json(report, Path(report_path))
    write_json(
        {
            t: {
                k: v
                for k, v in c.items()
                if k.startswith(("rows_", "amount_")) and not isinstance(v, dict)
            }
            for t, c in report["tables"].items()
        },
        Path(metrics_path),
    )
    return report


def _passthrough_truth(
    raw_dir: Path, interim_dir: Path, params: dict[str, Any], date_format: str
) -> dict[str, Any] | None:
    """Copy raw truth.csv (the generator's PD) to interim/truth.parquet; a bad row is fatal."""
    target = interim_dir / "truth.parquet"
    path = raw_dir / "truth.csv"
    if not path.exists():
        target.unlink(missing_ok=True)
        return None
    src = open_table(
        path,
        "truth",
        list(COLUMNS["truth"]),
        REQUIRED["truth"],
        chunksize=int(params.get("chunksize", 500_000)),
        encoding=params.get("encoding", "auto"),
    )
    parts = []
    for chunk in src.chunks():
        parsed, bad = validate(
            chunk.drop(columns=META), parse_schema("truth", date_format), "truth"
        )
        if len(bad):
            first = bad.iloc[0]
            raise PipelineError(
                f"{path}: row {chunk.loc[bad.index[0], '_source_row']}, column "
                f"{first['_column']}, rule {first['_rule']}: {first['_reason']}"
            )
        parts.append(conform(parsed, "truth"))
    truth = pd.concat(parts)
    write_parquet(truth, target)
    return {"rows": len(truth), "file": path.name}


def main() -> None:
    args = stage_argparser(
        "ingest", "Validate raw files into canonical Parquet tables"
    ).parse_args()
    paths = Paths(args.dataset)
    params = stage_params("ingest", args.dataset)
    run_ingest(
        paths.raw,
        paths.interim,
        paths.quarantine,
        paths.stage_dir("ingest") / "ingest.json",
        paths.metrics / "ingest.json",
        params,
        dataset=args.dataset,
    )


if __name__ == "__main__":
    run_stage(main, "ingest")
