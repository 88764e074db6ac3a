"""Every user's latest feature vector in memory, keyed by user id: the offline-store fallback
without a DuckDB query per miss (a point lookup is a dictionary probe, not a scan), and the 404
reasons (churned, never existed, no vector yet) without a query per unknown user.

The index is built off the request path (at startup and on each background tick) from the
warehouse snapshot readers use, and tagged with that file's identity (inode, mtime, size).
Lookups pass the current identity: while the index holds another snapshot (a build just
published a new one and the next tick has not indexed it yet) the caller queries DuckDB instead,
so a fallback never serves vectors older than the snapshot on disk. Above ``max_rows`` users no
index is built and lookups always go to DuckDB.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.store import offline, raw
from churn.store.warehouse import Warehouse

log = logging.getLogger("churn.serving")
UNKNOWN = object()  # "the index cannot say" (as opposed to None: "no reason recorded")


@dataclass(frozen=True)
class _Snapshot:
    """One published snapshot's index; replaced whole, so a reader never sees a half-built one."""

    stamp: Any
    frame: pd.DataFrame | None  # None: too many users to hold
    index: pd.Index | None
    lifetimes: dict[int, tuple[Any, Any]] | None  # absent users -> (signup_at, churned_at); None: no users table


def absence_reason(lifetime: tuple[Any, Any] | None) -> str:
    """Why a user of ``raw_data.users`` (``(signup_at, churned_at)``, None: not there) has no vector."""
    if lifetime is None:
        return "the user never existed (no such id in raw_data.users)"
    signup_at, churned_at = lifetime
    if churned_at is not None and not pd.isna(churned_at):
        return f"the user churned on {churned_at:%Y-%m-%d}; churned users are not scored"
    return f"the user (signed up {signup_at:%Y-%m-%d}) has no vector at the latest snapshot yet"


class LatestVectors:
    """The latest snapshot's vectors (all features of the offline store) for fast point lookups."""

    def __init__(self, warehouse: Warehouse, max_rows: int = 2_000_000) -> None:
        self.warehouse = warehouse
        self.max_rows = max_rows
        self.current: _Snapshot | None = None
        self._lock = threading.Lock()  # one build at a time

    @property
    def stamp(self) -> Any:
        return None if self.current is None else self.current.stamp

    def refresh(self, stamp: Any) -> bool:
        """Index the snapshot identified by ``stamp`` unless it is the one held; True when a new
        index was swapped in. Raises on a missing or locked warehouse (the old index stays)."""
        with self._lock:
            if stamp is None or stamp == self.stamp:
                return False
            frame = offline.latest_vectors(self.warehouse)
            if len(frame) > self.max_rows:
                self.current = _Snapshot(stamp, None, None, None)
                return True
            frame = frame.drop_duplicates("user_id").reset_index(drop=True)
            index = pd.Index(frame["user_id"].to_numpy(np.int64))
            users = raw.user_lifetimes(self.warehouse)
            lifetimes = None
            if users is not None:
                absent = users[~users["user_id"].isin(index)]
                spans = zip(absent["signup_at"].tolist(), absent["churned_at"].tolist(), strict=True)
                lifetimes = dict(zip(absent["user_id"].tolist(), spans, strict=True))
            self.current = _Snapshot(stamp, frame, index, lifetimes)
            return True

    def lookup(self, user_ids: np.ndarray, stamp: Any) -> pd.DataFrame | None:
        """Rows for ``user_ids`` found in the snapshot identified by ``stamp`` (one per user, as
        ``offline.latest_vectors`` returns them); None when the index does not hold that snapshot
        (not built yet, a newer one on disk, or too large): the caller asks DuckDB."""
        snapshot = self.current
        if snapshot is None or snapshot.frame is None or snapshot.index is None or stamp != snapshot.stamp:
            return None
        rows = snapshot.index.get_indexer(pd.Index(np.asarray(user_ids, dtype=np.int64)))
        return snapshot.frame.iloc[rows[rows >= 0]]

    def absent_reason(self, user_id: int, stamp: Any) -> Any:
        """Why ``user_id`` has no vector in the snapshot ``stamp``: a sentence, None when the data
        set has no users table, or ``UNKNOWN`` when the index cannot say (the caller asks DuckDB)."""
        snapshot = self.current
        if snapshot is None or snapshot.index is None or stamp != snapshot.stamp or user_id in snapshot.index:
            return UNKNOWN
        if snapshot.lifetimes is None:
            return None
        return absence_reason(snapshot.lifetimes.get(int(user_id)))
