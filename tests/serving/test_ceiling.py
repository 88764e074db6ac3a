"""The benchmark's ceiling apps answer like the API's single prediction (same shape, constant)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from benchmarks.ceiling import BODY, bare_fastapi, raw_asgi_factory


def test_ceiling_apps_return_the_constant_prediction_body():
    for app in (bare_fastapi(), raw_asgi_factory()):
        with TestClient(app) as client:
            response = client.get("/predict/42")
            assert response.status_code == 200 and response.json() == BODY
            assert client.get("/health").json()["model"]["loaded"] is True


def test_the_benchmarks_launch_a_ceiling_app_through_the_package_launcher(tmp_path):
    """The ceiling apps live outside the package; the launched server still imports them."""
    import httpx

    from benchmarks.serving import CEILINGS, launch
    from churn.serving import process

    port, proc = launch({"CHURN_DATA_DIR": str(tmp_path)}, workers=1, app=CEILINGS["raw ASGI"])
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/predict/7", timeout=5).json() == BODY
    finally:
        process.stop_server(proc)
    assert proc.returncode is not None
