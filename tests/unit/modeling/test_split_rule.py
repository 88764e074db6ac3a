"""The parameter check and training share one temporal-split rule (no copy that can drift)."""

import pandas as pd
import pytest

from churn.features import snapshot_dates
from churn.modeling.train import split_snapshots, temporal_split


@pytest.mark.parametrize("n_snapshots", [4, 5, 8])
@pytest.mark.parametrize("n_valid", [1, 2])
@pytest.mark.parametrize("horizon", [14, 30, 60])
def test_planned_split_equals_split_of_the_frame(n_snapshots: int, n_valid: int, horizon: int) -> None:
    snapshots = snapshot_dates("2025-01-01", "2026-01-01", n_snapshots=n_snapshots, horizon_days=horizon)
    frame = pd.DataFrame({"snapshot_at": pd.to_datetime([s for s in snapshots for _ in range(3)])})
    train, valid = temporal_split(frame, n_valid, horizon)
    planned_train, planned_valid = split_snapshots(snapshots, n_valid, horizon)
    assert sorted(train.snapshot_at.unique()) == list(pd.to_datetime(planned_train))
    assert sorted(valid.snapshot_at.unique()) == list(pd.to_datetime(planned_valid))
    # the purge, recomputed by hand: every training label window ends by the first validation snapshot
    first_valid = pd.Timestamp(planned_valid[0])
    assert all(pd.Timestamp(s) + pd.Timedelta(days=horizon) <= first_valid for s in planned_train)
    assert all((first_valid - pd.Timestamp(s)).days < horizon for s in snapshots[:-n_valid] if s not in planned_train)
