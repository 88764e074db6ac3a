"""``make bench``: wall time and peak memory of the platform's heavy steps -> reports/benchmarks.md.

Each case runs in a fresh process (so peak RSS is that case's own), several times; the report
gives the median and the spread, and describes the machine. Performance never lives in unit
tests: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CASES: dict[str, Callable[[Path], dict]] = {}


def case(name: str) -> Callable:
    def register(fn: Callable[[Path], dict]) -> Callable[[Path], dict]:
        CASES[name] = fn
        return fn

    return register


@dataclass
class Measurement:
    name: str
    seconds: list[float]
    peak_mb: float
    facts: dict

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


# -- cases: each returns {"seconds": timed part, **facts}; setup is not timed ----------------
def _generate(tmp: Path, n_users: int) -> dict:
    from churn.data.synthetic import SimulationParams, iter_chunks
    from churn.store.raw import write_raw_tables
    from churn.store.warehouse import Warehouse

    started = time.perf_counter()
    counts = write_raw_tables(Warehouse(tmp / "w.duckdb"), iter_chunks(SimulationParams(n_users=n_users), progress=False))
    return {"seconds": time.perf_counter() - started, "events": counts["events"]}


@case("generate default data (1,000 users) into DuckDB")
def bench_generate_default(tmp: Path) -> dict:
    return _generate(tmp, 1000)


@case("generate 100,000 users into DuckDB")
def bench_generate_100k(tmp: Path) -> dict:
    return _generate(tmp, 100_000)


def _run_case(name: str, queue: mp.Queue) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = CASES[name](Path(tmp))
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def measure(name: str, repeats: int) -> Measurement:
    """Run one case ``repeats`` times, each in a fresh spawned process."""
    ctx = mp.get_context("spawn")
    seconds, peaks, facts = [], [], {}
    for _ in range(repeats):
        queue = ctx.Queue()
        proc = ctx.Process(target=_run_case, args=(name, queue))
        proc.start()
        result = queue.get(timeout=3600)
        proc.join()
        seconds.append(result.pop("seconds"))
        peaks.append(result.pop("peak_mb"))
        facts = result
    return Measurement(name, seconds, max(peaks), facts)


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}, {platform.platform()}"


def render(rows: list[Measurement]) -> str:
    lines = [
        "# Benchmarks", "",
        f"Machine: {machine()}. Run at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.", "",
        "Median wall time of several runs, each in a fresh process; peak RSS is the largest seen.", "",
        "| case | runs | median s | min s | max s | peak RSS MB | facts |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for m in rows:
        facts = ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in m.facts.items())
        lines.append(f"| {m.name} | {len(m.seconds)} | {m.median:.2f} | {min(m.seconds):.2f} | "
                     f"{max(m.seconds):.2f} | {m.peak_mb:,.0f} | {facts} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m churn.benchmarks")
    parser.add_argument("--out", default="reports/benchmarks.md")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="skip the 100,000-user cases")
    parser.add_argument("-k", default="", help="only cases whose name contains this text")
    args = parser.parse_args(argv)
    rows = []
    for name in CASES:
        if args.k not in name or (args.quick and "100,000" in name):
            continue
        repeats = 1 if "100,000" in name else args.repeats
        print(f"bench: {name} x{repeats}", flush=True)
        rows.append(measure(name, repeats))
        print(f"  median {rows[-1].median:.2f} s, peak {rows[-1].peak_mb:,.0f} MB", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(render(rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
