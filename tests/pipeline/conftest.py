"""One small end-to-end build per test session, shared by the pipeline and dashboard tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
PLOOMBER = str(Path(sys.executable).with_name("ploomber"))
SMALL = ["--env--n_users", "300"]

def ploomber_build(tmp: Path, redis_url: str, *extra: str) -> subprocess.CompletedProcess:
    """`ploomber build` of this project with data, models and reports redirected into ``tmp``
    and the test session's embedded Redis as the online store."""
    paths = [
        "--env--data_dir", str(tmp / "data"),
        "--env--reports_dir", str(tmp / "reports"),
        "--env--warehouse", str(tmp / "data" / "churn.duckdb"),
        "--env--models_dir", str(tmp / "data" / "models"),
        "--env--redis_url", redis_url,
    ]  # fmt: skip
    return subprocess.run(
        [PLOOMBER, "build", "--force", *paths, *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "False"},
    )  # fmt: skip


@pytest.fixture(scope="session")
def small_build(tmp_path_factory: pytest.TempPathFactory, embedded_redis) -> Path:
    tmp = tmp_path_factory.mktemp("build")
    redis.Redis.from_url(embedded_redis.url).flushdb()
    result = ploomber_build(tmp, embedded_redis.url, *SMALL)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tmp




@pytest.fixture(scope="session")
def run_build():
    """``ploomber_build(tmp, redis_url, *extra)`` for tests that need their own build."""
    return ploomber_build
