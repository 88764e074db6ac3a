"""The API's HTTP server: uvicorn with a bounded number of connections and a header deadline.

uvicorn alone keeps idle and half-sent connections open for ever (its keep-alive timeout starts
only after a first response) and answers over ``limit_concurrency`` with a 503 while still holding
every socket, so 1,100 idle clients exhaust ``ulimit -n 1024``. :class:`GuardedHttpTools` closes
a connection at once when the worker already holds ``max_connections`` (503), answers 408 and
closes when a request's headers have not fully arrived ``header_timeout`` seconds after the
connection opened (or the request began), and 431 when they exceed ``max_header_bytes``.
Forwarded headers are never trusted by uvicorn (``proxy_headers=False``): see ``proxy.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from churn.serving.settings import Settings


@dataclass(frozen=True)
class Limits:
    """Per worker process."""

    max_connections: int = 512
    header_timeout: float = 10.0
    max_header_bytes: int = 16_384


def _response(status: str, text: str) -> bytes:
    body = json.dumps({"detail": text}).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode() + body


_refused = {"count": 0, "logged_at": -1e9}


def _warn_refused(logger, limit: int) -> None:
    """One warning per 10 s however many connections are refused (an attack must not flood the log)."""
    _refused["count"] += 1
    now = time.monotonic()
    if now - _refused["logged_at"] >= 10:
        logger.warning("connection limit of %d reached: refused %d connection(s) since the last warning",
                       limit, _refused["count"])
        _refused.update(count=0, logged_at=now)


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a connection bound, a header deadline and a header size cap."""

    def __init__(self, config: uvicorn.Config, *args, **kwargs) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits: Limits = getattr(config, "churn_limits", Limits())
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = self._raw_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            _warn_refused(self.logger, self.limits.max_connections)
            self._refuse("503 Service Unavailable", "server at its connection limit; retry shortly")
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._header_timer is not None:  # still reading headers: bound what the parser buffers
            self._raw_bytes += len(data)
            if self._raw_bytes > self.limits.max_header_bytes + 65_536:  # body bytes may share the packet
                self._refuse("431 Request Header Fields Too Large", "request headers too large")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        if self._header_timer is None:  # the next request on a kept-alive connection
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._count_header(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._count_header(len(name) + len(value)):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- helpers ---------------------------------------------------------------------------------
    def _count_header(self, size: int) -> bool:
        self._header_bytes += size
        if self._header_bytes > self.limits.max_header_bytes:
            self._refuse("431 Request Header Fields Too Large", "request headers too large")
            return False
        return True

    def _arm(self) -> None:
        self._disarm()
        self._raw_bytes = 0
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self._refuse("408 Request Timeout", f"request headers not received within {self.limits.header_timeout:g} s")

    def _refuse(self, status: str, text: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_response(status, text))
            self.transport.close()


APP = "churn.serving.app:create_app"
# uvicorn's supervisor kills a worker that has not answered its ping within 5 s (its default), and
# a worker answers only once it has imported the app's modules (pandas, DuckDB, scikit-learn):
# on a busy machine that takes longer, so every worker was killed and restarted in a loop while
# the first one up served alone (a 2-worker benchmark then measured 1 worker).
WORKER_HEALTHCHECK_SECONDS = 120


def config_from(settings: Settings, log_level: str = "info", access_log: bool = True, app: str = APP) -> uvicorn.Config:
    """The uvicorn configuration the launcher (``make serve``) and the benchmarks run (``app``:
    another factory with the same server settings, e.g. the benchmark's ceiling apps)."""
    # uvicorn annotates timeout_keep_alive as int, but any number of seconds works.
    config = uvicorn.Config(
        app, factory=True, host=settings.host, port=settings.port,
        workers=settings.workers, loop="uvloop", http=GuardedHttpTools, proxy_headers=False,
        limit_concurrency=settings.max_connections, timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=settings.max_header_bytes, log_level=log_level, access_log=access_log,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS)
    config.churn_limits = Limits(settings.max_connections, settings.header_timeout_seconds,  # type: ignore[attr-defined]
                                 settings.max_header_bytes)
    return config


def serve(settings: Settings, log_level: str = "info", access_log: bool = True, app: str = APP) -> None:
    """Run the API in the foreground (``workers`` processes sharing one socket)."""
    config = config_from(settings, log_level, access_log, app)
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
