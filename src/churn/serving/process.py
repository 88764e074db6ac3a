"""The API launcher in a child process: what the real-socket tests and ``make bench`` start.

``start_server`` runs ``python -m churn.serving`` (as ``make serve`` does) with ``CHURN_*``
variables on a loopback port and returns once ``/health`` reports a loaded model.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    env: dict[str, str], workers: int, port: int, timeout: float = 60.0, app: str | None = None
) -> subprocess.Popen[bytes]:
    """The API launcher (``python -m churn.serving``) in a subprocess on 127.0.0.1:``port``;
    returns once /health reports a loaded model. ``app``: another factory ("module:function",
    importable by the child) served with the same server settings."""
    import httpx

    cmd = [sys.executable, "-m", "churn.serving", "--no-access-log", "--log-level", "warning"]
    cmd += ["--app", app] if app else []
    child_env = {**os.environ, "CHURN_HOST": "127.0.0.1", "CHURN_PORT": str(port), "CHURN_WORKERS": str(workers), **env}
    proc = subprocess.Popen(cmd, env=child_env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # a generous probe timeout: on a busy machine /health (a DuckDB open, a Redis round
            # trip) can take over a second, and a 1 s probe then never saw the server ready
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()["model"]["loaded"]:
                return proc
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}")
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"uvicorn did not serve a model within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the launcher (its workers follow); kill it if it does not exit within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
