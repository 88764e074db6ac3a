"""The temporal split rule on snapshot dates alone, without the model libraries.

:mod:`churn.modeling.train` splits its frames with it, and the parameter checks
(:mod:`churn.params`) judge a planned schedule with it before anything runs, so a command
that only checks parameters (every ``churn build``) does not import scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd


def split_snapshots(snapshots: Sequence[Any], n_valid: int, horizon_days: int) -> tuple[list[Any], list[Any]]:
    """The temporal split on snapshot dates alone: ``(training, validation)`` snapshots.

    Validation is the last ``n_valid``; a training snapshot's label window (``horizon_days``) must
    end by the first validation snapshot (purge).
    """
    ordered = sorted(snapshots)
    if n_valid < 1 or n_valid >= len(ordered):
        return [], ordered[-n_valid:] if n_valid >= 1 else []
    first_valid = pd.Timestamp(ordered[-n_valid])
    cutoff = first_valid - pd.Timedelta(days=horizon_days)  # label window must end by first_valid
    return [s for s in ordered if pd.Timestamp(s) <= cutoff], ordered[-n_valid:]
