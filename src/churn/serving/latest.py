"""Every user's latest feature vector in memory, keyed by user id: the offline-store fallback
without a DuckDB query per miss (a point lookup is a dictionary probe, not a scan).

The index is built from the warehouse snapshot readers use and tagged with that file's identity
(inode, mtime, size). Before serving, the caller passes the current identity; a different one (a
new build published a new snapshot) rebuilds the index first, so a fallback never serves vectors
older than the snapshot on disk. Above ``max_rows`` users the index is not built and lookups go
to DuckDB as before.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd

from churn.store import offline
from churn.store.warehouse import Warehouse


class LatestVectors:
    """The latest snapshot's vectors (all features of the offline store) for fast point lookups."""

    def __init__(self, warehouse: Warehouse, max_rows: int = 2_000_000) -> None:
        self.warehouse = warehouse
        self.max_rows = max_rows
        self.stamp: Any = None
        self.frame: pd.DataFrame | None = None
        self._index: pd.Index | None = None
        self._lock = threading.Lock()

    def lookup(self, user_ids: np.ndarray, stamp: Any) -> pd.DataFrame | None:
        """Rows for ``user_ids`` found in the snapshot identified by ``stamp`` (one per user, as
        ``offline.latest_vectors`` returns them); None when the index is not usable (too large)."""
        with self._lock:
            if stamp is None or stamp != self.stamp:
                self._load(stamp)
            if self.frame is None or self._index is None:
                return None
            rows = self._index.get_indexer(pd.Index(np.asarray(user_ids, dtype=np.int64)))
            return self.frame.iloc[rows[rows >= 0]]

    def _load(self, stamp: Any) -> None:
        self.frame = self._index = None
        self.stamp = None
        frame = offline.latest_vectors(self.warehouse)  # raises on a missing or locked warehouse
        if len(frame) <= self.max_rows:
            frame = frame.drop_duplicates("user_id").reset_index(drop=True)
            self.frame, self._index = frame, pd.Index(frame["user_id"].to_numpy(np.int64))
        self.stamp = stamp
