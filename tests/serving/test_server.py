"""The launcher (``python -m churn.serving``, what ``make serve`` runs) over real sockets: a bound
on open connections, a deadline for request headers, a header size cap, and no trust in
forwarded headers from unconfigured peers."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time

import pytest

MAX_CONNECTIONS, HEADER_TIMEOUT = 20, 1.0


@pytest.fixture(scope="module")
def server(launch) -> tuple[int, None]:
    port = launch(CHURN_RATE_LIMIT_PER_MINUTE="30", CHURN_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
                  CHURN_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT))
    return port, None


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Connection": "close", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (30 s at most)."""
    sock.settimeout(30)
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_idle_and_half_sent_connections_are_bounded_and_timed_out(server):
    """Three times the bound in idle or half-sent connections: those over the bound are closed at
    once with 503, the rest get 408 once the header deadline passes, and then a normal request
    is answered again."""
    port, _ = server
    held = []
    for i in range(MAX_CONNECTIONS):
        sock = socket.create_connection(("127.0.0.1", port))
        if i % 2:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        held.append(sock)
    extra = [socket.create_connection(("127.0.0.1", port)) for _ in range(2 * MAX_CONNECTIONS)]
    extra_answers = [_read_all(sock) for sock in extra]
    held_answers = [_read_all(sock) for sock in held]
    for sock in held + extra:
        sock.close()
    assert all(a.startswith(b"HTTP/1.1 503 ") and b"connection limit" in a for a in extra_answers)
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in held_answers)
    status, body = _get(port, "/health")
    assert status == 200 and b'"model"' in body


def test_oversized_headers_are_431(server):
    port, _ = server
    status, body = _get(port, "/health", headers={"X-Padding": "a" * 20_000})
    assert status == 431 and b"too large" in body
    assert _get(port, "/health")[0] == 200


def test_rotating_forwarded_for_from_localhost_is_one_client(server):
    """uvicorn would trust X-Forwarded-For from 127.0.0.1; the launcher does not, so rotating it
    does not escape the per-client rate limit (30 per minute here)."""
    port, _ = server
    started = time.monotonic()
    codes = [_get(port, "/health", {"X-Forwarded-For": f"10.0.{i // 250}.{i % 250}"})[0] for i in range(40)]
    refilled = (time.monotonic() - started) * 30 / 60  # tokens the bucket got back meanwhile (a busy machine)
    assert set(codes) <= {200, 429} and codes.count(429) >= 1
    assert codes.count(200) <= 30 + refilled + 1  # one budget, whatever address each request claimed


def test_launcher_refuses_an_abbreviated_option():
    result = subprocess.run([sys.executable, "-m", "churn.serving", "--no-access"], check=False, capture_output=True,
                            text=True)
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr
