"""Stage ``publish``: the bundle the business runs, the scorecard exports and the credit policy.

Reads models/<ds>/scorecard.json (train), models/<ds>/grade_cutoffs.json (calibrate),
data/processed/<ds>/snapshots.parquet (size-band statistics), metrics/<ds>/evaluate.json
(discrimination, if present) and the ``publish`` params. Writes exports/<ds>/: scorecard.json
(card + calibration + master scale + policy), scorecard.sql (DuckDB), sql/scorecard.<dialect>.sql
(PostgreSQL, SQLite, MySQL, SQL Server, Oracle, DuckDB, Spark), scorecard.pmml (PMML 4.4),
scorecard.xlsx, scorecard.csv, limit_table.csv, credit_policy.csv, dunning_strategy.csv,
boundary_cases.csv, export_checks.json, model_card.md.
The DuckDB and SQLite renderings are executed against the boundary set before anything is
written (any difference from Python stops the stage); export_checks.json records the counts.
"""

from __future__ import annotations

import logging

import pandas as pd

from pipeline.card import SCHEMA_FILE, load_card, seal_bundle, units_from_dictionary, write_schema
from pipeline.config import (
    Paths,
    PipelineError,
    require_files,
    run_stage,
    stage_argparser,
    stage_params,
)
from pipeline.credit_cycle import publish_credit_cycle
from pipeline.export_clients import agreement, agreement_counts, run_duckdb, run_sqlite
from pipeline.exports import (
    DIALECTS,
    boundary_cases,
    check_against_python,
    points_table_csv,
    scorecard_pmml,
    scorecard_sql,
    scorecard_workbook,
    workbook_bytes,
)
from pipeline.io import code_version, read_json, write_bytes, write_csv, write_json, write_text
from pipeline.model_card import model_card_markdown
from pipeline.policy import (
    band_statistics,
    credit_policy_table,
    dunning_table,
    letter_pds,
    limit_table,
)

log = logging.getLogger("pipeline.publish")
BUNDLE_SCHEMA = "1.0"


def check_cutoffs(cutoffs: dict, source: str) -> list[dict]:
    """The master-scale grades, checked: letter grades present, score_min falling, PDs rising."""
    grades = cutoffs.get("grades") or []
    if not grades:
        raise PipelineError(f"{source}: no 'grades'; run the calibrate stage")
    for i, g in enumerate(grades):
        for key in ("grade", "letter_grade", "score_min", "pd"):
            if key not in g:
                raise PipelineError(f"{source}: grades[{i}] has no '{key}'")
    mins = [g["score_min"] for g in grades[:-1]]
    if any(m is None for m in mins) or any(b >= a for a, b in zip(mins, mins[1:], strict=False)):
        raise PipelineError(f"{source}: score_min must fall strictly from the best grade on")
    pds = [g["pd"] for g in grades]
    if any(b <= a for a, b in zip(pds, pds[1:], strict=False)):
        raise PipelineError(f"{source}: grade PDs must rise strictly from grade to grade")
    return grades


def latest_sizes(snapshots: pd.DataFrame, size_measure: str) -> pd.Series:
    """Each customer's size measure at their latest snapshot."""
    if size_measure not in snapshots.columns:
        raise PipelineError(
            f"snapshots.parquet: column '{size_measure}' (publish.size_measure) not found"
        )
    last = (
        snapshots.sort_values(["customer_id", "as_of_date"])
        .groupby("customer_id", sort=True)
        .tail(1)
    )
    return last[size_measure]


def build_bundle(
    card: dict, cutoffs: dict, params: dict, limits: pd.DataFrame, units: dict | None = None
) -> dict:
    """The published scorecard.json: the card plus calibration, master scale and policy, sealed
    with declared feature domains and a content hash (`pipeline.card.seal_bundle`)."""
    policy = {k: v for k, v in params.items() if k != "base"}
    return seal_bundle({
        **card,
        "bundle": {
            "schema_version": BUNDLE_SCHEMA,
            "code_version": code_version(),
            "scored_by": "python -m pipeline.score --card <this file> --input <file>",
        },
        "calibration": cutoffs["calibration"],
        "master_scale": {"scale": cutoffs.get("scale"), "grades": cutoffs["grades"]},
        "policy": {**policy, "limit_table": limits.to_dict("records")},
    }, units)


