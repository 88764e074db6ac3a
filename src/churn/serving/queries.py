"""Read-only dashboard queries on the warehouse snapshot (never blocked by a running build).

The monitoring and A/B phases own these tables (``churn.store.monitoring``,
``churn.store.abtests``); until they exist each reader returns its documented empty result.
JSON text columns are returned parsed; timestamps as ISO strings.
"""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from churn.registry import ModelRegistry, ModelVersion
from churn.reports.model_card import card_path
from churn.serving.latest import absence_reason
from churn.store import abtests, monitoring, raw
from churn.store.warehouse import Warehouse, WarehouseError

NO_RETRAINING: dict[str, Any] = {"drift_detected": False, "performance_degraded": False, "new_data_volume": False,
                                 "retrain_recommended": False, "decided_at": None, "evidence": []}


def _parse(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows: NaN as null, timestamps ISO, JSON text parsed."""
    rows = json.loads(frame.to_json(orient="records", date_format="iso"))
    return [{k: _parse(v) for k, v in row.items()} for row in rows]


def alerts(warehouse: Warehouse, open_only: bool = False) -> list[dict[str, Any]]:
    """Alerts, newest first (``open_only``: status open)."""
    where = "WHERE status = 'open'" if open_only else ""
    return records(monitoring.read_table(warehouse, monitoring.ALERTS, f"{where} ORDER BY raised_at DESC"))


def metrics_timeline(warehouse: Warehouse) -> list[dict[str, Any]]:
    """Model performance per matured snapshot from the latest monitoring run, oldest first."""
    frame = monitoring.latest_run(warehouse, monitoring.TIMELINE)
    return records(frame.sort_values("snapshot_at")) if len(frame) else []


def retraining_status(warehouse: Warehouse) -> dict[str, Any]:
    """The latest decision's triggers, each with its evidence (all false and ``[]`` before any run)."""
    latest = records(monitoring.read_table(warehouse, monitoring.DECISIONS, "ORDER BY decided_at DESC LIMIT 1"))
    if not latest:
        return dict(NO_RETRAINING)
    row = latest[0]
    triggers = _parse(row.get("triggers")) or []
    fired = {t["trigger"]: bool(t["fired"]) for t in triggers}
    return {
        "drift_detected": fired.get("drift", False), "performance_degraded": fired.get("performance_degradation", False),
        "new_data_volume": fired.get("new_data_volume", False), "retrain_recommended": bool(row.get("retrain")),
        "decided_at": row.get("decided_at"), "evidence": triggers,
    }


def ab_test(warehouse: Warehouse, registry: ModelRegistry, model_name: str, test_name: str) -> dict[str, Any] | None:
    """Control vs variant of one A/B test with its statistics, or None when no such test exists."""
    from churn.abtest.manager import ABTestManager

    test = abtests.get_test(warehouse, test_name)
    if test is None:
        return None
    results = ABTestManager(warehouse, registry, model_name).get_test_results(test_name)
    probability = results.get("probability_test") or {}
    return {"test_name": test_name, "status": results["status"],
            "control": {"version": results["control_version"], **(results.get("control") or {})},
            "variant": {"version": results["variant_version"], **(results.get("variant") or {})},
            "p_value": results.get("p_value"), "probability_variant_better": probability.get("prob_variant_better"),
            "winner": probability.get("winner"), "decision": results.get("decision"),
            "test": records(pd.DataFrame([test]))[0], "statistics": results}


def absent_user_reason(warehouse: Warehouse, user_id: int) -> str | None:
    """Why a user has no current feature vector, from ``raw_data.users``; None when unknowable
    (a data set without a users table, or the warehouse unreachable)."""
    try:
        dates = raw.user_dates(warehouse, user_id)
    except (WarehouseError, duckdb.IOException, duckdb.ConnectionException):
        return None
    return absence_reason(dates)


def drift_summary(warehouse: Warehouse) -> dict[str, Any]:
    """The latest drift report: when, and which features drifted."""
    rows = records(monitoring.latest_run(warehouse, monitoring.DRIFT))
    drifted = sorted({str(r["feature"]) for r in rows if r.get("drifted") and not r.get("expected_drift")})
    return {"drift_report_at": rows[0]["run_at"] if rows else None, "drift_detected": bool(drifted),
            "features_drifted": drifted}


def model_view(record: ModelVersion, models_dir: Path) -> dict[str, Any]:
    """A registry version for clients: the artifact and model card paths relative to the models
    folder, and the card's URL (both None when the version has no card)."""
    out = record.to_dict()
    for key in ("created_at", "updated_at"):  # stored as naive UTC: say so (RFC 3339 needs an offset)
        stamp = getattr(record, key)
        out[key] = (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).isoformat()
    try:
        out["artifact_path"] = str(record.artifact_path.relative_to(models_dir))
    except ValueError:
        out["artifact_path"] = record.artifact_path.name
    card = card_path(record)
    has_card = card.is_file()
    out["model_card_path"] = str(Path(out["artifact_path"]).with_name(card.name)) if has_card else None
    out["model_card_url"] = f"/dashboard/models/{record.version}/card" if has_card else None
    return out


def models(registry: ModelRegistry, model_name: str, stage: str | None = None) -> list[dict[str, Any]]:
    """Registered versions of ``model_name`` (optionally one stage), oldest first."""
    return [model_view(m, registry.models_dir) for m in registry.list_models(model_name, stage)]
