"""The benchmark's ceiling apps answer like the API's single prediction (same shape, constant)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from churn.serving.ceiling import BODY, bare_fastapi, raw_asgi_factory


def test_ceiling_apps_return_the_constant_prediction_body():
    for app in (bare_fastapi(), raw_asgi_factory()):
        with TestClient(app) as client:
            response = client.get("/predict/42")
            assert response.status_code == 200 and response.json() == BODY
            assert client.get("/health").json()["model"]["loaded"] is True
