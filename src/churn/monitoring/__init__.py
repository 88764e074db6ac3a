"""Monitoring: feature drift statistics, alerts, retraining triggers, performance timeline."""

from churn.monitoring.drift import (
    DEFAULT_MIN_EFFECT,
    REPORT_COLUMNS,
    cohens_d,
    detection_delay,
    drift_report,
    feature_drift_summary,
    holm,
    psi,
)

__all__ = ["DEFAULT_MIN_EFFECT", "REPORT_COLUMNS", "cohens_d", "detection_delay", "drift_report",
           "feature_drift_summary", "holm", "psi"]