def bad_definition(features_params: dict) -> str:
    """The bad definition in words, from the features stage's label params."""
    label = features_params.get("label", {})
    if label.get("source") == "customer_flag":
        return "the source's own default flag (one observation point)"
    return (
        f"an invoice more than {label.get('bad_days_beyond_terms', '?')} days beyond terms "
        f"within {label.get('performance_window_months', '?')} months of the observation "
        f"date, above {label.get('material_amount', '?')} and "
        f"{label.get('material_share', 0):.0%} of exposure"
    )


def verify_sql(card: dict, grades: list[dict], cases: pd.DataFrame) -> dict:
    """Run the DuckDB and SQLite renderings over the boundary set; raise on any difference,
    else return the agreement counts per client."""
    checks = {}
    for client, run in (("DuckDB", run_duckdb), ("SQLite", run_sqlite)):
        got = run(card, cases, grades)
        check_against_python(card, cases, got, f"scorecard SQL on {client}")
        checks[client] = agreement_counts(cases, agreement(card, cases, got))
    return checks


def main() -> None:
    args = stage_argparser(
        "publish", "Publish the scorecard bundle, exports and policy."
    ).parse_args()
    params = stage_params("publish", args.dataset)
    paths = Paths(args.dataset)
    card = load_card(paths.models / "scorecard.json")
    cutoffs_path = paths.models / "grade_cutoffs.json"
    require_files({"grade_cutoffs": cutoffs_path}, "run the calibrate stage first")
    cutoffs = read_json(cutoffs_path)
    grades = check_cutoffs(cutoffs, str(cutoffs_path))
    snap_path = paths.processed / "snapshots.parquet"
    size_measure = params.get("size_measure", "avg_monthly_invoiced")
    snapshots = pd.read_parquet(snap_path, columns=["customer_id", "as_of_date", size_measure])
    evaluate_path = paths.metrics / "evaluate.json"
    if evaluate_path.is_file():
        require_files({"evaluation": evaluate_path}, "run the evaluate stage first")
    evaluation = read_json(evaluate_path) if evaluate_path.is_file() else None

    bands = band_statistics(latest_sizes(snapshots, size_measure), params["size_bands"])
    limits = limit_table(letter_pds(grades), bands, params)
    policy = credit_policy_table(params)
    dunning = dunning_table(params)
    cases = boundary_cases(card, grades)
    sql = {name: scorecard_sql(card, grades, dialect=name) for name in DIALECTS}
    checks = {
        "boundary_cases": len(cases),
        "executed_at_publish": verify_sql(card, grades, cases),
        "edge_digits": {
            f["name"]: f.get("edge_digits") for f in card["features"] if f["dtype"] == "numeric"
        },
    }
    units = units_from_dictionary(paths.processed / "feature_dictionary.csv")
    bundle = build_bundle(card, cutoffs, params, limits, units)
    workbook = scorecard_workbook(card, grades, limits, policy, cases)

    out = paths.exports
    out.mkdir(parents=True, exist_ok=True)
    write_json(bundle, out / "scorecard.json")
    write_schema(out / SCHEMA_FILE)
    write_text(sql["duckdb"], out / "scorecard.sql")
    for name, text in sql.items():
        write_text(text, out / "sql" / f"scorecard.{name}.sql")
    write_text(scorecard_pmml(card, grades), out / "scorecard.pmml")
    write_bytes(workbook_bytes(workbook), out / "scorecard.xlsx")
    write_csv(points_table_csv(card), out / "scorecard.csv")
    write_json(checks, out / "export_checks.json")
    write_csv(limits, out / "limit_table.csv")
    write_csv(policy, out / "credit_policy.csv")
    write_csv(dunning, out / "dunning_strategy.csv")
    write_text(cases.to_csv(index=False, lineterminator="\n"), out / "boundary_cases.csv")  # full precision
    write_text(
        model_card_markdown(
            card,
            cutoffs,
            limits,
            policy,
            bands,
            evaluation,
            args.dataset,
            bad_definition(stage_params("features", args.dataset)),
            checks,
        ),
        out / "model_card.md",
    )
    publish_credit_cycle(bundle, paths, params)  # limit review, customer value (pipeline.credit_cycle)
    log.info(
        "published %s: %d features, %d grades, %d boundary cases checked on DuckDB and SQLite",
        out,
        len(card["features"]),
        len(grades),
        len(cases),
    )


if __name__ == "__main__":
    run_stage(main, "publish")
