"""The raw-data expectation suite passes on the default data, and catches activity after churn."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from churn.quality import runner, suites
from churn.store.raw import read_raw_tables


@pytest.fixture(scope="module")
def raw_tables(default_warehouse):
    return read_raw_tables(default_warehouse)


def _validate(tables: dict[str, pd.DataFrame]) -> runner.QualityReport:
    return runner.validate_frames(
        suites.prepare_raw_frames(tables["users"], tables["events"], tables["billing"]),
        suites.raw_data_suites(min_timestamp=datetime(2000, 1, 1), max_timestamp=datetime(2026, 6, 1)),
    )


def test_default_data_passes_every_expectation(raw_tables):
    report = _validate(raw_tables)
    assert report.success, report.message()


def test_event_after_churn_is_named_with_its_user(raw_tables):
    """An event after its user's churn fails `nothing_after_churn` with that user as example."""
    events = raw_tables["events"].copy()
    churner = raw_tables["users"].dropna(subset=["churned_at"]).iloc[0]
    events.loc[events.index[0], ["user_id", "event_at"]] = [churner.user_id, churner.churned_at + pd.Timedelta(days=1)]
    report = _validate({**raw_tables, "events": events})
    assert not report.success
    failed = [f for f in report.failures if "at or after its user's churned_at" in (f.observed + str(f.notes))]
    assert failed and churner.user_id in failed[0].examples
