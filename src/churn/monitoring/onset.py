"""When the simulator's drift began, and when monitoring first alarmed after it.

On simulated data the drift scenario's start is known, so the monitor's detection delay can be
measured; on own data (or the stable world) there is no onset and nothing is measured.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from churn.store import monitoring, raw
from churn.store.warehouse import Warehouse


def drift_onset(warehouse: Warehouse, scenario: str, start: Any, end: Any) -> date | None:
    """The day the simulator's drift scenario begins (None for own data or the stable world).

    Whether the data is simulated is read from the data set's record (``raw_data.dataset``), not
    from the simulator's truth table: monitoring code never touches the truth (tests/unit/test_truth_guard.py).
    """
    from churn.data.synthetic import SimulationParams

    if scenario != "drift" or not raw.is_simulated(warehouse):
        return None
    return SimulationParams(start=date.fromisoformat(str(start)), end=date.fromisoformat(str(end)),
                            scenario="drift").drift_date  # fmt: skip


def drift_detection(warehouse: Warehouse, onset: date | None = None) -> dict[str, Any] | None:
    """The first monitoring run on or after ``onset`` (default: the one the newest run stored)
    with a drift alarm: its date, the delay in days after the onset and the features that
    alarmed (None: no onset known; ``detected_on`` None: not detected yet)."""
    return drift_detection_in(monitoring.runs_by_as_of(warehouse, monitoring.DRIFT), onset)


def drift_detection_in(drift: pd.DataFrame, onset: date | None = None) -> dict[str, Any] | None:
    """:func:`drift_detection` on drift rows already read (one run per as_of)."""
    if onset is None and len(drift) and "drift_onset" in drift and drift.drift_onset.notna().any():
        onset = pd.Timestamp(drift.drift_onset.dropna().iloc[-1]).date()
    if onset is None or drift.empty:
        return None
    alarms = drift[drift.drifted.astype(bool) & ~drift.expected_drift.astype(bool)]
    alarms = alarms[pd.to_datetime(alarms.as_of) >= pd.Timestamp(onset)]
    if alarms.empty:
        return {"onset": onset, "detected_on": None, "delay_days": None, "features": []}
    first = pd.Timestamp(alarms.as_of.min()).date()
    features = sorted(set(alarms[pd.to_datetime(alarms.as_of) == pd.Timestamp(first)].feature))
    return {"onset": onset, "detected_on": first, "delay_days": (first - onset).days, "features": features}


def detection_sentence(detection: dict[str, Any] | None) -> str:
    """ "drift detected on D, N days after onset" (or why there is nothing to say)."""
    if detection is None:
        return "no known drift onset (own data, or the stable scenario): detection delay not measured"
    if detection["detected_on"] is None:
        return f"drift began on {detection['onset']}; not detected yet"
    return (
        f"drift detected on {detection['detected_on']}, {detection['delay_days']} days after onset "
        f"({detection['onset']}); alarmed: {', '.join(detection['features'])}"
    )
