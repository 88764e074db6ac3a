"""`make lab` starts JupyterLab with the project's .jupyter config: no Notebook-7 migration banner,
no broken ploomber-extension (server or front end), no news fetched from the internet, and
Ploomber's parameter injection still on."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from churn.serving.process import free_port

ROOT = Path(__file__).resolve().parents[2]

# one worker, one JupyterLab for both tests (the module fixture; split, each worker started one)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("lab")]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """(base URL, token, startup log) of JupyterLab started as `make lab` starts it."""
    port, token = free_port(), secrets.token_hex(8)
    log_path = tmp_path_factory.mktemp("lab") / "lab.log"
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(log_path.parent),
        "JUPYTER_CONFIG_PATH": str(ROOT / ".jupyter"),
    }
    command = [
        str(Path(sys.executable).with_name("jupyter")),
        "lab",
        "--no-browser",
        "--allow-root",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        "--ServerApp.contents_manager_class=jupytext.TextFileContentsManager",
    ]
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/api/status", params={"token": token}, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        yield base, token, log_path.read_text()
    finally:
        proc.terminate()
        proc.wait(20)


def test_lab_starts_without_migration_banner_or_ploomber_extension(lab):
    """The server log has no Notebook-7 banner (nbclassic is off) and no ploomber-extension server
    part, while Ploomber's own server extension (parameter injection) still loads."""
    _, _, log = lab
    assert "migrate_to_notebook7" not in log and "Notebook 7" not in log
    assert "ploomber | extension was successfully loaded" in log, log[-3000:]
    assert "ploomber_extension | extension was successfully loaded" not in log
    assert "nbclassic | extension was successfully loaded" not in log


def test_lab_front_end_disables_ploomber_extension_and_news(lab):
    """The page config disables every ploomber-extension plugin (its settings plugin throws in the
    console), the news and update checks are off (an offline machine would only see errors), and
    .py notebooks still open as notebooks."""
    base, token, _ = lab
    page = httpx.get(f"{base}/lab", params={"token": token}, timeout=30).text
    config = json.loads(
        re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    )
    assert "ploomber-extension" in config["disabledExtensions"], config["disabledExtensions"]

    def defaults(plugin: str) -> dict:
        schema = httpx.get(f"{base}/lab/api/settings/{plugin}", params={"token": token}, timeout=30).json()["schema"]
        return {name: spec.get("default") for name, spec in schema["properties"].items()}

    notification = defaults("@jupyterlab/apputils-extension:notification")
    assert notification["fetchNews"] == "false" and notification["checkForUpdates"] is False
    assert defaults("@jupyterlab/docmanager-extension:plugin")["defaultViewers"] == {"python": "Jupytext Notebook"}
