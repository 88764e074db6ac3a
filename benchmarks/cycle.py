"""A daily cycle next to a full rebuild at the same size, the way a team runs them.

Real pipeline runs through the ``churn`` command (what ``make build`` and ``make cycle`` call) in
a workspace of its own (data, reports, models and an embedded Redis under a temporary folder):
a forced full rebuild, then ``cycles`` consecutive daily cycles. Each run's wall time, the CPU
seconds of its whole process tree (Ploomber and every phase kernel: ``RUSAGE_CHILDREN``), the
peak of the tree's summed PSS (:class:`benchmarks.build.TreeSampler`), the CPU seconds by kind of
process (the ``churn`` CLI, Ploomber, the phase kernels, and the median kernel: a phase's fixed
cost plus its cells' work) and, from the run ledger, each phase's seconds. The cycle rows give the
median over the cycles and its share of the rebuild; on a shared machine the CPU share is the
steadier figure.

``python -m benchmarks.cycle --n-users 1000 --cycles 3`` runs it on its own;
``--workspace DIR`` measures cycles on a workspace built before (e.g. 100,000 users), taking the
rebuild's figures from that workspace's ledger (its last full build).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _workspace_sets(data_dir: Path, n_users: int) -> list[str]:
    sets = {
        "data_dir": data_dir,
        "warehouse": data_dir / "churn.duckdb",
        "reports_dir": data_dir / "reports",
        "models_dir": data_dir / "models",
        "n_users": n_users,
    }
    return [part for key, value in sets.items() for part in ("--set", f"{key}={value}")]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_churn(data_dir: Path, n_users: int, *args: str) -> dict[str, Any]:
    """One ``churn`` run on the workspace: wall and CPU seconds, the process tree's peak PSS."""
    from benchmarks.build import run_sampled

    cpu = _cpu_seconds()
    returncode, output, seconds, sampler = run_sampled(
        [sys.executable, "-m", "churn.cli", "--project", str(ROOT), *_workspace_sets(data_dir, n_users), *args]
    )
    if returncode != 0:
        raise RuntimeError(f"churn {' '.join(args)} failed at {n_users:,} users:\n{output[-3000:]}")
    return {
        "seconds": seconds,
        "cpu_s": round(_cpu_seconds() - cpu, 1),
        "tree_peak_mb": round(sampler.peak()),
        **sampler.cpu_by_kind(),
    }


def ledger_runs(data_dir: Path) -> list[dict[str, Any]]:
    """Every successful run of the workspace, oldest first: as_of, wall seconds, phase seconds."""
    from churn.store.runs import RunLedger

    ledger = RunLedger(data_dir)
    runs = ledger.runs("succeeded")
    out = []
    for row in runs.to_dict("records"):
        tasks = ledger.tasks(str(row["run_id"]))
        phases = {
            str(t): float(s) for t, s in zip(tasks["task"], tasks["elapsed_s"], strict=True) if s == s and s is not None
        }
        as_of = row["as_of"]
        out.append(
            {
                "as_of": None if as_of is None or as_of != as_of else str(as_of)[:10],
                "seconds": (row["finished_at"] - row["started_at"]).total_seconds(),
                "phases": phases,
            }
        )
    return out


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else float("nan")


def compare(rebuild: dict[str, Any], cycles: list[dict[str, Any]], label: str) -> list[tuple[str, dict]]:
    """Rows for the report: the rebuild, the median cycle (with its share), then each phase."""
    cycle_s = [c["seconds"] for c in cycles]
    median = statistics.median(cycle_s)
    day: dict[str, Any] = {
        "seconds": median,
        "cycles": len(cycles),
        "min_s": round(min(cycle_s), 1),
        "max_s": round(max(cycle_s), 1),
        "share_of_rebuild": f"{median / rebuild['seconds']:.1%}",
    }
    if all("cpu_s" in c for c in cycles) and rebuild.get("cpu_s"):
        day["cpu_s"] = _median([c["cpu_s"] for c in cycles])
        day["cpu_share_of_rebuild"] = f"{day['cpu_s'] / rebuild['cpu_s']:.1%}"
    if all("tree_peak_mb" in c for c in cycles):
        day["tree_peak_mb"] = max(c["tree_peak_mb"] for c in cycles)
    for key in ("churn_cpu_s", "ploomber_cpu_s", "kernel_cpu_s", "kernels", "cpu_s_per_kernel"):
        if all(key in c for c in cycles):
            day[key] = _median([c[key] for c in cycles])
    built = {k: v for k, v in rebuild.items() if k != "phases"}
    rows = [(f"full rebuild, {label}", built), (f"one daily cycle (median of {len(cycles)}), {label}", day)]
    for phase, seconds in rebuild["phases"].items():
        per_cycle = [c["phases"][phase] for c in cycles if phase in c["phases"]]
        rows.append(
            (
                f"  {phase}: cycle (rebuild {seconds:.1f} s), {label}",
                {"seconds": _median(per_cycle) if per_cycle else 0.0},
            )
        )
    return rows


def cycle_vs_rebuild(tmp: Path, n_users: int, label: str, cycles: int = 3) -> list[tuple[str, dict]]:
    """Rows for benchmarks.run: a forced full rebuild, then ``cycles`` daily cycles after it."""
    from churn.store.redis_server import EmbeddedRedis

    data_dir = tmp / "data"
    try:
        rebuild = run_churn(data_dir, n_users, "build", "--force")
        measured = [run_churn(data_dir, n_users, "cycle") for _ in range(cycles)]
    finally:
        EmbeddedRedis(data_dir).stop()
    ledger = ledger_runs(data_dir)
    rebuild["phases"] = ledger[0]["phases"]
    for run, facts in zip(ledger[1:], measured, strict=True):
        facts["phases"] = run["phases"]
    return compare(rebuild, measured, label)


def cycles_on_workspace(data_dir: Path, n_users: int, label: str, cycles: int) -> list[tuple[str, dict]]:
    """``cycles`` daily cycles on a workspace already built; the rebuild's figures (wall time and
    phases only) from its ledger's last full build."""
    runs = ledger_runs(data_dir)
    every_phase = max((len(r["phases"]) for r in runs), default=0)
    builds = [r for r in runs if r["as_of"] is None and every_phase and len(r["phases"]) == every_phase]
    if not builds:  # a partial run (--partially, a repair) is not a rebuild to compare with
        raise RuntimeError(f"no successful full build of every phase in {data_dir}: build it first")
    from churn.store.redis_server import EmbeddedRedis

    try:
        measured = [run_churn(data_dir, n_users, "cycle") for _ in range(cycles)]
    finally:  # the cycles started the workspace's embedded Redis: leave no server behind
        EmbeddedRedis(data_dir).stop()
    for run, facts in zip(ledger_runs(data_dir)[-cycles:], measured, strict=True):
        facts["phases"] = run["phases"]
    return compare(builds[-1], measured, label)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m benchmarks.cycle", description=__doc__.splitlines()[0])
    parser.add_argument("--n-users", type=int, default=300)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--workspace", type=Path, default=None, help="a built data dir: measure cycles on it")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    label = f"{args.n_users:,} users"
    if args.workspace is not None:
        rows = cycles_on_workspace(args.workspace.resolve(), args.n_users, label, args.cycles)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            rows = cycle_vs_rebuild(Path(tmp), args.n_users, label, args.cycles)
    for name, facts in rows:
        print(f"{name}: {facts}")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
