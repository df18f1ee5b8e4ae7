"""Limit review proposals: at each review date, keep / raise / cut / suspend per customer, with the approver.

At a review date (a month end of the snapshots) a customer is **due** when its scheduled review comes up
(months since its current credit-file version ≥ the grade's ``review_months``), when a behaviour trigger
fires (``policy.limit_action``: suspend > cut > raise), or when it is in default with a limit still
open. For each due customer the proposal is:

- ``suspend``: limit 0 (cash in advance until the next review); also every customer in default;
- ``cut``: the limit on file × (1 − cut step), never above the policy limit;
- ``raise``: the limit on file × (1 + raise step), capped by the policy limit (the limit table's
  rule: need, capacity caps, expected-loss cap); a raise the policy does not allow becomes ``keep``;
- at a scheduled review without a trigger the limit is re-set to the policy limit of the grade
  (``raise`` or ``cut``), or kept when within ``keep_tolerance`` of it (or when there is nothing to do).

Between scheduled reviews only a trigger (or a default with a limit still open) makes a customer due.

The approver comes from the **approval-authority table** (params ``publish.limit_review``): a role level
from the exposure band of max(limit on file, proposed limit), escalated for a raise or keep by the size
of the change (|proposed − on file| / limit on file) and by the letter grade, capped at the most senior
role; a reduction (cut, suspend) needs only its exposure band's role, a suspension at least
``suspend_role``. Overrides of a proposal (an optional file) are recorded
with approver and reason like grade overrides, and flagged when the approver's role is below the one the
final decision needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.domain import PipelineError
from pipeline.params.publish import LimitReviewParams, Triggers
from pipeline.policy import limit_action
from pipeline.score import score_in_slices

ACTIONS = ("keep", "raise", "cut", "suspend")
OVERRIDE_COLUMNS = ("review_date", "customer_id", "action", "limit", "approver", "role", "reason")


def _band(x: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    return np.clip(
        np.searchsorted(np.asarray(edges, float), x, side="right") - 1, 0, len(edges) - 1
    )


def _shared(values: Any) -> np.ndarray:
    """``values`` as an object array in which equal texts are one string object: a review table
    has millions of rows but a handful of distinct texts (8 bytes a row instead of a string each);
    the values are unchanged."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    return np.asarray(uniques, dtype=object)[codes]


def _label(edges: Sequence[float], i: int, pct: bool = False) -> str:
    f = (lambda v: f"{v:.0%}") if pct else (lambda v: f"{v:,.0f}")
    return f"[{f(edges[i])}, {f(edges[i + 1])})" if i + 1 < len(edges) else f"[{f(edges[i])}, inf)"


def role_level(
    letter: Any,
    exposure: np.ndarray,
    change_share: np.ndarray,
    action: Any,
    p: LimitReviewParams,
) -> np.ndarray:
    """Role index in ``p.roles`` (0 = most junior) each decision needs.

    A raise or keep needs the exposure band's level, escalated by the size of the change and the grade;
    a reduction (cut, suspend) lowers our risk, so it needs only the exposure band's level (a
    suspension at least ``suspend_role``)."""
    act = np.asarray(action, dtype=object)
    base = np.asarray(p.exposure_level)[_band(exposure, p.exposure_bands)]
    level = base + np.asarray(p.change_escalation)[_band(change_share, p.change_bands)]
    escalation = dict(p.grade_escalation)
    level = level + pd.Series(np.asarray(letter, dtype=object)).map(escalation).fillna(
        max(escalation.values())
    ).to_numpy(int)
    reduce = (act == "cut") | (act == "suspend")
    level = np.where(reduce, base, level)
    suspend = act == "suspend"
    level = np.where(suspend, np.maximum(level, p.roles.index(p.suspend_role)), level)
    return np.minimum(level, len(p.roles) - 1).astype(int)


