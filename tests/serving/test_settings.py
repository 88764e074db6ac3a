"""Settings come from the environment (and only there); health reports uptime and components."""

from __future__ import annotations

from pathlib import Path

from churn.serving import Settings


def test_settings_read_the_documented_environment_variables(monkeypatch):
    env = {"REDIS_URL": "redis://cache:6379/0", "CHURN_DATA_DIR": "/srv/data", "CHURN_MODEL_NAME": "m",
           "CHURN_API_KEY": "k", "CHURN_RATE_LIMIT_PER_MINUTE": "120", "CHURN_BATCH_LIMIT": "50",
           "CHURN_MAX_BODY_BYTES": "4096", "CHURN_PORT": "9000", "CHURN_ADMIN_KEY": ""}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert (s.redis_url, s.data_dir, s.model_name, s.rate_limit_per_minute, s.batch_limit, s.max_body_bytes,
            s.port) == ("redis://cache:6379/0", Path("/srv/data"), "m", 120, 50, 4096, 9000)
    assert s.warehouse_path == Path("/srv/data/churn.duckdb") and s.models_path == Path("/srv/data/models")
    assert s.admin_key is None and s.admin_secret.get_secret_value() == "k"  # empty means unset
    monkeypatch.setenv("CHURN_WAREHOUSE", "/elsewhere/w.duckdb")
    assert Settings().warehouse_path == Path("/elsewhere/w.duckdb")


def test_defaults():
    s = Settings()
    assert (s.redis_url, s.data_dir, s.model_name, s.api_key, s.admin_secret, s.batch_limit) == (
        "", Path("data"), "churn_model", None, None, 10_000)
    assert (s.host, s.port) == ("127.0.0.1", 8000)


def test_health_reports_every_component(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["redis"]["ok"] and body["warehouse"]["ok"]
    assert body["model"]["loaded"] and body["model"]["version"] == 1 and body["model"]["feature_set"] == "v1"
    assert body["uptime_seconds"] >= 0 and body["cache"]["hit_rate"] is None  # no lookups yet
