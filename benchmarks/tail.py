"""Where the serving p99 tail comes from: the API under a wrk load with its start-up heap frozen (as
it runs) and unfrozen (as it ran before), same run, with every garbage collection's pause and the
event loop's lag recorded inside the workers.

The app factories here wrap :func:`churn.serving.create_app`; the launcher serves them with the
same server settings (``python -m churn.serving --app benchmarks.tail:...``). Each worker writes
what it saw to ``$CHURN_TAIL_DIR/<pid>.json`` when it shuts down.

``python -m benchmarks.tail --data-dir data --duration 10`` (from the repository root).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

LAG_PERIOD = 0.005  # the loop-lag probe sleeps this long and records how late it wakes


def _recorded(app: Any, unfreeze: bool) -> Any:
    """``app`` whose lifespan records GC pauses and loop lag (and, with ``unfreeze``, gives the
    start-up heap back to the collector, as the API did before it froze it)."""
    pauses: list[tuple[int, float]] = []
    lags: list[float] = []
    started: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((int(info["generation"]), time.perf_counter() - started[0]))

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[None]:
        async with inner(application):
            if unfreeze:
                gc.unfreeze()
            running = True

            async def probe() -> None:
                while running:
                    before = time.perf_counter()
                    await asyncio.sleep(LAG_PERIOD)
                    lags.append(time.perf_counter() - before - LAG_PERIOD)

            gc.callbacks.append(on_gc)
            task = asyncio.create_task(probe())
            try:
                yield
            finally:
                running = False
                await task
                gc.callbacks.remove(on_gc)
                out = Path(os.environ["CHURN_TAIL_DIR"]) / f"{os.getpid()}.json"
                out.write_text(json.dumps({"pauses": pauses, "lags": lags}))

    app.router.lifespan_context = lifespan
    return app


def frozen_app() -> Any:
    """The API as it runs (start-up heap frozen), recorded."""
    from churn.serving import create_app

    return _recorded(create_app(), unfreeze=False)


def unfrozen_app() -> Any:
    """The API with its start-up heap left to the collector, recorded."""
    from churn.serving import create_app

    return _recorded(create_app(), unfreeze=True)


def bench_tail(env: dict[str, str], duration: float = 10.0) -> list[dict]:
    """1 worker at -c32 and 2 workers at -c64, frozen and unfrozen: wrk's p50/p99 next to the
    longest full collection and the loop lag the workers saw."""
    from benchmarks import loadtest
    from benchmarks.serving import _user_ids, launch
    from churn.serving import process

    lua = loadtest.LUA_SINGLE % ",".join(map(str, _user_ids(env)))
    rows = []
    for workers, connections in ((1, 32), (2, 64)):
        for name in ("frozen_app", "unfrozen_app"):
            out = Path(tempfile.mkdtemp(prefix="churn-tail-"))
            try:
                port, proc = launch({**env, "CHURN_TAIL_DIR": str(out)}, workers, f"benchmarks.tail:{name}")
                try:
                    result = loadtest.run_wrk(f"http://127.0.0.1:{port}/", lua, duration, connections, threads=1)
                finally:
                    process.stop_server(proc)
                seen = [json.loads(f.read_text()) for f in out.glob("*.json")]
            finally:
                shutil.rmtree(out, ignore_errors=True)
            pauses = [p for s in seen for p in s["pauses"]]
            full = [seconds * 1000 for generation, seconds in pauses if generation == 2]
            lags = np.array([lag for s in seen for lag in s["lags"]] or [0.0]) * 1000
            rows.append(
                {
                    "case": f"GET /predict/{{id}}, {workers} worker(s), -c{connections}, heap "
                    + ("frozen" if name == "frozen_app" else "unfrozen"),
                    "req_per_s": result["req_per_s"],
                    "p50_ms": result["p50_ms"],
                    "p99_ms": result["p99_ms"],
                    "full_collections": len(full),
                    "longest_full_collection_ms": round(max(full, default=0.0), 2),
                    "loop_lag_p99_ms": round(float(np.percentile(lags, 99)), 2),
                    "loop_lag_max_ms": round(float(lags.max()), 2),
                    "workers_reporting": len(seen),
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| case | req/s | p50 ms | p99 ms | full collections | longest ms | loop lag p99 / max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['req_per_s']:,.0f} | {r['p50_ms']} | {r['p99_ms']} | {r['full_collections']} | "
            f"{r['longest_full_collection_ms']} | {r['loop_lag_p99_ms']} / {r['loop_lag_max_ms']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from benchmarks.serving import prepare
    from churn.store.redis_server import EmbeddedRedis

    parser = argparse.ArgumentParser(prog="python -m benchmarks.tail")
    parser.add_argument("--data-dir", default="data", help="a finished build (only read)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="churn-bench-"))
    try:
        rows = bench_tail(prepare(Path(args.data_dir), work), args.duration)
    finally:
        EmbeddedRedis(work).stop()
        shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
