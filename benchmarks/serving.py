"""Serving benchmarks for ``make bench``: in-process path, HTTP single and batch predictions.

Everything runs on a private copy of a build (warehouse snapshot + models) with its own embedded
Redis in a temp dir, so ``data/`` is only read. The HTTP cases start uvicorn (uvloop + httptools,
no access log, no rate limit) in a subprocess and load it over loopback with ``wrk`` when it is
installed (``apt-get install -y wrk``), else with an async httpx client. Load generator and server
share the machine's cores, so the figures are a floor for a real deployment.

``python -m benchmarks.serving --data-dir data --duration 10`` (from the repository root).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import loadtest
from churn.serving import process

ORIGINAL = {"predictions_per_s": 2334, "cached_prediction_ms": 0.5}


ROOT = Path(__file__).resolve().parents[1]


def prepare(source: Path, work: Path) -> dict[str, str]:
    """Copy the build's warehouse and models into ``work``, start a Redis there, publish the
    latest vectors (the API's own cache sync); returns the serving environment (``CHURN_*``)."""
    from churn.serving import Settings
    from churn.serving.service import ServingState
    from churn.store.redis_server import EmbeddedRedis
    from churn.store.warehouse import Warehouse

    built = Warehouse(source / "churn.duckdb")
    file = built.snapshot_path if built.snapshot_path.exists() else built.path
    if not file.exists() or not (source / "models").is_dir():
        raise SystemExit(f"no build under {source}: run `make build` first")
    shutil.copyfile(file, work / "churn.duckdb")
    shutil.copytree(source / "models", work / "models")
    url = EmbeddedRedis(work).start()
    state = ServingState.open(Settings(data_dir=str(work), redis_url=url))
    try:
        state.sync_cache()
    finally:
        state.close()
    return {"CHURN_DATA_DIR": str(work), "REDIS_URL": url, "CHURN_RATE_LIMIT_PER_MINUTE": "0"}


def _user_ids(env: dict[str, str]) -> list[int]:
    from churn.store import offline
    from churn.store.warehouse import Warehouse

    return offline.latest_vectors(Warehouse(Path(env["CHURN_DATA_DIR"]) / "churn.duckdb"))["user_id"].tolist()


def _ms(seconds: list[float] | np.ndarray) -> dict[str, float]:
    values = np.asarray(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(values, 50)), 4),
        "p99_ms": round(float(np.percentile(values, 99)), 4),
        "mean_ms": round(float(values.mean()), 4),
    }


def _timed_predictions(
    env: dict[str, str], ids: list[int], use_cache: bool = True, profiler=None, cpu_seconds: list[float] | None = None
) -> np.ndarray:
    """Seconds per prediction as the API computes it (``ServingState.predict_one`` on uvloop, the
    asyncio Redis client; ``use_cache=False``: the offline-store fallback), without HTTP;
    ``cpu_seconds`` gets the process's CPU time for all of them (not inflated by waiting for
    Redis or for the cores on a busy machine)."""
    cpu_seconds = [] if cpu_seconds is None else cpu_seconds
    import uvloop

    from churn.serving import Settings
    from churn.serving.service import ServingState

    async def run() -> np.ndarray:
        state = await asyncio.to_thread(
            ServingState.open, Settings(data_dir=env["CHURN_DATA_DIR"], redis_url=env["REDIS_URL"]), index=True
        )
        try:
            state.models.require()
            predict = state.predict_one if use_cache else (lambda uid: state.predict([uid], use_cache=False))
            await predict(ids[0])  # warm: connection pool, latest-vector index
            timings = np.empty(len(ids))
            if profiler is not None:
                profiler.enable()
            cpu = time.process_time()
            for i, uid in enumerate(ids):
                started = time.perf_counter()
                await predict(uid)
                timings[i] = time.perf_counter() - started
            cpu_seconds.append(time.process_time() - cpu)
            if profiler is not None:
                profiler.disable()
            return timings
        finally:
            await state.aclose()
            state.close()

    return uvloop.run(run())


def bench_in_process(env: dict[str, str], calls: int = 20_000, seed: int = 0) -> dict:
    """Online read + score for a random (cached) user, as ``GET /predict/{id}`` does it, without HTTP."""
    ids = np.random.default_rng(seed).choice(_user_ids(env), calls).tolist()
    cpu: list[float] = []
    timings = _timed_predictions(env, ids, cpu_seconds=cpu)
    return {
        "case": "in-process online read + score",
        "calls": calls,
        "cpu_us_per_call": round(cpu[0] / calls * 1e6, 1),
        **_ms(timings),
    }


