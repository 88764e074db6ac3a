"""`churn models ...`, `churn predict`, `churn explain` on a real warehouse, registry and Redis."""

from __future__ import annotations

import json

import numpy as np

from churn.modeling.lifecycle import load_predictor
from churn.registry import ModelRegistry
from churn.store import offline
from churn.store.warehouse import Warehouse

MODEL = "churn_model"


def registry(data_dir) -> ModelRegistry:
    return ModelRegistry(Warehouse(data_dir / "churn.duckdb"), data_dir / "models")


def test_models_list_shows_every_version_and_its_stage(churn):
    result = churn("models", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert "v1" in lines[0] and "production" in lines[0] and "auc 0.710" in lines[0]
    assert "v2" in lines[1] and " none " in lines[1]
    listed = json.loads(churn("models", "list", "--json", "--stage", "production").output)
    assert [v["version"] for v in listed] == [1]


def test_models_show_gives_metrics_params_and_history(churn):
    result = churn("models", "show", "1", "--json")
    shown = json.loads(result.output)
    assert shown["stage"] == "production" and shown["params"]["C"] == 1.0
    assert shown["events"][0]["event"] == "registered" and shown["events"][-1]["to_stage"] == "production"
    text = churn("models", "show", "2").output
    assert "history:" in text and "test fixture" in text


def test_promote_rollback_and_archive_change_the_registry_with_the_reason(churn, data_dir):
    assert churn("models", "promote", "2", "--reason", "beat v1 offline").exit_code == 0
    reg = registry(data_dir)
    assert reg.get_production(MODEL).version == 2
    assert reg.get_model(MODEL, 1).stage == "archived"
    assert "beat v1 offline" in reg.list_events(MODEL)["reason"].tolist()

    result = churn("models", "rollback", "--reason", "v2 misbehaves")
    assert result.exit_code == 0 and "v1 is production again" in result.output
    assert registry(data_dir).get_production(MODEL).version == 1
    assert registry(data_dir).get_model(MODEL, 2).stage == "archived"


def test_archive_retires_a_version_that_is_not_in_production(churn, data_dir):
    assert churn("models", "archive", "2", "--reason", "retired").exit_code == 0
    assert registry(data_dir).get_model(MODEL, 2).stage == "archived"
    assert registry(data_dir).list_events(MODEL)["reason"].iloc[-1] == "retired"


def test_registry_refusals_end_in_one_line_not_a_traceback(churn, data_dir):
    result = churn("models", "archive", "1", "--reason", "oops")
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
    assert registry(data_dir).get_production(MODEL).version == 1  # nothing changed
    missing = churn("models", "promote", "2")
    assert missing.exit_code == 2 and "--reason" in missing.output  # a reason is required


def test_predict_scores_with_the_production_model_like_the_predictor(churn, data_dir):
    warehouse = Warehouse(data_dir / "churn.duckdb")
    latest = offline.latest_vectors(warehouse).head(3)
    predictor, _ = load_predictor(registry(data_dir), MODEL)
    expected = predictor.predict_proba(latest[predictor.features].to_numpy(float))
    ids = [str(u) for u in latest["user_id"]]
    out = json.loads(churn("predict", *ids, "--json").output)
    assert out["model_version"] == 1
    got = np.array([p["probability"] for p in out["predictions"]])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    again = json.loads(churn("predict", *ids, "--json").output)  # refilled from the offline store
    assert all(p["cached"] for p in again["predictions"])
    text = churn("predict", ids[0]).output
    assert text.startswith("model version 1 (risk bands: medium from p=0.0200, high from p=0.1000)")
    assert f"user {ids[0]:>8}" in text and "p=" in text


def test_predict_and_explain_say_why_a_user_has_no_score(churn, data_dir):
    """The API's own 404 reasons: never existed, or churned (and so not scored)."""
    result = churn("predict", "999999999")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: user 999999999 not found in the online or offline store: "
        "the user never existed (no such id in raw_data.users)"
    )
    with Warehouse(data_dir / "churn.duckdb").reader() as con:
        churned = con.execute("SELECT min(user_id) FROM raw_data.users WHERE churned_at IS NOT NULL").fetchall()[0][0]
    explained = churn("explain", str(churned))
    assert explained.exit_code == 1 and "the user churned on " in explained.output


def test_explain_contributions_add_up_to_the_logit(churn, data_dir):
    user = int(offline.latest_vectors(Warehouse(data_dir / "churn.duckdb"))["user_id"].iloc[0])
    out = json.loads(churn("explain", str(user), "--json").output)
    total = out["intercept"] + sum(c["contribution"] for c in out["contributions"])
    assert abs(total - out["logit"]) < 1e-9
    assert abs(1 / (1 + np.exp(-out["logit"])) - out["probability"]) < 1e-12
    text = churn("explain", str(user)).output
    assert text.count("\n") == len(out["contributions"]) + 1
