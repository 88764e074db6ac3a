"""Monitoring: feature drift statistics, alerts, retraining triggers, performance timeline.

The drift names below load on first use (PEP 562), so ``churn.monitoring.plots`` and the
dashboards do not pay for importing SciPy.
"""

from importlib import import_module
from typing import Any

__all__ = ["DEFAULT_MIN_EFFECT", "REPORT_COLUMNS", "cohens_d", "detection_delay", "drift_report",
           "feature_drift_summary", "holm", "psi"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("churn.monitoring.drift"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
