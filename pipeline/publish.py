"""Stage ``publish``: the bundle the business runs, the scorecard exports and the credit policy.

Reads models/<ds>/scorecard.json (train), models/<ds>/grade_cutoffs.json (calibrate),
data/processed/<ds>/snapshots.parquet (size-band statistics, limit review, customer value),
metrics/<ds>/evaluate.json (discrimination, if present), the canonical invoices and the credit file
(data/interim/<ds>), the ``publish`` params and ``features.label`` (the bad definition). Writes
exports/<ds>/: scorecard.json (card + calibration + master scale + policy), scorecard.sql (DuckDB),
sql/scorecard.<dialect>.sql (PostgreSQL, SQLite, MySQL, SQL Server, Oracle, DuckDB, Spark),
scorecard.pmml (PMML 4.4), scorecard.xlsx, scorecard.csv, limit_table.csv, credit_policy.csv,
dunning_strategy.csv, boundary_cases.csv, export_checks.json, model_card.md and the credit-cycle
tables (`pipeline.credit_cycle`: limit review, approval authority, customer value, Delphi agreement).
The DuckDB and SQLite renderings are executed against the boundary set before anything is
written (any difference from Python stops the stage); export_checks.json records the counts.
"""

from __future__ import annotations

import logging

import pandas as pd

from pipeline.bundle import bad_definition, build_bundle, check_cutoffs, latest_sizes
from pipeline.card import SCHEMA_FILE, load_card, units_from_dictionary, write_schema
from pipeline.card.routing import all_features, main_card, segment_cards
from pipeline.config import Paths, require_files, run_stage, stage_argparser
from pipeline.credit_cycle import credit_cycle, read_cycle_inputs
from pipeline.domain import SNAPSHOT_KEYS
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
from pipeline.io import read_json, write_bytes, write_csv, write_json, write_text
from pipeline.model_card import model_card_markdown
from pipeline.params import load
from pipeline.params.base import BaseParams
from pipeline.params.features import FeaturesParams
from pipeline.params.publish import PublishParams
from pipeline.policy import (
    band_statistics,
    credit_policy_table,
    dunning_table,
    letter_pds,
    limit_table,
)
from pipeline.snapshot_io import read_columns

log = logging.getLogger("pipeline.publish")


def verify_sql(card: dict, grades: list[dict], cases: pd.DataFrame) -> dict:
    """Run the DuckDB and SQLite renderings over the boundary set; raise on any difference,
    else return the agreement counts per client."""
    checks = {}
    for client, run in (("DuckDB", run_duckdb), ("SQLite", run_sqlite)):
        got = run(card, cases, grades)
        check_against_python(card, cases, got, f"scorecard SQL on {client}")
        checks[client] = agreement_counts(cases, agreement(card, cases, got))
    return checks


def read_inputs(paths: Paths, size_measure: str) -> dict:
    """The card, the grade cutoffs (checked), each customer's size measure at its latest snapshot
    (three columns read, only the latest sizes kept) and the evaluation."""
    cutoffs_path = paths.models / "grade_cutoffs.json"
    card = load_card(paths.models / "scorecard.json")
    require_files({"grade_cutoffs": cutoffs_path}, "run the calibrate stage first")
    cutoffs = read_json(cutoffs_path)
    evaluate_path = paths.metrics / "evaluate.json"
    if evaluate_path.is_file():
        require_files({"evaluation": evaluate_path}, "run the evaluate stage first")
    return {
        "card": card,
        "cutoffs": cutoffs,
        "grades": check_cutoffs(cutoffs, str(cutoffs_path)),
        "sizes": latest_sizes(
            read_columns(paths.processed / "snapshots.parquet", [*SNAPSHOT_KEYS, size_measure]),
            size_measure,
        ),
        "evaluation": read_json(evaluate_path) if evaluate_path.is_file() else None,
        "units": units_from_dictionary(paths.processed / "feature_dictionary.csv"),
    }


def main() -> None:
    args = stage_argparser(
        "publish", "Publish the scorecard bundle, exports and policy."
    ).parse_args()
    params = load(PublishParams, "publish", args.dataset)
    label = load(FeaturesParams, "features", args.dataset).label
    paths = Paths(args.dataset)
    inp = read_inputs(paths, params.size_measure)
    card, cutoffs, grades = inp["card"], inp["cutoffs"], inp["grades"]

    bands = band_statistics(inp["sizes"], params.size_bands)
    limits = limit_table(letter_pds(grades), bands, params.limit_policy)
    policy = credit_policy_table(params.limit_policy)
    dunning = dunning_table(params.dunning)
    cases = boundary_cases(card, grades)
    sql = {name: scorecard_sql(card, grades, dialect=name) for name in DIALECTS}
    checks = {
        "boundary_cases": len(cases),
        "executed_at_publish": verify_sql(card, grades, cases),
        "edge_digits": {
            f["name"]: f.get("edge_digits") for f in all_features(card) if f["dtype"] == "numeric"
        },
    }
    bundle = build_bundle(card, cutoffs, params, limits, inp["units"])
    workbook = scorecard_workbook(card, grades, limits, policy, cases)
    model_card = model_card_markdown(
        card,
        cutoffs,
        limits,
        policy,
        bands,
        inp["evaluation"],
        args.dataset,
        bad_definition(label),
        checks,
    )
    budget = load(BaseParams, "base", args.dataset).budget_bytes
    cycle, cycle_summary = credit_cycle(
        bundle, read_cycle_inputs(paths, params, bundle), params, budget
    )

    out = paths.exports
    out.mkdir(parents=True, exist_ok=True)
    write_json(bundle, out / "scorecard.json")
    write_schema(out / SCHEMA_FILE)
    write_text(sql["duckdb"], out / "scorecard.sql")
    for name, text in sql.items():
        write_text(text, out / "sql" / f"scorecard.{name}.sql")
    write_text(scorecard_pmml(main_card(card), grades), out / "scorecard.pmml")
    for segment, sub in segment_cards(card).items():
        write_text(scorecard_pmml(sub, grades), out / f"scorecard.{segment}.pmml")
    write_bytes(workbook_bytes(workbook), out / "scorecard.xlsx")
    write_csv(points_table_csv(card), out / "scorecard.csv")
    write_json(checks, out / "export_checks.json")
    write_csv(limits, out / "limit_table.csv")
    write_csv(policy, out / "credit_policy.csv")
    write_csv(dunning, out / "dunning_strategy.csv")
    write_text(
        cases.to_csv(index=False, lineterminator="\n"), out / "boundary_cases.csv"
    )  # full precision
    write_text(model_card, out / "model_card.md")
    for name, table in cycle.items():
        write_csv(table, out / name)
    write_json(cycle_summary, out / "credit_cycle.json")
    log.info(
        "published %s: %d features, %d grades, %d boundary cases checked on DuckDB and SQLite",
        out,
        len(all_features(card)),
        len(grades),
        len(cases),
    )


if __name__ == "__main__":
    run_stage(main, "publish")