def approval_authority_table(p: LimitReviewParams, letters: list[str]) -> pd.DataFrame:
    """The approval-authority table: letter grade × exposure band × size of change → role."""
    rows = []
    for g in letters:
        for i, lo in enumerate(p.exposure_bands):
            for j, clo in enumerate(p.change_bands):
                lvl = role_level([g], np.array([lo]), np.array([clo]), ["raise"], p)[0]
                rows.append(
                    {
                        "letter_grade": g,
                        "exposure_band": _label(p.exposure_bands, i),
                        "exposure_min": lo,
                        "change_band": _label(p.change_bands, j, pct=True),
                        "change_min": clo,
                        "role": p.roles[lvl],
                        "cut_role": p.roles[
                            role_level([g], np.array([lo]), np.array([clo]), ["cut"], p)[0]
                        ],
                        "suspension_role": p.roles[
                            role_level([g], np.array([lo]), np.array([clo]), ["suspend"], p)[0]
                        ],
                    }
                )
    return pd.DataFrame(rows)


def _trigger_proposals(
    frame: pd.DataFrame, on_file: np.ndarray, pol: np.ndarray, triggers: Triggers
) -> dict[str, np.ndarray]:
    """Action, trigger text and proposed limit from the behaviour triggers and defaults: suspend in
    default (due only with a limit still open), cut or raise by the trigger's step within the policy
    limit (a raise the policy limit does not allow becomes ``keep``)."""
    trig = limit_action(frame, triggers)
    action = trig["limit_action"].astype(str).to_numpy(dtype=object)
    triggered = action != "keep"
    trigger = np.select(
        [action == "suspend", action == "cut", action == "raise"],
        [
            "behaviour: deterioration (suspend trigger)",
            "behaviour: large order paid late",
            "behaviour: on-time growth",
        ],
        "",
    ).astype(object)
    in_default = (frame.get("label", pd.Series("", index=frame.index)) == "in_default").to_numpy()
    action = np.where(in_default, "suspend", action)
    trigger = np.where(in_default, "in default at the review date", trigger)
    triggered = np.where(in_default, on_file > 0, triggered)
    proposed = np.select(
        [action == "suspend", action == "cut", action == "raise"],
        [
            0.0,
            np.minimum(on_file * (1 - triggers.cut.step), pol),
            np.minimum(on_file * (1 + triggers.raise_.step), pol),
        ],
        on_file,
    )
    capped = (action == "raise") & (proposed <= on_file)
    return {
        "action": np.where(capped, "keep", action),
        "trigger": np.where(
            capped, "behaviour: growth, but the policy limit allows no raise", trigger
        ),
        "proposed": np.where(capped, on_file, proposed),
        "triggered": triggered,
        "in_default": in_default,
    }


def _scheduled_review(
    frame: pd.DataFrame,
    scored: pd.DataFrame,
    on_file: np.ndarray,
    pol: np.ndarray,
    prop: dict[str, np.ndarray],
    tolerance: float,
) -> dict[str, np.ndarray]:
    """``prop`` with the scheduled reviews applied: a customer neither triggered nor in default whose
    review is due re-sets its limit to the policy limit, unless within ``tolerance`` of it."""
    review = pd.Series(scored["review_months"]).astype("Float64").to_numpy(float, na_value=np.nan)
    since = pd.to_datetime(
        frame.get("attributes_valid_from", pd.Series(pd.NaT, index=frame.index))
    )
    months_since = ((frame["as_of_date"] - since).dt.days / 30.4375).to_numpy(float)
    scheduled = (
        (np.isnan(months_since) | (months_since >= review - 1e-9))
        & ~prop["triggered"]
        & ~prop["in_default"]
    )
    rel = np.where(
        on_file > 0, (pol - on_file) / np.maximum(on_file, 1.0), np.where(pol > 0, 1.0, 0.0)
    )
    s_action = np.select([rel > tolerance, rel < -tolerance], ["raise", "cut"], "keep")
    trigger = np.select(
        [on_file == 0, rel > tolerance, rel < -tolerance],
        [
            "scheduled review: no limit on file, set to the policy limit",
            "scheduled review: policy limit above the limit on file",
            "scheduled review: limit on file above the policy limit",
        ],
        "scheduled review: within the keep tolerance",
    )
    return {
        **prop,
        "action": np.where(scheduled, s_action, prop["action"]),
        "proposed": np.where(scheduled & (s_action != "keep"), pol, prop["proposed"]),
        "trigger": np.where(scheduled, trigger, prop["trigger"]),
        "scheduled": scheduled,
    }


