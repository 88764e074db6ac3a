"""The embedded redis-server: started once, reused, stopped without leftovers."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import time

import psutil
import pytest
import redis

from churn.store.redis_server import EmbeddedRedis, RedisUnavailableError, main, resolve_redis_url


def _exited(pid: int) -> bool:
    """Gone, or a zombie waiting for init to reap it (the daemon's parent is init)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_start_is_idempotent_and_stop_leaves_no_process(tmp_path):
    """A second start reuses the running daemon; stop ends it and removes pidfile and socket."""
    server = EmbeddedRedis(tmp_path)
    url = server.start()
    pid = server.pid()
    assert server.start() == url and server.pid() == pid
    redis.Redis.from_url(url).set("k", "v")
    assert server.stop() is True
    assert _exited(pid)
    assert not server.pidfile.exists() and not server.socket.exists()
    assert server.stop() is False


def test_stale_pidfile_is_ignored_and_replaced(tmp_path):
    """A pidfile left by a crashed server does not stop a new start."""
    server = EmbeddedRedis(tmp_path)
    server.dir.mkdir(parents=True)
    server.pidfile.write_text("999999")
    try:
        server.start()
        assert server.is_running() and server.pid() != 999999
    finally:
        server.stop()


def test_data_persists_across_restart(tmp_path):
    """Stopping saves the data set, so a restart finds the online store as it was."""
    server = EmbeddedRedis(tmp_path)
    redis.Redis.from_url(server.start()).set("feature", "1.5")
    server.stop()
    try:
        assert redis.Redis.from_url(server.start()).get("feature") == b"1.5"
    finally:
        server.stop()


def test_unreachable_redis_url_names_the_url(tmp_path):
    """A REDIS_URL nobody listens on gives one clear error naming it."""
    with pytest.raises(RedisUnavailableError, match="not reachable at REDIS_URL='redis://127.0.0.1:1/0'"):
        resolve_redis_url("redis://127.0.0.1:1/0", tmp_path)


def test_explicit_redis_url_is_used_as_is(embedded_redis, tmp_path):
    """With a reachable REDIS_URL no embedded server is started."""
    assert resolve_redis_url(embedded_redis.url, tmp_path) == embedded_redis.url
    assert not (tmp_path / "redis").exists()


def test_too_long_socket_path_is_explained(tmp_path):
    """The kernel's socket path limit becomes an error that says what to do."""
    deep = tmp_path / ("x" * 120)
    with pytest.raises(RedisUnavailableError, match="longer than"):
        EmbeddedRedis(deep).start()


def test_cli_status_reports_not_running(tmp_path, capsys):
    """`status` exits 3 and says so when no server runs."""
    assert main(["status", "--data-dir", str(tmp_path)]) == 3
    assert "not running" in capsys.readouterr().out


def _wait_exit(pid: int, timeout: float = 15.0) -> None:
    proc = psutil.Process(pid)
    proc.wait(timeout) if proc.ppid() == os.getpid() else psutil.wait_procs([proc], timeout)


def test_persistence_settings_are_applied(tmp_path):
    """The daemon runs with RDB save points and an append-only file fsynced every second."""
    server = EmbeddedRedis(tmp_path)
    client = redis.Redis.from_url(server.start())
    try:
        assert client.config_get("save")["save"] == "900 1 300 10 60 10000"
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
    finally:
        client.close()
        server.stop()


@pytest.mark.slow  # starts, signals and restarts a redis-server twice (make test runs it)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_keys_survive_a_signalled_server(tmp_path, sig):
    """A SIGTERM'd (or SIGKILL'd) server restarted from the same dir still has its keys."""
    server = EmbeddedRedis(tmp_path)
    client = redis.Redis.from_url(server.start())
    client.set("churn:fs:v1:u:5", b"\x01\x02")
    client.incrby("churn:api:requests", 7)
    # The guarantee is "at most the last second": wait until the writes left Redis's AOF buffer
    # (an fsync running in the background can postpone that write by up to 2 s).
    deadline = time.monotonic() + 10
    while client.info("persistence")["aof_buffer_length"] and time.monotonic() < deadline:
        time.sleep(0.05)
    client.close()
    pid = server.pid()
    os.kill(pid, sig)
    _wait_exit(pid)
    try:
        client = redis.Redis.from_url(server.start())
        assert server.pid() != pid
        assert client.get("churn:fs:v1:u:5") == b"\x01\x02"
        assert client.get("churn:api:requests") == b"7"
        client.close()
    finally:
        server.stop()


def test_dump_written_before_aof_was_on_is_loaded(tmp_path):
    """A data dir holding only dump.rdb (older releases) keeps its keys and gains an AOF."""
    server = EmbeddedRedis(tmp_path)
    redis.Redis.from_url(server.start()).set("old", "kept")
    server.stop()
    (server.dir / "appendonly.aof").unlink()
    try:
        assert redis.Redis.from_url(server.start()).get("old") == b"kept"
        assert (server.dir / "appendonly.aof").exists()
    finally:
        server.stop()


def test_stop_never_signals_an_unrelated_process(tmp_path):
    """A pidfile whose PID was reused by another process (here: `sleep`, and another project's
    redis-server) is not ours: stop leaves that process alive and only clears the stale file."""
    other = EmbeddedRedis(tmp_path / "other")
    other.start()
    sleeper = subprocess.Popen(["sleep", "60"])
    server = EmbeddedRedis(tmp_path / "ours")
    server.dir.mkdir(parents=True)
    try:
        for pid in (sleeper.pid, other.pid()):
            server.pidfile.write_text(f"{pid}\n")
            assert server.pid() is None
            assert server.stop() is False
            assert psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            assert not server.pidfile.exists()
        assert other.is_running()
    finally:
        sleeper.kill()
        sleeper.wait()
        other.stop()


def _start_in_process(data_dir: str, barrier, out) -> None:
    server = EmbeddedRedis(data_dir)
    barrier.wait(60)
    out.put((server.start(), server.pid()))


def test_concurrent_starts_launch_exactly_one_daemon(tmp_path):
    """Four processes starting at the same moment get the same URL and PID, and exactly one
    redis-server serves the socket."""
    ctx = mp.get_context("spawn")
    n = 4
    barrier, out = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_start_in_process, args=(str(tmp_path), barrier, out)) for _ in range(n)]
    for proc in procs:
        proc.start()
    server = EmbeddedRedis(tmp_path)
    try:
        results = [out.get(timeout=120) for _ in range(n)]
        for proc in procs:
            proc.join(30)
        assert len(set(results)) == 1, results
        socket_arg = f"unixsocket:{server.socket}"
        daemons = [p for p in psutil.process_iter(["cmdline"])
                   if socket_arg in " ".join(p.info["cmdline"] or [])]
        assert [p.pid for p in daemons] == [results[0][1]]
    finally:
        server.stop()
