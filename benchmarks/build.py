"""The whole ``ploomber build`` at a given size: wall time, per-task time and peak memory.

The build runs in a workspace of its own (data, reports, models and an embedded Redis in a
temporary folder), forced, as ``make build`` would. A sampler polls the build's process tree
(Ploomber and every kernel it starts) with psutil: the peak of the summed PSS (proportional set size) is the build's
memory, the peak within a task's interval (its end from Ploomber's product metadata, its
length from the run ledger) that task's. ``python -m benchmarks.build --n-users 300`` checks
it at a small size; ``make bench`` runs it at 100,000 users (the goal: under 8 GB, 10 min).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
PLOOMBER = str(Path(sys.executable).with_name("ploomber"))
SAMPLE_S = 0.2


ZYGOTE = "churn.reports.zygote"


def process_kind(cmdline: list[str], parent_cmdline: list[str] = ()) -> str:  # type: ignore[assignment]
    """What a process of a run is: a phase ``kernel`` (started by jupyter_client, or forked by the
    run's kernel ``zygote``, whose command line it keeps), the ``ploomber`` build, the ``churn`` CLI."""
    line = " ".join(cmdline)
    if "ipykernel_launcher" in line:
        return "kernel"
    if ZYGOTE in line:
        return "kernel" if ZYGOTE in " ".join(parent_cmdline) else "zygote"
    if "ploomber" in line:
        return "ploomber"
    return "churn" if "churn.cli" in line else "other"


def _proportional_mb(proc: psutil.Process) -> float:
    """The process's proportional set size (its share of the pages it shares with others: kernels
    forked from one zygote share the imported modules' pages), its RSS where PSS is not readable."""
    try:
        return float(proc.memory_full_info().pss) / 2**20
    except (AttributeError, psutil.AccessDenied):
        return float(proc.memory_info().rss) / 2**20


class TreeSampler(threading.Thread):
    """Samples the summed PSS (MB) of a process and all its descendants until stopped, and each
    process's CPU seconds as last seen (a process's last ``SAMPLE_S`` before it exits is missed)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.samples: list[tuple[float, float]] = []  # (time, MB)
        self.largest = 0.0  # the largest single process seen (MB)
        self.cpu: dict[int, tuple[str, float, float]] = {}  # pid -> (process_kind, CPU-s last seen, start time)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            total = 0.0
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for proc in procs:
                try:
                    rss = _proportional_mb(proc)
                    times, started = proc.cpu_times(), proc.create_time()
                    # each time: a child is seen before its exec too; an exited one has no command line
                    parent = proc.parent()
                    kind = process_kind(proc.cmdline(), parent.cmdline() if parent is not None else [])
                    if kind == "other" and proc.pid in self.cpu:
                        kind = self.cpu[proc.pid][0]
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                self.cpu[proc.pid] = (kind, times.user + times.system, started)
                total += rss
                self.largest = max(self.largest, rss)
            self.samples.append((time.time(), total))
            self._halt.wait(SAMPLE_S)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def peak(self, start: float = 0.0, end: float = float("inf")) -> float:
        return max((mb for t, mb in self.samples if start <= t <= end), default=0.0)

    def cpu_by_kind(self) -> dict[str, Any]:
        """CPU seconds per kind of process; the phase kernels' count, median and each one's CPU
        seconds in the order they started (a run's phases, in order)."""
        out: dict[str, Any] = {}
        for kind, seconds, _ in self.cpu.values():
            out[f"{kind}_cpu_s"] = round(out.get(f"{kind}_cpu_s", 0.0) + seconds, 1)
        # (a child seen between its fork and its exec still shows the kernel's command line)
        kernels = sorted(
            (started, seconds) for kind, seconds, started in self.cpu.values() if kind == "kernel" and seconds > 0.05
        )
        if kernels:
            out["kernels"] = len(kernels)
            out["cpu_s_per_kernel"] = round(sorted(s for _, s in kernels)[len(kernels) // 2], 2)
            out["kernel_cpu_s_in_order"] = [round(s, 2) for _, s in kernels]
        return out


def run_sampled(command: list[str]) -> tuple[int, str, float, TreeSampler]:
    """Run ``command`` from the project root (Great Expectations' analytics off) while sampling its
    process tree: (exit code, combined output, wall seconds, the sampler with the peaks)."""
    started = time.time()
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "GX_ANALYTICS_ENABLED": "False"},
    )
    sampler = TreeSampler(proc.pid)
    sampler.start()
    output, _ = proc.communicate()
    sampler.stop()
    return proc.returncode, output, time.time() - started, sampler


def _task_ends(reports: Path) -> dict[str, float]:
    """Task name -> when its notebook product was written (Ploomber's metadata timestamp)."""
    ends = {}
    for meta in reports.glob(".*.ipynb.metadata"):
        stem = meta.name.removeprefix(".").removesuffix(".ipynb.metadata")
        task = stem.split("_", 1)[1].replace("_", "-") if stem[:2].isdigit() else stem
        ends[task] = float(json.loads(meta.read_text())["timestamp"])
    return ends


def full_build(tmp: Path, n_users: int, extra: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Run the whole build at ``n_users`` in ``tmp``; rows for the report: the build, then each task."""
    from churn.store.redis_server import EmbeddedRedis
    from churn.store.runs import RunLedger

    data, reports = tmp / "data", tmp / "reports"
    server = EmbeddedRedis(tmp / "redis")
    url = server.start()
    args = [
        *("--env--n_users", str(n_users)),
        *("--env--data_dir", str(data), "--env--reports_dir", str(reports)),
        *("--env--warehouse", str(data / "churn.duckdb"), "--env--models_dir", str(data / "models")),
        *("--env--redis_url", url),
        *(extra or []),
    ]
    try:
        returncode, output, seconds, sampler = run_sampled([PLOOMBER, "build", "--force", *args])
    finally:
        server.stop()
    if returncode != 0:  # what was measured is still worth reporting (a day-long run)
        raise RuntimeError(
            f"the build at {n_users:,} users failed after {seconds:,.0f} s (process tree peak "
            f"{sampler.peak():,.0f} MB, largest process {sampler.largest:,.0f} MB):\n{output[-3000:]}"
        )
    ledger = RunLedger(data)
    run_id = ledger.runs().sort_values("started_at")["run_id"].iloc[-1]
    ends = _task_ends(reports)
    tasks = ledger.tasks(run_id)
    tasks = tasks.assign(_end=tasks["task"].map(ends)).sort_values("_end")  # in the order they ran
    rows: list[tuple[str, dict[str, Any]]] = [
        (
            f"full build, {n_users:,} users",
            {
                "seconds": seconds,
                "tree_peak_mb": round(sampler.peak()),
                "largest_process_mb": round(sampler.largest),
                "tasks": len(tasks),
            },
        )
    ]
    for name, elapsed_s in zip(tasks["task"], tasks["elapsed_s"], strict=True):
        elapsed = float(elapsed_s) if elapsed_s == elapsed_s and elapsed_s is not None else 0.0  # NaN: not run
        end = ends.get(str(name))
        peak = sampler.peak(end - elapsed - SAMPLE_S, end + SAMPLE_S) if end else None
        rows.append((f"  task {name}, {n_users:,} users", {"seconds": elapsed, "tree_peak_mb": round(peak or 0)}))
    return rows


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m benchmarks.build", description=__doc__.splitlines()[0])
    parser.add_argument("--n-users", type=int, default=300)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for name, facts in full_build(Path(tmp), args.n_users):
            print(f"{name}: {facts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
