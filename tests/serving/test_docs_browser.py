"""``/docs`` (Swagger UI) and ``/redoc`` render in headless Chromium with every host but the
API's blocked: their scripts and styles are served by the API itself, not a CDN."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# every name resolves to nothing except the loopback address: no CDN, no fonts, no telemetry
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--proxy-server=127.0.0.1:9",
         "--proxy-bypass-list=127.0.0.1"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(launch) -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make browser` (run by `make test`) installs it")
        pytest.skip("chromium is not installed (apt-get install chromium, or `make browser`)")
    return f"http://127.0.0.1:{launch(CHURN_RATE_LIMIT_PER_MINUTE='0')}"


def render(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, with the network blocked."""
    result = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=20000",
                             "--dump-dom", url], check=False, capture_output=True, text=True, timeout=180)
    return result.stdout


def test_swagger_ui_renders_every_operation_offline(api, tmp_path):
    dom = render(f"{api}/docs", tmp_path / "profile")
    assert 'class="swagger-ui"' in dom, dom[-1500:]
    assert dom.count("opblock-summary-path") >= 15  # one per operation
    for path in ["/predict/{user_id}", "/predict/batch", "/explain/{user_id}", "/cache/sync", "/dashboard/summary"]:
        assert path in dom
    assert "Churn prediction API" in dom


def test_redoc_renders_every_operation_offline(api, tmp_path):
    dom = render(f"{api}/redoc", tmp_path / "profile")
    assert "redoc-wrap" in dom or "api-content" in dom, dom[-1500:]
    for summary in ["Predict one user", "Predict a batch of users", "Explain one user", "Refill the online store"]:
        assert summary in dom
    assert "Something went wrong" not in dom


def test_the_blocked_browser_cannot_reach_a_cdn(api, tmp_path):
    """The block is real: FastAPI's default page (CDN scripts) stays blank in this browser."""
    page = tmp_path / "cdn.html"
    page.write_text('<html><body><div id="x">waiting</div><script src="https://cdn.jsdelivr.net/npm/'
                    'swagger-ui-dist@5/swagger-ui-bundle.js"></script><script>document.getElementById("x")'
                    '.textContent = typeof SwaggerUIBundle;</script></body></html>')
    dom = render(page.as_uri(), tmp_path / "profile")
    assert '<div id="x">undefined</div>' in dom
