"""Client addresses behind a reverse proxy: uvicorn's ``ProxyHeadersMiddleware``, trusting only
the peers in ``CHURN_FORWARDED_ALLOW_IPS``.

uvicorn trusts forwarded headers from 127.0.0.1 by default, so any local process (or a proxy that
passes the header through) could pick its own address and rotate past the per-client rate limit.
The launcher therefore runs uvicorn with ``proxy_headers=False``, and the app adds uvicorn's own
middleware with the configured peers only (addresses, networks such as ``10.0.0.0/8``, or names
such as a unix socket path; ``*`` trusts everyone; empty trusts no one and adds nothing). It reads
every ``X-Forwarded-For`` line as one chain (a proxy may append its own line rather than extend
the client's) and takes the rightmost hop that is not a trusted proxy as the client.
"""

from __future__ import annotations

import contextlib
import ipaddress

from fastapi import FastAPI
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware


def trusted_hosts(text: str) -> list[str] | str:
    """``CHURN_FORWARDED_ALLOW_IPS`` as uvicorn takes it: ``"*"``, or the entries, a network
    written with host bits (``10.9.0.1/16``) normalised to its network (uvicorn would otherwise
    take it for a name and trust nothing by it)."""
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if "*" in entries:
        return "*"
    hosts = []
    for entry in entries:
        if "/" in entry:
            with contextlib.suppress(ValueError):  # else a name with a slash (a socket path): literal
                entry = str(ipaddress.ip_network(entry, strict=False))
        hosts.append(entry)
    return hosts


def forwarded_for(app: ASGIApp, allow_ips: str) -> ASGIApp:
    """``app`` behind the forwarded-header middleware, or ``app`` itself when nobody is trusted."""
    hosts = trusted_hosts(allow_ips)
    return ProxyHeadersMiddleware(app, trusted_hosts=hosts) if hosts else app  # type: ignore[arg-type,return-value]


def install(app: FastAPI, allow_ips: str) -> None:
    """Add the middleware to ``app`` (outermost: everything inside sees the real client)."""
    hosts = trusted_hosts(allow_ips)
    if hosts:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=hosts)
