"""The online store's request-path reads: ``MGET`` over one pipelined connection per Redis server.

redis-py's asyncio client spends far more CPU on a command than the command costs Redis: a pool
checkout and release, a retry wrapper, ``wait_for`` around the write, a timeout context around
the read, and its observability hooks (looked up on every command even when switched off). For
the one command the API sends per request, :class:`PipelinedReads` does only the work: the
command is packed by hiredis (C), written to a connection that every request of the event loop
shares, and the reply parsed by hiredis and handed to the waiting future. Redis answers the
commands of a connection in order, so many reads can be in flight on it at once (pipelining).

The behaviours the API relies on are kept: every read has the client's ``socket_timeout``
(then the connection is closed and every read in flight on it fails with ``redis.TimeoutError``),
a refused or lost connection fails them with ``redis.ConnectionError`` (so the online store's
guard and the API's circuit breaker see what they saw from redis-py), a cancelled reader does not
disturb the others, and the next read reconnects. AUTH and SELECT are sent on connect (a client
name or library name set in the URL is not: the connection is anonymous in ``CLIENT LIST``). Only
plain TCP and unix-socket URLs take this path; a URL with TLS or any other option redis-py would
have to handle reads through redis-py as before (:func:`PipelinedReads.for_client` says None).

On a cluster, :meth:`ClusterReads.mget` sends each node the ``MGET`` of every hash-tag bucket
it owns in one write, all nodes at once; a redirection (``MOVED``/``ASK`` after a resharding)
or an unknown slot sends the read through redis-py's cluster client, which follows it.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from typing import Any

import hiredis
import redis
import redis.asyncio

# pool options of a plain TCP / unix-socket URL that this path implements (or that do not concern it)
_HANDLED = {"host", "port", "path", "db", "username", "password", "socket_timeout", "socket_connect_timeout"}
_IGNORED = {
    "himport_registry",
    "maint_notifications_pool_handler",
    "maint_notifications_config",
    "orig_host_address",
    "orig_socket_timeout",
    "orig_socket_connect_timeout",
    "socket_keepalive",
    "socket_keepalive_options",
    "retry",
    "retry_on_timeout",
    "retry_on_error",
    "health_check_interval",
    "client_name",
    "lib_name",
    "lib_version",
    "encoder_class",
    "driver_info",
    "event_dispatcher",
    "max_connections",
    "socket_read_size",
    "response_callbacks",
    "oss_cluster_maint_notifications_handler",
}
# options that change what a reply looks like: only their defaults are implemented (None: unset)
_DEFAULTS: dict[str, Any] = {
    "encoding": "utf-8",
    "encoding_errors": "strict",
    "decode_responses": False,
    "protocol": 2,
    "legacy_responses": True,
}


def _pack(*args: Any) -> bytes:
    """One command in RESP, packed by hiredis (its stub types a 1-tuple; any length works)."""
    packed: bytes = hiredis.pack_command(args)
    return packed


def _fresh(error: BaseException) -> BaseException:
    """A new exception of the same class and message: one per waiter (a shared one gathers tracebacks)."""
    try:
        return type(error)(*error.args)
    except Exception:
        return error


class _Write:
    """The commands of one write: their replies, gathered for one future (with one timer)."""

    __slots__ = ("future", "timer", "expected", "replies", "error")

    def __init__(self, future: asyncio.Future[list[Any]], timer: asyncio.TimerHandle | None, expected: int) -> None:
        self.future, self.timer, self.expected = future, timer, expected
        self.replies: list[Any] = []
        self.error: redis.ResponseError | None = None


class _Protocol(asyncio.Protocol):
    """One connection: replies are matched to the waiting writes in the order they were sent."""

    def __init__(self, where: str, timeout: float | None) -> None:
        self.where = where
        self.timeout = timeout
        self.reader = hiredis.Reader(replyError=redis.ResponseError)
        self.pending: collections.deque[_Write] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, packed: bytes, replies: int) -> asyncio.Future[list[Any]]:
        """Write ``packed`` (``replies`` commands); the future gets their replies (or the first
        error reply among them, once all have arrived: no reply is left for the next write)."""
        if self.closed or self.transport is None:  # lost since it was handed out: never wait for no reply
            raise redis.ConnectionError(f"Error while writing to {self.where}: connection closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        timer = loop.call_later(self.timeout, self._timed_out) if self.timeout else None
        self.pending.append(_Write(future, timer, replies))
        self.transport.write(packed)
        return future

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                write = self.pending[0]
                if isinstance(reply, redis.ResponseError):
                    write.error = write.error or reply
                write.replies.append(reply)
                if len(write.replies) < write.expected:
                    continue
                self.pending.popleft()
                if write.timer is not None:
                    write.timer.cancel()
                if write.future.done():  # its reader was cancelled: the replies are skipped
                    continue
                if write.error is not None:
                    write.future.set_exception(write.error)
                else:
                    write.future.set_result(write.replies)
        except (hiredis.ProtocolError, IndexError) as exc:  # garbage, or a reply nobody asked for
            self._close(redis.ConnectionError(f"protocol error from {self.where}: {exc!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._close(redis.ConnectionError(f"Error while reading from {self.where}: {exc or 'connection closed'}"))

    def _timed_out(self) -> None:
        self._close(redis.TimeoutError(f"Timeout reading from {self.where}"))

    def _close(self, error: redis.RedisError) -> None:
        """Fail every read in flight (their replies can no longer be matched) and drop the connection."""
        self.closed = True
        while self.pending:
            write = self.pending.popleft()
            if write.timer is not None:
                write.timer.cancel()
            if not write.future.done():
                write.future.set_exception(_fresh(error))
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


class PipelinedConnection:
    """A lazily (re)connected pipelined connection to one server, for the event loop that uses it."""

    def __init__(
        self,
        host: str | None = None,
        port: int = 6379,
        path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        socket_timeout: float | None = None,
        socket_connect_timeout: float | None = None,
    ) -> None:
        self.host, self.port, self.path, self.db = host, int(port), path, int(db or 0)
        self.username, self.password = username, password
        self.timeout = socket_timeout
        self.connect_timeout = socket_connect_timeout or socket_timeout
        self.where = path if path else f"{host}:{port}"
        self._protocol: _Protocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Task[_Protocol] | None = None

    async def send(self, packed: bytes, replies: int) -> asyncio.Future[list[Any]]:
        """Write ``packed`` (``replies`` commands) on the (re)connected connection; the future
        gets their replies."""
        protocol = self._protocol
        if protocol is None or protocol.closed or self._loop is not asyncio.get_running_loop():
            protocol = await self._connected()
        return protocol.send(packed, replies)

    async def execute(self, packed: bytes) -> Any:
        """One command's reply."""
        (reply,) = await (await self.send(packed, 1))
        return reply

    async def _connected(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # another event loop (a test's, a worker's): its own connection
            self._loop, self._protocol, self._connecting = loop, None, None
        if self._connecting is None:  # one connect for every read that asks meanwhile
            self._connecting = loop.create_task(self._connect())
        connecting = self._connecting
        try:
            self._protocol = await asyncio.shield(connecting)  # a cancelled reader leaves it running
        except redis.RedisError as exc:  # each reader its own error (a shared one gathers tracebacks)
            raise _fresh(exc) from None
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None  # the next reconnect (or retry after a failure) starts afresh
        return self._protocol

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            if self.path:
                connecting = loop.create_unix_connection(lambda: _Protocol(self.where, self.timeout), self.path)
            else:
                connecting = loop.create_connection(
                    lambda: _Protocol(self.where, self.timeout), str(self.host), self.port
                )
            _, protocol = await asyncio.wait_for(connecting, self.connect_timeout)
        except (TimeoutError, OSError) as exc:
            raise redis.ConnectionError(f"Error connecting to {self.where}: {exc!r}") from None
        handshake: list[tuple[Any, ...]] = []
        if self.password:
            handshake.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            handshake.append(("SELECT", self.db))
        try:
            for command in handshake:
                await protocol.send(_pack(*command), 1)
        except redis.ResponseError as exc:
            protocol._close(redis.ConnectionError(str(exc)))
            error = redis.AuthenticationError if command[0] == "AUTH" else redis.ConnectionError
            raise error(f"{command[0]} refused by {self.where}: {exc}") from None
        return protocol

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol, self._connecting = None, None


def connection_options(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The :class:`PipelinedConnection` arguments for a redis-py pool's ``connection_kwargs``,
    or None when the pool is configured in a way this path does not implement."""
    for key, value in kwargs.items():
        if key in _HANDLED or key in _IGNORED or value is None:
            continue
        if key in _DEFAULTS and value == _DEFAULTS[key]:
            continue
        return None
    return {k: v for k, v in kwargs.items() if k in _HANDLED}


class PipelinedReads:
    """``MGET`` for one plain Redis (see the module docstring)."""

    def __init__(self, connection: PipelinedConnection) -> None:
        self.connection = connection

    @classmethod
    def for_client(cls, client: redis.asyncio.Redis) -> PipelinedReads | None:
        pool = client.connection_pool
        if not issubclass(pool.connection_class, (redis.asyncio.Connection, redis.asyncio.UnixDomainSocketConnection)):
            return None
        if issubclass(pool.connection_class, redis.asyncio.SSLConnection) or client.single_connection_client:
            return None
        options = connection_options(dict(pool.connection_kwargs))
        return None if options is None else cls(PipelinedConnection(**options))

    async def mget(self, keys: Sequence[bytes]) -> list[Any]:
        reply: list[Any] = await self.connection.execute(_pack("MGET", *keys))
        return reply

    async def ping(self) -> Any:
        """``PING`` on the same connection: a round trip with no work (the benchmarks' floor)."""
        return await self.connection.execute(_pack("PING"))

    def close(self) -> None:
        self.connection.close()


class ClusterReads:
    """``MGET`` of hash-tagged keys on a Redis Cluster: per node, the buckets it owns in one write;
    every node at once. The slot map is the cluster client's (it refreshes it on a redirection)."""

    def __init__(self, client: redis.asyncio.RedisCluster, options: dict[str, Any]) -> None:
        self.client = client
        self.options = options
        self._connections: dict[str, PipelinedConnection] = {}

    @classmethod
    def for_client(cls, client: redis.asyncio.RedisCluster) -> ClusterReads | None:
        kwargs = dict(client.nodes_manager.connection_kwargs)
        if (
            kwargs.get("ssl")
            or kwargs.get("connection_class", redis.asyncio.Connection) is not redis.asyncio.Connection
        ):
            return None
        kwargs.pop("connection_class", None)
        kwargs.pop("ssl", None)
        options = connection_options(kwargs)
        if options is None or options.get("db"):
            return None
        return cls(client, {k: v for k, v in options.items() if k not in ("host", "port", "path")})

    def _connection(self, host: str, port: int) -> PipelinedConnection:
        name = f"{host}:{port}"
        connection = self._connections.get(name)
        if connection is None:
            connection = self._connections[name] = PipelinedConnection(host=host, port=port, **self.options)
        return connection

    async def mget(self, groups: Sequence[Sequence[bytes]], slots: Sequence[int]) -> list[list[Any]]:
        """The values of each group of keys (the keys of a group share one hash tag: slot
        ``slots[i]``), in the groups' order; raises ``redis.ResponseError`` on a redirection (the caller reads
        through the cluster client then) and the usual connection/timeout errors."""
        await self.client.initialize()  # the slot map (no-op once loaded)
        manager = self.client.nodes_manager
        per_node: dict[tuple[str, int], list[int]] = {}
        for i, slot in enumerate(slots):
            try:
                node = manager.get_node_from_slot(slot)
            except redis.exceptions.SlotNotCoveredError as exc:
                raise redis.ResponseError(str(exc)) from None
            per_node.setdefault((str(node.host), int(node.port)), []).append(i)
        sent: list[tuple[list[int], asyncio.Future[list[Any]]]] = []
        error: BaseException | None = None
        for (host, port), members in per_node.items():  # every node's write goes out before any wait
            packed = b"".join([_pack("MGET", *groups[i]) for i in members])
            try:
                sent.append((members, await self._connection(host, port).send(packed, len(members))))
            except redis.RedisError as exc:  # e.g. a node that refuses connections
                error = error or exc
        results: list[list[Any]] = [[] for _ in groups]
        for members, future in sent:  # every future awaited: none is left with an unread error
            try:
                replies = await future
            except redis.RedisError as exc:
                error = error or exc
                continue
            for i, reply in zip(members, replies, strict=True):
                results[i] = reply
        if error is not None:
            raise error
        return results

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
