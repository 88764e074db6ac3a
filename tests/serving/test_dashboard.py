"""Dashboard views: registry state and monitoring tables, with documented empty answers before
the monitoring and A/B phases have written anything."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.abtest.manager import ABTestManager
from churn.abtest.simulate import simulate_outcomes
from churn.monitoring.alerts import AlertRule, evaluate_alerts
from churn.monitoring.retraining import retraining_triggers
from churn.registry import ModelRegistry
from churn.store import monitoring
from churn.store.warehouse import Warehouse


def test_registry_views(client):
    models = client.get("/dashboard/models").json()
    assert [(m["version"], m["stage"]) for m in models] == [(1, "production"), (2, "none")]
    production = client.get("/dashboard/models/production").json()
    assert production["version"] == 1 and production["artifact_path"] == "churn_model/v1.joblib"
    assert client.get("/dashboard/models/staging").json() == []
    summary = client.get("/dashboard/summary").json()
    assert summary["production"]["version"] == 1 and summary["staging"] == [] and summary["open_alerts"] == []


def test_no_internal_path_in_registry_views(client, serving_base):
    for path in ["/dashboard/models", "/dashboard/summary", "/dashboard/models/production"]:
        assert str(serving_base) not in client.get(path).text


@pytest.mark.parametrize(("path", "empty"), [
    ("/dashboard/alerts", []),
    ("/dashboard/metrics/timeline", []),
    ("/dashboard/retraining-status", {"drift_detected": False, "performance_degraded": False, "new_data_volume": False,
                                      "retrain_recommended": False, "decided_at": None, "evidence": []}),
])
def test_monitoring_views_are_empty_before_monitoring_ran(client, path, empty):
    response = client.get(path)
    assert response.status_code == 200 and response.json() == empty


def test_dashboard_health_before_monitoring_ran(client):
    body = client.get("/dashboard/health").json()
    assert body["production_version"] == 1 and body["open_alerts"] == 0
    assert body["drift_detected"] is False and body["features_drifted"] == [] and body["latest_metrics"] is None


def test_unknown_ab_test_is_404(client):
    response = client.get("/dashboard/ab-tests/nope")
    assert response.status_code == 404 and response.json() == {"detail": "no A/B test named 'nope'"}


@pytest.fixture()
def monitored(make_client, data_dir):
    """A data dir whose monitoring and A/B tables were written by the real writers, v2 staging."""
    warehouse = Warehouse(data_dir / "churn.duckdb")
    registry = ModelRegistry(warehouse, data_dir / "models")
    registry.promote_model("churn_model", 2, "staging", "test candidate")
    drift = pd.DataFrame({"feature": ["events_30d", "tenure_days", "events_30d"], "test": ["ks", "psi", "welch_t"],
                          "drifted": [True, True, False], "expected_drift": [False, True, False]})
    timeline = pd.DataFrame({"snapshot_at": pd.to_datetime(["2025-12-01", "2025-11-01"]), "auc": [0.84, 0.86],
                             "in_training": [False, True]})
    alerts = evaluate_alerts(pd.DataFrame([{"metric": "feature_drift", "subject": "events_30d", "value": 1.0,
                                            "period": "2026-01-01"}]), [AlertRule("feature_drift", 0.5)])
    monitoring.write_monitoring_run(warehouse, "run-1", drift, timeline, alerts)
    triggers = retraining_triggers(drift.assign(drifted=drift.drifted & ~drift.expected_drift), timeline, 0.85, 0,
                                   min_drifted=1, max_auc_drop=0.05, min_new_labels=1500)
    monitoring.write_retraining_decision(warehouse, "churn_model", 1, triggers, "candidate_registered", 2)
    manager = ABTestManager(warehouse, registry, "churn_model")
    users = np.arange(1, 4001)
    manager.start_test(test_name="cand_v2", control_version=1, variant_version=2, traffic_split=0.5, user_ids=users,
                       mde=0.02)
    arms = manager.assignments("cand_v2").assign(weekly_hazard=0.02, score=np.linspace(0, 1, len(users)))
    manager.record_outcomes("cand_v2", simulate_outcomes(arms, 0.2, 0.4, 30, seed=1))
    return make_client(data_dir=data_dir)


def test_monitoring_views_read_the_monitoring_tables(monitored):
    alerts = monitored.get("/dashboard/alerts").json()
    assert [a["alert_key"] for a in alerts] == ["feature_drift:events_30d:2026-01-01"]
    assert [a["status"] for a in monitored.get("/dashboard/alerts?open_only=true").json()] == ["open"]
    timeline = monitored.get("/dashboard/metrics/timeline").json()
    assert [t["auc"] for t in timeline] == [0.86, 0.84]  # oldest first
    status = monitored.get("/dashboard/retraining-status").json()
    assert status["drift_detected"] and status["retrain_recommended"] and not status["performance_degraded"]
    assert [e["trigger"] for e in status["evidence"]] == ["drift", "performance_degradation", "new_data_volume"]
    assert "events_30d" in status["evidence"][0]["evidence"]
    health = monitored.get("/dashboard/health").json()
    assert health["open_alerts"] == 1 and health["features_drifted"] == ["events_30d"]
    assert health["latest_metrics"]["auc"] == 0.84


def test_summary_and_staging_follow_the_registry(monitored):
    summary = monitored.get("/dashboard/summary").json()
    assert [m["version"] for m in summary["staging"]] == [2]
    assert [a["metric"] for a in summary["open_alerts"]] == ["feature_drift"]
    assert [m["version"] for m in monitored.get("/dashboard/models/staging").json()] == [2]


def test_ab_test_view_matches_the_manager(monitored, data_dir):
    """The API shows what ABTestManager.get_test_results computes: arms, p-value, probability, winner."""
    body = monitored.get("/dashboard/ab-tests/cand_v2").json()
    warehouse = Warehouse(data_dir / "churn.duckdb")
    expected = ABTestManager(warehouse, ModelRegistry(warehouse, data_dir / "models"), "churn_model").get_test_results("cand_v2")
    assert body["status"] == "running" and body["control"]["version"] == 1 and body["variant"]["version"] == 2
    assert body["control"]["users"] + body["variant"]["users"] == 4000
    assert body["p_value"] == pytest.approx(expected["p_value"])
    assert body["probability_variant_better"] == pytest.approx(expected["probability_test"]["prob_variant_better"])
    assert body["winner"] == expected["probability_test"]["winner"]
    assert body["statistics"]["srm"]["mismatch"] is False


def test_ab_test_analysis_is_computed_once_per_test_and_warehouse_change(monitored, data_dir, monkeypatch):
    """Repeated requests reuse the analysis; new outcomes or a registry change recompute it."""
    calls = []
    original = ABTestManager.get_test_results

    def counted(self, name, *args, **kwargs):
        calls.append(name)
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(ABTestManager, "get_test_results", counted)
    first = [monitored.get("/dashboard/ab-tests/cand_v2").json() for _ in range(5)]
    assert calls == ["cand_v2"] and all(body == first[0] for body in first)
    warehouse = Warehouse(data_dir / "churn.duckdb")
    registry = ModelRegistry(warehouse, data_dir / "models")
    manager = ABTestManager(warehouse, registry, "churn_model")
    arms = manager.assignments("cand_v2").assign(weekly_hazard=0.05, score=np.linspace(1, 0, 4000))
    manager.record_outcomes("cand_v2", simulate_outcomes(arms, 0.3, 0.5, 30, seed=2))  # new outcomes
    after_outcomes = monitored.get("/dashboard/ab-tests/cand_v2").json()
    assert calls == ["cand_v2", "cand_v2"]
    assert after_outcomes["p_value"] == pytest.approx(original(manager, "cand_v2")["p_value"])
    assert after_outcomes["p_value"] != first[0]["p_value"]
    registry.promote_model("churn_model", 2, "production", "test: registry change")
    monitored.get("/dashboard/ab-tests/cand_v2")
    monitored.get("/dashboard/ab-tests/cand_v2")
    assert calls == ["cand_v2"] * 3
    assert monitored.get("/dashboard/ab-tests/nope").status_code == 404
    assert monitored.get("/dashboard/ab-tests/nope").status_code == 404
    assert calls == ["cand_v2"] * 3  # unknown names never reach the analysis


def test_registry_views_link_each_model_card_that_exists(make_client, data_dir):
    """A version with a model card names it (relative path and URL) and the URL serves the card; a
    version without one says null, and its card URL is a 404 that says why."""
    from churn.reports.model_card import write_model_card

    registry = ModelRegistry(Warehouse(data_dir / "churn.duckdb"), data_dir / "models")
    write_model_card(registry.get_model("churn_model", 1))
    client = make_client(data_dir=data_dir)
    models = {m["version"]: m for m in client.get("/dashboard/models").json()}
    assert models[1]["model_card_path"] == "churn_model/v1.card.html"
    assert models[1]["model_card_url"] == "/dashboard/models/1/card"
    assert models[2]["model_card_path"] is None and models[2]["model_card_url"] is None
    assert client.get("/dashboard/models/production").json()["model_card_url"] == "/dashboard/models/1/card"
    card = client.get(models[1]["model_card_url"])
    assert card.status_code == 200 and card.headers["content-type"].startswith("text/html")
    assert "churn_model v1" in card.text and str(data_dir) not in client.get("/dashboard/models").text
    missing = client.get("/dashboard/models/2/card")
    assert missing.status_code == 404 and "no model card" in missing.json()["detail"]
    unknown = client.get("/dashboard/models/9/card")
    assert unknown.status_code == 404 and "has no version 9" in unknown.json()["detail"]
