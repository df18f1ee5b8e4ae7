"""Charts and the one-page markdown report of the ``monitor`` stage (rendering only, no maths)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.io import save_figure  # noqa: E402

PNG_METADATA = {"Software": None}  # no version stamp: byte-stable PNGs


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    save_figure(fig, path, dpi=100, metadata=PNG_METADATA)
    plt.close(fig)


def write_charts(res: dict[str, Any], out: Path) -> None:
    """score_distribution, psi_over_time, csi, discrimination_over_time and concentration PNGs."""
    out.mkdir(parents=True, exist_ok=True)
    low, high = res["thresholds"]

    t = res["score_psi_table"]
    fig, ax = plt.subplots(figsize=(8, 4))
    x = range(len(t))
    ax.bar([i - 0.2 for i in x], 100 * t["expected_share"], width=0.4, label="development (train)")
    ax.bar([i + 0.2 for i in x], 100 * t["actual_share"], width=0.4, label="monitored month")
    ax.set_xticks(list(x), t["bin"], rotation=45, ha="right", fontsize=8)
    ax.set(
        title=f"Score distribution, development deciles (PSI {res['score_psi']:.3f})",
        xlabel="Score band (points)",
        ylabel="Share of customers (%)",
    )
    ax.legend()
    _save(fig, out / "score_distribution.png")

    p = res["psi_over_time"]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(pd.to_datetime(p["as_of_date"]), p["psi"], marker="o", label="score PSI")
    ax.axhline(low, color="orange", ls="--", label=f"amber {low}")
    ax.axhline(high, color="red", ls="--", label=f"red {high}")
    ax.set(
        title="Score PSI against development, by as-of month",
        xlabel="As-of date (month end)",
        ylabel="PSI (unitless)",
    )
    ax.legend()
    _save(fig, out / "psi_over_time.png")

    c = res["csi"].sort_values("csi")
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.35 * len(c) + 1)))
    ax.barh(
        c["feature"],
        c["csi"],
        color=c["status"].map({"green": "green", "amber": "orange", "red": "red"}),
    )
    ax.axvline(low, color="orange", ls="--")
    ax.axvline(high, color="red", ls="--")
    ax.set(
        title="Characteristic stability (CSI) in the monitored month, card bins",
        xlabel="CSI (unitless)",
        ylabel="Scorecard characteristic",
    )
    _save(fig, out / "csi.png")

    d = res["discrimination"]
    fig, ax = plt.subplots(figsize=(8, 4))
    if len(d):
        dates = pd.to_datetime(d["as_of_date"])
        ax.plot(dates, d["auc"], marker="o", label="AUC")
        ax.plot(dates, d["ks"], marker="s", label="KS")
        bad = d["deteriorated"].astype(bool)
        ax.scatter(
            dates[bad], d.loc[bad, "auc"], color="red", zorder=3, label="AUC deteriorated (p < α)"
        )
    ax.axhline(res["reference"]["auc"], color="grey", ls="--", label="validation (OOT) AUC")
    ax.set(
        title="Discrimination over time (matured outcomes)",
        xlabel="As-of date (month end)",
        ylabel="AUC / KS (0–1)",
        ylim=(0, 1),
    )
    ax.legend()
    _save(fig, out / "discrimination_over_time.png")

    g = res["concentration"]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(g["grade"], 100 * g["share"])
    ax.set(
        title=f"Customers per grade in the monitored month (HHI {res['hhi']:.3f})",
        xlabel="Master-scale grade (best first)",
        ylabel="Share of customers (%)",
    )
    _save(fig, out / "concentration.png")


def _md_table(df: pd.DataFrame, floatfmt: str = "{:.4f}") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [floatfmt.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt_date(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d}"


def _overlay_line(ov: dict[str, Any]) -> str:
    if ov.get("n_expert_scored", 1) == 0:
        return "- No expert (6C) scores in this month's data: the overlay changed no grade."
    return (
        f"- Override rate this month {ov['override_rate']:.1%} (up {ov['upgrade_rate']:.1%}, "
        f"down {ov['downgrade_rate']:.1%}) of {ov['n']:,} graded customers, "
        f"{ov.get('n_expert_scored', 0):,} with expert scores; investigate above 5–10 %. "
        "By approver and by month: `overrides_by_approver.csv`, `overrides_by_date.csv`."
    )


def _discrimination_line(disc: dict[str, Any]) -> str:
    """The deterioration test of the latest matured month against the reference AUC."""
    p_value = disc["latest_p_value"]
    return (
        f"- Reference AUC {disc['reference_auc']:.4f} ({disc.get('reference_source') or ''}). "
        "Latest matured "
        f"month {_fmt_date(disc['latest_matured_date'])}: AUC "
        + (
            f"{disc['latest_auc']:.4f}, KS {disc['latest_ks']:.4f}"
            if disc["latest_auc"] is not None
            else "n/a"
        )
        + (
            f", one-sided ECB deterioration test p = {p_value:.4f}"
            if p_value is not None and not pd.isna(p_value)
            else ""
        )
        + f". Months with a significant deterioration: {disc['n_dates_deteriorated']} of "
        f"{disc.get('n_months_tested', 0)} months tested; p-values adjusted for the number of "
        f"months tested ({disc.get('multiplicity_adjustment') or 'none'}; one-sided ECB test, "
        "Hanley–McNeil SE on one snapshot per customer per month; current segment; train rows, "
        "on which the card was fitted, left out)."
    )


def render_report(res: dict[str, Any], summary: dict[str, Any]) -> str:
    """The one-page monitoring report (markdown)."""
    st, disc, ew = summary["stability"], summary["discrimination"], summary["early_warning"]
    low, high = st["thresholds"]
    csi = res["csi"].sort_values(["csi", "feature"], ascending=[False, True])
    mig = summary["migration"]
    ov = summary["overrides"]["month"]
    lines = [
        f"# Monitoring report — {summary['dataset']}, {_fmt_date(summary['month'])}",
        "",
        f"Monitored month: {summary['n_current']:,} customers scored with the published card; "
        f"development (train sample): {summary['n_development']:,} snapshots; previous month "
        f"{_fmt_date(summary['previous_month'])}.",
        "",
        *(
            [
                "Only one as-of date in this dataset: the monitored month is the development "
                "month, so stability is a self-check and there is no migration or month-to-month "
                "trigger.",
                "",
            ]
            if summary["previous_month"] is None
            else []
        ),
        "## Stability",
        f"- Score PSI **{st['score_psi']:.4f}** ({st['score_psi_status']}); bands < {low} green, "
        f"{low}–{high} amber, ≥ {high} red. Bins fixed on development deciles; empty bins: "
        f"{st['smoothing']}.",
        f"- Characteristics: {st['n_features_red']} red, {st['n_features_amber']} amber "
        f"of {len(csi)} "
        "(bins = the card's bins incl. missing/special/unseen).",
        "",
        _md_table(
            csi[["feature", "csi", "status", "empty_dev_bins", "empty_current_bins"]].head(8)
        ),
        "",
        "## Discrimination (matured outcomes)",
        _discrimination_line(disc),
        "",
        "## Grades",
        f"- Concentration: HHI {summary['concentration']['hhi']:.4f} "
        "(1/number of grades = even spread). Migration from the previous month: "
        f"{mig['n']:,} customers, "
        + (
            f"{mig['stable']:.1%} stable, {mig['upgraded']:.1%} up, {mig['downgraded']:.1%} down, "
            f"{mig['moved_2_or_more']:.1%} moved ≥ 2 grades."
            if mig["n"]
            else "no previous month."
        ),
        "",
        "## Early warning",
        f"- {ew['n_flagged']:,} customers crossed a trigger: days-beyond-terms jump "
        f"{ew['dbt_jump']}, "
        f"limit breach {ew['limit_breach']}, new claims {ew['new_claims']}, grade downgrade "
        f"{ew['grade_downgrade']}. Actions from the collection strategy table: "
        "`early_warning.csv`.",
        "",
        "## Expert overlay",
        _overlay_line(ov),
        "",
        "Charts: score_distribution.png, psi_over_time.png, csi.png, "
        "discrimination_over_time.png, "
        "concentration.png.",
        "",
    ]
    return "\n".join(lines)
