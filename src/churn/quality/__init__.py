"""Data quality checks with Great Expectations (imported lazily: ``import churn.quality`` is cheap).

Typical use::

    frames = prepare_raw_frames(users, events, billing)
    suites = raw_data_suites(min_timestamp=start, max_timestamp=end)
    report = validate_frames(frames, suites, report_dir=Path("reports/quality/raw"))
    report.raise_for_failures()
"""

from churn.quality.runner import (
    DataQualityError,
    ExpectationOutcome,
    FailedExpectation,
    QualityReport,
    validate_frames,
)
from churn.quality.suites import DERIVED_COLUMNS, prepare_raw_frames, raw_data_suites

__all__ = [
    "DERIVED_COLUMNS",
    "DataQualityError",
    "ExpectationOutcome",
    "FailedExpectation",
    "QualityReport",
    "prepare_raw_frames",
    "raw_data_suites",
    "validate_frames",
]
