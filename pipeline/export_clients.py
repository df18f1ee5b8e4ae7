"""Run the scorecard exports in the programs business systems use and compare with Python.

Each ``run_*`` function executes one export in one real client on the boundary set and returns
that client's scoring (``case_id``, ``points__<feature>``, ``score``, ``pd_model``, ``grade`` and,
for PMML, ``reason_<k>``); :func:`agreement` compares it with ``pipeline.card.score_frame``
case by case. The tests (tests/test_export_clients.py) and the measuring command

    python -m pipeline.export_clients --dataset uci_taiwan

use these functions. Clients: DuckDB and SQLite (in process), PostgreSQL (a throw-away server
from the Debian binaries, started here in a temp dir on a unix socket), LibreOffice Calc (headless
``soffice``, for the workbook and the CSV), a PMML engine (JPMML through ``jpmml_evaluator`` on
the JVM) and Spark SQL (pyspark; run by the ``spark`` tests).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.card import score_to_pd
from pipeline.card.routing import all_features, is_routed, routes
from pipeline.domain import PipelineError
from pipeline.exports import (
    DIALECTS,
    SQL_INPUT_TABLE,
    decimal_text,
    input_features,
    scorecard_pmml,
    scorecard_sql,
    scorecard_workbook,
    sql_identifier,
    sql_string,
    workbook_bytes,
)


def _pg_bin() -> Path:
    """PG_BIN, else the newest Debian PostgreSQL under /usr/lib/postgresql (15 here)."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
SOFFICE = os.environ.get("SOFFICE", "soffice")
CALC_CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"
PD_RTOL = 1e-12


# -------------------------------------------------------------------------------- comparison
def agreement(card: dict, cases: pd.DataFrame, got: pd.DataFrame) -> pd.Series:
    """Per boundary case: does the client's scoring equal Python's? Points and score exactly,
    PD to 1e-12 relative, grade and (when the client gives them) reason codes exactly. Rows are
    matched on ``case_id``."""
    got = got.set_index("case_id").reindex(cases["case_id"].to_numpy())
    ok = np.ones(len(cases), dtype=bool)
    cols = [f"points__{f['name']}" for f in all_features(card) if f"points__{f['name']}" in got]
    for c in [*cols, "score"]:
        vals = pd.to_numeric(got[c], errors="coerce").to_numpy(float)
        ok &= vals == cases[f"expected_{c}"].to_numpy(float)
    expected_pd = score_to_pd(
        cases["expected_score"], card["scaling"]["factor"], card["scaling"]["offset"]
    )
    got_pd = pd.to_numeric(got["pd_model"], errors="coerce").to_numpy(float)
    ok &= np.abs(got_pd - expected_pd) <= PD_RTOL * np.abs(expected_pd)
    if "expected_grade" in cases:
        ok &= got["grade"].astype(str).to_numpy() == cases["expected_grade"].astype(str).to_numpy()
    for c in [c for c in got.columns if c.startswith("reason_") and f"expected_{c}" in cases]:
        want = cases[f"expected_{c}"].map(lambda v: "" if v is None or v != v else str(v))
        have = got[c].map(lambda v: "" if v is None or v != v else str(v))
        ok &= have.to_numpy() == want.to_numpy()
    return pd.Series(ok, index=cases.index, name="agrees")


def agreement_counts(cases: pd.DataFrame, agrees: pd.Series) -> dict:
    """Agreeing / total boundary cases, overall and by precision class (decimal, ulp)."""
    out = {"cases": int(len(cases)), "agree": int(agrees.sum())}
    for cls, grp in agrees.groupby(cases["precision"]):
        out[f"{cls}_cases"], out[f"{cls}_agree"] = int(len(grp)), int(grp.sum())
    return out


def _inputs(card: dict, cases: pd.DataFrame) -> pd.DataFrame:
    return cases[["case_id", *(f["name"] for f in input_features(card))]]


