"""Read-only dashboard queries on the warehouse snapshot (never blocked by a running build).

The monitoring and A/B phases own these tables; until they exist each reader returns its
documented empty result. The columns read here (others are passed through as they are):

- ``monitoring.alerts``: ``created_at``, ``severity``, ``kind``, ``message``, ``status``
  (``open`` / ``resolved``; or a ``resolved`` bool / ``resolved_at`` timestamp).
- ``monitoring.metrics_timeline``: one row per evaluation, ``evaluated_at`` + metric columns.
- ``monitoring.drift_reports``: one row per (report, feature, test): ``created_at``, ``feature``,
  ``test``, ``drifted``.
- ``monitoring.retraining_decisions``: one row per decision run: ``decided_at``,
  ``drift_detected``, ``performance_degraded``, ``new_data_volume``, ``retrain``, ``evidence``
  (JSON list).
- ``ml_pipeline.ab_tests`` (one row per test, ``test_name``, ``status``, ...) and
  ``ml_pipeline.ab_results`` (rows per test: ``computed_at``, ``control``/``variant`` (JSON),
  ``p_value``, ``probability_variant_better``, ``winner``, ``decision``).

JSON text columns are returned parsed; timestamps as ISO strings.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from churn.registry import ModelRegistry, ModelVersion
from churn.store import monitoring
from churn.store.warehouse import Warehouse

ALERTS, TIMELINE, DRIFT = "monitoring.alerts", "monitoring.metrics_timeline", "monitoring.drift_reports"
DECISIONS, AB_TESTS, AB_RESULTS = "monitoring.retraining_decisions", "ml_pipeline.ab_tests", "ml_pipeline.ab_results"
TIME_COLUMNS = ("raised_at", "decided_at", "run_at", "started_at", "created_at", "at", "snapshot_at")
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


def read_rows(warehouse: Warehouse, table: str, where: str = "", params: list | None = None,
              newest_first: bool = True, limit: int | None = None, latest_run: bool = False) -> list[dict[str, Any]]:
    """Rows of ``table`` ordered by its time column (``latest_run``: only the rows at its
    newest time); ``[]`` while the table does not exist."""
    with warehouse.reader() as con:
        if not Warehouse.table_exists(con, table):
            return []
        columns = [r[0] for r in con.execute(f"SELECT * FROM {table} LIMIT 0").description]
        when = next((c for c in TIME_COLUMNS if c in columns), None)
        clauses = [where] if where else []
        if latest_run and when:
            clauses.append(f'"{when}" = (SELECT max("{when}") FROM {table})')
        order = f'ORDER BY "{when}" {"DESC" if newest_first else "ASC"}' if when else ""
        sql = (f"SELECT * FROM {table} {'WHERE ' + ' AND '.join(clauses) if clauses else ''} {order} "
               f"{f'LIMIT {int(limit)}' if limit else ''}")
        return records(con.execute(sql, params or []).df())


def alerts(warehouse: Warehouse, open_only: bool = False) -> list[dict[str, Any]]:
    """Alerts, newest first (``open_only``: not resolved)."""
    rows = read_rows(warehouse, ALERTS)
    return [r for r in rows if _is_open(r)] if open_only else rows


def _is_open(row: dict[str, Any]) -> bool:
    if "status" in row:
        return str(row["status"]).lower() == "open"
    if "resolved" in row:
        return not row["resolved"]
    return row.get("resolved_at") is None


def metrics_timeline(warehouse: Warehouse) -> list[dict[str, Any]]:
    """Model performance per matured snapshot from the latest monitoring run, oldest first."""
    frame = monitoring.latest_run(warehouse, TIMELINE)
    return records(frame.sort_values("snapshot_at")) if len(frame) else []


def retraining_status(warehouse: Warehouse) -> dict[str, Any]:
    """The latest decision's triggers, each with its evidence (all false and ``[]`` before any run)."""
    latest = read_rows(warehouse, DECISIONS, limit=1)
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
    from churn.abtest.manager import ABTestError, ABTestManager

    try:
        results = ABTestManager(warehouse, registry, model_name).get_test_results(test_name)
    except ABTestError:
        return None
    tests = read_rows(warehouse, AB_TESTS, "test_name = ?", [test_name])
    probability = results.get("probability_test") or {}
    return {"test_name": test_name, "status": results["status"],
            "control": {"version": results["control_version"], **(results.get("control") or {})},
            "variant": {"version": results["variant_version"], **(results.get("variant") or {})},
            "p_value": results.get("p_value"), "probability_variant_better": probability.get("prob_variant_better"),
            "winner": probability.get("winner"), "decision": results.get("decision"),
            "test": tests[0] if tests else None, "statistics": results}


def drift_summary(warehouse: Warehouse) -> dict[str, Any]:
    """The latest drift report: when, and which features drifted."""
    rows = records(monitoring.latest_run(warehouse, DRIFT))
    drifted = sorted({str(r["feature"]) for r in rows if r.get("drifted") and not r.get("expected_drift")})
    return {"drift_report_at": rows[0]["run_at"] if rows else None, "drift_detected": bool(drifted),
            "features_drifted": drifted}


def model_view(record: ModelVersion, models_dir) -> dict[str, Any]:
    """A registry version for clients: the artifact path relative to the models folder."""
    out = record.to_dict()
    try:
        out["artifact_path"] = str(record.artifact_path.relative_to(models_dir))
    except ValueError:
        out["artifact_path"] = record.artifact_path.name
    return out


def models(registry: ModelRegistry, model_name: str, stage: str | None = None) -> list[dict[str, Any]]:
    """Registered versions of ``model_name`` (optionally one stage), oldest first."""
    return [model_view(m, registry.models_dir) for m in registry.list_models(model_name, stage)]
