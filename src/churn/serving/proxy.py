"""Client addresses behind a reverse proxy, trusting ``X-Forwarded-For`` only from known proxies.

uvicorn trusts forwarded headers from 127.0.0.1 by default, so any local process (or a proxy that
passes the header through) could pick its own address and rotate past the per-client rate limit.
The launcher runs uvicorn with ``proxy_headers=False``; this middleware then takes the client from
``X-Forwarded-For`` only when the direct peer is in ``CHURN_FORWARDED_ALLOW_IPS`` (addresses or
networks, comma-separated; empty trusts no one).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The set of peers whose ``X-Forwarded-For`` is believed."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks: list[Network] = []
        self.names: set[str] = set()  # non-IP peers (e.g. a unix socket path, "testclient")
        self.everyone = False
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            if entry == "*":
                self.everyone = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry)

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        return cls(text.split(","))

    def __bool__(self) -> bool:
        return self.everyone or bool(self.networks or self.names)

    def trusts(self, host: str) -> bool:
        if self.everyone or host in self.names:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.networks)

    def client_of(self, peer: str, forwarded_for: str) -> str:
        """The first hop from the right that is not a trusted proxy (the leftmost when all are)."""
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else peer


class ForwardedFor:
    """Pure-ASGI middleware: rewrites ``scope["client"]`` from ``X-Forwarded-For`` of trusted peers."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app, self.trusted = app, trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("client"):
            peer = scope["client"][0]
            if self.trusted.trusts(peer):
                # every X-Forwarded-For line, in order (a proxy may append its own line rather than
                # extend the client's): the rightmost untrusted hop is the client
                header = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for")
                if header:
                    scope = {**scope, "client": (self.trusted.client_of(peer, header.decode("latin-1")), 0)}
        await self.app(scope, receive, send)
