"""Load generation against a real uvicorn server over loopback (used by ``benchmarks.serving``).

``wrk`` (Debian package) when installed, with Lua scripts that pick random ids or bodies; else an
async httpx client with bounded concurrency and duration. The server itself is started by the
package's launcher, ``churn.serving.process``.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import tempfile
import time

import numpy as np


def latency_ms(seconds: list[float]) -> dict[str, float]:
    values = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(values, 50)), 3), "p99_ms": round(float(np.percentile(values, 99)), 3)}


LUA_SINGLE = """ids = {%s}
request = function() return wrk.format("GET", "/predict/" .. ids[math.random(#ids)]) end
"""
LUA_BATCH = """bodies = {%s}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function() return wrk.format(nil, nil, nil, bodies[math.random(#bodies)]) end
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _search(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    """The first match of ``pattern`` in wrk's report; a clear error if wrk did not print it."""
    match = re.search(pattern, text, flags)
    if match is None:
        raise RuntimeError(f"wrk's output has no line matching {pattern!r}:\n{text}")
    return match


def run_wrk(url: str, script: str, duration: float, connections: int, threads: int) -> dict:
    """Run wrk with a Lua script; req/s, p50/p99 latency and error counts from its report."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    try:
        out = subprocess.run(
            ["wrk", "--latency", f"-t{threads}", f"-c{connections}", f"-d{duration:.0f}s", "-s", fh.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(fh.name)

    def latency(pct: str) -> float:
        value, unit = _search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return round(float(value) * _UNITS[unit], 3)

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "tool": f"wrk -t{threads} -c{connections}",
        "requests": int(_search(r"(\d+) requests in", out).group(1)),
        "req_per_s": float(_search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


async def httpx_load(url: str, make_request, duration: float, connections: int) -> dict:
    """Fallback load generator: ``connections`` concurrent httpx clients for ``duration`` s."""
    import httpx

    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        # one client (one keep-alive connection) per worker: a shared pool is the bottleneck
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    response = await make_request(client)
                    errors += response.status_code != 200
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

    deadline = time.monotonic() + duration
    await asyncio.gather(*(worker() for _ in range(connections)))
    return {
        "tool": f"httpx x{connections}",
        "requests": len(latencies),
        "req_per_s": round(len(latencies) / duration, 1),
        **latency_ms(latencies),
        "errors": errors,
        "socket_errors": "",
    }
