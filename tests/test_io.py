"""pipeline.io: spreadsheet-safe CSV cells, atomic writes, the stated features cut-off."""

from __future__ import annotations

import pandas as pd

from pipeline.io import spreadsheet_safe, write_csv
from pipeline.params import load
from pipeline.params.features import stated_cutoff
from pipeline.params.ingest import IngestParams


def test_formula_leading_text_is_escaped_numbers_are_not(tmp_path) -> None:
    """OWASP CSV injection: text starting with = + - @ (or tab/CR) gets a leading quote; numbers,
    including numeric text such as -12.5, stay as they are."""
    df = pd.DataFrame(
        {
            "label": [
                '=HYPERLINK("http://x","y")',
                "+cmd",
                "-2+3",
                "@SUM(A1)",
                "\tx",
                "ok",
                "-12.5",
            ],
            "points": [1, -2, 3, -4, 5, 6, 7],
            "value": [-1.5, 2.0, -0.25, 0.0, 1e9, -3.0, 4.0],
        }
    )
    out = spreadsheet_safe(df)
    assert out["label"].tolist() == [
        '\'=HYPERLINK("http://x","y")',
        "'+cmd",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "ok",
        "-12.5",
    ]
    assert out["points"].tolist() == df["points"].tolist()
    assert out["value"].tolist() == df["value"].tolist()
    write_csv(df.rename(columns={"label": "=label"}), tmp_path / "t.csv")
    text = (tmp_path / "t.csv").read_text(encoding="utf-8")
    assert text.startswith("'=label,points,value\n")
    assert '"\'=HYPERLINK(""http://x"",""y"")"' in text and ",-1.5\n" in text
    assert not [p for p in tmp_path.iterdir() if p.name != "t.csv"]  # no temporary file left


def test_features_use_the_stated_cutoff_not_the_latest_event() -> None:
    """The features cut-off is the dataset's stated ingest.data_cutoff unless features sets one."""
    assert (
        stated_cutoff(None, load(IngestParams, "ingest", "synthetic").data_cutoff, "synthetic")
        == "2025-12-31"
    )
    assert (
        stated_cutoff(
            "2025-06-30", load(IngestParams, "ingest", "synthetic").data_cutoff, "synthetic"
        )
        == "2025-06-30"
    )
