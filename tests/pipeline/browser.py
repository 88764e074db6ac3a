"""One headless Chromium driven over the DevTools protocol, for tests that look at many pages:
a page is a navigation in the same browser, not a browser start (32 starts took the offline
pages test 20 s)."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

# What every headless start here needs (STACK-NOTES: Voila section).
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def require_chromium() -> str:
    """The Chromium binary; fails in CI without it (`make test` installs it), skips elsewhere."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make browser` (run by `make test`) installs it")
        pytest.skip("chromium is not installed (apt-get install chromium, or `make browser`)")
    return CHROMIUM


class DevToolsBrowser:
    """``chromium`` started once with ``flags`` and a fresh profile; pages are opened with
    :meth:`open` and read with :meth:`dom`, :meth:`evaluate` and :meth:`screenshot`."""

    def __init__(self, chromium: str, flags: list[str], profile: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [chromium, *HEADLESS, *flags, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.stack = contextlib.ExitStack()
        try:
            port_file = profile / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not (port_file.exists() and port_file.read_text().strip()):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"chromium did not open its DevTools port (exit code {self.proc.poll()})")
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            page = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page")
            self.ws = self.stack.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None))
        except BaseException:
            self.close()
            raise
        self.ids = itertools.count(1)
        self.console_errors: list[str] = []  # console.error calls, once Runtime.enable was called

    def call(self, method: str, **params) -> dict:
        """Send one DevTools command and return its result (of the events in between, only
        console errors are kept: :attr:`console_errors`)."""
        message_id = next(self.ids)
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=120))
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if message.get("method") == "Runtime.consoleAPICalled" and message["params"]["type"] == "error":
                args = message["params"]["args"]
                self.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True).get("result", {}).get("value")

    def open(self, url: str, timeout: float = 60) -> None:
        """Navigate to ``url`` and wait until it has loaded (every resource fetched or failed:
        the load event has fired), as ``--dump-dom`` waits for it."""
        self.call("Page.navigate", url="about:blank")
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not (self.evaluate("location.href") == url and self.evaluate("document.readyState") == "complete"):
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not finish loading in {timeout} s")
            time.sleep(0.05)

    def dom(self) -> str:
        """The page's DOM serialized, as ``chromium --dump-dom`` prints it."""
        return self.evaluate("document.documentElement.outerHTML") or ""

    def screenshot(self, out: Path) -> Path:
        """A PNG of the viewport (the window size given in the flags) written to ``out``."""
        out.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return out

    def close(self) -> None:
        self.stack.close()
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
