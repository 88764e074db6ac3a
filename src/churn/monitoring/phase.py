"""The monitor and decide-retraining phases as library functions (notebooks 08 and 09).

Split by responsibility: :mod:`churn.monitoring.monitor` (drift, performance and alerts of one
run), :mod:`churn.monitoring.onset` (the simulator's drift onset and the detection delay) and
:mod:`churn.monitoring.decision` (the retraining decision and its candidate). This module keeps
the names the notebooks, the cycle and the tests have always imported from here.
"""

from churn.monitoring.decision import RetrainingResult, decide_retraining, hold_reason
from churn.monitoring.monitor import (
    MonitorResult,
    alert_observations,
    alert_rules,
    drift_over_time,
    record_api_metrics,
    run_monitor,
    visible_at,
)
from churn.monitoring.onset import detection_sentence, drift_detection, drift_detection_in, drift_onset

__all__ = [
    "MonitorResult",
    "RetrainingResult",
    "alert_observations",
    "alert_rules",
    "decide_retraining",
    "detection_sentence",
    "drift_detection",
    "drift_detection_in",
    "drift_onset",
    "drift_over_time",
    "hold_reason",
    "record_api_metrics",
    "run_monitor",
    "visible_at",
]
