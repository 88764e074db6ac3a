"""The embedded redis-server: started once, reused, stopped without leftovers."""

from __future__ import annotations

import os

import pytest
import redis

from churn.store.redis_server import EmbeddedRedis, RedisUnavailableError, main, resolve_redis_url


def test_start_is_idempotent_and_stop_leaves_no_process(tmp_path):
    """A second start reuses the running daemon; stop ends it and removes pidfile and socket."""
    server = EmbeddedRedis(tmp_path)
    url = server.start()
    pid = server.pid()
    assert server.start() == url and server.pid() == pid
    redis.Redis.from_url(url).set("k", "v")
    assert server.stop() is True
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
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
