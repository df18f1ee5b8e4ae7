"""The Delphi panel: consensus and agreement per panel, and its scores merged into the credit file.

A panel (``panel_id`` within a customer; one panel per customer when the id is absent) scores the six
6C criteria 1–5 over rounds with controlled feedback. The **consensus** is the last round's median per
criterion (the lower of the two middle scores for an even panel: the more cautious reading). Agreement in
the last round:

- **IQR per criterion** (75th − 25th percentile of the experts' scores, linear interpolation); the panel
  **converged** when every criterion's IQR ≤ ``max_iqr`` (params ``ingest.delphi.max_iqr``, 1 point on the 5-point scale);
- **Kendall's W** across experts (concordance of how the experts rank the six criteria, tie-corrected):
  W = 12·S / (m²(n³ − n) − m·Σ T_j), S = Σ (R_i − R̄)², T_j = Σ (t³ − t) over expert j's ties; undefined
  (null) when every expert ties every criterion;
- the share of scores that moved between the last two rounds (stability).

Point in time: a panel's consensus takes effect on its last round's date. `merge_panels` writes it into
the credit-file history as a version change (the expert scores of the version valid from that date), so
the features read panel scores as they stood at t like every other attribute; a later credit-file change
(say, a limit cut with a downgrade) supersedes the panel until the next panel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipeline.domain import SNAPSHOT_KEYS
from pipeline.schemas import EXPERT_SCORES

CRITERIA = tuple(c.removeprefix("expert_") for c in EXPERT_SCORES)


def kendalls_w(scores: np.ndarray) -> float:
    """Kendall's W of an ``experts × objects`` score matrix (higher score = higher rank), tie-corrected.

    NaN when fewer than 2 experts or 2 objects, or when no expert separates any objects."""
    x = np.asarray(scores, dtype=float)
    m, n = x.shape
    if m < 2 or n < 2:
        return float("nan")
    ranks = np.vstack([pd.Series(row).rank(method="average").to_numpy() for row in x])
    r = ranks.sum(axis=0)
    s = float(((r - r.mean()) ** 2).sum())
    ties = 0.0
    for row in x:
        _, counts = np.unique(row, return_counts=True)
        ties += float((counts**3 - counts).sum())
    denom = m**2 * (n**3 - n) - m * ties
    return float(12 * s / denom) if denom > 0 else float("nan")


def _lower_median(s: pd.Series) -> float:
    v = np.sort(s.to_numpy(float))
    return float(v[(len(v) - 1) // 2])


def _empty_panels() -> pd.DataFrame:
    cols = [
        "customer_id",
        "panel_id",
        "last_round",
        "consensus_date",
        "experts",
        "kendalls_w",
        "max_iqr",
        "moved_share",
        "converged",
        *[f"expert_{c}" for c in CRITERIA],
        *[f"iqr_{c}" for c in CRITERIA],
    ]
    return pd.DataFrame(columns=cols)


def _consensus(cells: pd.DataFrame, panels: int) -> tuple[np.ndarray, np.ndarray]:
    """(lower median, IQR) per panel × criterion from one score per expert and criterion (``_g``
    panel number, ``_c`` criterion number, ``score``); NaN where no expert scored the criterion.
    Groups of equal size go through one `np.percentile` call (the same arithmetic as one group)."""
    med = np.full((panels, len(CRITERIA)), np.nan)
    iqr = np.full((panels, len(CRITERIA)), np.nan)
    c = cells.sort_values(["_g", "_c", "score"], kind="stable")
    key = c["_g"].to_numpy() * len(CRITERIA) + c["_c"].to_numpy()
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sizes = np.diff(np.r_[starts, len(key)])
    values = c["score"].to_numpy(float)
    g, k = key[starts] // len(CRITERIA), key[starts] % len(CRITERIA)
    for n in np.unique(sizes):
        pick = sizes == n
        block = values[starts[pick][:, None] + np.arange(n)]
        med[g[pick], k[pick]] = block[:, (n - 1) // 2]
        hi, lo = np.percentile(block, [75, 25], axis=1)
        iqr[g[pick], k[pick]] = np.subtract(hi, lo)
    return med, iqr


def _kendall(cells: pd.DataFrame, panels: int) -> np.ndarray:
    """`kendalls_w` per panel over its experts who scored every criterion."""
    wide = cells.pivot(index=["_g", "expert"], columns="_c", values="score")
    wide = wide.reindex(columns=range(len(CRITERIA))).dropna(how="any")
    w = np.full(panels, np.nan)
    if wide.empty:
        return w
    x = wide.to_numpy(float)
    g = wide.index.get_level_values("_g").to_numpy()
    less = (x[:, None, :] < x[:, :, None]).sum(axis=2)
    equal = (x[:, None, :] == x[:, :, None]).sum(axis=2)
    ranks = less + (equal + 1) / 2
    m = np.bincount(g, minlength=panels).astype(float)
    r = np.zeros((panels, len(CRITERIA)))
    np.add.at(r, g, ranks)
    s = ((r - r.mean(axis=1)[:, None]) ** 2).sum(axis=1)
    ties = np.bincount(g, weights=(equal**2 - 1).sum(axis=1), minlength=panels)
    n = len(CRITERIA)
    denom = m**2 * (n**3 - n) - m * ties
    ok = (m >= 2) & (denom > 0)
    w[ok] = 12 * s[ok] / denom[ok]
    return w


def panel_agreement(scores: pd.DataFrame, max_iqr: float) -> pd.DataFrame:
    """One row per (customer, panel): last round, its date, experts, consensus (median) and IQR per
    criterion, max IQR, Kendall's W, share of scores moved since the previous round, ``converged``
    (every criterion's IQR <= ``max_iqr``, params ``ingest.delphi.max_iqr``).

    Computed for all panels at once (array operations by panel number), not panel by panel."""
    if scores.empty:
        return _empty_panels()
    s = scores.assign(panel_id=scores["panel_id"].fillna("panel"))
    keys = ["customer_id", "panel_id"]
    last_round = s.groupby(keys)["round"].transform("max")
    last = s[s["round"] == last_round]
    prev = s[s["round"] == last_round - 1]
    by = last.groupby(keys, sort=True)
    last = last.assign(_g=by.ngroup().to_numpy())
    head = by.agg(last_round=("round", "first"), consensus_date=("score_date", "max"))
    head["experts"] = by["expert"].nunique()
    cells = last.drop_duplicates(["_g", "expert", "criterion"], keep="first")
    cells = cells.assign(_c=cells["criterion"].map({c: i for i, c in enumerate(CRITERIA)}))
    cells = cells[cells["_c"].notna()].astype({"_c": int})
    n = len(head)
    med, iqr = _consensus(cells, n)
    before = last.merge(
        prev[[*keys, "expert", "criterion", "score"]].rename(columns={"score": "_before"}),
        on=[*keys, "expert", "criterion"],
        how="left",
    )["_before"]
    seen = before.notna().to_numpy()
    moved = seen & (before.to_numpy(float) != last["score"].to_numpy(float))
    n_seen = np.bincount(last["_g"], weights=seen, minlength=n)
    n_moved = np.bincount(last["_g"], weights=moved, minlength=n)
    with np.errstate(all="ignore"):
        max_iqr_v = np.where(np.isfinite(iqr).any(axis=1), np.nanmax(iqr, axis=1), np.nan)
    out = pd.DataFrame(
        {
            "customer_id": head.index.get_level_values(0).to_numpy(object),
            "panel_id": head.index.get_level_values(1).to_numpy(object),
            "last_round": head["last_round"].to_numpy("int64"),
            "consensus_date": head["consensus_date"].to_numpy("datetime64[ns]"),
            "experts": head["experts"].to_numpy("int64"),
            **{f"expert_{c}": med[:, i] for i, c in enumerate(CRITERIA)},
            **{f"iqr_{c}": iqr[:, i] for i, c in enumerate(CRITERIA)},
            "max_iqr": max_iqr_v,
            "kendalls_w": _kendall(cells, n),
            "moved_share": np.where(n_seen > 0, n_moved / np.maximum(n_seen, 1), np.nan),
            "converged": np.isfinite(max_iqr_v) & (max_iqr_v <= max_iqr),
        }
    )
    return out.sort_values(["customer_id", "consensus_date"], kind="stable").reset_index(drop=True)


def _breakpoints(hp: pd.DataFrame, panels: pd.DataFrame) -> pd.DataFrame:
    """Every version start and every panel date per customer (``customer_id``, ``as_of_date``)."""
    return (
        pd.concat(
            [
                hp[["customer_id", "valid_from"]].rename(columns={"valid_from": "as_of_date"}),
                panels[["customer_id", "consensus_date"]].rename(
                    columns={"consensus_date": "as_of_date"}
                ),
            ]
        )
        .drop_duplicates()
        .sort_values(SNAPSHOT_KEYS, kind="stable")
        .reset_index(drop=True)
    )


def _latest_panel(bps: pd.DataFrame, panels: pd.DataFrame) -> pd.DataFrame:
    """Per breakpoint (same order), the latest panel on or before it with its consensus scores as
    ``_p_<criterion>``."""
    pan = panels.sort_values("consensus_date").rename(
        columns={f"expert_{c}": f"_p_{c}" for c in CRITERIA}
    )
    return (
        pd.merge_asof(
            bps.assign(_row=np.arange(len(bps))).sort_values("as_of_date"),
            pan[["customer_id", "panel_id", "consensus_date", *[f"_p_{c}" for c in CRITERIA]]],
            left_on="as_of_date",
            right_on="consensus_date",
            by="customer_id",
            direction="backward",
        )
        .sort_values("_row")
        .reset_index(drop=True)
    )


def _panel_versions(
    ver: pd.DataFrame, bps: pd.DataFrame, pv: pd.DataFrame, use: pd.Series
) -> pd.DataFrame:
    """The versions at each breakpoint with the panel's scores where it applies (``use``); a version
    starting at a panel date is marked as the panel's (approver, reason, approval date)."""
    out = ver.copy()
    for c in CRITERIA:
        out[f"expert_{c}"] = np.where(use, pv[f"_p_{c}"], out[f"expert_{c}"])
    at_panel = (
        use
        & (pv["consensus_date"] == bps["as_of_date"])
        & (ver["valid_from"] != bps["as_of_date"])
    )
    on_start = (
        use
        & (ver["valid_from"] == bps["as_of_date"])
        & (pv["consensus_date"] == bps["as_of_date"])
    )
    out["approver"] = np.where(
        at_panel, "Delphi panel " + pv["panel_id"].astype(str), out["approver"]
    )
    out["change_reason"] = np.where(
        at_panel,
        "Delphi panel consensus (last-round median)",
        np.where(
            on_start,
            out["change_reason"].astype(str) + "; Delphi panel consensus",
            out["change_reason"],
        ),
    )
    out["approval_date"] = np.where(at_panel, bps["as_of_date"], out["approval_date"])
    return out


def merge_panels(history: pd.DataFrame, panels: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """History with each panel's consensus as a version change on its consensus date.

    Breakpoints are every version start and every panel date; at each, the attributes are those of the
    version valid then and the expert scores those of the latest panel, unless the version itself
    started after that panel (a later credit-file change supersedes it). Returns (history, panels
    applied)."""
    if panels.empty or history.empty:
        return history, 0
    from pipeline.credit_file import attributes_as_of

    lo = pd.Timestamp("1900-01-01")
    with_panel = history["customer_id"].isin(panels["customer_id"])
    hp = history[with_panel].assign(_v=1, valid_from=history["valid_from"].fillna(lo))
    bps = _breakpoints(hp, panels)
    ver = attributes_as_of(hp, bps)
    keep = ver["_v"].notna().to_numpy()
    bps, ver = bps[keep].reset_index(drop=True), ver[keep].reset_index(drop=True)
    pv = _latest_panel(bps, panels)
    use = pv["consensus_date"].notna() & (pv["consensus_date"] >= ver["valid_from"])
    out = _panel_versions(ver, bps, pv, use)
    nxt = bps.groupby("customer_id")["as_of_date"].shift(-1)
    out["valid_to"] = nxt.where(nxt.notna(), ver["valid_to"])
    out["valid_from"] = bps["as_of_date"].where(bps["as_of_date"] != lo, pd.NaT)
    out = out.drop(columns=["_v", "as_of_date"], errors="ignore")[list(history.columns)]
    for c in EXPERT_SCORES:
        out[c] = (
            pd.array(pd.to_numeric(out[c], errors="coerce"), dtype="Float64")
            .round()
            .astype("Int64")
        )
    for c in ("valid_from", "valid_to", "approval_date"):
        out[c] = pd.to_datetime(out[c]).astype("datetime64[ns]")
    merged = pd.concat([history[~with_panel], out], ignore_index=True)
    merged = merged.sort_values(["customer_id", "valid_from"], kind="stable", na_position="first")
    applied = use.groupby([pv["customer_id"], pv["panel_id"]]).any()
    return merged.reset_index(drop=True), int(applied.sum())


def agreement_summary(panels: pd.DataFrame) -> dict[str, Any]:
    """Figures for the ingest report and the note."""
    if panels.empty:
        return {"panels": 0}
    w = panels["kendalls_w"].dropna()
    return {
        "panels": len(panels),
        "customers": int(panels["customer_id"].nunique()),
        "converged": int(panels["converged"].sum()),
        "not_converged": int((~panels["converged"]).sum()),
        "median_max_iqr": float(panels["max_iqr"].median()),
        "median_kendalls_w": float(w.median()) if len(w) else None,
        "kendalls_w_undefined": int(panels["kendalls_w"].isna().sum()),
        "median_moved_share": float(panels["moved_share"].median()),
        "experts_per_panel": {
            str(k): int(v) for k, v in panels["experts"].value_counts().sort_index().items()
        },
    }
