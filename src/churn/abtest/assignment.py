"""Deterministic traffic assignment: the same user in the same test always lands in the same arm.

A user's bucket is ``blake2b(f"{test_name}:{user_id}") mod buckets``; the user is in the variant when
``bucket < traffic_split * buckets``. Hashing the test name with the id makes assignments of
different tests independent of each other, and blake2b (unlike Python's ``hash``, which is salted
per process) gives the same answer in every process, on every machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

CONTROL = "control"
VARIANT = "variant"


def _check_split(traffic_split: float, buckets: int) -> None:
    if not 0.0 < float(traffic_split) < 1.0:
        raise ValueError(
            f"traffic_split is the variant's share of traffic and must lie strictly between 0 and 1; "
            f"got {traffic_split!r}"
        )
    if int(buckets) != buckets or buckets < 2:
        raise ValueError(f"buckets must be an integer >= 2; got {buckets!r}")


def buckets_of(user_ids: Iterable[object], test_name: str, buckets: int = 10_000) -> np.ndarray:
    """Bucket number in ``[0, buckets)`` for each user: ``blake2b(test_name:user_id) mod buckets``."""
    if not test_name:
        raise ValueError("test_name must be a non-empty string")
    prefix = f"{test_name}:".encode()
    # 8-byte digests, joined and read as one big-endian uint64 array: one numpy op instead of
    # 10^5 int.from_bytes calls.
    digests = b"".join(
        hashlib.blake2b(prefix + str(uid).encode(), digest_size=8).digest() for uid in user_ids
    )
    return (np.frombuffer(digests, dtype=">u8") % np.uint64(buckets)).astype(np.int64)


def assign(
    user_ids: Iterable[object], test_name: str, traffic_split: float = 0.5, buckets: int = 10_000
) -> np.ndarray:
    """Arm (``'control'`` or ``'variant'``) of each user, deterministic in (test name, user id).

    Args:
        user_ids: any ids; they are hashed through ``str(user_id)``, so ``7`` and ``"7"`` agree.
        test_name: the experiment's name; another name reshuffles users independently.
        traffic_split: share of users sent to the variant, strictly between 0 and 1.
        buckets: hash resolution; the realised split is a multiple of ``1 / buckets``.

    Returns:
        A string array of the same length as ``user_ids``.
    """
    _check_split(traffic_split, buckets)
    bucket = buckets_of(user_ids, test_name, buckets)
    # round() so that 0.3 * 10_000 = 2999.9999... still means 3,000 variant buckets.
    cutoff = round(traffic_split * buckets)
    return np.where(bucket < cutoff, VARIANT, CONTROL)