# ------------------------------------------------------------------------------- SQL clients
def run_duckdb(card: dict, cases: pd.DataFrame, grades: list[dict] | None) -> pd.DataFrame:
    """The DuckDB rendering of the SQL export, on the boundary inputs."""
    import duckdb

    con = duckdb.connect()
    con.register(SQL_INPUT_TABLE, _inputs(card, cases))
    return con.execute(scorecard_sql(card, grades, dialect="duckdb")).df()


def run_sqlite(card: dict, cases: pd.DataFrame, grades: list[dict] | None) -> pd.DataFrame:
    """The SQLite rendering, in Python's sqlite3 (NaN is stored as NULL there)."""
    con = sqlite3.connect(":memory:")
    try:
        _inputs(card, cases).to_sql(SQL_INPUT_TABLE, con, index=False)
        return pd.read_sql_query(scorecard_sql(card, grades, dialect="sqlite"), con)
    finally:
        con.close()


def postgres_available() -> str | None:
    """None when a throw-away PostgreSQL server can be started, else the reason it cannot."""
    for exe in ("initdb", "pg_ctl", "psql"):
        if not (PG_BIN / exe).is_file() and not shutil.which(exe):
            return f"{exe} not found under {PG_BIN}"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root and runuser is missing (postgres refuses to run as root)"
    return None


class PostgresServer:
    """A throw-away PostgreSQL cluster in a temp dir, reached on a unix socket only.

    As root the server and psql run as the ``postgres`` user (``runuser``), since PostgreSQL
    refuses to run as root. ``psql(sql)`` runs a script and returns its standard output.
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pgtest-"))
        self.data = self.dir / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _exe(self, name: str) -> str:
        path = PG_BIN / name
        return str(path) if path.is_file() else name

    def _run(self, args: list[str], stdin: str | None = None) -> str:
        proc = subprocess.run(
            [*self.as_user, *args],
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            cwd=self.dir,
        )
        if proc.returncode:
            raise PipelineError(f"{Path(args[0]).name} failed: {proc.stderr.strip()[-2000:]}")
        return proc.stdout

    def start(self) -> PostgresServer:
        self._run(
            [
                self._exe("initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        opts = f"-k {self.dir} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
        self._run(
            [
                self._exe("pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                opts,
                "-w",
                "-s",
                "-l",
                str(self.dir / "server.log"),
                "start",
            ]
        )
        return self

    def psql(self, sql: str) -> str:
        return self._run(
            [
                self._exe("psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.dir),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-f",
                "-",
            ],
            stdin=sql,
        )

    def stop(self) -> None:
        try:
            self._run(
                [self._exe("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-s", "-w", "stop"]
            )
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A started :class:`PostgresServer`, stopped and deleted afterwards."""
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


def _pg_literal(value, numeric: bool) -> str:
    pg = DIALECTS["postgres"]
    if value is None or (isinstance(value, float) and math.isnan(value) and not numeric):
        return "NULL"
    if numeric:
        text = "NaN" if math.isnan(value) else decimal_text(value)
        return f"CAST('{text}' AS DOUBLE PRECISION)"
    return sql_string(value, pg)


def run_postgres(
    card: dict, cases: pd.DataFrame, grades: list[dict] | None, server: PostgresServer
) -> pd.DataFrame:
    """The PostgreSQL rendering on a real server: the boundary inputs (NaN as the float8 NaN,
    missing as NULL) in a temp table, the export's SELECT copied out as CSV."""
    pg = DIALECTS["postgres"]
    feats = input_features(card)
    cols = ["case_id integer"] + [
        f"{sql_identifier(f['name'], pg)} "
        + ("DOUBLE PRECISION" if f["dtype"] == "numeric" else "TEXT")
        for f in feats
    ]
    rows = []
    for rec in _inputs(card, cases).to_dict("records"):
        vals = [str(int(rec["case_id"]))] + [
            _pg_literal(rec[f["name"]], f["dtype"] == "numeric") for f in feats
        ]
        rows.append("(" + ", ".join(vals) + ")")
    table = sql_identifier(SQL_INPUT_TABLE, pg)
    select = scorecard_sql(card, grades, dialect="postgres").rstrip().rstrip(";")
    select = "\n".join(ln for ln in select.splitlines() if not ln.startswith("--"))
    script = (
        "BEGIN;\n"
        f"CREATE TEMP TABLE {table} ({', '.join(cols)});\n"
        f"INSERT INTO {table} VALUES\n" + ",\n".join(rows) + ";\n"
        f"COPY ({select}) TO STDOUT WITH (FORMAT csv, HEADER true);\n"
        "ROLLBACK;\n"
    )
    return pd.read_csv(io.StringIO(server.psql(script)), keep_default_na=False, na_values=[""])


