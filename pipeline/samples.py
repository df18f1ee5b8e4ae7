"""Sample design: which snapshot serves to fit, calibrate or test the models (docs/validation.md).

``out_of_time``: development customers (those with a matured snapshot dated before
``split.oot_start``) are split whole by a seeded hash of customer_id: a share ``oot_customer_share``
is held out, the rest go to ``calibration`` (share ``calibration_share``) or ``train``; their
development-period snapshots are ``train`` / ``calibration`` (held-out customers': ``excluded``,
reason ``oot_customer_before_oot_start``). Snapshots dated on/after ``oot_start`` are ``oot`` when
the customer has no train or calibration snapshot (held-out and new customers: disjoint by customer
*and* later in time) and ``oot_known`` when it has (the "known customers, later dates" figure,
reported beside, never as, the out-of-time result).

``stratified_holdout`` (one observation point, e.g. UCI): customers are split, stratified by their
outcome, into ``oot`` (a customer-disjoint holdout, not out of time), ``calibration`` and ``train``.

Matured snapshots (good, bad and indeterminate) belong to their customer's sample: an indeterminate
snapshot (worst 30-89 days beyond terms in the window) is an observed "not bad" outcome that
calibration and back-tests count, though no model is fitted on it. Immature and in_default snapshots
are ``excluded`` (reason = the label). Every sample keeps both segments (``current``,
``delinquent``); the models are fitted on the ``train`` rows with a good/bad outcome of
``split.fit_segments``. Monthly snapshots of one customer are not independent, so every split is by
customer; any cross-validation added later must group by customer_id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from pipeline.domain import SAMPLES, SNAPSHOT_KEYS
from pipeline.params.train import SplitParams

SEGMENT_NONE = "none"
"""Report key of the rows with no segment (already in default at the as-of date)."""
HOLDOUT_REASON = "oot_customer_before_oot_start"
OVERLAP_PAIRS = (
    ("train", "calibration"),
    ("train", "oot"),
    ("calibration", "oot"),
    ("oot", "oot_known"),
)
"""Sample pairs the design promises to be customer-disjoint."""


def _hash_share(customer_id: pd.Series, seed: int) -> np.ndarray:
    """A stable pseudo-uniform number in [0, 1) per customer, whatever the row order."""
    key = f"{seed:016d}"[-16:]
    h = pd.util.hash_pandas_object(customer_id.astype(str), index=False, hash_key=key).to_numpy()
    return h / float(2**64)


def matured(snapshots: pd.DataFrame) -> np.ndarray:
    """Snapshots with an observed outcome: good, bad or indeterminate (matured, not bad). Without a
    ``label`` column, the rows with ``is_bad``."""
    has_outcome = snapshots["is_bad"].notna().to_numpy()
    if "label" not in snapshots:
        return has_outcome
    return has_outcome | (snapshots["label"].astype(str) == "indeterminate").to_numpy()


def _out_of_time(
    snapshots: pd.DataFrame,
    eligible: np.ndarray,
    sample: np.ndarray,
    reason: np.ndarray,
    split: SplitParams,
    seed: int,
) -> None:
    """Fill ``sample`` and ``reason`` in place by the out-of-time rules (module docstring)."""
    hold_share, cal_share = split.oot_customer_share, split.calibration_share
    later = (snapshots["as_of_date"] >= pd.Timestamp(split.oot_start)).to_numpy()
    dev = eligible & ~later
    u = _hash_share(snapshots["customer_id"], seed)
    held = u < hold_share
    in_cal = (u - hold_share) / (1.0 - hold_share) < cal_share
    sample[dev & ~held & in_cal] = "calibration"
    sample[dev & ~held & ~in_cal] = "train"
    sample[dev & held] = "excluded"
    reason[dev & held] = HOLDOUT_REASON
    known_ids = snapshots.loc[dev & ~held, "customer_id"].unique()
    known = snapshots["customer_id"].isin(known_ids).to_numpy()
    sample[eligible & later & known] = "oot_known"
    sample[eligible & later & ~known] = "oot"


def _stratified_holdout(
    snapshots: pd.DataFrame,
    eligible: np.ndarray,
    sample: np.ndarray,
    split: SplitParams,
    seed: int,
) -> None:
    """Fill ``sample`` in place: customers split stratified by outcome into oot, calibration, train."""
    outcome = (
        snapshots.loc[eligible]
        .groupby("customer_id")["is_bad"]
        .max()
        .fillna(0)
        .astype(int)
        .sort_index()
    )
    rest, hold = train_test_split(
        outcome.index.to_numpy(),
        test_size=split.holdout_share,
        stratify=outcome.to_numpy(),
        random_state=seed,
    )
    rest = np.sort(rest)
    _, cal = train_test_split(
        rest,
        test_size=split.calibration_share,
        stratify=outcome.loc[rest].to_numpy(),
        random_state=seed,
    )
    where = pd.Series("train", index=outcome.index, dtype=object)
    where.loc[hold], where.loc[cal] = "oot", "calibration"
    sample[eligible] = snapshots.loc[eligible, "customer_id"].map(where).to_numpy()


def assign_samples(snapshots: pd.DataFrame, split: SplitParams, seed: int) -> pd.DataFrame:
    """``customer_id, as_of_date, sample, segment, exclusion_reason`` for every snapshot (rules in the
    module docstring). ``segment`` is copied from the snapshots (NULL when absent or excluded) and
    ``exclusion_reason`` is NULL unless ``sample == "excluded"``."""
    out = snapshots[SNAPSHOT_KEYS].copy()
    eligible = matured(snapshots)
    sample = np.empty(len(out), dtype=object)
    sample.fill("excluded")  # one shared string (np.full makes a str object per row)
    labels = (
        snapshots["label"] if "label" in snapshots else pd.Series("unlabelled", index=out.index)
    )
    reason = np.where(eligible, None, labels.astype(str)).astype(object)
    if split.method == "out_of_time":
        _out_of_time(snapshots, eligible, sample, reason, split, seed)
    else:
        _stratified_holdout(snapshots, eligible, sample, split, seed)
    out["sample"] = sample
    segment = snapshots["segment"] if "segment" in snapshots else pd.Series(None, index=out.index)
    out["segment"] = segment.astype(object).where(segment.notna(), None).to_numpy()
    out["exclusion_reason"] = reason
    return out


def fit_mask(samples: pd.DataFrame, fit_segments: Sequence[str]) -> np.ndarray:
    """Rows the models are fitted on: the ``train`` sample, restricted to ``fit_segments`` when the
    snapshots carry segments (all ``train`` rows when they do not); the caller keeps the rows with a
    good/bad outcome (``is_bad`` not null)."""
    is_train = (samples["sample"] == "train").to_numpy()
    if not fit_segments or samples["segment"].isna().all():
        return is_train
    return is_train & samples["segment"].isin(list(fit_segments)).to_numpy()


def fit_rows(snapshots: pd.DataFrame, samples: pd.DataFrame, split: SplitParams) -> np.ndarray:
    """The rows every model is fitted on: `fit_mask` with a good/bad outcome."""
    return fit_mask(samples, split.fit_segments) & snapshots["is_bad"].notna().to_numpy()


FIT_ROW_COPIES = 15
"""float64 copies of a fit row's candidate features alive at the peak of the fit (the frame, the WoE
and challenger matrices, statsmodels' design, the boosting frame, and the challenger's median
imputation, which sorts a masked copy with its index arrays). Measured at 1M customers: the fit of
580,492 rows x 97 candidates took 6.5 GB above the narrow columns, 14.4 copies (it was 6)."""
FIT_SHARE = 0.8
"""Share of ``base.memory_budget`` the snapshot rows held through the fit and the fit rows may take
together (the rest: the interpreter and libraries, the Parquet reader's buffers)."""
SNAPSHOT_ROW_BYTES = 128
"""Bytes each snapshot holds through the fit, whatever the fit sample: its narrow columns (7) and
its samples row (5), 8 bytes a value or string reference, and its share of the customer keys and
masks. Estimated from 100k customers (12 x 8 = 96 bytes counted, a third more for the rest)."""
FIT_SAMPLE_SALT = 1
"""Added to ``base.seed`` for the fit-sample hash, so that it is independent of the split hash."""


def max_fit_rows(budget_bytes: int, n_features: int, n_snapshots: int) -> int:
    """Fit rows the budget allows once every snapshot's share is set aside: `FIT_SHARE` of it less
    `SNAPSHOT_ROW_BYTES` x ``n_snapshots``, over the working bytes of one fit row, 8 x
    `FIT_ROW_COPIES` x candidate features + 512 (keys, outcome, indices); never below 0. From the
    row count, never from measured memory, so the same data gives the same cap."""
    free = budget_bytes * FIT_SHARE - SNAPSHOT_ROW_BYTES * n_snapshots
    return max(0, int(free // (8 * FIT_ROW_COPIES * n_features + 512)))


def fit_sample_rule(max_rows: int) -> str:
    """The bounded fit-sample rule in one sentence (train report, sample design)."""
    return (
        f"fit rows capped at {max_rows} = floor(({FIT_SHARE} x base.memory_budget - "
        f"{SNAPSHOT_ROW_BYTES} bytes x snapshots) / (8 x {FIT_ROW_COPIES} x candidate features + "
        "512 bytes)); above the cap whole customers "
        f"are kept in the order of a hash of customer_id seeded with base.seed + {FIT_SAMPLE_SALT}, "
        "separately among customers with a bad fit row and those without, each stratum up to the "
        "same share of its rows (cap / rows available); below it every fit row is used"
    )


def bounded_fit(
    snapshots: pd.DataFrame, fit: np.ndarray, max_rows: int, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """The fit rows cut to whole customers by `fit_sample_rule` when there are more than
    ``max_rows``, and what was done (rows and customers available and used, the rule)."""
    fit = np.asarray(fit, dtype=bool)
    rows = snapshots.loc[fit, ["customer_id", "is_bad"]]
    per = rows.groupby("customer_id", sort=True)["is_bad"].agg(["size", "max"])
    info: dict[str, Any] = {
        "rows_available": int(fit.sum()),
        "customers_available": int(len(per)),
        "max_rows": int(max_rows),
        "bound": bool(fit.sum() > max_rows),
        "rule": fit_sample_rule(max_rows),
    }
    if info["bound"]:
        per["u"] = _hash_share(pd.Series(per.index), seed + FIT_SAMPLE_SALT)
        share = max_rows / info["rows_available"]
        chosen: list = []
        for _, stratum in per.groupby("max", sort=True):
            stratum = stratum.sort_values("u", kind="mergesort")
            kept = stratum["size"].cumsum() <= share * stratum["size"].sum()
            chosen.extend(stratum.index[kept.to_numpy()])
        fit = fit & snapshots["customer_id"].isin(chosen).to_numpy()
        per = per.loc[sorted(chosen)]
    info["rows_used"], info["customers_used"] = int(fit.sum()), int(len(per))
    return fit, info


def oot_meaning(method: str) -> str:
    """What the ``oot`` sample is under the split ``method``, in words for the reports."""
    if method == "out_of_time":
        return "customer-disjoint and later in time"
    return "customer-disjoint holdout at the single observation date (not out of time)"


def sample_rule(method: str) -> str:
    """The sample rule in one sentence (train_report.json)."""
    if method == "out_of_time":
        return (
            "out_of_time: development customers split whole by seeded hash into held-out "
            "(oot_customer_share), calibration and train; as_of_date >= oot_start -> oot for "
            "customers with no train/calibration snapshot, oot_known for those with one; "
            "details in reports/<ds>/train/sample_design.json"
        )
    return (
        "stratified_holdout: single observation point; customers split stratified by "
        "outcome into oot (a customer-disjoint holdout, not out of time), calibration, train"
    )


def _counts(frame: pd.DataFrame) -> dict[str, dict[str, dict[str, int]]]:
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for (smp, seg, lab), n in frame.groupby(["sample", "segment", "label"]).size().items():
        counts.setdefault(str(smp), {}).setdefault(str(seg), {})[str(lab)] = int(n)
    return counts


def _customers(frame: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame.groupby("sample")["customer_id"].nunique().items()}


def sample_design(
    samples: pd.DataFrame,
    snapshots: pd.DataFrame,
    split: SplitParams,
    fit_sample: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The sample-design report (reports/<ds>/train/sample_design.json): snapshots by sample x segment x
    label, customers and bad customers per sample, date ranges, exclusions by reason, the customer
    overlaps between samples (0 where the design promises disjointness) and the rows the models are
    fitted on (with ``fit_sample``, the `bounded_fit` record: rows available and used, the rule).
    Totals reconcile to the snapshot count."""
    frame = samples.assign(
        label=snapshots["label"].astype(str).to_numpy(),
        is_bad=snapshots["is_bad"].to_numpy(),
        segment=samples["segment"].fillna(SEGMENT_NONE),
    )
    customers = _customers(frame)
    bad_customers = _customers(frame[frame["is_bad"].fillna(0).astype(int) == 1])
    ids = {s: set(frame.loc[frame["sample"] == s, "customer_id"]) for s in SAMPLES}
    dates = frame.groupby("sample")["as_of_date"].agg(["min", "max"])
    excluded = frame.loc[frame["sample"] == "excluded", "exclusion_reason"].value_counts()
    out_of_time = split.method == "out_of_time"
    return {
        "schema_version": "1.0",
        "method": split.method,
        "oot_start": split.oot_start if out_of_time else None,
        "oot_is": oot_meaning(split.method),
        "snapshots": int(len(frame)),
        "counts": _counts(frame),
        "snapshots_per_sample": {s: int((frame["sample"] == s).sum()) for s in SAMPLES},
        "customers": {s: customers.get(s, 0) for s in SAMPLES},
        "bad_customers": {s: bad_customers.get(s, 0) for s in SAMPLES if s != "excluded"},
        "as_of_range": {
            str(s): [f"{r['min']:%Y-%m-%d}", f"{r['max']:%Y-%m-%d}"] for s, r in dates.iterrows()
        },
        "exclusions": {str(k): int(v) for k, v in sorted(excluded.items())},
        "customer_overlap": {f"{a}&{b}": len(ids[a] & ids[b]) for a, b in OVERLAP_PAIRS},
        "fit": {
            "sample": "train",
            "segments": list(split.fit_segments),
            "snapshots": int(fit_rows(snapshots, samples, split).sum()),
            **({"bounded_sample": fit_sample} if fit_sample is not None else {}),
        },
    }
