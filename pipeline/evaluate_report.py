"""Plots and the credit manager's comparison report of the ``evaluate`` stage (presentation only,
no maths).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline import metrics  # noqa: E402
from pipeline.card.routing import cards  # noqa: E402
from pipeline.domain import LETTER_GRADES as GRADES  # noqa: E402
from pipeline.io import save_figure  # noqa: E402

LABELS = {
    "scorecard": "Scorecard",
    "logistic": "Logistic challenger",
    "boosting": "Boosting (benchmark)",
    "rules": "Rule grading A-D",
}
PNG_META = {"Software": None}
SEGMENT_NAMES = {
    "accepted by both": "Approved by both",
    "accepted by challenger only (swap-in)": "Approved by the scorecard only (swap-in)",
    "accepted by champion only (swap-out)": "Approved by the rules only (swap-out)",
    "rejected by both": "Declined by both",
}


# ------------------------------------------------------------------------------------ plot tables
def roc_table(frame: pd.DataFrame, n_points: int = 101) -> pd.DataFrame:
    """True-positive rate of each method on a common false-positive-rate grid (one CSV for dvc
    plots).
    """
    grid = np.linspace(0.0, 1.0, n_points)
    out = pd.DataFrame({"fpr": grid})
    for method in LABELS:
        out[f"tpr_{method}"] = metrics.roc_on_grid(frame["is_bad"], frame[f"risk_{method}"], grid)
    return out


def ks_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Cumulative share of bads and goods at or below each scorecard score (the KS chart)."""
    counts = (
        pd.crosstab(frame["score"], frame["is_bad"])
        .reindex(columns=[0, 1], fill_value=0)
        .sort_index()
    )
    cum = counts.cumsum() / counts.sum()
    return pd.DataFrame(
        {
            "score": counts.index.astype(int),
            "cum_bad_share": cum[1].to_numpy(),
            "cum_good_share": cum[0].to_numpy(),
            "ks_gap": (cum[1] - cum[0]).abs().to_numpy(),
        }
    )


def score_distribution(frame: pd.DataFrame, n_bins: int = 20) -> pd.DataFrame:
    """Share of goods and of bads per equal-width scorecard score bin."""
    lo, hi = int(frame["score"].min()), int(frame["score"].max())
    edges = np.unique(np.linspace(lo, hi + 1, n_bins + 1).round().astype(int))
    idx = np.clip(np.searchsorted(edges, frame["score"], side="right") - 1, 0, len(edges) - 2)
    counts = pd.crosstab(idx, frame["is_bad"]).reindex(
        index=range(len(edges) - 1), columns=[0, 1], fill_value=0
    )
    return pd.DataFrame(
        {
            "score_from": edges[:-1],
            "score_to": edges[1:],
            "goods": counts[0].to_numpy(),
            "bads": counts[1].to_numpy(),
            "good_share": (counts[0] / counts[0].sum()).to_numpy(),
            "bad_share": (counts[1] / counts[1].sum()).to_numpy(),
        }
    )


def bad_rate_by_band(frame: pd.DataFrame, n_bands: int) -> pd.DataFrame:
    """Scorecard score deciles (band 1 = lowest scores; tied scores share a band, bands renumbered
    1..k): count, bads, bad rate, exposure-weighted bad rate, cumulative share of bads caught and
    lift."""
    band = (
        np.unique(
            metrics.bands_by_shares(frame["risk_scorecard"], np.ones(n_bands)), return_inverse=True
        )[1]
        + 1
    )
    g = frame.assign(band=band, bad_w=frame["is_bad"] * frame["weight"]).groupby("band", sort=True)
    out = g.agg(
        score_min=("score", "min"),
        score_max=("score", "max"),
        count=("is_bad", "size"),
        bads=("is_bad", "sum"),
        exposure=("weight", "sum"),
        bad_exposure=("bad_w", "sum"),
    ).reset_index()
    out["bad_rate"] = out["bads"] / out["count"]
    out["exposure_bad_rate"] = out["bad_exposure"] / out["exposure"].where(out["exposure"] > 0)
    out["cum_bad_capture"] = out["bads"].cumsum() / out["bads"].sum()
    out["lift"] = out["bad_rate"] / frame["is_bad"].mean()
    out["band_label"] = [
        f"{a}-{b}" for a, b in zip(out["score_min"], out["score_max"], strict=True)
    ]
    return out


# ------------------------------------------------------------------------------------------ plots
def _save(fig: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    save_figure(fig, path, dpi=110, metadata=PNG_META)
    plt.close(fig)


def chart_tables(frame: pd.DataFrame, n_bands: int) -> dict[str, pd.DataFrame]:
    """The tables behind the charts (written as reports/<ds>/evaluate/evaluate_<name>.csv)."""
    return {
        "roc": roc_table(frame),
        "ks": ks_table(frame),
        "score_distribution": score_distribution(frame),
        "bad_rate_by_band": bad_rate_by_band(frame, n_bands),
    }


def _roc_chart(roc: pd.DataFrame, result: dict[str, Any], path: Path, dataset: str) -> None:
    sample = "hold-out" if result["sample"]["kind"] == "stratified_holdout" else "out-of-time"
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    for method, label in LABELS.items():
        auc = result["methods"][method]["count"]["auc"]
        ax.plot(roc["fpr"], roc[f"tpr_{method}"], label=f"{label} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="Random (AUC 0.500)")
    ax.set(
        title=f"ROC on the {sample} sample - {dataset}",
        xlabel="Goods flagged (false-positive rate, share)",
        ylabel="Bads flagged (true-positive rate, share)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)


def _ks_chart(ks: pd.DataFrame, path: Path, dataset: str) -> None:
    k = int(ks["ks_gap"].idxmax())
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.step(
        ks["score"],
        ks["cum_bad_share"],
        where="post",
        label="Bads at or below score",
        color="tab:red",
    )
    ax.step(
        ks["score"],
        ks["cum_good_share"],
        where="post",
        label="Goods at or below score",
        color="tab:green",
    )
    ax.vlines(
        ks["score"][k],
        ks["cum_good_share"][k],
        ks["cum_bad_share"][k],
        color="black",
        label=f"KS = {ks['ks_gap'][k]:.3f} at score {ks['score'][k]}",
    )
    ax.set(
        title=f"Scorecard KS chart - {dataset}",
        xlabel="Scorecard score (points)",
        ylabel="Cumulative share of the class",
    )
    ax.legend(fontsize=8)
    _save(fig, path)


def _distribution_chart(dist: pd.DataFrame, path: Path, dataset: str) -> None:
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    centre = (dist["score_from"] + dist["score_to"]) / 2
    width = (dist["score_to"] - dist["score_from"]).min() * 0.42
    ax.bar(
        centre - width / 2, dist["good_share"] * 100, width=width, label="Goods", color="tab:green"
    )
    ax.bar(centre + width / 2, dist["bad_share"] * 100, width=width, label="Bads", color="tab:red")
    ax.set(
        title=f"Scorecard score distribution by outcome - {dataset}",
        xlabel="Scorecard score (points)",
        ylabel="Share of the class (%)",
    )
    ax.legend()
    _save(fig, path)


def _band_chart(bands: pd.DataFrame, path: Path, dataset: str) -> None:
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    ax.bar(bands["band_label"], bands["bad_rate"] * 100, color="tab:blue", label="By count")
    ax.plot(
        bands["band_label"],
        bands["exposure_bad_rate"] * 100,
        "o-",
        color="tab:orange",
        label="Exposure-weighted",
    )
    ax.set(
        title=f"Bad rate by scorecard score band - {dataset}",
        xlabel="Score band (points, lowest first)",
        ylabel="Bad rate (%)",
    )
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    ax.legend()
    _save(fig, path)


def _migration_chart(migration: pd.DataFrame, path: Path, dataset: str) -> None:
    grid = migration.pivot(index="grade_from", columns="grade_to", values="bad_rate").reindex(
        GRADES, axis=0
    )
    grid = grid.reindex(GRADES, axis=1)
    count = (
        migration.pivot(index="grade_from", columns="grade_to", values="count")
        .reindex(GRADES)
        .reindex(GRADES, axis=1)
    )
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    im = ax.imshow(grid.to_numpy(dtype=float) * 100, cmap="RdYlGn_r", vmin=0)
    for i in range(len(GRADES)):
        for j in range(len(GRADES)):
            n, rate = int(count.iat[i, j]), grid.iat[i, j]
            text = f"n={n}\n{rate * 100:.1f}%" if n else "n=0"
            shade = im.norm(rate * 100) if n else 0.5  # both ends of the colour map are dark
            colour = "white" if shade < 0.15 or shade > 0.8 else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color=colour)
    ax.set_xticks(range(4), GRADES)
    ax.set_yticks(range(4), GRADES)
    ax.set(
        title=f"Rule grade x scorecard grade: bad rate - {dataset}",
        xlabel="Scorecard grade (same shares as the rules)",
        ylabel="Rule grade",
    )
    fig.colorbar(im, ax=ax, label="Bad rate (%)")
    _save(fig, path)


def write_plots(
    tables: dict[str, pd.DataFrame],
    migration: pd.DataFrame,
    result: dict[str, Any],
    folder: Path,
    dataset: str,
) -> None:
    """ROC, KS, score distribution, bad rate by band and the migration heat map as PNGs."""
    _roc_chart(tables["roc"], result, folder / "evaluate_roc.png", dataset)
    _ks_chart(tables["ks"], folder / "evaluate_ks.png", dataset)
    _distribution_chart(
        tables["score_distribution"], folder / "evaluate_score_distribution.png", dataset
    )
    _band_chart(tables["bad_rate_by_band"], folder / "evaluate_bad_rate_by_band.png", dataset)
    _migration_chart(migration, folder / "evaluate_migration.png", dataset)


# ----------------------------------------------------------------------------------------- report
def _pct(x: Any, digits: int = 1) -> str:
    return (
        "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.{digits}f}%"
    )


def _num(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def _auc_ci(m: dict | None) -> str:
    return "n/a" if m is None else f"{m['auc']:.3f} ({m['ci_low']:.3f}-{m['ci_high']:.3f})"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


def _verdict(test: dict | None, name_a: str, name_b: str, level: float) -> str:
    if test is None:
        return "The paired test could not be computed."
    d, lo, hi, p = test["difference"], test["ci_low"], test["ci_high"], test["p_value"]
    better, worse = (name_a, name_b) if d >= 0 else (name_b, name_a)
    auc_better, auc_worse = (
        (test["auc_a"], test["auc_b"]) if d >= 0 else (test["auc_b"], test["auc_a"])
    )
    signif = p < 1 - level
    return (
        f"The {better} ranks risk "
        f"{'better' if signif else 'slightly better, but not significantly better'} than the "
        f"{worse}: AUC {auc_better:.3f} vs {auc_worse:.3f}, difference {d:+.3f} "
        f"({100 * level:.0f}% CI {lo:+.3f} to {hi:+.3f}), Gini difference {2 * d:+.3f}, paired "
        f"cluster-bootstrap p = {p:.2g}."
    )


def _segment_profile(
    part: pd.DataFrame, column: str, label: str, names: dict | None = None, top: int = 5
) -> list[str]:
    if part.empty or column not in part.columns:
        return ["(none)"]
    g = part.groupby(part[column].astype("string").fillna("(none)"))["is_bad"].agg(
        ["size", "mean"]
    )
    g = g.sort_values(["size"], ascending=False, kind="stable").head(top)
    rows = [
        [
            k if names is None else f"{k} {names.get(k, '')}".strip(),
            int(r["size"]),
            _pct(r["mean"]),
        ]
        for k, r in g.iterrows()
    ]
    return _table([label, "customers", "bad rate"], rows)


def segment_lines(result: dict[str, Any], level: float) -> list[str]:
    """Table of AUCs with clustered CIs per sample x segment (headline first)."""
    cells = result.get("segments") or []
    if not cells:
        return []
    lines = [
        "## By sample and delinquency segment",
        "",
        "The headline is the *current* segment of the out-of-time sample. *Delinquent* customers "
        "(already seriously behind at the as-of date) are reported on their own; "
        "*oot_known* = known customers, later dates (customers also in development).",
        "",
    ]
    rows = []
    for c in cells:
        ms = c["methods"] or {}
        pr = (c["paired_tests"] or {}).get("scorecard_vs_rules") or {}
        rows.append(
            [
                f"{c['sample']} ({c['sample_label']})",
                c["segment"] + (" **headline**" if c["headline"] else ""),
                f"{c['n']:,} / {c['customers']:,} / {c['n_bad']:,}",
                *[_auc_ci(ms.get(k)) for k in ("scorecard", "logistic", "boosting", "rules")],
                _auc_ci(ms.get("true_pd")) if "true_pd" in ms else "n/a",
                f"{pr['difference']:+.3f} ({pr['ci_low']:+.3f} to {pr['ci_high']:+.3f})"
                if pr
                else "n/a",
            ]
        )
    lines += _table(
        [
            "Sample",
            "Segment",
            "Snapshots / customers / bads",
            "Scorecard AUC",
            "Logistic",
            "Boosting",
            "Rules",
            "True PD",
            "Scorecard - rules",
        ],
        rows,
    )
    lines += [
        "",
        f"All intervals: {100 * level:.0f}% cluster bootstrap over customers.",
        "",
    ]
    return lines


def _sample_lines(result: dict[str, Any]) -> list[str]:
    """Which sample, what was left out, and the verdict of the headline paired test."""
    s, level = result["sample"], result["params"]["ci_level"]
    holdout = s["kind"] == "stratified_holdout"
    lines = [f"# Scorecard vs rule grading - dataset `{result['dataset']}`", ""]
    if holdout:
        lines.append(
            f"**Sample**: a stratified hold-out of {s['compared']:,} customers (this dataset has "
            "a single observation date, so there is no later period to test on; the hold-out was "
            "never used to build any model)."
        )
    else:
        lines.append(
            f"**Sample**: the out-of-time sample, snapshots from {s['as_of_first']:%Y-%m-%d} to "
            f"{s['as_of_last']:%Y-%m-%d} (after the development period): {s['compared']:,} "
            f"customer-snapshots of {s['customers']:,} customers."
        )
    undefined = {"exclude": "excluded from every method", "worst": "ranked with D"}[
        result["params"]["rule_undefined"]
    ]
    lines += [
        f"Bads: {s['n_bad']:,} ({_pct(s['bad_rate'])}). Left out: "
        f"{s['immature_or_indeterminate']:,} snapshots whose outcome is not known yet, "
        f"indeterminate or already in default at the as-of date; {s['rule_grade_undefined']:,} with rule grade UNDEFINED ({undefined}).",
        "",
        "## Which method ranks risk better",
        "",
        _verdict(
            result["paired_tests"]["scorecard_vs_rules"]["count"],
            "scorecard",
            "rule grading",
            level,
        ),
        "",
    ]
    exp_test = result["paired_tests"]["scorecard_vs_rules"]["exposure"]
    if exp_test is not None:
        lines += [
            "Weighted by open balance (a large receivable counts more than a small one), t"
            + _verdict(exp_test, "scorecard", "rule grading", level)[1:],
            "",
        ]
    return lines


def _method_row(label: str, figures: dict[str, Any]) -> list[str]:
    """AUC with CI, Gini and KS by count, then by exposure (n/a where not computable)."""
    c, e = figures["count"], figures["exposure"]
    return [
        label,
        _auc_ci(c),
        _num(c["gini"]),
        _num(c["ks"]),
        _auc_ci(e),
        _num(e and e["gini"]),
        _num(e and e["ks"]),
    ]


def _method_lines(result: dict[str, Any]) -> list[str]:
    """Discrimination of every method by count and exposure, by segment, and the paired tests."""
    s, m, level = result["sample"], result["methods"], result["params"]["ci_level"]
    lines: list[str] = []
    rows = [_method_row(label, m[method]) for method, label in LABELS.items()]
    if "true_pd" in result:
        rows.append(_method_row("True PD of the generator (ceiling)", result["true_pd"]))
    lines += _table(
        [
            "Method",
            f"AUC ({100 * level:.0f}% CI)",
            "Gini",
            "KS",
            "AUC by exposure (CI)",
            "Gini by exposure",
            "KS by exposure",
        ],
        rows,
    )
    lines += [
        "",
        "AUC = chance that a random bad is ranked riskier than a random good (0.5 = coin toss, 1 "
        "= perfect). Gini = 2 x AUC - 1. KS = largest gap between the score distributions of "
        "bads and goods. The rule grading has only four values, which caps how finely it can "
        "rank.",
        "",
    ]
    lines += segment_lines(result, level)
    full = result.get("models_all_matured_oot")
    if full and s["rule_grade_undefined"]:
        lines += [
            f"On all {full['n']:,} matured cases, rule grade UNDEFINED included, the AUCs are: "
            f"scorecard {full['scorecard']:.3f}, logistic {full['logistic']:.3f}, boosting "
            f"{full['boosting']:.3f}.",
            "",
        ]
    rows = []
    for other in ("logistic", "boosting"):
        t = result["paired_tests"][f"scorecard_vs_{other}"]["count"]
        if t is not None:
            rows.append(
                [
                    f"Scorecard vs {LABELS[other].lower()}",
                    f"{t['difference']:+.3f}",
                    f"{t['ci_low']:+.3f} to {t['ci_high']:+.3f}",
                    f"{t['p_value']:.2g}",
                    _num((t.get("delong_independent") or {}).get("p_value"), 3),
                ]
            )
    lines += _table(
        [
            "Paired test (cluster bootstrap)",
            "AUC difference",
            f"{100 * level:.0f}% CI",
            "p-value",
            "DeLong p (assumes independent rows)",
        ],
        rows,
    )
    lines += [
        "",
        "The boosting model is a benchmark of what the data allows; it is not for use in "
        "decisions.",
        "",
    ]
    return lines


def _grade_lines(decisions: dict[str, Any], bands: pd.DataFrame) -> list[str]:
    """Bad rate per grade of both gradings and per scorecard score band."""
    lines: list[str] = []
    rg, sg = decisions["rule_grades"], decisions["scorecard_grades"]
    lines += [
        "## Bad rate per grade",
        "",
        "The scorecard is cut into grades A-D holding the same shares of customers as the rule "
        "grades, so the two columns compare like with like.",
        "",
    ]
    rows = [
        [
            g,
            f"{int(rg.at[i, 'count']):,}",
            _pct(rg.at[i, "share"]),
            _pct(rg.at[i, "bad_rate"]),
            _pct(rg.at[i, "weighted_bad_rate"]),
            f"{int(sg.at[i, 'count']):,}",
            _pct(sg.at[i, "bad_rate"]),
            _pct(sg.at[i, "weighted_bad_rate"]),
        ]
        for i, g in enumerate(GRADES)
    ]
    lines += _table(
        [
            "Grade",
            "Rules: customers",
            "share",
            "bad rate",
            "bad rate by exposure",
            "Scorecard: customers",
            "bad rate",
            "bad rate by exposure",
        ],
        rows,
    )
    lines += ["", "### Bad rate per scorecard score band (deciles, lowest scores first)", ""]
    rows = [
        [
            int(r.band),
            f"{r.score_min}-{r.score_max}",
            f"{int(r.count):,}",
            _pct(r.bad_rate),
            _pct(r.exposure_bad_rate),
            _pct(r.cum_bad_capture),
            f"{r.lift:.2f}",
        ]
        for r in bands.itertuples()
    ]
    lines += _table(
        [
            "Band",
            "Score (points)",
            "Customers",
            "Bad rate",
            "Bad rate by exposure",
            "Bads caught so far",
            "Lift",
        ],
        rows,
    )
    lines += [
        "",
        "Lift = the band's bad rate / the overall bad rate. Tied scores share a band, so there "
        "can be fewer than ten bands.",
        "",
    ]
    return lines


def _migration_lines(result: dict[str, Any], decisions: dict[str, Any]) -> list[str]:
    """The rule grade x scorecard grade migration table and its summary."""
    lines: list[str] = []
    mig = decisions["migration"].set_index(["grade_from", "grade_to"])
    lines += [
        "## Migration: rule grade (rows) x scorecard grade (columns)",
        "",
        "Each cell: customers (bad rate).",
        "",
    ]
    rows = [
        [
            f"**{a}**",
            *[
                f"{int(mig.at[(a, b), 'count']):,} ({_pct(mig.at[(a, b), 'bad_rate'])})"
                for b in GRADES
            ],
        ]
        for a in GRADES
    ]
    lines += _table(["Rule \\ Scorecard", *GRADES], rows)
    summ = result["decision"]["migration"]
    lines += [
        "",
        f"The scorecard grades {_pct(summ['upgraded']['share'])} of customers better than the "
        f"rules (their bad rate {_pct(summ['upgraded']['bad_rate'])}), "
        f"{_pct(summ['downgraded']['share'])} worse (bad rate "
        f"{_pct(summ['downgraded']['bad_rate'])}) and {_pct(summ['same']['share'])} the same "
        f"(bad rate {_pct(summ['same']['bad_rate'])}).",
        "",
    ]
    return lines


def _swap_lines(
    result: dict[str, Any], decisions: dict[str, Any], frame: pd.DataFrame
) -> list[str]:
    """The swap set at the rules' approval rate and the bad rate of the approved book."""
    lines: list[str] = []
    d = result["decision"]
    reject = ", ".join(result["params"]["rule_reject_grades"])
    sw = decisions["swap_set"].set_index("segment")
    lines += [
        "## Swap set at the rules' approval rate",
        "",
        f"The rules decline grade {reject}, i.e. approve {_pct(d['approval_rate_rules'])} of "
        f"customers. The scorecard approving the same share (its grades outside {reject}) "
        f"approves {_pct(d['approval_rate_scorecard'])} (tied scores are not split).",
        "",
    ]
    rows = [
        [
            SEGMENT_NAMES.get(seg, seg),
            f"{int(r['count']):,}",
            _pct(r["share"]),
            f"{int(r['bads']):,}",
            _pct(r["bad_rate"]),
            _pct(r["weighted_bad_rate"]),
        ]
        for seg, r in sw.iterrows()
    ]
    lines += _table(
        ["Segment", "Customers", "share", "Bads", "Bad rate", "Bad rate by exposure"], rows
    )
    accept_rules = ~frame["rule_grade_used"].isin(result["params"]["rule_reject_grades"])
    accept_card = ~frame["scorecard_grade"].isin(result["params"]["rule_reject_grades"])
    br_rules, br_card = (
        frame.loc[accept_rules, "is_bad"].mean(),
        frame.loc[accept_card, "is_bad"].mean(),
    )
    swap_in = sw.loc["accepted by challenger only (swap-in)"]
    swap_out = sw.loc["accepted by champion only (swap-out)"]
    lines += [
        "",
        "Approving by the scorecard instead of the rules would take on "
        f"{int(swap_in['count']):,} customers the rules decline (bad rate "
        f"{_pct(swap_in['bad_rate'])}) and decline {int(swap_out['count']):,} the rules approve "
        f"(bad rate {_pct(swap_out['bad_rate'])}). The bad rate of the approved book goes from "
        f"{_pct(br_rules, 2)} (rules) to {_pct(br_card, 2)} (scorecard) at about the same "
        "approval rate.",
        "",
    ]
    return lines


def _customer_lines(result: dict[str, Any], frame: pd.DataFrame, card: dict) -> list[str]:
    """Who is swapped in (by rule sub-grade) and out (by the scorecard's main reason code)."""
    lines: list[str] = []
    reject = result["params"]["rule_reject_grades"]
    accept_rules = ~frame["rule_grade_used"].isin(reject)
    accept_card = ~frame["scorecard_grade"].isin(reject)
    lines += [
        "## What changes for which customers",
        "",
        "**Approved by the scorecard, declined by the rules** (swap-in), by rule sub-grade (net "
        "collection, payment timing, competitor share):",
        "",
    ]
    swap_in_rows = frame[~accept_rules & accept_card]
    swap_out_rows = frame[accept_rules & ~accept_card]
    lines += _segment_profile(swap_in_rows, "rule_subgrade", "Rule sub-grade")
    reasons = {
        f["reason_code"]: f"({f['reason_text']})" for c in cards(card) for f in c["features"]
    }
    lines += [
        "",
        "**Declined by the scorecard, approved by the rules** (swap-out), by the scorecard's "
        "main reason code:",
        "",
    ]
    lines += _segment_profile(swap_out_rows, "reason_1", "Main reason", reasons)
    return lines


def _reading_notes(result: dict[str, Any]) -> list[str]:
    """How to read the figures: intervals, design effect, rule grading, where the detail is."""
    m, level = result["methods"], result["params"]["ci_level"]
    inf = result.get("inference") or {}
    holdout = result["sample"]["kind"] == "stratified_holdout"
    lines: list[str] = []
    lines += [
        "",
        "## How to read this",
        "",
        f"- Intervals are {100 * level:.0f}% percentile intervals from a bootstrap over "
        f"customers ({inf.get('n_resamples', 0):,} resamples of {inf.get('n_customers', 0):,} "
        f"customers, seed {inf.get('seed')}): each resample keeps all snapshots of a drawn "
        "customer, so repeated monthly snapshots of one customer are not treated as "
        "independent. The DeLong and Hanley-McNeil figures, which assume independent rows, are "
        "in metrics/evaluate.json under *_independent. Exposure-weighted figures weight each "
        "customer by the open balance at the snapshot date.",
        f"- Design effect of the scorecard AUC (bootstrap variance / DeLong variance): "
        f"{_num(m['scorecard']['count'].get('design_effect'), 2)}.",
        "- Each customer appears once." if holdout else "",
        "- The rule grading is `rule_grade` (the three hard indicators, before any expert "
        "overlay), ranked A (best) to D (worst) as an ordinal score; within a grade it cannot "
        "rank.",
        f"- Rule grade UNDEFINED: {result['params']['rule_undefined']} (evaluate.rule_undefined).",
        "- Full gains tables by decile for every method: reports/<dataset>/evaluate/evaluate_gains.csv; "
        "charts: reports/<dataset>/evaluate/evaluate_*.png.",
        "",
    ]
    return lines


def comparison_markdown(
    result: dict[str, Any],
    decisions: dict[str, Any],
    bands: pd.DataFrame,
    frame: pd.DataFrame,
    card: dict,
) -> str:
    """The comparison report for a credit manager (markdown)."""
    lines = [
        *_sample_lines(result),
        *_method_lines(result),
        *_grade_lines(decisions, bands),
        *_migration_lines(result, decisions),
        *_swap_lines(result, decisions, frame),
        *_customer_lines(result, frame, card),
        *_reading_notes(result),
    ]
    return "\n".join(lines)
