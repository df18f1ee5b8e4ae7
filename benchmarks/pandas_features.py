"""A straightforward pandas implementation of the features stage: the benchmark baseline and the test reference.

Written independently of the SQL (`pipeline.features.sql`): settlement is simulated per customer with NumPy,
then every as-of date is a filter + groupby over the invoice table. Definitions are the ones in the feature
dictionary; see `pipeline.features.sql` for the stated conventions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

NEVER = 100_000_000
ANCHORS = [
    (-30, 100),
    (-20, 90),
    (0, 80),
    (15, 70),
    (22, 60),
    (30, 50),
    (60, 40),
    (90, 30),
    (120, 20),
]


def _days(s: pd.Series) -> np.ndarray:
    out = (s - pd.Timestamp("1970-01-01")).dt.days
    return out.fillna(NEVER).astype("int64").to_numpy()


def _cents(s: pd.Series) -> np.ndarray:
    return np.round(s.to_numpy(dtype=float) * 100).astype("int64")


def points(dbt: np.ndarray, floor: float = 1.0) -> np.ndarray:
    """PAYDEX-style points: np.interp through the anchors, 3 days per point beyond 120, floored."""
    xs, ys = zip(*ANCHORS, strict=True)
    p = np.interp(dbt, xs, ys)
    return np.where(dbt > 120, np.maximum(floor, 20 - (dbt - 120) / 3.0), p)


def settle(invoices: pd.DataFrame, payments: pd.DataFrame) -> pd.DataFrame:
    """Per invoice: day numbers, cents, settled day (direct running total or FIFO pool), pool position."""
    inv = pd.DataFrame(
        {
            "invoice_id": invoices["invoice_id"].astype(str).to_numpy(),
            "customer_id": invoices["customer_id"].astype(str).to_numpy(),
            "invoice_day": _days(invoices["invoice_date"]),
            "due_day": _days(invoices["due_date"]),
            "cents": _cents(invoices["amount"]),
            "write_off_day": _days(invoices["write_off_date"]),
        }
    )
    pay = pd.DataFrame(
        {
            "payment_id": payments["payment_id"].astype(str).to_numpy(),
            "customer_id": payments["customer_id"].astype(str).to_numpy(),
            "invoice_id": payments["invoice_id"].to_numpy(dtype=object),
            "pay_day": _days(payments["payment_date"]),
            "cents": _cents(payments["amount"]),
        }
    )
    direct = pay[pay["invoice_id"].notna()].sort_values(["invoice_id", "pay_day", "payment_id"])
    direct = direct.merge(
        inv[["invoice_id", "cents"]].rename(columns={"cents": "inv_cents"}), on="invoice_id"
    )
    direct["run"] = direct.groupby("invoice_id")["cents"].cumsum()
    done = direct[direct["run"] >= direct["inv_cents"]].groupby("invoice_id")["pay_day"].min()
    inv["direct_day"] = inv["invoice_id"].map(done).fillna(NEVER).astype("int64")
    partial = direct[direct["run"] < direct["inv_cents"]][["invoice_id", "pay_day", "cents"]]

    pool = (
        pay[pay["invoice_id"].isna()].sort_values(["customer_id", "pay_day", "payment_id"]).copy()
    )
    pool["cum"] = pool.groupby("customer_id")["cents"].cumsum()
    inv = inv.sort_values(["customer_id", "invoice_day", "due_day", "invoice_id"]).reset_index(
        drop=True
    )
    inv["queue"] = inv.groupby("customer_id")["cents"].cumsum()
    has_pool = inv["customer_id"].isin(pool["customer_id"])
    inv["queue_before"] = (inv["queue"] - inv["cents"]).where(has_pool)
    # first pool payment whose running total covers the invoice's queue position
    hit = pd.merge_asof(
        inv.loc[has_pool, ["customer_id", "queue", "invoice_id"]].sort_values("queue"),
        pool[["customer_id", "cum", "pay_day"]].sort_values("cum"),
        left_on="queue",
        right_on="cum",
        by="customer_id",
        direction="forward",
    )
    inv["pool_day"] = (
        inv["invoice_id"].map(hit.set_index("invoice_id")["pay_day"]).fillna(NEVER).astype("int64")
    )
    first = np.minimum(inv["direct_day"], inv["pool_day"])
    inv["settled_day"] = np.where(first >= NEVER, NEVER, np.maximum(first, inv["invoice_day"]))
    inv.attrs["partial"] = partial
    inv.attrs["pool_cum"] = pool
    return inv


def _shift(t: pd.Timestamp, months: int) -> pd.Timestamp:
    s = t + pd.DateOffset(months=months)
    return s + pd.offsets.MonthEnd(0) if t.is_month_end else s


def _day(t: pd.Timestamp) -> int:
    return int((t - pd.Timestamp("1970-01-01")).days)


def open_balance(inv: pd.DataFrame, d: int, bad_dbt: int = 90) -> pd.DataFrame:
    """Open balance and ageing buckets per customer at day ``d``; ``default`` is the largest invoice amount
    still open at ``bad_dbt`` or more days past due."""
    o = inv[
        (inv["invoice_day"] <= d) & (np.minimum(inv["settled_day"], inv["write_off_day"]) > d)
    ].copy()
    partial = inv.attrs["partial"]
    paid = partial[partial["pay_day"] <= d].groupby("invoice_id")["cents"].sum()
    o["paid"] = o["invoice_id"].map(paid).fillna(0).astype("int64")
    pool_cum = inv.attrs["pool_cum"]
    u = pool_cum[pool_cum["pay_day"] <= d].groupby("customer_id")["cum"].max()
    u_o = o["customer_id"].map(u).fillna(0).to_numpy()
    pool_at = np.where(
        o["queue_before"].notna(), np.maximum(0, u_o - o["queue_before"].fillna(0)), 0
    )
    pool_at = pool_at.astype("int64")
    o["paid"] = np.minimum(o["cents"], o["paid"] + np.minimum(o["cents"], pool_at))
    o["open"] = o["cents"] - o["paid"]
    dpd = d - o["due_day"]
    buckets = {
        "current": dpd <= 0,
        "1_30": (dpd >= 1) & (dpd <= 30),
        "31_60": (dpd >= 31) & (dpd <= 60),
        "61_90": (dpd >= 61) & (dpd <= 90),
        "90p": dpd >= 91,
    }
    for name, mask in buckets.items():
        o[f"b_{name}"] = np.where(mask, o["open"], 0)
    o["overdue"] = ((dpd > 0) & (o["open"] > 0)).astype(int)
    o["dpd_open"] = np.where(o["open"] > 0, dpd, np.nan)
    o["default"] = np.where((o["open"] > 0) & (dpd >= bad_dbt), o["cents"], np.nan)
    g = o.groupby("customer_id")
    out = g[["open", *[f"b_{n}" for n in buckets], "overdue"]].sum()
    out["worst"] = g["dpd_open"].max()
    out["default"] = g["default"].max()
    return out


def pandas_features(tables: dict[str, pd.DataFrame], params: dict[str, Any]) -> pd.DataFrame:
    """Labelled snapshots (ledger bad definition): one row per customer × as-of date, same column names."""
    windows = sorted(set(int(w) for w in params.get("windows_months", [3, 6, 12])) | {12})
    floor = float(params.get("paydex_floor", 1))
    label = params.get("label", {})
    inv = settle(tables["invoices"], tables["payments"])
    pay = tables["payments"].assign(
        pay_day=_days(tables["payments"]["payment_date"]),
        cents=_cents(tables["payments"]["amount"]),
    )
    clm = tables["claims"].assign(
        claim_day=_days(tables["claims"]["claim_date"]), cents=_cents(tables["claims"]["amount"])
    )
    cust = tables["customers"].set_index("customer_id")
    due_of = inv.set_index("invoice_id")["due_day"]
    onboard = (
        pd.Series(_days(cust["onboarding_date"]), index=cust.index)
        if "onboarding_date" in cust
        else None
    )
    first = inv.groupby("customer_id")["invoice_day"].min()
    cutoff = pd.Timestamp(params["data_cutoff"])
    spec = params["as_of"]
    frames = []
    for t in pd.date_range(spec["start"], spec["end"], freq=spec.get("freq", "ME")):
        d = _day(t)
        ids = first[first <= d].index
        f = pd.DataFrame(index=pd.Index(ids, name="customer_id"))
        f["as_of_date"] = t
        ob = open_balance(inv, d, int(label.get("bad_days_beyond_terms", 90))).reindex(ids)
        f["exposure"] = ob["open"].fillna(0) / 100.0
        mob = np.minimum(12, np.ceil((d - first.reindex(ids) + 1) / 30.4375))
        for name in ("current", "1_30", "31_60", "61_90", "90p"):
            f[f"open_balance_{name}"] = ob[f"b_{name}"].fillna(0) / 100.0
        exp_c = ob["open"].fillna(0)
        f["overdue_share"] = ((exp_c - ob["b_current"].fillna(0)) / exp_c).where(exp_c > 0)
        f["overdue_invoice_count"] = ob["overdue"].fillna(0).astype(int)
        f["worst_days_past_due"] = ob["worst"].fillna(0).clip(lower=0)
        x = inv[inv["invoice_day"] <= d].copy()
        x["dbt"] = np.where(
            x["settled_day"] <= d,
            x["settled_day"] - x["due_day"],
            np.where(x["due_day"] < d, d - x["due_day"], np.nan),
        )
        x["obs"] = x["dbt"].notna()
        start = {w: _day(_shift(t, -w)) for w in windows}
        wmax = max(windows)
        for w in windows:
            iw = x[x["invoice_day"] > start[w]]
            ob_w = iw[iw["obs"]]
            g, go = iw.groupby("customer_id"), ob_w.groupby("customer_id")
            inv_c = g["cents"].sum().reindex(ids).fillna(0)
            obs_c = go["cents"].sum().reindex(ids)
            f[f"invoice_count_{w}m"] = g.size().reindex(ids).fillna(0).astype(int)
            f[f"invoiced_amount_{w}m"] = inv_c / 100.0
            f[f"days_beyond_terms_mean_{w}m"] = go["dbt"].mean().reindex(ids)
            wsum = (ob_w["dbt"] * ob_w["cents"]).groupby(ob_w["customer_id"]).sum().reindex(ids)
            f[f"days_beyond_terms_wavg_{w}m"] = (wsum / obs_c).where(obs_c > 0)
            f[f"days_beyond_terms_max_{w}m"] = go["dbt"].max().reindex(ids)
            f[f"late_invoice_share_{w}m"] = (
                (ob_w["dbt"] > 0).groupby(ob_w["customer_id"]).mean().reindex(ids)
            )
            for b, lo, hi in (
                ("1_30", 1, 30),
                ("31_60", 31, 60),
                ("61_90", 61, 90),
                ("90p", 91, 10**9),
            ):
                m = (ob_w["dbt"] >= lo) & (ob_w["dbt"] <= hi)
                num = ob_w["cents"].where(m, 0).groupby(ob_w["customer_id"]).sum().reindex(ids)
                f[f"late_amount_share_{b}_{w}m"] = (num / obs_c).where(obs_c > 0)
            pts = (
                (ob_w["cents"] * points(ob_w["dbt"].to_numpy(), floor))
                .groupby(ob_w["customer_id"])
                .sum()
            )
            f[f"paydex_{w}m"] = (pts.reindex(ids) / obs_c).where(obs_c > 0)
            due = x[(x["due_day"] > start[w]) & (x["due_day"] <= d)]
            due_c = due.groupby("customer_id")["cents"].sum().reindex(ids).fillna(0)
            wo_c = (
                due[due["write_off_day"] <= d]
                .groupby("customer_id")["cents"]
                .sum()
                .reindex(ids)
                .fillna(0)
            )
            cw = clm[(clm["claim_day"] > start[w]) & (clm["claim_day"] <= d)]
            cl_c = cw.groupby("customer_id")["cents"].sum().reindex(ids).fillna(0)
            f[f"net_collection_rate_{w}m"] = ((due_c - cl_c - wo_c) / due_c).where(due_c > 0)
            f[f"claims_count_{w}m"] = (
                cw.groupby("customer_id").size().reindex(ids).fillna(0).astype(int)
            )
            f[f"claims_rate_{w}m"] = (cl_c / inv_c).where(inv_c > 0)
            pw = pay[(pay["pay_day"] > start[w]) & (pay["pay_day"] <= d)]
            paid_c = pw.groupby("customer_id")["cents"].sum().reindex(ids).fillna(0)
            f[f"payment_ratio_{w}m"] = (paid_c / inv_c).where(inv_c > 0)
            f[f"payment_count_{w}m"] = (
                pw.groupby("customer_id").size().reindex(ids).fillna(0).astype(int)
            )
            delay = pw["pay_day"] - pw["invoice_id"].map(due_of)
            f[f"payment_delay_max_{w}m"] = delay.groupby(pw["customer_id"]).max().reindex(ids)
            f[f"payment_delay_mean_{w}m"] = delay.groupby(pw["customer_id"]).mean().reindex(ids)
            days = d - start[w]
            cur_c = ob["b_current"].fillna(0)
            f[f"dso_{w}m"] = (exp_c * days / inv_c).where(inv_c > 0)
            f[f"best_possible_dso_{w}m"] = (cur_c * days / inv_c).where(inv_c > 0)
            f[f"average_days_delinquent_{w}m"] = ((exp_c - cur_c) * days / inv_c).where(inv_c > 0)
            beg = open_balance(inv, start[w])["open"].reindex(ids).fillna(0)
            den = beg + inv_c - cur_c
            f[f"cei_{w}m"] = (100.0 * (beg + inv_c - exp_c) / den).where(den > 0)
            f[f"largest_invoice_share_{w}m"] = (g["cents"].max().reindex(ids) / inv_c).where(
                inv_c > 0
            )
        wmin = min(windows)
        f["days_beyond_terms_trend"] = (
            f[f"days_beyond_terms_wavg_{wmin}m"] - f[f"days_beyond_terms_wavg_{wmax}m"]
        )
        last = x[(x["invoice_day"] > start[wmax]) & x["obs"]].sort_values(["invoice_day", "dbt"])
        f["days_beyond_terms_last_invoice"] = (
            last.groupby("customer_id")["dbt"].last().reindex(ids)
        )
        late = x[
            (x["invoice_day"] > start[wmax])
            & (x["settled_day"] <= d)
            & (x["settled_day"] > x["due_day"])
        ]
        f["days_since_last_late_payment"] = d - late.groupby("customer_id")[
            "settled_day"
        ].max().reindex(ids)
        fi = first.reindex(ids)
        ten = np.where(
            onboard is not None and True, np.minimum(fi, onboard.reindex(ids).fillna(NEVER)), fi
        )
        f["tenure_months"] = (d - ten) / 30.4375
        recent = pay[(pay["pay_day"] > start[wmax]) & (pay["pay_day"] <= d)]
        f["days_since_last_payment"] = d - recent.groupby("customer_id")["pay_day"].max().reindex(
            ids
        )
        f["avg_monthly_invoiced"] = f["invoiced_amount_12m"] / mob
        f["competitor_share"] = cust["competitor_share"].reindex(ids)
        f["credit_limit"] = cust["credit_limit"].reindex(ids)
        f["utilisation"] = (exp_c / (cust["credit_limit"].reindex(ids) * 100)).where(
            cust["credit_limit"].reindex(ids) > 0
        )
        # label (ledger): material invoice reaching the thresholds in (t, t + P], or a write-off
        perf_end = _day(_shift(t, int(label.get("performance_window_months", 12))))
        end = np.minimum(inv["settled_day"], inv["write_off_day"])
        mat = float(label.get("material_amount", 0)) * 100
        share = float(label.get("material_share", 0))

        def reached(k: int, d=d, end=end, perf_end=perf_end, ids=ids) -> pd.Series:
            s = np.maximum(d + 1, inv["due_day"] + k)
            hit = inv[(s <= perf_end) & (end >= s)]
            return hit.groupby("customer_id")["cents"].max().reindex(ids)

        bad_c, worse_c = (
            reached(int(label.get("bad_days_beyond_terms", 90))),
            reached(int(label.get("good_max_days_beyond_terms", 30))),
        )
        f["perf_bad_dbt"] = ((bad_c > mat) & (bad_c > share * exp_c)).astype(int)
        f["perf_over_good"] = ((worse_c > mat) & (worse_c > share * exp_c)).astype(int)
        wo = inv[(inv["write_off_day"] > d) & (inv["write_off_day"] <= perf_end)]
        f["perf_written_off"] = ids.isin(wo["customer_id"]).astype(int)
        wo_c = (
            inv[(inv["write_off_day"] <= d) & (inv["invoice_day"] <= d)]
            .groupby("customer_id")["cents"]
            .sum()
            .reindex(ids)
            .fillna(0)
        )
        f["written_off_amount_to_date"] = wo_c / 100.0
        f["default_at_asof"] = (
            ((ob["default"] > mat) & (ob["default"] > share * exp_c)) | (wo_c > 0)
        ).astype(int)
        f["mature"] = _shift(t, int(label.get("performance_window_months", 12))) <= cutoff
        frames.append(f.reset_index())
    return label_ledger(
        pd.concat(frames, ignore_index=True)
        .sort_values(["customer_id", "as_of_date"])
        .reset_index(drop=True)
    )


def label_ledger(frame: pd.DataFrame) -> pd.DataFrame:
    """The ledger bad definition in pandas (in_default, immature, bad, indeterminate, good, in that order)."""
    label = np.select(
        [
            frame["default_at_asof"] == 1,
            ~frame["mature"].astype(bool),
            (frame["perf_bad_dbt"] == 1) | (frame["perf_written_off"] == 1),
            frame["perf_over_good"] == 1,
        ],
        ["in_default", "immature", "bad", "indeterminate"],
        default="good",
    )
    out = frame.drop(
        columns=["mature", "default_at_asof", "perf_bad_dbt", "perf_written_off", "perf_over_good"]
    )
    out["label"] = label
    out["is_bad"] = pd.array(
        np.where(label == "bad", 1, np.where(label == "good", 0, None)), dtype="Int8"
    )
    return out
