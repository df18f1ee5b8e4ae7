"""Presentation for the calibrate stage: the markdown grade table with traffic lights and the reliability plot.

Kept apart from the computation in ``pipeline.pd_calibration`` (as evaluate and monitor do) so the stage module
stays short; nothing here changes a number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.io import save_figure

SAMPLE_NOTES = {
    "calibration": "In sample: the calibration map was fitted on these rows, so these tests are "
    "optimistic (an isotonic map reproduces each grade's bad rate almost exactly); "
    "Hosmer–Lemeshow on k − 2 degrees of freedom.",
    "oot": "Out of sample, pooled snapshots (a customer appears once per month, so these rows "
    "are not independent: read the annual cohort back-tests above for the regulatory figure).",
    "oot_known": "Known customers, later dates: development customers after the out-of-time "
    "start (pooled snapshots).",
}


TRUE_PD_NOTE = (
    "Note: `true_pd` is the generator's conditional 12-month PD of the bad event at the snapshot, given "
    "the customer's risk path and that it still pays; customers that have already stopped paying have "
    "no truth row and are left out of this comparison. Observed rates and PDs count indeterminate "
    "snapshots as non-defaults (bad vs not bad), the event the truth is the probability of."
)


def _pct(v: float | None) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{100 * v:.2f}%"


def _grade_count_lines(result: dict) -> list[str]:
    gc = result.get("grade_count")
    central = result.get("central_tendency")
    lines: list[str] = []
    if central is not None:
        lines += ["", "## Central tendency", "", f"{_pct(central['value'])}: {central['rule']}."]
        if central.get("cohorts"):
            lines += [
                "",
                "| cohort date | customers | defaults | default rate |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {pd.Timestamp(c['cohort_date']):%Y-%m-%d} | {c['customers']} | "
                f"{c['defaults']} | {_pct(c['default_rate'])} |"
                for c in central["cohorts"]
            ]
    if gc:
        lines += [
            "",
            "## Number of grades",
            "",
            f"{gc['chosen']} grades ({gc['requested']} requested); each grade needs at least "
            f"{gc['min_grade_customers']} calibration customers "
            "(calibrate.min_grade_customers) and "
            f"{gc['min_grade_expected_defaults']:g} expected defaults = customers × grade PD "
            "(calibrate.min_grade_expected_defaults). "
            + ("" if gc["chosen"] == gc["requested"] else f"Reason: {gc['reason']}"),
        ]
    return lines


def _back_test_lines(result: dict) -> list[str]:
    bt = result.get("back_tests")
    if not bt or not (bt["cohorts"] or bt["pooled"]):
        return []
    lines = [
        "",
        "## Back-tests by annual cohort",
        "",
        f"Rule: {bt['rule']}. Verdict = worst of the portfolio Jeffreys light and the "
        "Hosmer–Lemeshow light.",
        "",
        "| segment | cohort | customers | mean PD | ODR | Jeffreys p | HL (df) p | "
        "grades red / yellow (Jeffreys) | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in bt["cohorts"] + bt["pooled"]:
        t = c["tests"]
        port, hl = t["portfolio"], t["hosmer_lemeshow"]
        red = sum(g.get("jeffreys_light") == "red" for g in t["per_grade"])
        yellow = sum(g.get("jeffreys_light") == "yellow" for g in t["per_grade"])
        when = f"{pd.Timestamp(c['cohort_date']):%Y-%m-%d}" if "cohort_date" in c else c["label"]
        lines.append(
            f"| {c['segment']} | {when} | {c['customers']} | {_pct(port['pd'])} | "
            f"{_pct(port['observed_bad_rate'])} | {port['jeffreys_p']:.4f} | "
            f"{hl['p']:.4f} ({hl['df']}) | {red} / {yellow} | {c['verdict']} |"
        )
    return lines


def _header_lines(result: dict, dataset: str) -> list[str]:
    cal = result["calibrator"]
    return [
        f"# Calibration and master scale — {dataset}",
        "",
        f"Calibration: **{cal.kind}** fitted on the calibration sample ({cal.n_fit_} rows, "
        f"{cal.n_bad_fit_} bads; outcome bad vs not bad, indeterminates count as non-defaults), "
        "disjoint from training, current segment; PD floor "
        f"{cal.pd_floor}; "
        + (
            f"anchored to central tendency {_pct(cal.central_tendency)} (logit shift "
            f"{cal.shift_:+.4f})."
            if cal.central_tendency is not None
            else "no central-tendency anchor: the PDs are point in time (calibration-sample "
            "level)."
        ),
        "",
        f"Method choice: {result.get('method_choice', cal.kind)}.",
    ]


def _master_scale_lines(table: pd.DataFrame) -> list[str]:
    lines = [
        "",
        "## Master scale (score interval [min, max), best grade first)",
        "",
        "| grade | letter | score min | score max | PD | count | share | observed bad rate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        smin = "" if np.isnan(r.score_min) else f"{int(r.score_min)}"
        smax = "" if np.isnan(r.score_max) else f"{int(r.score_max)}"
        lines.append(
            f"| {r.grade} | {r.letter_grade} | {smin} | {smax} | {_pct(r.pd)} | {r.count} | "
            f"{_pct(r.share)} | {_pct(r.observed_bad_rate)} |"
        )
    return lines


def _sample_test_lines(result: dict, name: str, t: dict) -> list[str]:
    base = name.split("_delinquent")[0]
    note = SAMPLE_NOTES.get(base, "")
    if name.endswith("_delinquent"):
        note += " Delinquent segment: graded with the current segment's master scale."
    lines = ["", f"## Tests on the {name} sample (pooled snapshots)", "", note, ""]
    if name == "oot" and result.get("holdout_kind"):
        lines += [f"The oot sample here is {result['holdout_kind']}.", ""]
    lines += [
        "Traffic lights on significance 1 − p: green < 95%, yellow 95–99.9%, red ≥ 99.9%. "
        "One-sided: a light turns when the PD looks underestimated.",
        "",
        "| grade | N | D | PD | ODR | binomial p | Jeffreys p | normal z | lights (bin/Jef/z) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for g in t["per_grade"] + [{"grade": "portfolio", **t["portfolio"]}]:
        if not g.get("count"):
            lines.append(f"| {g['grade']} | 0 | 0 | {_pct(g['pd'])} | – | – | – | – | untested |")
            continue
        lines.append(
            f"| {g['grade']} | {g['count']} | {g['bads']} | {_pct(g['pd'])} | "
            f"{_pct(g['observed_bad_rate'])} | {g['binomial_p']:.4f} | "
            f"{g['jeffreys_p']:.4f} | "
            f"{g['normal_z']:.2f} | {g['binomial_light']}/{g['jeffreys_light']}/"
            f"{g['normal_light']} |"
        )
    hl, sp = t["hosmer_lemeshow"], t["spiegelhalter"]
    return lines + [
        "",
        f"Hosmer–Lemeshow: {hl['statistic']:.3f} on {hl['df']} df (rule {hl['df_rule']}), "
        f"p = {hl['p']:.4f} ({hl['light']}). Spiegelhalter: z = {sp['z']:.3f}, two-sided "
        f"p = {sp['p_two_sided']:.4f} ({sp['light']}).",
        "",
        "Heterogeneity (one-sided two-proportion test, worse grade has the higher bad rate): "
        + ", ".join(f"{h['better']}→{h['worse']} p={h['p']:.3g}" for h in t["heterogeneity"])
        + ".",
    ]


def _true_pd_lines(name: str, c: dict) -> list[str]:
    lines = [
        "",
        f"## Published PD vs the generator's true PD ({name}, {c['n_rows']} rows)",
        "",
        f"Tolerance ±{c['tolerance']:.0%} relative; all grades within: **{c['all_within']}** "
        f"(largest gap {_pct(c['max_relative_gap'])}).",
        "",
        "| grade | PD | mean true PD | relative gap | within | rel. s.e. of a bad rate "
        "from the calibration count |",
        "|---|---|---|---|---|---|",
    ]
    for g in c["grades"]:
        lines.append(
            f"| {g['grade']} | {_pct(g['pd'])} | {_pct(g['mean_true_pd'])} | "
            f"{_pct(g['relative_gap'])} | {g['within_tolerance']} | "
            f"{_pct(g['relative_se_calibration'])} |"
        )
    failing = [g for g in c["grades"] if not g["within_tolerance"]]
    if failing:
        lines += [
            "",
            "Why not: "
            + "; ".join(
                f"{g['grade']} (gap {_pct(g['relative_gap'])}, sampling s.e. "
                f"{_pct(g['relative_se_calibration'])})"
                for g in failing
            )
            + ". A grade's PD is estimated from its calibration bads; where the relative "
            "standard error √((1 − PD)/(N·PD)) is near or above 10%, a 20% gap is within "
            "two standard errors of sampling noise (few bads in the best grades); gaps well "
            "beyond it point at drift between samples or a mis-specified score → PD map.",
            "",
            TRUE_PD_NOTE,
        ]
    return lines


def calibration_markdown(result: dict, dataset: str) -> str:
    """reports/<ds>/calibrate/calibration.md: master scale and traffic-light tables per sample."""
    lines = _header_lines(result, dataset) + _master_scale_lines(result["table"])
    lines += _grade_count_lines(result) + _back_test_lines(result)
    for name, t in result["tests"].items():
        lines += _sample_test_lines(result, name, t)
    for name, c in result["true_pd_check"].items():
        lines += _true_pd_lines(name, c)
    lines += [
        "",
        "Caveat: the tests assume independent defaults; correlated defaults (one economy, one "
        "period) make them reject too often, so read a single red light together with the "
        "other periods.",
        "",
    ]
    return "\n".join(lines)


def reliability_plot(rel: pd.DataFrame, path) -> None:
    """Observed bad rate against published PD per grade, log axes, one series per sample."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    lo = max(rel[["pd", "observed_bad_rate"]].replace(0, np.nan).min().min() / 2, 1e-5)
    ax.plot([lo, 1], [lo, 1], color="grey", lw=1, ls="--", label="perfect calibration")
    for name, part in rel.groupby("sample", sort=False):
        ax.plot(part["pd"], part["observed_bad_rate"].clip(lower=lo), marker="o", label=name)
    if "mean_true_pd" in rel.columns:
        part = rel[rel["sample"] == rel["sample"].iloc[0]]
        ax.plot(part["pd"], part["mean_true_pd"], marker="x", ls=":", label="mean true PD")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel("published grade PD"), ax.set_ylabel("observed bad rate")
    ax.set_title("Reliability by grade"), ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, metadata={"Software": None})
    plt.close(fig)
