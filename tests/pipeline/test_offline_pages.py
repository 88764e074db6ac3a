"""Every static page a build leaves renders in headless Chromium with the network blocked:
the report index, each phase report, the data-quality pages and the model cards."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.pipeline.browser import CHROMIUM, DevToolsBrowser, require_chromium

ROOT = Path(__file__).resolve().parents[2]
# No route out: every name resolves to nothing and every http(s) request goes to a dead proxy.
OFFLINE = [
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--allow-file-access-from-files",
    "--window-size=1280,1600",
]
PHASES = [
    Path(task["product"]["nb_ipynb"]).stem for task in yaml.safe_load((ROOT / "pipeline.yaml").read_text())["tasks"]
]

# one worker, one browser for the module
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("offline_pages")]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevToolsBrowser]:
    """One offline Chromium for every page of the module (a page is a navigation, not a start)."""
    require_chromium()
    browser = DevToolsBrowser(CHROMIUM, OFFLINE, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield browser
    finally:
        browser.close()


def _dom(browser: DevToolsBrowser, page: Path) -> str:
    browser.open(page.as_uri())
    return browser.dom()


def test_the_network_is_really_blocked(browser, tmp_path):
    """Control: a page whose text comes from a CDN script stays without it, while its own inline
    script runs (the DOM read is the one after the scripts)."""
    page = tmp_path / "cdn.html"
    page.write_text(
        '<html><body><p id="x">offline</p><p id="y">not run</p><script src="https://cdn.jsdelivr.net/npm/jquery@3.7.1/dist/'
        'jquery.min.js"></script><script>document.getElementById("y").textContent = "ran"; if (window.jQuery) '
        'document.getElementById("x").textContent = "online";</script></body></html>'
    )
    dom = _dom(browser, page)
    assert ">offline<" in dom and ">ran<" in dom, dom


def _pages(build: Path) -> list[tuple[Path, str]]:
    reports = build / "reports"
    pages = [
        (reports / "index.html", "Churn pipeline reports"),
        (reports / "data_quality" / "index.html", "expectations passed"),
        (reports / "feature_quality" / "index.html", "expectations passed"),
    ]
    pages += [(reports / f"{phase}.html", "") for phase in PHASES]
    pages += [(card, "Model card") for card in sorted((build / "data" / "models").glob("*/*.card.html"))]
    return pages


def test_every_page_renders_offline_with_its_content_and_styles(browser, small_build: Path, tmp_path):
    """Each page: the expected text is in the rendered DOM, no error, and its screenshot is a
    styled page (dark text on a light background, not blank). Screenshots land in tmp_path.
    Every page is opened in the same browser (the module's), each by a fresh navigation."""
    pages = _pages(small_build)
    assert len([p for p, _ in pages if ".card." in p.name]) >= 1
    for page, expected in pages:
        dom = _dom(browser, page)
        assert "<body" in dom, page
        assert expected in dom, (page, dom[:500])
        for error in ("Traceback", "Error:"):
            assert error not in dom, (page, error)
        name = "_".join(page.relative_to(small_build).with_suffix(".png").parts)
        pixels = np.asarray(Image.open(browser.screenshot(tmp_path / name)).convert("L"))
        assert (pixels < 100).mean() > 0.003, f"{page} rendered (almost) blank"
        assert (pixels > 200).mean() > 0.5, f"{page} has no light background"
    if os.environ.get("CHURN_KEEP_SCREENSHOTS"):
        shutil.copytree(tmp_path, os.environ["CHURN_KEEP_SCREENSHOTS"], dirs_exist_ok=True)


def test_phase_reports_show_their_figures_offline(browser, small_build: Path):
    """Charts are inline PNGs: the training report shows ROC/PR/calibration, lift/gains and
    coefficients without any network."""
    dom = _dom(browser, small_build / "reports" / "05_train_model.html")
    assert dom.count("data:image/png") >= 3
    assert "Lift and gains" in dom
