"""``/dashboard``: registry and monitoring views, read from the warehouse snapshot."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from churn.registry import RegistryError
from churn.reports.model_card import card_path
from churn.serving import queries
from churn.serving.dashboard_schemas import (
    ABTestOut,
    ModelOut,
    MonitoringHealthOut,
    RetrainingStatusOut,
    Row,
    SummaryOut,
)
from churn.serving.deps import State
from churn.serving.schemas import ErrorOut

router = APIRouter(prefix="/dashboard", tags=["dashboard"],
                   responses={503: {"model": ErrorOut, "description": "warehouse unavailable"}})


@router.get("/summary", response_model=SummaryOut, summary="Production, staging, open alerts")
def summary(state: State) -> dict:
    name = state.settings.model_name
    production = queries.models(state.registry, name, "production")
    return {"model_name": name, "production": production[0] if production else None,
            "staging": queries.models(state.registry, name, "staging"),
            "open_alerts": queries.alerts(state.warehouse, open_only=True)}


@router.get("/models", response_model=list[ModelOut], summary="Every registered version")
def models(state: State) -> list[dict]:
    return queries.models(state.registry, state.settings.model_name)


@router.get("/models/production", response_model=ModelOut, summary="The production version",
            responses={404: {"model": ErrorOut, "description": "no production version yet"}})
def production(state: State) -> dict:
    found = queries.models(state.registry, state.settings.model_name, "production")
    if not found:
        raise HTTPException(404, f"{state.settings.model_name} has no production version yet")
    return found[0]


@router.get("/models/{version}/card", response_class=FileResponse, summary="A version's model card (HTML)",
            responses={200: {"content": {"text/html": {}}},
                       404: {"model": ErrorOut, "description": "unknown version, or no card written"}})
def model_card(version: int, state: State) -> FileResponse:
    """The model card written at registration: data, features, metrics with intervals, baseline,
    leakage canary and limits; one self-contained page that works offline."""
    name = state.settings.model_name
    try:
        record = state.registry.get_model(name, version)
    except RegistryError as error:
        raise HTTPException(404, str(error)) from error
    card = card_path(record)
    if not card.is_file():
        raise HTTPException(404, f"{name} v{version} has no model card (it was registered without a training result)")
    return FileResponse(card, media_type="text/html")


@router.get("/models/staging", response_model=list[ModelOut], summary="Staging candidates")
def staging(state: State) -> list[dict]:
    return queries.models(state.registry, state.settings.model_name, "staging")


@router.get("/retraining-status", response_model=RetrainingStatusOut, summary="Retraining triggers")
def retraining_status(state: State) -> dict:
    """Drift, performance degradation and new-data volume triggers of the latest decision run."""
    return queries.retraining_status(state.warehouse)


@router.get("/ab-tests/{test_name}", response_model=ABTestOut, summary="One A/B test",
            responses={404: {"model": ErrorOut, "description": "unknown test name"}})
def ab_test(test_name: str, state: State) -> dict:
    """Control vs variant, p-value, probability that the variant is better, winner (computed once
    per test and warehouse change, then served from memory)."""
    result = state.ab_test(test_name)
    if result is None:
        raise HTTPException(404, f"no A/B test named {test_name!r}")
    return result


@router.get("/metrics/timeline", response_model=list[Row], summary="Model performance over time")
def metrics_timeline(state: State) -> list[dict]:
    return queries.metrics_timeline(state.warehouse)


@router.get("/alerts", response_model=list[Row], summary="Monitoring alerts, newest first")
def alerts(state: State, open_only: bool = False) -> list[dict]:
    return queries.alerts(state.warehouse, open_only=open_only)


@router.get("/health", response_model=MonitoringHealthOut, summary="Monitoring at a glance")
def monitoring_health(state: State) -> dict:
    """Production version, open alerts, the latest drift report and retraining triggers."""
    production = state.registry.get_production(state.settings.model_name)
    timeline = queries.metrics_timeline(state.warehouse)
    return {"production_version": production.version if production else None,
            "open_alerts": len(queries.alerts(state.warehouse, open_only=True)),
            **queries.drift_summary(state.warehouse), "latest_metrics": timeline[-1] if timeline else None,
            "retraining": queries.retraining_status(state.warehouse)}
