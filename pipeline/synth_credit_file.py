"""Synthetic credit file: attribute history, Delphi panels and platform indicators for a `pipeline.synth` block.

Called from `pipeline.synth.iter_blocks` with the block's tables and its own random stream (so the ledger
tables are the same with or without it). Model, per customer (latent risk ``z``, onboarding ``o``, ledger
default date ``d`` from truth, period end ``E``):

- **Versions** start at onboarding (values as the master generator drew them, without expert scores unless
  the first panel sits that day), at the first Delphi panel (the six 6C scores), at each anniversary
  (annual review: turnover and net worth grow or shrink with ``−z``, competitor share drifts up with ``z``,
  the limit follows turnover, 30% of reviews convene a new panel, 2% move region), at a behaviour trigger
  30–60 days before ``d`` (limit halved, competitor share +0.15, net worth −20%, expert scores −1) and 10
  days after ``d`` (limit suspended to 0, net worth −30%, scores −1). ``valid_to`` is the next version's
  start. The master row is overwritten with the last version: the master is "today", so joining it to
  past snapshots leaks what happened later (the limit cut of a defaulter), which point-in-time reading fixes.
- **Delphi panels** (15% of the assessed customers; the others are scored by one assessor): 3 or 5
  experts, 2 rounds (3 for 10% of panels), one score 1–5 per criterion per
  round; the last round's median per criterion equals the version's score; round 1 is spread ±1–2 around
  it; 8% of panels do not converge (the last round still spread ±2). A comment accompanies the extreme
  first-round scores.
- **Platform indicators** for the online-sales customers (60% of segment ``retail``): monthly rating 1–5,
  transactions, refunds and complaints; rating falls and refund/complaint rates rise with ``z`` and in the
  six months before ``d``. Rows stop three months after ``d``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.schemas import COLUMNS, EXPERT_SCORES

STREAM = 15  # SeedSequence([seed, block, STREAM]): the credit file's own random stream
CREDIT_FILE_TABLE_NAMES = ("customer_history", "expert_scores", "platform")
MANAGERS = np.array(["Li Wei", "Zhang Min", "Wang Fang", "Chen Jie"], dtype=object)
HEAD_OF_CREDIT = "Zhao Lei"  # head of credit
EXPERTS = np.array(
    ["Zhou Lan", "Sun Hao", "Wu Ying", "Xu Tao", "Ma Li", "Hu Jun", "Guo Mei", "He Qiang"],
    dtype=object,
)
REGIONS = np.array(["East", "North", "South", "Central", "West"], dtype=object)
ONLINE_SEGMENT = "retail"
ONLINE_SHARE = 0.6  # of the segment sell through the platform
# event kinds, in the order they win when two fall on one day
ONBOARD, PANEL, ANNUAL, WARN, DEFAULT = 0, 1, 2, 3, 4
REASONS = {
    ONBOARD: "onboarding",
    PANEL: "6C assessment",
    ANNUAL: "annual review",
    WARN: "overdue: limit cut",
    DEFAULT: "default: suspended",
}
PANEL_SHARE = 0.15  # assessed customers whose 6C scores come from a recorded Delphi panel


def _days(s: pd.Series) -> np.ndarray:
    """datetime64 → int days since epoch (−1 for NaT)."""
    v = s.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    return np.where(s.isna().to_numpy(), -1, v)


def _dates(days: np.ndarray) -> np.ndarray:
    out = days.astype("datetime64[D]").astype("datetime64[ns]")
    out[days < 0] = np.datetime64("NaT")
    return out


def _events(
    on: np.ndarray, dflt: np.ndarray, panel0: np.ndarray, end_day: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Attribute-version events ``(customer, day, kind)`` sorted by customer and day, one per
    customer-day (the later kind wins), and the version number within the customer."""
    n = len(on)
    reviewed = panel0 >= 0
    ev_c, ev_d, ev_k = [np.arange(n)], [on], [np.full(n, ONBOARD)]
    ev_c.append(np.flatnonzero(reviewed))
    ev_d.append(panel0[reviewed])
    ev_k.append(np.full(int(reviewed.sum()), PANEL))
    for year in range(1, 1 + max(1, int((end_day - on.min()) // 365) + 1)):
        day = on + 365 * year
        ok = day <= end_day
        ev_c.append(np.flatnonzero(ok))
        ev_d.append(day[ok])
        ev_k.append(np.full(int(ok.sum()), ANNUAL))
    warn = dflt - rng.integers(30, 61, n)
    ok = (dflt >= 0) & (warn > on) & (warn <= end_day)
    ev_c.append(np.flatnonzero(ok))
    ev_d.append(warn[ok])
    ev_k.append(np.full(int(ok.sum()), WARN))
    susp = dflt + 10
    ok = (dflt >= 0) & (susp > on) & (susp <= end_day)
    ev_c.append(np.flatnonzero(ok))
    ev_d.append(susp[ok])
    ev_k.append(np.full(int(ok.sum()), DEFAULT))
    c, d, k = (np.concatenate(a) for a in (ev_c, ev_d, ev_k))
    order = np.lexsort((k, d, c))
    c, d, k = c[order], d[order], k[order]
    last_of_day = np.r_[(c[1:] != c[:-1]) | (d[1:] != d[:-1]), True]
    # an onboarding and a panel on one day: one version with the scores (kind PANEL carries both)
    c, d, k = c[last_of_day], d[last_of_day], k[last_of_day]
    step = np.arange(len(c)) - np.searchsorted(c, c)  # version number within the customer
    return c, d, k, step


def _annual_review(
    st: dict[str, np.ndarray], a: np.ndarray, z: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Annual review of customers ``a``: size, net worth, competitor share and limit move with the
    latent risk; 30% get a new panel (returned mask); 2% move region."""
    e1, e2, e3 = (rng.standard_normal(len(a)) for _ in range(3))
    ratio = np.exp(0.04 - 0.06 * z[a] + 0.15 * e1)
    st["turn"][a] = np.round(st["turn"][a] * ratio, -3)
    st["nw"][a] = np.maximum(np.round(st["nw"][a] * np.exp(0.03 - 0.10 * z[a] + 0.15 * e2), -3), 0)
    st["comp"][a] = np.round(np.clip(st["comp"][a] + 0.03 * z[a] + 0.05 * e3, 0, 1), 2)
    st["limit"][a] = np.round(st["limit"][a] * ratio, -3)
    scores = st["scores"]
    new_panel = (rng.random(len(a)) < 0.3) & ~np.isnan(scores[a, 0])
    drift = np.rint(-0.3 * z[a, None] + 0.6 * rng.standard_normal((len(a), 6)))
    moved = np.clip(scores[a] + drift, 1, 5)
    scores[a] = np.where(new_panel[:, None], moved, scores[a])
    move = rng.random(len(a)) < 0.02
    st["region"][a[move]] = REGIONS[rng.integers(0, len(REGIONS), int(move.sum()))]
    return new_panel


def _versions(
    cust: pd.DataFrame,
    z: np.ndarray,
    c: np.ndarray,
    k: np.ndarray,
    step: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Each version's attributes (in event order), advancing every customer's state version by
    version: panels set the 6C scores, annual reviews move them, a limit cut and a suspension
    degrade them."""
    st = {
        "comp": cust["competitor_share"].to_numpy(dtype=float).copy(),
        "nw": cust["net_worth"].to_numpy(dtype=float).copy(),
        "turn": cust["annual_turnover"].to_numpy(dtype=float).copy(),
        "limit": cust["credit_limit"].to_numpy(dtype=float).copy(),
        "scores": np.full((len(cust), 6), np.nan),
        "region": cust["region"].to_numpy(dtype=object).copy(),
    }
    target = np.column_stack(
        [cust[e].to_numpy(dtype=float, na_value=np.nan) for e in EXPERT_SCORES]
    )
    keys = ("idx", "comp", "nw", "turn", "limit", "scores", "region", "approver", "panel")
    rows: dict[str, list[np.ndarray]] = {x: [] for x in keys}
    for s in range(int(step.max()) + 1):
        at = step == s
        ci, kind = c[at], k[at]
        is_panel = kind == PANEL
        st["scores"][ci[is_panel]] = target[ci[is_panel]]
        panel = is_panel.copy()
        ann = kind == ANNUAL
        if ann.any():
            panel[np.flatnonzero(ann)[_annual_review(st, ci[ann], z, rng)]] = True
        for kk, lim_f, comp_add, nw_f in ((WARN, 0.5, 0.15, 0.8), (DEFAULT, 0.0, 0.0, 0.7)):
            w = ci[kind == kk]
            st["limit"][w] = np.round(st["limit"][w] * lim_f, -3)
            st["comp"][w] = np.round(np.minimum(st["comp"][w] + comp_add, 1), 2)
            st["nw"][w] = np.round(st["nw"][w] * nw_f, -3)
            st["scores"][w] = np.clip(st["scores"][w] - 1, 1, 5)
        approver = np.where(
            (kind == WARN) | (kind == DEFAULT),
            HEAD_OF_CREDIT,
            MANAGERS[rng.integers(0, 4, len(ci))],
        )
        rows["idx"].append(np.flatnonzero(at))
        for key in ("comp", "nw", "turn", "limit", "scores", "region"):
            rows[key].append(st[key][ci].copy())
        rows["approver"].append(approver)
        rows["panel"].append(panel)
    idx = np.concatenate(rows["idx"])
    inv = np.empty_like(idx)
    inv[idx] = np.arange(len(idx))
    return {key: np.concatenate(v)[inv] for key, v in rows.items() if key != "idx"}


def _history_frame(
    cust: pd.DataFrame, c: np.ndarray, d: np.ndarray, k: np.ndarray, col: dict[str, np.ndarray]
) -> pd.DataFrame:
    """The customer_history table: one row per attribute version with its validity interval."""
    nxt = np.r_[np.where(c[1:] == c[:-1], d[1:], -1), -1]
    return pd.DataFrame(
        {
            "customer_id": cust["customer_id"].to_numpy()[c],
            "valid_from": _dates(d),
            "valid_to": _dates(nxt),
            "segment": cust["segment"].to_numpy()[c],
            "region": col["region"],
            "competitor_share": col["comp"],
            "credit_limit": col["limit"],
            "net_worth": col["nw"],
            "annual_turnover": col["turn"],
            **{
                e: pd.array(
                    np.where(np.isnan(col["scores"][:, j]), None, col["scores"][:, j]),
                    dtype="Int64",
                )
                for j, e in enumerate(EXPERT_SCORES)
            },
            "approver": col["approver"],
            "approval_date": _dates(d),
            "change_reason": np.array([REASONS[x] for x in k], dtype=object),
        }
    )[list(COLUMNS["customer_history"])]


def _master_as_of_last_version(
    cust: pd.DataFrame, history: pd.DataFrame, c: np.ndarray
) -> pd.DataFrame:
    """The customer master updated to each customer's last attribute version ("today")."""
    last = np.r_[c[1:] != c[:-1], True]
    cur = history[last].set_index("customer_id").reindex(cust["customer_id"])
    master = cust.copy()
    for a in (
        "region",
        "competitor_share",
        "credit_limit",
        "net_worth",
        "annual_turnover",
        *EXPERT_SCORES,
    ):
        master[a] = cur[a].reset_index(drop=True).astype(cust[a].dtype)
    return master


def credit_file_block(
    tables: dict[str, pd.DataFrame], end_day: int, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """The block's ``customer_history``, ``expert_scores``, ``platform`` and its master updated to the
    last version (``customers``). ``tables["risk"]`` holds each customer's latent risk at onboarding and
    ledger default date (the generator's own, not a written table). The random draws happen in a
    fixed order (events, versions, panels, platform): part of the seed contract."""
    cust = tables["customers"].reset_index(drop=True)
    truth = tables["risk"].set_index("customer_id").reindex(cust["customer_id"])
    n = len(cust)
    z = truth["latent_risk"].to_numpy(dtype=float)
    on = _days(cust["onboarding_date"])
    dflt = _days(truth["default_date"])
    c, d, k, step = _events(on, dflt, _days(cust["expert_date"]), end_day, rng)
    col = _versions(cust, z, c, k, step, rng)
    history = _history_frame(cust, c, d, k, col)
    master = _master_as_of_last_version(cust, history, c)
    on_panel = cust["customer_id"].to_numpy()[rng.random(n) < PANEL_SHARE]
    recorded = col["panel"] & history["customer_id"].isin(on_panel).to_numpy()
    panels = history[recorded].reset_index(drop=True)
    history.loc[recorded, "change_reason"] = history["change_reason"] + "; Delphi panel"
    experts = _delphi_panels(panels, rng)
    # the master's expert approver, reason and date: those of its last scored version
    scored = history[history["expert_character"].notna()].groupby("customer_id").tail(1)
    scored = scored.set_index("customer_id").reindex(master["customer_id"])
    master["expert_date"] = scored["approval_date"].to_numpy(dtype="datetime64[ns]")
    master["expert_approver"] = scored["approver"].to_numpy()
    master["expert_reason"] = scored["change_reason"].to_numpy()
    platform = _platform(cust, z, on, dflt, end_day, rng)
    return {
        "customers": master[list(COLUMNS["customers"])],
        "customer_history": history.reset_index(drop=True),
        "expert_scores": experts,
        "platform": platform,
    }


def _delphi_panels(panels: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Rounds of expert scores whose last-round median per criterion equals the panel's version score."""
    p = len(panels)
    if p == 0:
        return pd.DataFrame(columns=list(COLUMNS["expert_scores"]))
    n_exp = np.where(rng.random(p) < 0.5, 3, 5)
    n_rounds = np.where(rng.random(p) < 0.1, 3, 2)
    converges = rng.random(p) >= 0.08
    pid = ("D" + panels["valid_from"].dt.strftime("%Y%m%d")).to_numpy()  # unique within a customer
    out = []
    for size in (3, 5):
        for rounds in (2, 3):
            sel = np.flatnonzero((n_exp == size) & (n_rounds == rounds))
            if not len(sel):
                continue
            q = len(sel)
            target = panels.iloc[sel][EXPERT_SCORES].to_numpy(dtype=float)  # q x 6
            who = np.argsort(rng.random((q, len(EXPERTS))), axis=1)[:, :size]
            spread = np.where(converges[sel], 1, 2)[:, None, None]
            moves = np.where(converges[sel], 0.3, 0.8)[:, None, None]
            off = np.where(rng.random((q, 6, size)) < moves, rng.choice([-1, 1], (q, 6, size)), 0)
            off = off * spread
            off = np.sort(off, axis=2)
            mid = size // 2
            off[:, :, :mid] = np.minimum(off[:, :, :mid], 0)
            off[:, :, mid] = 0
            off[:, :, mid + 1 :] = np.maximum(off[:, :, mid + 1 :], 0)
            off = np.take_along_axis(off, np.argsort(rng.random((q, 6, size)), axis=2), axis=2)
            final = np.clip(target[:, :, None] + off, 1, 5)
            first = np.clip(final + rng.integers(-2, 3, (q, 6, size)), 1, 5)
            final_day = panels["valid_from"].to_numpy(dtype="datetime64[D]")[sel]
            for r in range(1, rounds + 1):
                sc = (
                    final
                    if r == rounds
                    else (first if r == 1 else np.clip(np.rint((first + final) / 2), 1, 5))
                )
                day = final_day - np.timedelta64(14, "D") * (rounds - r)
                qi, ci, ei = np.meshgrid(
                    np.arange(q), np.arange(6), np.arange(size), indexing="ij"
                )
                qi, ci, ei = qi.ravel(), ci.ravel(), ei.ravel()
                score = sc[qi, ci, ei]
                med = np.median(sc, axis=2)[qi, ci]
                comment = np.where(
                    np.abs(score - med) >= 2,
                    np.where(
                        score > med,
                        "above median: long relationship",
                        "below median: late payments",
                    ),
                    None,
                )
                out.append(
                    pd.DataFrame(
                        {
                            "panel_id": pid[sel][qi],
                            "customer_id": panels["customer_id"].to_numpy()[sel][qi],
                            "expert": EXPERTS[who[qi, ei]],
                            "round": r,
                            "criterion": np.array(
                                [e.removeprefix("expert_") for e in EXPERT_SCORES]
                            )[ci],
                            "score": score.astype(np.int64),
                            "score_date": day[qi].astype("datetime64[ns]"),
                            "comment": comment,
                        }
                    )
                )
    frame = pd.concat(out, ignore_index=True)
    frame["round"] = frame["round"].astype("Int64")
    frame["score"] = frame["score"].astype("Int64")
    return frame.sort_values(
        ["customer_id", "panel_id", "round", "criterion", "expert"], kind="stable"
    ).reset_index(drop=True)[list(COLUMNS["expert_scores"])]


def _platform(
    cust: pd.DataFrame,
    z: np.ndarray,
    on: np.ndarray,
    dflt: np.ndarray,
    end_day: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Monthly platform indicators for the online-sales segment."""
    sells_online = rng.random(len(cust)) < ONLINE_SHARE
    online = np.flatnonzero((cust["segment"].to_numpy() == ONLINE_SEGMENT) & sells_online)
    if not len(online):
        return pd.DataFrame(columns=list(COLUMNS["platform"]))
    first = pd.Timestamp(int(on[online].min()), unit="D").to_period("M")
    last = pd.Timestamp(int(end_day), unit="D").to_period("M")
    months = pd.period_range(first, last, freq="M").to_timestamp(how="end").normalize()
    mdays = _days(pd.Series(months))
    ci = np.repeat(online, len(mdays))
    md = np.tile(mdays, len(online))
    stop = np.where(dflt[ci] >= 0, dflt[ci] + 90, end_day)
    keep = (md >= on[ci]) & (md <= np.minimum(stop, end_day))
    ci, md = ci[keep], md[keep]
    m = len(ci)
    zz = z[ci]
    months_to_default = np.where(dflt[ci] >= 0, (dflt[ci] - md) / 30.44, np.inf)
    stress = np.clip((6 - months_to_default) / 6, 0, 1.5) * (months_to_default > -3)
    base = rng.gamma(3.0, 20.0, len(cust))[ci]
    trans = rng.poisson(base * (1 - 0.3 * stress)).astype(np.int64)
    p_ref = np.clip(0.03 * 1.6**zz * (1 + 2 * stress), 0, 0.6)
    p_cmp = np.clip(0.008 * 1.8**zz * (1 + 3 * stress), 0, 0.3)
    refunds = rng.binomial(trans, p_ref)
    complaints = rng.binomial(trans, p_cmp)
    rating = np.clip(4.4 - 0.35 * zz - 0.8 * stress + 0.25 * rng.standard_normal(m), 1, 5)
    rating = np.where(trans > 0, np.round(rating, 1), np.nan)
    return pd.DataFrame(
        {
            "customer_id": cust["customer_id"].to_numpy()[ci],
            "period": _dates(md),
            "rating": rating,
            "transactions": pd.array(trans, dtype="Int64"),
            "refunds": pd.array(refunds, dtype="Int64"),
            "complaints": pd.array(complaints, dtype="Int64"),
        }
    )
