"""The validation report: one self-contained HTML page for a model validator (rendering only).

Everything on the page comes from the stage outputs handed in (evaluate.json, the calibrate stage's
calibration_backtests.json, the sample design); charts are matplotlib PNGs inlined as base64, the
style sheet is inline, there is no script and no external URL, so the file can be mailed or
archived as it is. Nothing here computes a statistic.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

METHOD_LABELS = {
    "scorecard": "Scorecard",
    "logistic": "Logistic challenger",
    "boosting": "Boosting (benchmark)",
    "rules": "Rule grading A-D",
    "true_pd": "True PD (generator)",
}
LIGHT_COLOURS = {"green": "#1a7f37", "yellow": "#b58900", "red": "#c62828", None: "#777"}
CSS = """
body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px auto;max-width:1280px;color:#1f2328;
font-size:14px;line-height:1.45}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:2px solid #d0d7de;
padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f6f8fa;text-align:center}td.l,th.l{text-align:left}
.note{color:#57606a;font-size:12.5px;max-width:1100px}
.light{display:inline-block;min-width:54px;padding:1px 6px;border-radius:9px;color:#fff;
text-align:center;font-weight:bold;font-size:12px}
.dot{display:inline-block;width:13px;height:13px;border-radius:3px;margin:0 1px;vertical-align:middle}
.kpi{display:flex;gap:14px;flex-wrap:wrap;margin:10px 0}
.kpi div{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:190px;background:#fbfcfd}
.kpi b{display:block;font-size:20px}.head td{background:#fff8c5}
img{max-width:100%;border:1px solid #eaeef2;margin:4px 0}
.row{display:flex;gap:16px;flex-wrap:wrap}.row>div{flex:1 1 560px}
"""


# ---------------------------------------------------------------------------------- formatting
def _esc(x: Any) -> str:
    return html.escape(str(x))


def _num(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def _pct(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{100 * x:.{digits}f}%"


def _int(x: Any) -> str:
    return "n/a" if x is None else f"{int(x):,}"


def _auc_ci(m: dict | None) -> str:
    if not m:
        return "n/a"
    return f"{m['auc']:.3f} <span class=note>[{_num(m.get('ci_low'))}, {_num(m.get('ci_high'))}]</span>"


def _light(value: str | None) -> str:
    return (
        f'<span class="light" style="background:{LIGHT_COLOURS.get(value, "#777")}">'
        f"{_esc(value or 'n/a')}</span>"
    )


def _table(
    header: list[str], rows: list[list[Any]], left: int = 1, css: list[str] | None = None
) -> str:
    """An HTML table; the first ``left`` columns are left-aligned; cells are trusted HTML."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{h}</th>' for i, h in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        cells = "".join(
            f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(row)
        )
        cls = f' class="{css[r]}"' if css and css[r] else ""
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _png(fig: plt.Figure, alt: str) -> str:
    from matplotlib.ticker import FuncFormatter

    for ax in fig.axes:
        if ax.get_yscale() == "log":
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


# -------------------------------------------------------------------------------------- charts
def forest_chart(cells: list[dict]) -> str:
    """AUC with clustered 95% CI per method, one panel row per sample x segment."""
    rows = []
    for c in cells:
        for m, v in (c.get("methods") or {}).items():
            rows.append((f"{c['sample']} / {c['segment']}", METHOD_LABELS.get(m, m), v))
    if not rows:
        return ""
    groups = list(dict.fromkeys(r[0] for r in rows))
    methods = list(dict.fromkeys(r[1] for r in rows))
    fig, ax = plt.subplots(figsize=(7.6, 0.55 + 0.42 * len(rows)))
    colours = dict(zip(methods, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    y, ticks, labels = 0, [], []
    for g in groups:
        for label, method, v in [r for r in rows if r[0] == g]:
            lo, hi = v.get("ci_low"), v.get("ci_high")
            ax.errorbar(
                v["auc"],
                y,
                xerr=[[v["auc"] - lo], [hi - v["auc"]]],
                fmt="o",
                color=colours[method],
                capsize=3,
            )
            ticks.append(y)
            labels.append(f"{label}: {method}")
            y -= 1
        y -= 0.6
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("AUC with 95% cluster-bootstrap interval (customers resampled)")
    ax.axvline(0.5, color="grey", ls=":", lw=1)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Discrimination by sample and segment")
    return _png(fig, "AUC with clustered confidence intervals by sample and segment")


def roc_chart(roc: pd.DataFrame | None, methods: dict) -> str:
    if roc is None or roc.empty:
        return ""
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    for m, label in METHOD_LABELS.items():
        col = f"tpr_{m}"
        if col in roc.columns:
            auc = ((methods.get(m) or {}).get("count") or {}).get("auc")
            ax.plot(roc["fpr"], roc[col], label=f"{label} (AUC {_num(auc)})")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    ax.set(
        xlabel="Goods flagged (false-positive rate)",
        ylabel="Bads flagged (true-positive rate)",
        title="ROC, out-of-time sample, current segment",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig, "ROC curves out of time")


def back_test_chart(back: dict, master: list[dict]) -> str:
    """Observed default rate per grade in each annual cohort against the published grade PD."""
    cohorts = [c for c in back.get("cohorts", []) if c["segment"] == "current"]
    if not cohorts or not master:
        return ""
    grades = [g["grade"] for g in master]
    x = np.arange(len(grades))
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.plot(x, [100 * g["pd"] for g in master], "k-o", label="published grade PD", zorder=3)
    floor = 50 * min(g["pd"] for g in master)  # half the smallest PD, in %
    for c in cohorts:
        per = {g["grade"]: g for g in c["tests"]["per_grade"]}
        odr = [
            max(100 * per[g]["observed_bad_rate"], floor)
            if per.get(g, {}).get("count")
            else np.nan
            for g in grades
        ]
        ax.plot(
            x,
            odr,
            "s--",
            alpha=0.8,
            label=f"cohort {pd.Timestamp(c['cohort_date']):%Y-%m-%d} ({c['customers']:,} customers)",
        )
    ax.set_xticks(x, grades)
    ax.set_yscale("log")
    ax.axhline(floor, color="grey", lw=0.8, ls=":")
    ax.set(
        xlabel="Grade (best first)",
        ylabel="Default rate (%, log scale)",
        title="Back-test: observed default rate by annual cohort\n(no default: drawn on the "
        "dotted line)",
    )
    ax.legend(fontsize=8)
    return _png(fig, "Back-test of grade PDs by annual cohort")


def truth_chart(check: dict) -> str:
    grades = check.get("grades") or []
    if not grades:
        return ""
    x = np.arange(len(grades))
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.plot(x, [100 * g["pd"] for g in grades], "k-o", label="published grade PD")
    ax.plot(
        x,
        [100 * (g["mean_true_pd"] or np.nan) for g in grades],
        "r-s",
        label="mean true PD of the grade's snapshots",
    )
    ax.set_xticks(x, [g["grade"] for g in grades])
    ax.set_yscale("log")
    ax.set(
        xlabel="Grade (best first)",
        ylabel="PD (%, log scale)",
        title="Grade PD against the generator's true PD (out of time)",
    )
    ax.legend(fontsize=8)
    return _png(fig, "Grade PD against the true PD")


# ------------------------------------------------------------------------------------ sections
def _summary(ev: dict) -> str:
    s, m, inf = ev["sample"], ev["methods"], ev.get("inference") or {}
    card, rules = m["scorecard"]["count"], m["rules"]["count"]
    pair = (ev["paired_tests"].get("scorecard_vs_rules") or {}).get("count") or {}
    truth = (ev.get("true_pd") or {}).get("count")
    boxes = [
        (
            "Scorecard AUC (OOT, current)",
            _num(card["auc"]),
            f"95% CI {_num(card['ci_low'])}–{_num(card['ci_high'])}",
        ),
        (
            "Rule grading AUC",
            _num(rules["auc"]),
            f"95% CI {_num(rules['ci_low'])}–{_num(rules['ci_high'])}",
        ),
        (
            "Scorecard − rules",
            f"{pair.get('difference', float('nan')):+.3f}",
            f"95% CI {_num(pair.get('ci_low'))} to {_num(pair.get('ci_high'))}, p = {pair.get('p_value', float('nan')):.2g}",
        ),
    ]
    if truth:
        same = truth.get("scorecard_auc_same_rows", card["auc"])
        boxes.append(
            (
                "True-PD AUC (same rows)",
                _num(truth["auc"]),
                f"scorecard {_num(same)} on these rows, ratio {same / truth['auc']:.3f}",
            )
        )
    kpi = "".join(
        f"<div>{_esc(t)}<b>{v}</b><span class=note>{_esc(n)}</span></div>" for t, v, n in boxes
    )
    kind = (
        "stratified hold-out (single observation date)"
        if s["kind"] == "stratified_holdout"
        else "out of time"
    )
    return (
        f"<div class=kpi>{kpi}</div><p class=note>Headline sample: {kind}, segment current: "
        f"{_int(s['compared'])} snapshots of {_int(s['customers'])} customers, {_int(s['n_bad'])} bads "
        f"({_pct(s['bad_rate'])}). Intervals: {_int(inf.get('n_resamples'))} cluster-bootstrap "
        f"resamples over {_int(inf.get('n_customers'))} customers (seed {_esc(inf.get('seed'))}); "
        "every resample keeps all snapshots of a drawn customer.</p>"
    )


def _design(design: dict) -> str:
    parts = []
    rows = [
        [
            _esc(r["sample"]),
            _esc(r.get("segment", "")),
            _int(r["snapshots"]),
            _int(r["customers"]),
            _int(r.get("bads")),
            _pct(r.get("bad_rate")),
        ]
        for r in design.get("by_sample", [])
    ]
    parts.append(
        _table(["Sample", "Segment", "Snapshots", "Customers", "Bads", "Bad rate"], rows, 2)
    )
    excl = design.get("exclusions_by_reason") or {}
    if excl:
        parts.append("<h3>Exclusions by reason</h3>")
        parts.append(
            _table(["Reason", "Snapshots"], [[_esc(k), _int(v)] for k, v in excl.items()])
        )
    overlap = design.get("overlap")
    if overlap:
        parts.append(
            "<p class=note>"
            + "; ".join(f"{_esc(k)}: {_int(v)}" for k, v in overlap.items())
            + "</p>"
        )
    if design.get("notes"):
        parts.append(
            "<ul class=note>" + "".join(f"<li>{_esc(n)}</li>" for n in design["notes"]) + "</ul>"
        )
    parts.append(f"<p class=note>Source: {_esc(design.get('source', ''))}.</p>")
    return "".join(parts)


def _segments(ev: dict) -> str:
    rows, css = [], []
    for c in ev.get("segments") or []:
        ms = c.get("methods") or {}
        pr = (c.get("paired_tests") or {}).get("scorecard_vs_rules")
        rows.append(
            [
                f"{_esc(c['sample'])}<br><span class=note>{_esc(c['sample_label'])}</span>",
                _esc(c["segment"]),
                f"{_int(c['n'])} / {_int(c['customers'])} / {_int(c['n_bad'])}",
                *[
                    _auc_ci(ms.get(k))
                    for k in ("scorecard", "logistic", "boosting", "rules", "true_pd")
                ],
                "n/a"
                if not pr
                else f"{pr['difference']:+.3f} [{pr['ci_low']:+.3f}, {pr['ci_high']:+.3f}]",
            ]
        )
        css.append("head" if c.get("headline") else "")
    table = _table(
        [
            "Sample",
            "Segment",
            "Snapshots / customers / bads",
            "Scorecard",
            "Logistic",
            "Boosting",
            "Rules",
            "True PD",
            "Scorecard − rules",
        ],
        rows,
        2,
        css,
    )
    return table + (
        "<p class=note>Highlighted: the headline (out of time, current segment). AUC with 95% "
        "cluster-bootstrap percentile intervals. <i>oot_known</i> = known customers, later dates: "
        "customers also in development, so it measures memory as much as prediction.</p>"
    )


def _inference(ev: dict) -> str:
    rows = []
    for m, label in METHOD_LABELS.items():
        c = ((ev["methods"].get(m) or {}).get("count")) or (
            (ev.get("true_pd") or {}).get("count") if m == "true_pd" else None
        )
        if not c:
            continue
        rows.append(
            [
                _esc(label),
                _num(c["auc"]),
                _num(c.get("se_delong_independent"), 4),
                _num(c.get("se_cluster_bootstrap"), 4),
                _num(c.get("design_effect"), 2),
                f"{_num(c.get('gini_ci_low'))} – {_num(c.get('gini_ci_high'))}",
                f"{_num(c.get('ks'))} [{_num(c.get('ks_ci_low'))}, {_num(c.get('ks_ci_high'))}]",
            ]
        )
    pairs = []
    for key, v in (ev.get("paired_tests") or {}).items():
        c = (v or {}).get("count")
        if c:
            dl = c.get("delong_independent") or {}
            pairs.append(
                [
                    _esc(key.replace("_", " ")),
                    f"{c['difference']:+.4f}",
                    f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]",
                    _num(c["se"], 4),
                    f"{c['p_value']:.2g}",
                    _num(dl.get("se"), 4),
                    "n/a" if dl.get("p_value") is None else f"{dl['p_value']:.2g}",
                ]
            )
    return (
        _table(
            [
                "Method",
                "AUC",
                "SE DeLong (assumes independence)",
                "SE cluster bootstrap",
                "Design effect",
                "Gini 95% CI",
                "KS [95% CI]",
            ],
            rows,
        )
        + "<h3>Paired differences (same resamples for both scores)</h3>"
        + _table(
            [
                "Pair",
                "AUC difference",
                "95% CI",
                "SE",
                "p (bootstrap)",
                "SE DeLong",
                "p DeLong (independence)",
            ],
            pairs,
        )
        + "<p class=note>Design effect = bootstrap variance / DeLong variance: how much the "
        "repeated monthly snapshots of one customer shrink the effective sample.</p>"
    )


def _master_scale_table(cal: dict) -> str:
    """The master scale: score range, PD and calibration-sample figures per grade."""
    master = cal.get("master_scale") or []
    return _table(
        [
            "Grade",
            "Letter",
            "Score from",
            "Score below",
            "PD",
            "Snapshots",
            "Customers",
            "Expected defaults",
            "Observed (calibration)",
        ],
        [
            [
                _esc(g["grade"]),
                _esc(g["letter_grade"]),
                ""
                if g.get("score_min") is None or not np.isfinite(g["score_min"])
                else int(g["score_min"]),
                ""
                if g.get("score_max") is None or not np.isfinite(g["score_max"])
                else int(g["score_max"]),
                _pct(g["pd"]),
                _int(g["count"]),
                _int(g.get("customers")),
                _num(g.get("expected_defaults"), 1),
                _pct(g.get("observed_bad_rate")),
            ]
            for g in master
        ],
        2,
    )


def _back_test_rows(back: dict) -> list[list[str]]:
    """One row per annual cohort (and pooled line): portfolio, Hosmer–Lemeshow and Spiegelhalter
    tests with their traffic lights and the per-grade Jeffreys lights."""
    rows = []
    for c in (back.get("cohorts") or []) + (back.get("pooled") or []):
        t = c["tests"]
        port, hl, sp = t["portfolio"], t["hosmer_lemeshow"], t["spiegelhalter"]
        when = (
            f"{pd.Timestamp(c['cohort_date']):%Y-%m-%d}"
            if "cohort_date" in c
            else f"<i>{_esc(c['label'])}</i>"
        )
        grade_lights = "".join(
            f'<span class="dot" title="{_esc(g["grade"])}: {_esc(g.get("jeffreys_light"))}" '
            f'style="background:{LIGHT_COLOURS.get(g.get("jeffreys_light"), "#ccc")}"></span>'
            for g in t["per_grade"]
        )
        rows.append(
            [
                _esc(c["segment"]),
                when,
                _int(c["customers"]),
                _pct(port["pd"]),
                _pct(port["observed_bad_rate"]),
                f"{port['binomial_p']:.3f} {_light(port['binomial_light'])}",
                f"{port['jeffreys_p']:.3f} {_light(port['jeffreys_light'])}",
                f"{_num(hl['statistic'], 2)} on {hl['df']} df, p {_num(hl['p'])} {_light(hl['light'])}",
                f"{_num(sp['p_two_sided'])} {_light(sp['light'])}",
                grade_lights,
                _light(c["verdict"]),
            ]
        )
    return rows


def _calibration(cal: dict) -> str:
    out = []
    ct = cal.get("central_tendency")
    gc = cal.get("grade_count") or {}
    out.append(
        f"<p>Calibration: <b>{_esc(cal.get('method_choice', cal.get('method')))}</b>. "
        + (
            f"Anchored to the long-run central tendency {_pct(ct['value'])} ({_esc(ct['rule'])})."
            if ct
            else "Not anchored: point-in-time PDs at the calibration sample's level."
        )
        + f" Grades: {_int(gc.get('chosen'))} of {_int(gc.get('requested'))} requested"
        + (f" — {_esc(gc.get('reason'))}" if gc.get("chosen") != gc.get("requested") else "")
        + "</p>"
    )
    out.append(_master_scale_table(cal))
    back = cal.get("back_tests") or {}
    rows = _back_test_rows(back)
    out.append("<h3>Back-tests by annual cohort</h3>")
    out.append(
        _table(
            [
                "Segment",
                "Cohort",
                "Customers",
                "Mean PD",
                "Default rate",
                "Binomial p",
                "Jeffreys p",
                "Hosmer–Lemeshow",
                "Spiegelhalter p",
                "Jeffreys per grade (best first)",
                "Verdict",
            ],
            rows,
            2,
        )
    )
    out.append(
        f"<p class=note>{_esc(back.get('rule', ''))}. Lights on significance 1 − p: green &lt; 95%, "
        "yellow 95–99.9%, red ≥ 99.9%; one-sided where a light turns on an underestimated PD. "
        "Verdict = worst of the portfolio Jeffreys and Hosmer–Lemeshow lights; the squares are the "
        "Jeffreys lights of the grades, best grade first (grey: no customer). The tests assume "
        "independent defaults within a cohort; a common economy makes them reject too often.</p>"
    )
    return "".join(out)


def _truth(ev: dict, cal: dict) -> str:
    checks = cal.get("true_pd_check") or {}
    if not checks and "true_pd" not in ev:
        return ""
    out = ["<h2>Against the truth (synthetic data)</h2>"]
    truth, card = (ev.get("true_pd") or {}).get("count"), ev["methods"]["scorecard"]["count"]
    if truth:
        same = truth.get("scorecard_auc_same_rows", card["auc"])
        out.append(
            f"<p>Out of time, current segment, the {_int(truth.get('n_rows_with_truth'))} "
            f"snapshots with a true PD: scorecard AUC {_num(same)} against the true-PD AUC "
            f"{_auc_ci(truth)} (ratio {same / truth['auc']:.3f}; the issue's bar is 0.97).</p>"
        )
    chart = ""
    order = ["oot", "oot_known", "oot_delinquent", "calibration", "all_snapshots"]
    names = sorted(checks, key=lambda n: (order.index(n) if n in order else len(order), n))
    for name in names:
        c = checks[name]
        out.append(
            f"<h3>Grade PD vs mean true PD — {_esc(name)} ({_int(c['n_rows'])} snapshots)</h3>"
        )
        out.append(
            _table(
                [
                    "Grade",
                    "Published PD",
                    "Mean true PD",
                    "Snapshots",
                    "Relative gap",
                    f"Within ±{_pct(c['tolerance'], 0)}",
                ],
                [
                    [
                        _esc(g["grade"]),
                        _pct(g["pd"]),
                        _pct(g["mean_true_pd"]),
                        _int(g["n_true_pd"]),
                        _pct(g["relative_gap"], 1),
                        "yes" if g["within_tolerance"] else "<b>no</b>",
                    ]
                    for g in c["grades"]
                ],
            )
        )
        if name == "oot":
            chart = truth_chart(c)
    out.append(chart)
    return "".join(out)


def render(
    dataset: str,
    evaluation: dict,
    calibration: dict,
    design: dict,
    roc: pd.DataFrame | None = None,
) -> str:
    """The whole page as one HTML string (deterministic for the same inputs)."""
    body = [
        f"<h1>Validation report — {_esc(dataset)}</h1>",
        f"<p class=note>Code version {_esc(evaluation.get('code_version', ''))}. Built by the "
        "validate stage from metrics/&lt;ds&gt;/evaluate.json, reports/&lt;ds&gt;/calibrate/"
        "calibration_backtests.json and the sample design; reports/&lt;ds&gt;/evaluate/comparison.md holds "
        "the same comparison as text for diffs.</p>",
        "<h2>Headline</h2>",
        _summary(evaluation),
        "<h2>Sample design and exclusions</h2>",
        _design(design),
        "<h2>Discrimination by sample and delinquency segment</h2>",
        _segments(evaluation),
        '<div class="row"><div>',
        forest_chart(evaluation.get("segments") or []),
        "</div><div>",
        roc_chart(roc, evaluation["methods"]),
        "</div></div>",
        "<h2>Inference: repeated customers</h2>",
        _inference(evaluation),
        "<h2>Calibration and back-tests</h2>",
        _calibration(calibration),
        back_test_chart(
            calibration.get("back_tests") or {}, calibration.get("master_scale") or []
        ),
        _truth(evaluation, calibration),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Validation report — {_esc(dataset)}</title><style>{CSS}</style></head><body>"
        + "\n".join(b for b in body if b)
        + "</body></html>\n"
    )
