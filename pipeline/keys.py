"""Compact exact sets of text keys (customer, invoice, payment ids) for the cross-chunk and
cross-table rules of ingest.

A Python ``set`` or an object ``pd.Index`` of 15M invoice ids holds ~1.3 GB of string objects and
hash table. `KeySet` holds the keys as Arrow text (their bytes plus 4) and a sorted array of their
64-bit hashes with each key's position (insertion order) — about 32 bytes per key of 12 characters.
A lookup finds candidates by hash and then compares the text itself, so it is exact: two keys that
share a hash are kept apart (the later one is looked up in a small dict of its own).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def key_hashes(values: np.ndarray) -> np.ndarray:
    """64-bit hashes of text keys (pandas' keyed SipHash of the UTF-8 bytes); text that is not
    valid UTF-8 (undecodable bytes kept as surrogates) is hashed by its escaped bytes."""
    try:
        return pd.util.hash_array(values, categorize=False)
    except UnicodeEncodeError:
        raw = np.array(
            [v.encode("utf-8", "surrogateescape") for v in values.tolist()], dtype=object
        )
        return pd.util.hash_array(raw, categorize=False)


def _as_text(values: np.ndarray) -> pa.Array:
    try:
        return pa.array(values, type=pa.string(), from_pandas=True).cast(pa.binary())
    except (UnicodeEncodeError, pa.ArrowException):
        return pa.array(
            [v.encode("utf-8", "surrogateescape") for v in values.tolist()], type=pa.binary()
        )


class KeySet:
    """Distinct text keys in insertion order: ``add`` new ones, ``positions`` of any.

    The hashes are kept in sorted runs, merged when a run is no longer than the one before it (so
    there are O(log n) runs and each hash is moved O(log n) times)."""

    def __init__(self, hasher: Callable[[np.ndarray], np.ndarray] = key_hashes) -> None:
        self._hash = hasher
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted hashes, positions)
        self._text: list[pa.Array] = []
        self._joined: pa.ChunkedArray | None = None
        self._collided: dict[str, int] = {}
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def _keys(self) -> pa.ChunkedArray:
        if self._joined is None:
            self._joined = pa.chunked_array(self._text, type=pa.binary())
        return self._joined

    def _find(self, h: np.ndarray) -> np.ndarray:
        """Position of the stored key with each hash, -1 when no key has it."""
        order = np.argsort(h)
        hs = h[order]  # sorted queries: searchsorted walks each run once instead of jumping
        found = np.full(len(h), -1, dtype=np.int64)
        for hashes, where in self._runs:
            at = np.searchsorted(hashes, hs)
            inside = at < len(hashes)
            inside[inside] = hashes[at[inside]] == hs[inside]
            found[inside] = where[at[inside]]
        cand = np.empty_like(found)
        cand[order] = found
        return cand

    def positions(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Position of each value in the set (insertion order), -1 when absent or null."""
        vals = np.asarray(values, dtype=object)
        out = np.full(len(vals), -1, dtype=np.int64)
        present = pd.notna(vals)
        if not self.size or not present.any():
            return out
        idx = np.flatnonzero(present)
        sub = vals[idx]
        cand = self._find(self._hash(sub))
        hit = np.flatnonzero(cand >= 0)
        if len(hit):
            same = pc.equal(self._keys().take(pa.array(cand[hit])), _as_text(sub[hit]))
            same = same.to_numpy(zero_copy_only=False).astype(bool)
            out[idx[hit[same]]] = cand[hit[same]]
        if self._collided:
            for i in idx[out[idx] < 0]:
                out[i] = self._collided.get(vals[i], -1)
        return out

    def add(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Add distinct keys absent from the set (non-null, each once); return their positions."""
        vals = np.asarray(values, dtype=object)
        pos = np.arange(self.size, self.size + len(vals), dtype=np.int64)
        if not len(vals):
            return pos
        h = self._hash(vals)
        order = np.argsort(h, kind="stable")
        hs = h[order]
        clash = self._find(h) >= 0
        clash[order[1:]] |= hs[1:] == hs[:-1]
        for i in np.flatnonzero(clash):  # a different key with the same hash: kept exactly
            self._collided[vals[i]] = int(pos[i])
        keep = ~clash[order]
        self._runs.append((hs[keep], pos[order[keep]]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (h1, w1), (h2, w2) = self._runs.pop(), self._runs.pop()
            merged = np.concatenate([h2, h1])
            by = np.argsort(merged, kind="stable")
            self._runs.append((merged[by], np.concatenate([w2, w1])[by]))
        self._text.append(_as_text(vals))
        self._joined = None
        self.size += len(vals)
        return pos

    def keys(self, positions: np.ndarray) -> np.ndarray:
        """The keys at ``positions`` (all valid), as Python strings."""
        raw = self._keys().take(pa.array(np.asarray(positions, dtype=np.int64)))
        return np.array(
            [b.decode("utf-8", "surrogateescape") for b in raw.to_pylist()], dtype=object
        )

    def contains(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Whether each value is in the set."""
        return self.positions(values) >= 0