def run_spark(card: dict, cases: pd.DataFrame, grades: list[dict] | None, spark) -> pd.DataFrame:
    """The Spark SQL rendering in a SparkSession: the boundary inputs as a temp view with an
    explicit schema (NaN stays a double NaN, missing is null)."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    feats = input_features(card)
    schema = StructType(
        [StructField("case_id", LongType(), False)]
        + [
            StructField(f["name"], DoubleType() if f["dtype"] == "numeric" else StringType())
            for f in feats
        ]
    )
    rows = [
        tuple(
            [int(r["case_id"])]
            + [
                (None if r[f["name"]] is None else float(r[f["name"]]))
                if f["dtype"] == "numeric"
                else (None if r[f["name"]] is None else str(r[f["name"]]))
                for f in feats
            ]
        )
        for r in _inputs(card, cases).to_dict("records")
    ]
    spark.createDataFrame(rows, schema).createOrReplaceTempView(SQL_INPUT_TABLE)
    return spark.sql(scorecard_sql(card, grades, dialect="spark")).toPandas()


# ---------------------------------------------------------------------------------- Calc
def calc_available() -> str | None:
    """None when LibreOffice (``soffice``) is installed, else the reason."""
    return None if shutil.which(SOFFICE) else f"{SOFFICE} not found (apt libreoffice-calc-nogui)"


def soffice_convert(path: Path, target: str, outdir: Path, infilter: str | None = None) -> None:
    """Open ``path`` in headless LibreOffice and save it as ``target`` (a convert-to filter),
    in its own user profile so that parallel runs do not share one."""
    profile = outdir / "lo-profile"
    cmd = [SOFFICE, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--calc"]
    if infilter:
        cmd.append(f"--infilter={infilter}")
    cmd += ["--convert-to", target, "--outdir", str(outdir), str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if proc.returncode:
        raise PipelineError(f"soffice failed on {path.name}: {proc.stderr.strip()[-1000:]}")


def run_calc_workbook(
    card: dict, cases: pd.DataFrame, grades: list[dict] | None, workdir: Path | None = None
) -> pd.DataFrame:
    """The xlsx export, recalculated by LibreOffice Calc: the scoring sheet with the boundary
    inputs, converted to CSV by Calc (every formula evaluated by Calc on load and export)."""
    with tempfile.TemporaryDirectory(prefix="calc-", dir=workdir) as tmp:
        tmp = Path(tmp)
        book = tmp / "scorecard.xlsx"
        book.write_bytes(workbook_bytes(scorecard_workbook(card, grades, cases=cases)))
        soffice_convert(book, CALC_CSV_FILTER, tmp)
        sheet = tmp / "scorecard-scoring.csv"
        if not sheet.is_file():
            raise PipelineError(f"soffice wrote no scoring sheet: {sorted(os.listdir(tmp))}")
        got = pd.read_csv(sheet, keep_default_na=False, na_values=[""], dtype={"grade": str})
    keep = ["case_id", *[c for c in got.columns if c.startswith("points__")], "score", "pd_model"]
    return got[[*keep, *(["grade"] if "grade" in got else [])]]


def read_csv_in_calc(path: Path, workdir: Path | None = None) -> list[list]:
    """A CSV export as LibreOffice Calc reads it: opened with the UTF-8, comma, double-quote
    import filter, saved as xlsx, and the cell values read back (numbers as floats, text as
    str, empty as None), header row first."""
    from openpyxl import load_workbook

    with tempfile.TemporaryDirectory(prefix="calccsv-", dir=workdir) as tmp:
        tmp = Path(tmp)
        src = tmp / "export.csv"
        shutil.copyfile(path, src)
        soffice_convert(src, "xlsx", tmp, infilter="CSV:44,34,76,1")
        ws = load_workbook(tmp / "export.xlsx", data_only=True).active
        return [[c.value for c in row] for row in ws.iter_rows()]


# ---------------------------------------------------------------------------------- PMML
def pmml_available() -> str | None:
    """None when the JPMML evaluator and a JVM are there, else the reason."""
    try:
        import jpmml_evaluator  # noqa: F401
    except ImportError:
        return "jpmml_evaluator is not installed (pip install jpmml-evaluator jpype1)"
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (java on PATH or JAVA_HOME)"
    return None


def run_pmml(card: dict, cases: pd.DataFrame, grades: list[dict] | None) -> pd.DataFrame:
    """The PMML export evaluated by JPMML (the reference PMML engine, on the JVM through
    JPype) on the boundary inputs: score, pd_model, reason codes, grade. A card with segment
    cards has one PMML document per card; each scores the rows of its segment."""
    from jpmml_evaluator import make_evaluator

    X = _inputs(card, cases)
    top_n = int(card.get("reason_codes", {}).get("top_n", 4))
    keep = ["score", "pd_model", *(f"reason_{k}" for k in range(1, top_n + 1))]
    parts = []
    for sub, rows in routes(card, X) if is_routed(card) else [(card, np.arange(len(X)))]:
        evaluator = make_evaluator(scorecard_pmml(sub, grades).encode("utf-8")).verify()
        part = X.iloc[rows]
        res = evaluator.evaluateAll(part[[f["name"] for f in sub["features"]]])
        out = res[keep + (["grade"] if grades else [])].copy()
        out.insert(0, "case_id", part["case_id"].to_numpy())
        parts.append(out)
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------------------------- measuring
def main(argv: list[str] | None = None) -> None:
    """Print, per client, the boundary cases and how many score exactly like Python, for one
    dataset's published bundle (exports/<ds>/scorecard.json)."""
    from pipeline.exports import boundary_cases
    from pipeline.io import read_json

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--exports", default="exports")
    ap.add_argument(
        "--clients",
        default="duckdb,sqlite,postgres,calc,pmml",
        help="comma-separated subset of duckdb,sqlite,postgres,calc,pmml (those installed run)",
    )
    args = ap.parse_args(argv)
    wanted = set(args.clients.split(","))
    bundle = read_json(Path(args.exports) / args.dataset / "scorecard.json")
    grades = bundle["master_scale"]["grades"]
    cases = boundary_cases(bundle, grades)
    results = {}
    if "duckdb" in wanted:
        results["DuckDB"] = lambda: run_duckdb(bundle, cases, grades)
    if "sqlite" in wanted:
        results["SQLite"] = lambda: run_sqlite(bundle, cases, grades)
    if "postgres" in wanted and postgres_available() is None:
        results["PostgreSQL"] = None
    if "calc" in wanted and calc_available() is None:
        results["LibreOffice Calc"] = lambda: run_calc_workbook(bundle, cases, grades)
    if "pmml" in wanted and pmml_available() is None:
        results["JPMML"] = lambda: run_pmml(bundle, cases, grades)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(
        [
            "dataset",
            "client",
            "cases",
            "agree",
            "decimal_cases",
            "decimal_agree",
            "ulp_cases",
            "ulp_agree",
        ]
    )
    for client, run in results.items():
        if run is None:
            with postgres_server() as server:
                got = run_postgres(bundle, cases, grades, server)
        else:
            got = run()
        c = agreement_counts(cases, agreement(bundle, cases, got))
        writer.writerow(
            [
                args.dataset,
                client,
                c["cases"],
                c["agree"],
                c.get("decimal_cases"),
                c.get("decimal_agree"),
                c.get("ulp_cases"),
                c.get("ulp_agree"),
            ]
        )


if __name__ == "__main__":
    main()
