"""The Voila dashboards render in a real headless browser, with charts and without errors,
reading the warehouse of a small build read-only."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def voila(small_build: Path):
    """`make dashboards`' Voila server on a free port, pointed at the small build."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make browser` (run by `make test`) installs it")
        pytest.skip("chromium is not installed (apt-get install chromium, or `make browser`)")
    port = _free_port()
    env = {**os.environ, "CHURN_WAREHOUSE": str(small_build / "data" / "churn.duckdb"),
           "CHURN_MODELS_DIR": str(small_build / "data" / "models")}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("voila")), "notebooks/dashboards", "--no-browser",
         f"--port={port}", "--Voila.ip=127.0.0.1"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                httpx.get(base, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        proc.wait(20)


def _render(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, from headless Chromium."""
    result = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=60000",
                             "--dump-dom", url], capture_output=True, text=True, timeout=180)
    return result.stdout


@pytest.mark.parametrize("name, expected_charts, headings", [
    ("monitoring", 4, ["Feature drift", "Model performance over time", "Alerts and retraining", "Registry"]),
    ("ab_testing", 1, ["Latest test", "Decision"]),
])
def test_dashboard_renders_charts_and_no_error(voila, tmp_path, name, expected_charts, headings):
    dom = _render(f"{voila}/voila/render/{name}.ipynb", tmp_path / "profile")
    assert dom.count("data:image/png") >= expected_charts, dom[-2000:]
    for heading in headings:
        assert heading in dom
    for error in ("Traceback", "Error:", "There was an error when executing cell"):
        assert error not in dom, error
