"""One small end-to-end build per test session, shared by the pipeline and dashboard tests."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import redis

from churn.cli.runner import ploomber_command
from churn.reports.zygote import serve_shared
from churn.store.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]
# `ploomber` as `churn build` and `make build` run it (without the optional imports that cost seconds)
PLOOMBER = ploomber_command()
SMALL = ["--env--n_users", "300"]
BUILT = ".built"  # in the small build's folder once it is complete: the URL of its Redis
BUILD_REDIS = "small-build-redis"  # the small build's Redis, next to it in the shared folder

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
        [*PLOOMBER, "build", "--force", *paths, *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "False"},
    )  # fmt: skip


def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every process of this test session sees: the session's base temp dir, which
    pytest-xdist workers share (each has its own ``popen-gwN`` under it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


NOTEBOOKS = ROOT / "notebooks"  # the phase notebooks whose imports the zygotes do


@contextmanager
def zygote_serving(env: dict[str, str] | None = None) -> Iterator[str]:
    """A kernel zygote with every phase's imports done, serving the runs started from this
    process (or with ``env``: runs whose kernels get that environment); yields its socket."""
    folder = tempfile.mkdtemp(prefix="churn-zygote-")  # short: a unix socket path has 108 bytes
    try:
        with serve_shared(Path(folder) / "zygote.sock", NOTEBOOKS, env) as path:
            yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def kernel_zygote() -> Iterator[str]:
    """One kernel zygote per worker: the phase kernels of every run this worker starts (builds,
    cycles, single phases) fork from it, as on a scheduler's worker, instead of each run
    importing the scientific stack again."""
    with zygote_serving() as path:
        yield path


@pytest.fixture(scope="session")
def small_build(tmp_path_factory: pytest.TempPathFactory, kernel_zygote: str) -> Path:
    """One `ploomber build` of 300 users per test session, shared by every xdist worker: the
    first worker to ask builds it (under a file lock), the others wait and read the same folder.

    READ-ONLY: a test that writes (a cycle, a phase, a re-run of the notebooks, another
    workspace) works on a copy (``build_copy``, ``copy_build``). The build publishes into a Redis
    of its own (``build_redis``), which runs until the session ends (pytest_sessionfinish in
    tests/conftest.py stops it) and is read-only as well.
    """
    shared = shared_dir(tmp_path_factory)
    target, failed = shared / "small-build", shared / "small-build.failed"
    with open(shared / "small-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if failed.exists():
            pytest.fail(f"the session's small build failed (on another worker):\n{failed.read_text()}")
        if not (target / BUILT).exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            url = EmbeddedRedis(shared / BUILD_REDIS).start()
            result = ploomber_build(target, url, *SMALL)
            if result.returncode != 0:
                failed.write_text(result.stdout[-3000:] + result.stderr[-3000:])
                pytest.fail(f"the session's small build failed:\n{failed.read_text()}")
            (target / BUILT).write_text(url)
    return target


@pytest.fixture(scope="session")
def build_redis(small_build: Path) -> str:
    """The URL of the Redis the small build published into (read-only, like the build)."""
    return (small_build / BUILT).read_text()


def copy_build(build: Path, target: Path, redis_url: str) -> Path:
    """A private copy of a finished build for tests that re-execute its notebooks (nbval).

    Data, models, receipts and executed notebooks are copied; every path of ``build`` in the
    notebooks' cells (injected parameters, upstream products) is pointed at the copy, and the
    online store at ``redis_url``, so a re-run writes nothing the shared build's readers see.
    """
    # not the scratch copies other tests' phases write into the shared build
    shutil.copytree(build, target, ignore=shutil.ignore_patterns("scratch", BUILT), dirs_exist_ok=True)
    for path in (target / "reports").glob("*.ipynb"):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            source = "".join(cell["source"]).replace(str(build), str(target))
            if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
                source = re.sub(r'^redis_url = .*$', f"redis_url = {json.dumps(redis_url)}", source, flags=re.M)
            cell["source"] = source.splitlines(keepends=True)
        path.write_text(json.dumps(notebook, indent=1))
    return target


def copy_redis(source_url: str, target_url: str) -> int:
    """Copy every key of ``source_url``'s database into ``target_url``'s (emptied first), values
    and expiry as they are (DUMP/RESTORE); returns the number of keys copied."""
    source, target = redis.Redis.from_url(source_url), redis.Redis.from_url(target_url)
    target.flushdb()
    keys = list(source.scan_iter(count=1000))
    for key in keys:
        ttl = source.pttl(key)
        target.restore(key, max(ttl, 0), source.dump(key), replace=True)
    return len(keys)


def workspace_params(workspace: Path, redis_url: str, n_users: int = 300) -> dict[str, object]:
    """The pipeline parameters that point a build at ``workspace`` (its data, reports, warehouse
    and models) and at its own Redis database: the ``churn --set KEY=VALUE`` pairs."""
    return {
        "data_dir": workspace / "data",
        "reports_dir": workspace / "reports",
        "warehouse": workspace / "data" / "churn.duckdb",
        "models_dir": workspace / "data" / "models",
        "redis_url": redis_url,
        "n_users": n_users,
    }


def with_database(url: str, db: int) -> str:
    """``url`` pointing at Redis database ``db`` (redis://host:port/N or unix://path?db=N)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"] + [("db", str(db))]
        return f"unix://{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture()
def build_copy(small_build: Path, tmp_path: Path, embedded_redis) -> Iterator[tuple[Path, str]]:
    """(a private copy of the small build, the URL of its own, empty Redis database)."""
    url = with_database(embedded_redis.url, 1)
    redis.Redis.from_url(url).flushdb()
    yield copy_build(small_build, tmp_path / "build", url), url
    redis.Redis.from_url(url).flushdb()


@pytest.fixture(scope="session")
def run_build():
    """``ploomber_build(tmp, redis_url, *extra)`` for tests that need their own build."""
    return ploomber_build