def _ping_ms(env: dict[str, str], calls: int) -> dict[str, float]:
    """p50/p99 of a bare ``PING`` round trip to the serving Redis on the request path's connection:
    the floor under any read (two processes handing a message back and forth)."""
    import redis.asyncio
    import uvloop

    from churn.store.online import async_client_from_url
    from churn.store.pipelined import PipelinedReads

    async def run() -> np.ndarray:
        client = async_client_from_url(env["REDIS_URL"])
        assert isinstance(client, redis.asyncio.Redis), "the serving benchmark runs on one Redis"
        reads = PipelinedReads.for_client(client)
        assert reads is not None, "the serving URL does not take the pipelined path"
        try:
            await reads.ping()
            timings = np.empty(calls)
            for i in range(calls):
                started = time.perf_counter()
                await reads.ping()
                timings[i] = time.perf_counter() - started
            return timings
        finally:
            reads.close()
            await client.aclose()

    return _ms(uvloop.run(run()))


def bench_placement(env: dict[str, str], calls: int = 20_000) -> list[dict]:
    """The in-process read + score and a bare Redis round trip with this process and Redis on
    different cores (as the scheduler places them on an idle machine) and pinned to one core: on
    this virtual machine waking a process on the other core costs tens of microseconds each way,
    which is most of the request's wall time; on one core the hand-over is a plain switch."""
    pid = _redis_pid(env)
    if pid is None or len(os.sched_getaffinity(0)) < 2:
        return []
    mine, theirs = os.sched_getaffinity(0), os.sched_getaffinity(pid)
    rows = []
    try:
        for placement, (me, redis_core) in (("different cores", ({0}, {1})), ("one core", ({0}, {0}))):
            os.sched_setaffinity(0, me)
            os.sched_setaffinity(pid, redis_core)
            row = bench_in_process(env, calls)
            rows.append({**row, "placement": placement, "ping": _ping_ms(env, calls // 4)})
    finally:
        os.sched_setaffinity(0, mine)
        os.sched_setaffinity(pid, theirs)
    return rows


def bench_fallback(env: dict[str, str], calls: int = 5_000, seed: int = 1) -> dict:
    """A prediction from the offline store (Redis skipped), as when Redis is down or misses."""
    ids = np.random.default_rng(seed).choice(_user_ids(env), calls).tolist()
    timings = _timed_predictions(env, ids, use_cache=False)
    return {"case": "in-process offline-store fallback + score", "calls": calls, **_ms(timings)}


def profile_table(profiler, calls: int, top: int = 12) -> str:
    """cProfile's top functions by own time, per request (markdown)."""
    import pstats

    # (file, line, name) -> (cc, nc, tottime, cumtime, callers); typeshed does not declare .stats
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    lines = ["| function | calls per request | own µs per request |", "|---|---|---|"]
    for (file, line, name), (_, ncalls, tottime, _, _) in rows:
        where = f"{Path(file).name}:{line} {name}" if line else name
        lines.append(f"| `{where}` | {ncalls / calls:.1f} | {tottime / calls * 1e6:.1f} |")
    return "\n".join(lines) + "\n"


def profile_in_process(env: dict[str, str], calls: int = 5_000, top: int = 12) -> str:
    """Where the in-process prediction's CPU goes: cProfile's top functions by own time (markdown)."""
    import cProfile

    profiler = cProfile.Profile(time.process_time)
    _timed_predictions(env, np.random.default_rng(2).choice(_user_ids(env), calls).tolist(), profiler=profiler)
    return profile_table(profiler, calls, top)


def bench_cluster_read(env: dict[str, str], batch: int = 1000, calls: int = 300) -> list[dict]:
    """The online store's batch read (``aonline_read`` of ``batch`` random known ids, as
    ``POST /predict/batch`` does it) on the embedded Redis (unix socket), on one plain Redis over
    TCP, and on a local 3-master Redis Cluster over TCP (hash-tagged keys: one MGET per bucket,
    pipelined per shard); each row carries its ratio to the single Redis on the same transport."""
    import uvloop

    from churn.store import offline
    from churn.store.cluster import local_redis
    from churn.store.online import OnlineStore, async_client_from_url, client_from_url
    from churn.store.warehouse import Warehouse

    warehouse = Warehouse(Path(env["CHURN_DATA_DIR"]) / "churn.duckdb")
    feature_set, features = offline.feature_set(warehouse)
    latest = offline.latest_vectors(warehouse)
    rng = np.random.default_rng(5)
    batches = [rng.choice(latest["user_id"].to_numpy(), batch) for _ in range(calls)]

    def timed(url: str) -> dict[str, float]:
        store = OnlineStore(client_from_url(url), feature_set, features)
        store.online_write_batch(latest[["user_id", "snapshot_at", *features]])

        async def run() -> dict[str, float]:
            aclient = async_client_from_url(url)
            reader = OnlineStore(store.client, feature_set, features, aclient=aclient)
            await reader.aonline_read(batches[0])  # warm: connections (and the cluster's slot map)
            timings = np.empty(calls)
            cpu = time.process_time()
            for i, ids in enumerate(batches):
                started = time.perf_counter()
                read = await reader.aonline_read(ids)
                timings[i] = time.perf_counter() - started
                if not read.found.all():
                    raise RuntimeError(f"{url}: {int((~read.found).sum())} of {batch} ids missing")
            cpu_ms = (time.process_time() - cpu) / calls * 1000
            await aclient.aclose()
            return {**_ms(timings), "cpu_ms_per_read": round(cpu_ms, 4)}

        try:
            return uvloop.run(run())
        finally:
            store.client.close()

    rows: list[dict[str, Any]] = [
        {"case": f"online read of {batch} ids, embedded Redis (unix socket)", **timed(env["REDIS_URL"])}
    ]
    root = Path(tempfile.mkdtemp(prefix="churn-bench-cluster-"))
    try:
        with local_redis(root / "single", masters=1, cluster=False) as ports:
            rows.append(
                {"case": f"online read of {batch} ids, one Redis (TCP)", **timed(f"redis://127.0.0.1:{ports[0]}")}
            )
        with local_redis(root / "cluster", masters=3) as ports:
            rows.append(
                {
                    "case": f"online read of {batch} ids, Redis Cluster of 3 masters (TCP)",
                    **timed(f"redis+cluster://127.0.0.1:{ports[0]}"),
                }
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    single = float(rows[1]["p50_ms"])
    return [{**r, "p50_over_single_tcp": round(float(r["p50_ms"]) / single, 2)} for r in rows]


PACKAGES = (  # profile groups: where a request's own time goes, by the code that spends it
    ("churn/serving", "churn.serving (routes, lookup, scoring)"),
    ("churn/", "churn (model, online store)"),
    ("/fastapi/", "FastAPI (routing, parameters)"),
    ("/starlette/", "Starlette (request, response, middleware base)"),
    ("/pydantic", "pydantic (validation)"),
    ("/redis/", "redis-py (asyncio client)"),
    ("/numpy/", "numpy"),
    ("/asyncio/", "asyncio"),
    ("/json/", "json"),
)


def _group(file: str) -> str:
    for needle, name in PACKAGES:
        if needle in file:
            return name
    return "C built-ins (sockets, event loop)" if file == "~" else "other Python"


def _asgi_timings(
    factory, paths: list[str], profiler=None, cpu_seconds: list[float] | None = None, bodies: list[bytes] | None = None
) -> np.ndarray:
    """Seconds per request of an ASGI app called directly (no server, no socket): what the app
    itself costs per request, lifespan started as uvicorn would (``cpu_seconds`` gets the
    process's CPU time for all of them: unlike wall time, not inflated by waiting for Redis on a
    busy machine). ``bodies``: POST these JSON bodies (one per path) instead of GETs."""
    import uvloop

    cpu_seconds = [] if cpu_seconds is None else cpu_seconds
    body = [b""]

    async def run() -> np.ndarray:
        app = factory()
        sent: list[dict] = []
        received = [False]

        async def receive() -> dict:
            # as a server does: the (empty) body once, then nothing until the client goes away
            # (answering every call at once would make code that listens for a disconnect spin)
            if not received[0]:
                received[0] = True
                return {"type": "http.request", "body": body[0], "more_body": False}
            await asyncio.Event().wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        async def call(path: str, payload: bytes | None = None) -> None:
            body[0] = payload or b""
            headers = [(b"host", b"bench")]
            if payload is not None:
                headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET" if payload is None else "POST",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": headers,
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 8000),
            }
            sent.clear()
            received[0] = False
            await app(scope, receive, send)
            if sent[0]["status"] != 200:
                raise RuntimeError(f"{path}: HTTP {sent[0]['status']} {sent[-1].get('body', b'')[:200]!r}")

        payloads: list[bytes | None] = list(bodies) if bodies is not None else [None] * len(paths)
        async with app.router.lifespan_context(app):
            await call(paths[0], payloads[0])  # warm: middleware stack, connection pool
            timings = np.empty(len(paths))
            if profiler is not None:
                profiler.enable()
            cpu = time.process_time()
            for i, (path, payload) in enumerate(zip(paths, payloads, strict=True)):
                started = time.perf_counter()
                await call(path, payload)
                timings[i] = time.perf_counter() - started
            cpu_seconds.append(time.process_time() - cpu)
            if profiler is not None:
                profiler.disable()
        return timings

    return uvloop.run(run())


def bench_asgi(env: dict[str, str], calls: int = 5_000) -> list[dict]:
    """``GET /predict/{id}`` through the whole app in process (middleware, routing, lookup,
    scoring, response), next to the bare-FastAPI ceiling app called the same way: the CPU each
    costs per request without the server, the socket or the load generator."""
    from benchmarks.ceiling import bare_fastapi
    from churn.serving import Settings, create_app

    paths = [f"/predict/{u}" for u in np.random.default_rng(3).choice(_user_ids(env), calls).tolist()]
    settings = Settings(data_dir=env["CHURN_DATA_DIR"], redis_url=env["REDIS_URL"], rate_limit_per_minute=0)
    rows: list[dict] = []
    for name, factory in (("our API", lambda: create_app(settings)), ("bare FastAPI", bare_fastapi)):
        cpu: list[float] = []
        timings = _asgi_timings(factory, paths, cpu_seconds=cpu)
        rows.append(
            {
                "case": f"in-process ASGI GET /predict/{{id}}, {name}",
                "calls": calls,
                "cpu_us_per_request": round(cpu[0] / calls * 1e6, 1),
                **_ms(timings),
            }
        )
    bare = rows[1]["cpu_us_per_request"]
    return [{**r, "cpu_over_bare_fastapi": round(r["cpu_us_per_request"] / bare, 2)} for r in rows]


def profile_asgi(env: dict[str, str], calls: int = 3_000, top: int = 15) -> str:
    """Where a ``GET /predict/{id}`` spends its CPU inside the app: cProfile's own time (on the
    process's CPU clock, so waiting for Redis is not counted) grouped by package, then the top
    functions (markdown)."""
    import cProfile

    from churn.serving import Settings, create_app

    settings = Settings(data_dir=env["CHURN_DATA_DIR"], redis_url=env["REDIS_URL"], rate_limit_per_minute=0)
    paths = [f"/predict/{u}" for u in np.random.default_rng(4).choice(_user_ids(env), calls).tolist()]
    profiler = cProfile.Profile(time.process_time)
    _asgi_timings(lambda: create_app(settings), paths, profiler)
    return _group_table(profiler, calls) + "\n" + profile_table(profiler, calls, top)


def _group_table(profiler, calls: int) -> str:
    """cProfile's own time grouped by package, per request (markdown)."""
    import pstats

    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    for (file, _, _), (_, _, tottime, _, _) in stats.items():
        groups[_group(file)] = groups.get(_group(file), 0.0) + tottime
    total = sum(groups.values())
    lines = ["| code | own µs per request | share |", "|---|---|---|"]
    for name, seconds in sorted(groups.items(), key=lambda kv: kv[1], reverse=True):
        lines.append(f"| {name} | {seconds / calls * 1e6:.1f} | {seconds / total:.0%} |")
    return "\n".join(lines) + "\n"


def _batch_bodies(env: dict[str, str], batch: int, count: int, seed: int = 6) -> list[bytes]:
    ids, rng = _user_ids(env), np.random.default_rng(seed)
    return [json.dumps({"user_ids": rng.choice(ids, batch).tolist()}).encode() for _ in range(count)]


def bench_asgi_batch(env: dict[str, str], batch: int = 1000, calls: int = 200) -> dict:
    """``POST /predict/batch`` of ``batch`` cached ids through the app in process: CPU per
    request and predictions per CPU-second (one worker's ceiling on an otherwise idle core)."""
    from churn.serving import Settings, create_app

    settings = Settings(data_dir=env["CHURN_DATA_DIR"], redis_url=env["REDIS_URL"], rate_limit_per_minute=0)
    cpu: list[float] = []
    timings = _asgi_timings(
        lambda: create_app(settings),
        ["/predict/batch"] * calls,
        cpu_seconds=cpu,
        bodies=_batch_bodies(env, batch, calls),
    )
    per_request = cpu[0] / calls
    return {
        "case": f"in-process ASGI POST /predict/batch x{batch}",
        "calls": calls,
        "cpu_ms_per_request": round(per_request * 1e3, 3),
        "predictions_per_cpu_second": round(batch / per_request),
        **_ms(timings),
    }


def profile_asgi_batch(env: dict[str, str], batch: int = 1000, calls: int = 100, top: int = 15) -> str:
    """Where a ``POST /predict/batch`` of ``batch`` ids spends its CPU inside the app (markdown)."""
    import cProfile

    from churn.serving import Settings, create_app

    settings = Settings(data_dir=env["CHURN_DATA_DIR"], redis_url=env["REDIS_URL"], rate_limit_per_minute=0)
    profiler = cProfile.Profile(time.process_time)
    bodies = _batch_bodies(env, batch, calls, seed=7)
    _asgi_timings(lambda: create_app(settings), ["/predict/batch"] * calls, profiler, bodies=bodies)
    return _group_table(profiler, calls) + "\n" + profile_table(profiler, calls, top)


def launch(env: dict[str, str], workers: int, app: str | None = None) -> tuple[int, subprocess.Popen[bytes]]:
    """The package's launcher on a free port -> (port, process); ``app``: a ceiling app. They live
    here, outside the package, so the launched server gets the repository root on its path."""
    port = process.free_port()
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    # a generous start-up bound: on a busy shared machine two workers' imports alone can take a minute
    proc = process.start_server({**env, "PYTHONPATH": pythonpath}, workers, port, timeout=240, app=app)
    try:
        _wait_for_workers(proc, workers)
    except BaseException:
        process.stop_server(proc)
        raise
    return port, proc


def _wait_for_workers(proc: subprocess.Popen[bytes], workers: int, timeout: float = 120.0) -> None:
    """Return once the launcher runs ``workers`` processes and all of them are idle: /health
    answers as soon as the first worker is up, and a load started then would find the others
    still importing (one worker measured as two, its CPU taken by their start-up)."""
    import psutil

    launcher, deadline = psutil.Process(proc.pid), time.monotonic() + timeout

    def servers() -> list[psutil.Process]:  # the supervisor's other child is multiprocessing's resource tracker
        if workers == 1:
            return [launcher]
        return [p for p in launcher.children() if "spawn_main" in " ".join(p.cmdline())]

    while time.monotonic() < deadline:
        running = servers()
        if len(running) == workers:
            before = sum(CpuMeter._busy(p) for p in running)
            time.sleep(1.0)
            if {p.pid for p in servers()} == {p.pid for p in running} and sum(
                CpuMeter._busy(p) for p in running
            ) - before < 0.1:
                return
        else:
            time.sleep(0.2)
    raise RuntimeError(f"the API did not settle with {workers} idle worker(s) within {timeout:.0f} s")


def _http_case(
    env: dict[str, str],
    workers: int,
    path: str,
    lua: str,
    fallback,
    duration: float,
    connections: int,
    app: str | None = None,
) -> dict:
    """Start a server with ``workers``, load ``path`` with wrk (else httpx), stop the server. The
    row also says where the machine's CPU went during the load (see ``CpuMeter``)."""
    port, proc = launch(env, workers, app)
    try:
        url = f"http://127.0.0.1:{port}"
        with CpuMeter(proc.pid, _redis_pid(env)) as meter:
            if shutil.which("wrk"):
                result = loadtest.run_wrk(url + path, lua, duration, connections, threads=1)
            else:
                result = asyncio.run(loadtest.httpx_load(url, fallback, duration, connections))
        return {**result, "cpu": meter.result}
    finally:
        process.stop_server(proc)


def _redis_pid(env: dict[str, str]) -> int | None:
    from churn.store.redis_server import EmbeddedRedis

    return EmbeddedRedis(Path(env["CHURN_DATA_DIR"])).pid()


def _machine_busy(times) -> float:
    """CPU seconds the whole machine spent busy (guest time is already inside user time)."""
    fields = ("user", "nice", "system", "irq", "softirq", "steal")
    return float(sum(getattr(times, f, 0.0) for f in fields))


class CpuMeter:
    """Cores kept busy during a load, by whom: the API (launcher and workers), its Redis, the
    load generator (this process's children: wrk), and everything else on the machine (other
    users: noise). On a machine with N cores, ``total`` near N means it was saturated, and a
    second worker cannot add throughput."""

    def __init__(self, server_pid: int, redis_pid: int | None) -> None:
        import psutil

        self.server = psutil.Process(server_pid)
        self.redis = psutil.Process(redis_pid) if redis_pid else None
        self.result: dict[str, Any] = {}

    def _processes(self) -> list:
        return [self.server, *self.server.children(recursive=True)]

    @staticmethod
    def _busy(proc) -> float:
        times = proc.cpu_times()
        return float(times.user + times.system)

    def __enter__(self) -> CpuMeter:
        import resource

        import psutil

        self._started = time.perf_counter()
        self._machine = psutil.cpu_times()
        self._children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._server = {p.pid: self._busy(p) for p in self._processes()}
        self._redis = self._busy(self.redis) if self.redis else 0.0
        return self

    def __exit__(self, *exc) -> None:
        import resource

        import psutil

        seconds = time.perf_counter() - self._started
        machine = psutil.cpu_times()
        total = _machine_busy(machine) - _machine_busy(self._machine)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk = (children.ru_utime + children.ru_stime) - (self._children.ru_utime + self._children.ru_stime)
        per_process = {p.pid: self._busy(p) - self._server.get(p.pid, 0.0) for p in self._processes()}
        server = sum(per_process.values())
        redis = self._busy(self.redis) - self._redis if self.redis else 0.0
        cores = {"api": server, "redis": redis, "load_generator": wrk}
        self.result = {f"{k}_cores": round(v / seconds, 2) for k, v in cores.items()}
        # each API process's share (the supervisor's is ~0): a worker near 0 did not take part
        self.result["api_process_cores"] = sorted((round(v / seconds, 2) for v in per_process.values()), reverse=True)
        self.result["other_cores"] = round(max(total - sum(cores.values()), 0.0) / seconds, 2)
        self.result["machine_cores"] = psutil.cpu_count() or 0


CEILINGS = {"bare FastAPI": "benchmarks.ceiling:bare_fastapi", "raw ASGI": "benchmarks.ceiling:raw_asgi_factory"}


def bench_http_single(
    env: dict[str, str],
    workers: int,
    duration: float = 10.0,
    connections: int = 32,
    app: str | None = None,
    label: str = "GET /predict/{id}",
) -> dict:
    """``GET /predict/{id}`` with random known ids (``app``: a ceiling app under the same load)."""
    ids, rng = _user_ids(env), np.random.default_rng(0)
    result = _http_case(
        env,
        workers,
        "",
        loadtest.LUA_SINGLE % ",".join(map(str, ids)),
        lambda c: c.get(f"/predict/{rng.choice(ids)}"),
        duration,
        connections,
        app,
    )
    return {
        "case": f"{label}, {workers} worker(s), -c{connections}",
        "workers": workers,
        "connections": connections,
        "app": label,
        **result,
    }


def bench_ceilings(env: dict[str, str], workers: int = 2, duration: float = 10.0) -> list[dict]:
    """The API and both ceiling apps at -c8 and -c64, same server settings, same run; each row
    carries its share of the bare-FastAPI ceiling at the same concurrency."""
    rows = []
    for connections in (8, 64):
        api = bench_http_single(env, workers, duration, connections)
        ceilings = [bench_http_single(env, workers, duration, connections, app, name) for name, app in CEILINGS.items()]
        bare, bare_per_cpu = ceilings[0]["req_per_s"] or float("nan"), _per_api_cpu(ceilings[0])
        for row in (api, *ceilings):
            rows.append(
                {
                    **row,
                    "share_of_bare_fastapi": round(row["req_per_s"] / bare, 3),
                    "req_per_api_cpu_second": round(_per_api_cpu(row)),
                    "share_of_bare_fastapi_per_api_cpu": round(_per_api_cpu(row) / bare_per_cpu, 3),
                }
            )
    return rows


def _per_api_cpu(row: dict) -> float:
    """Requests per CPU-second the API's processes spent: on a shared machine the API gets
    whatever cores the others leave, so requests/s alone compares runs that got different shares
    of the machine; requests per CPU-second does not depend on that share."""
    cores = (row.get("cpu") or {}).get("api_cores") or float("nan")
    return float(row["req_per_s"]) / cores


def bench_http_batch(
    env: dict[str, str], workers: int = 1, batch: int = 1000, duration: float = 10.0, connections: int = 4
) -> dict:
    """``POST /predict/batch`` with ``batch`` random known ids per request -> predictions/s."""
    ids, rng = _user_ids(env), np.random.default_rng(0)
    bodies = [json.dumps({"user_ids": rng.choice(ids, batch).tolist()}) for _ in range(16)]
    lua = loadtest.LUA_BATCH % ",".join(f"[[{b}]]" for b in bodies)
    headers = {"content-type": "application/json"}
    result = _http_case(
        env,
        workers,
        "/predict/batch",
        lua,
        lambda c: c.post("/predict/batch", content=bodies[rng.integers(16)], headers=headers),
        duration,
        connections,
    )
    return {
        "case": f"POST /predict/batch x{batch}, {workers} worker(s)",
        "workers": workers,
        "batch": batch,
        "predictions_per_s": round(result["req_per_s"] * batch),
        **result,
    }


def run_all(data_dir: str | Path = "data", duration: float = 10.0, calls: int = 20_000) -> dict:
    """Every serving case on a private copy of the build in ``data_dir``."""
    from benchmarks.tail import bench_tail
    from churn.store.redis_server import EmbeddedRedis

    work = Path(tempfile.mkdtemp(prefix="churn-bench-"))
    try:
        env = prepare(Path(data_dir), work)
        results = {
            "in_process": bench_in_process(env, calls),
            "placement": bench_placement(env, calls),
            "fallback": bench_fallback(env, max(calls // 4, 100)),
            "profile": profile_in_process(env, max(calls // 4, 100)),
            "asgi": bench_asgi(env, max(calls // 4, 100)),
            "asgi_profile": profile_asgi(env, max(calls // 8, 100)),
            "asgi_batch": bench_asgi_batch(env, calls=max(calls // 100, 20)),
            "asgi_batch_profile": profile_asgi_batch(env, calls=max(calls // 200, 10)),
            "http_single": [bench_http_single(env, w, duration) for w in (1, 2)],
            "ceilings": bench_ceilings(env, 2, duration),
            "tail": bench_tail(env, duration),
            "http_batch": [bench_http_batch(env, w, duration=duration) for w in (1, 2)],
            "cluster": bench_cluster_read(env, calls=max(calls // 50, 20)),
        }
    finally:
        EmbeddedRedis(work).stop()
        shutil.rmtree(work, ignore_errors=True)
    return results


def _cores(row: dict) -> str:
    """``api / redis / wrk / others`` cores busy during an HTTP case (see ``CpuMeter``)."""
    cpu = row.get("cpu") or {}
    if not cpu:
        return ""
    workers = [v for v in cpu.get("api_process_cores", []) if v >= 0.01]  # the supervisor's ~0 left out
    split = f" ({' + '.join(f'{v:.2f}' for v in workers)})" if len(workers) > 1 else ""
    return (
        f"{cpu['api_cores']:.2f}{split} / {cpu['redis_cores']:.2f} / {cpu['load_generator_cores']:.2f} / "
        f"{cpu['other_cores']:.2f}"
    )


def comparison(results: dict) -> str:
    """Markdown: our figures next to the original platform's published ones, the ceilings, the
    cluster row and the profiles."""
    single = max(results["http_single"], key=lambda r: r["req_per_s"])
    batch = max(results["http_batch"], key=lambda r: r["predictions_per_s"])
    inproc = results["in_process"]
    lines = [
        "| measure | original platform | here |",
        "|---|---|---|",
        f"| cached prediction latency | {ORIGINAL['cached_prediction_ms']} ms | {inproc['p50_ms']:.3f} ms p50, "
        f"{inproc['p99_ms']:.3f} ms p99, {inproc.get('cpu_us_per_call', float('nan'))} µs of CPU per call (in process, "
        "the API's async path; goal p50 < 0.10 ms) |",
        f"| predictions/s | {ORIGINAL['predictions_per_s']:,} | {batch['predictions_per_s']:,} (batch of "
        f"{batch['batch']}, {batch['workers']} worker(s); goal 300,000 with 2); {single['req_per_s']:,.0f} single req/s |",
        "",
        "Cores busy during each HTTP case: API (per worker) / Redis / wrk / everything else on the machine "
        f"({(results['http_single'][0].get('cpu') or {}).get('machine_cores', '?')} cores). A total near the "
        "core count means the machine was saturated: a second worker then cannot add throughput.",
        "",
        "| case | tool | req/s | p50 ms | p99 ms | errors | cores api / redis / wrk / others |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in [*results["http_single"], *results["http_batch"]]:
        lines.append(
            f"| {r['case']} | {r['tool']} | {r['req_per_s']:,.0f} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['errors']} {r['socket_errors']} | {_cores(r)} |"
        )
    fallback = results.get("fallback")
    if fallback:
        lines += [
            "",
            f"Offline-store fallback (Redis skipped), in process: p50 {fallback['p50_ms']:.3f} ms, "
            f"p99 {fallback['p99_ms']:.3f} ms (goal: p50 under 5 ms).",
        ]
    if results.get("placement"):
        lines += [
            "",
            "The in-process read + score is one round trip to Redis plus our CPU. Where the scheduler puts "
            "the two processes decides most of the wall time on this virtual machine (same run, pinned with "
            "`sched_setaffinity`; the goal p50 < 0.10 ms):",
            "",
            "| placement of this process and Redis | read + score p50 ms | p99 ms | CPU µs per call "
            "| bare PING p50 ms | PING p99 ms |",
            "|---|---|---|---|---|---|",
        ]
        for row in results["placement"]:
            lines.append(
                f"| {row['placement']} | {row['p50_ms']:.4f} | {row['p99_ms']:.4f} | {row['cpu_us_per_call']} | "
                f"{row['ping']['p50_ms']:.4f} | {row['ping']['p99_ms']:.4f} |"
            )
    if results.get("ceilings"):
        lines += [
            "",
            "Ceilings (same launcher and server settings, same run, wrk -t1; goal: the API at >= 60% of bare "
            "FastAPI). The share is given twice: of requests/s, and of requests per CPU-second of the API's "
            "processes (which does not depend on how many cores the rest of the machine left the API):",
            "",
            "| case | req/s | p50 ms | p99 ms | share of bare FastAPI | req per API CPU-s | share per CPU-s "
            "| cores api (per worker) / redis / wrk / others |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in results["ceilings"]:
            lines.append(
                f"| {r['case']} | {r['req_per_s']:,.0f} | {r['p50_ms']} | {r['p99_ms']} | "
                f"{r['share_of_bare_fastapi']:.0%} | {r.get('req_per_api_cpu_second', float('nan')):,.0f} | "
                f"{r.get('share_of_bare_fastapi_per_api_cpu', float('nan')):.0%} | {_cores(r)} |"
            )
    if results.get("tail"):
        from benchmarks.tail import table

        lines += [
            "",
            "The p99 tail (`benchmarks.tail`): the API as it runs (the heap alive after start-up frozen) and "
            "with that heap left to the garbage collector, same run; inside the workers, each full "
            "collection's pause and the event loop's lag (how late a 5 ms sleep wakes up):",
            "",
            table(results["tail"]),
        ]
    if results.get("asgi"):
        lines += [
            "",
            "The same request through the app in process (no server, socket or wrk): CPU per request "
            "(the process's CPU clock, so waiting for Redis is not counted) and wall time:",
            "",
            "| case | CPU µs per request | x bare FastAPI | p50 ms | p99 ms |",
            "|---|---|---|---|---|",
        ]
        for r in results["asgi"]:
            lines.append(
                f"| {r['case']} | {r['cpu_us_per_request']} | {r['cpu_over_bare_fastapi']} | {r['p50_ms']} | "
                f"{r['p99_ms']} |"
            )
    if results.get("asgi_batch"):
        r = results["asgi_batch"]
        lines += [
            "",
            f"`POST /predict/batch` of 1,000 through the app in process: {r['cpu_ms_per_request']} ms of CPU per "
            f"request, so {r['predictions_per_cpu_second']:,} predictions per CPU-second: one worker's "
            "ceiling on a core of its own. Over HTTP, two workers reach twice that only when the machine "
            "has two more cores free for them (wrk, Redis and the rest share the same cores here).",
        ]
    if results.get("cluster"):
        lines += [
            "",
            "Redis Cluster (goal: a batch read at most 2x the single Redis). CPU ms per read: this "
            "process's CPU clock (packing, parsing, regrouping by bucket); the rest of the wall time is "
            "waiting for the servers:",
            "",
            "| case | p50 ms | p99 ms | x one Redis (TCP) | CPU ms per read |",
            "|---|---|---|---|---|",
        ]
        for r in results["cluster"]:
            lines.append(
                f"| {r['case']} | {r['p50_ms']} | {r['p99_ms']} | {r['p50_over_single_tcp']} | "
                f"{r.get('cpu_ms_per_read', '')} |"
            )
    if results.get("asgi_profile"):
        lines += [
            "",
            "Where a `GET /predict/{id}` spends its CPU inside the app (cProfile on the CPU clock; "
            "the profiler's own overhead inflates every figure, the shares are what to read):",
            "",
            results["asgi_profile"],
        ]
    if results.get("asgi_batch_profile"):
        lines += [
            "",
            "Where a `POST /predict/batch` of 1,000 spends its CPU inside the app:",
            "",
            results["asgi_batch_profile"],
        ]
    if results.get("profile"):
        lines += [
            "",
            "Where the in-process cached prediction (lookup + score, no HTTP) spends its CPU:",
            "",
            results["profile"],
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving")
    parser.add_argument("--data-dir", default="data", help="a finished build (only read)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per HTTP case")
    parser.add_argument("--calls", type=int, default=20_000, help="in-process calls")
    parser.add_argument("--json", default=None, help="also write the raw results here")
    parser.add_argument("--markdown", default=None, help="also write the comparison table here")
    args = parser.parse_args(argv)
    results = run_all(args.data_dir, args.duration, args.calls)
    print(json.dumps(results, indent=2))
    table = comparison(results)
    print(table)
    for path, text in ((args.json, json.dumps(results, indent=2)), (args.markdown, "# Serving benchmarks\n\n" + table)):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