def propose(
    scored: pd.DataFrame, frame: pd.DataFrame, triggers: Triggers, p: LimitReviewParams
) -> pd.DataFrame:
    """Proposals for one review date. ``frame``: the snapshot rows (limit on file ``credit_limit``,
    trigger inputs, ``label``, ``attributes_valid_from``, ``as_of_date``); ``scored``: their
    `score.score_customers` output (letter grade, PD, policy limit)."""
    current = pd.to_numeric(
        frame.get("credit_limit", pd.Series(np.nan, index=frame.index)), errors="coerce"
    ).to_numpy(float)
    on_file = np.where(np.isnan(current), 0.0, current)
    pol = scored["limit"].to_numpy(float)
    pol = np.where(np.isnan(pol), 0.0, pol)
    prop = _trigger_proposals(frame, on_file, pol, triggers)
    prop = _scheduled_review(frame, scored, on_file, pol, prop, p.keep_tolerance)
    action, proposed = prop["action"], np.floor(prop["proposed"] + 1e-9)
    due = prop["scheduled"] | prop["triggered"]
    reason = np.where(prop["triggered"], "trigger", "scheduled review")
    change = proposed - on_file
    change_share = np.where(
        on_file > 0, np.abs(change) / np.maximum(on_file, 1.0), np.where(change != 0, 1.0, 0.0)
    )
    exposure = np.maximum(on_file, proposed)
    letter = scored["letter_grade"].astype(str).to_numpy()
    level = role_level(letter, exposure, change_share, action, p)
    out = pd.DataFrame(
        {
            "review_date": frame["as_of_date"].to_numpy(),
            "customer_id": frame["customer_id"].to_numpy(),
            "due": _shared(np.where(due, reason, "not due")),
            "grade": _shared(scored["grade"].astype(str).to_numpy()),
            "letter_grade": _shared(letter),
            "pd": scored["pd"].to_numpy(float),
            "exposure": pd.to_numeric(
                frame.get("exposure", pd.Series(np.nan, index=frame.index)), errors="coerce"
            ).to_numpy(float),
            "limit_on_file": current,
            "policy_limit": scored["limit"].to_numpy(float),
            "action": _shared(action),
            "trigger": _shared(prop["trigger"]),
            "proposed_limit": proposed,
            "change": change,
            "change_share": change_share,
            "exposure_band": _shared(
                [_label(p.exposure_bands, i) for i in _band(exposure, p.exposure_bands)]
            ),
            "change_band": _shared(
                [_label(p.change_bands, i, True) for i in _band(change_share, p.change_bands)]
            ),
            "approver_role": np.asarray(p.roles, dtype=object)[level],
        }
    )
    return out[due].reset_index(drop=True)


def limit_review(
    bundle: dict[str, Any],
    months: Iterable[pd.DataFrame],
    triggers: Triggers,
    p: LimitReviewParams,
    budget_bytes: int | None = None,
) -> pd.DataFrame:
    """Proposals at each review date of ``months`` (one frame per date: the snapshot rows as of it,
    indexed 0..n-1), scored with the bundle in slices sized from ``budget_bytes``
    (`score.score_in_slices`); one month is held at a time."""
    parts = []
    for frame in months:
        scored = score_in_slices(bundle, frame, budget_bytes)
        ok = scored["error"].isna().to_numpy()
        parts.append(
            propose(
                scored[ok].reset_index(drop=True),
                frame[ok].reset_index(drop=True),
                triggers,
                p,
            )
        )
        del frame, scored  # let the month go before the next one is read
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return out.sort_values(["review_date", "customer_id"], kind="stable").reset_index(drop=True)


def apply_overrides(
    proposals: pd.DataFrame,
    overrides: pd.DataFrame | None,
    p: LimitReviewParams,
    source: str = "overrides",
) -> pd.DataFrame:
    """Final decision per proposal: the proposal, or a recorded override (action, limit, approver, role,
    reason). An override must give a known action and role, a limit >= 0 (0 for a suspension), an
    approver and a reason (else a one-line error naming row, column and rule); one naming no proposal
    is listed in ``attrs['overrides_unmatched']`` and not applied; ``override_within_authority`` is false
    when the approver's role is below the one the final decision needs."""
    out = proposals.copy()
    out["final_action"] = out["action"]
    out["final_limit"] = out["proposed_limit"]
    out["decided_by"] = "proposal (" + out["approver_role"].astype(str) + " to sign)"
    out["override_approver"] = None
    out["override_reason"] = None
    out["override_within_authority"] = pd.array([pd.NA] * len(out), dtype="boolean")
    if overrides is None or overrides.empty:
        return out
    key = out.set_index(["review_date", "customer_id"]).index
    roles = list(p.roles)
    unmatched: list[str] = []
    for i, row in overrides.reset_index(drop=True).iterrows():
        line = i + 2

        def fail(col: str, rule: str, msg: str) -> None:
            raise PipelineError(f"{source}: row {line}, column {col}, rule {rule}: {msg}")  # noqa: B023

        for col in OVERRIDE_COLUMNS:
            if col not in overrides.columns or pd.isna(row[col]) or str(row[col]).strip() == "":
                fail(col, "required", "an override needs every field")
        date = pd.Timestamp(row["review_date"])
        pos = key.get_indexer([(date, str(row["customer_id"]))])[0]
        if pos < 0:  # a decision on a customer not due that date: counted, never applied
            unmatched.append(f"row {line}: {row['customer_id']} on {date.date()}")
            continue
        if row["action"] not in ACTIONS:
            fail("action", "in_range", f"'{row['action']}' is not one of {ACTIONS}")
        if row["role"] not in roles:
            fail("role", "in_range", f"'{row['role']}' is not one of {roles}")
        limit = float(row["limit"])
        if limit < 0 or (row["action"] == "suspend" and limit != 0):
            fail("limit", "in_range", f"{limit} (>= 0; 0 for a suspension)")
        on_file = out.at[pos, "limit_on_file"]
        on_file = 0.0 if pd.isna(on_file) else float(on_file)
        share = abs(limit - on_file) / on_file if on_file > 0 else float(limit != on_file)
        need = role_level(
            [out.at[pos, "letter_grade"]],
            np.array([max(on_file, limit)]),
            np.array([share]),
            [row["action"]],
            p,
        )[0]
        out.at[pos, "final_action"] = row["action"]
        out.at[pos, "final_limit"] = limit
        out.at[pos, "decided_by"] = f"override: {row['approver']} ({row['role']})"
        out.at[pos, "override_approver"] = row["approver"]
        out.at[pos, "override_reason"] = row["reason"]
        out.at[pos, "override_within_authority"] = roles.index(row["role"]) >= need
    out.attrs["overrides_unmatched"] = unmatched
    return out


def review_summary(review: pd.DataFrame) -> dict[str, Any]:
    """Counts for the report: proposals by action and by approver role, per review date and in total."""
    if review.empty:
        return {"proposals": 0}
    last = review[review["review_date"] == review["review_date"].max()]
    return {
        "review_dates": int(review["review_date"].nunique()),
        "proposals": len(review),
        "by_action": review["action"].value_counts().sort_index().to_dict(),
        "last_review_date": str(pd.Timestamp(last["review_date"].iloc[0]).date()),
        "last_month_by_action": last["action"].value_counts().sort_index().to_dict(),
        "last_month_by_approver": last["approver_role"].value_counts().sort_index().to_dict(),
        "last_month_action_by_approver": {
            f"{a}|{r}": int(n)
            for (a, r), n in last.groupby(["action", "approver_role"]).size().sort_index().items()
        },
        "overrides": int(review["override_approver"].notna().sum()),
        "overrides_outside_authority": int((review["override_within_authority"] == False).sum()),  # noqa: E712
        "overrides_unmatched": review.attrs.get("overrides_unmatched", []),
    }


def read_overrides(path: Path | None) -> pd.DataFrame | None:
    """The optional overrides file (CSV: review_date, customer_id, action, limit, approver, role, reason)."""
    if path is None or not Path(path).is_file():
        return None
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


__all__ = [
    "ACTIONS",
    "apply_overrides",
    "approval_authority_table",
    "limit_review",
    "propose",
    "review_summary",
    "role_level",
]
