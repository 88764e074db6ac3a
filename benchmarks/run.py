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
from typing import Any

CASES: dict[str, Callable[[Path], list[tuple[str, dict]]]] = {}


def case(name: str) -> Callable:
    def register(fn: Callable) -> Callable:
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
def _generate(tmp: Path, n_users: int):
    from churn.data.synthetic import SimulationParams, iter_chunks
    from churn.store.raw import write_raw_tables
    from churn.store.warehouse import Warehouse

    warehouse = Warehouse(tmp / "w.duckdb")
    started = time.perf_counter()
    counts = write_raw_tables(warehouse, iter_chunks(SimulationParams(n_users=n_users, scenario="stable"), progress=False))
    return warehouse, {"seconds": time.perf_counter() - started, "events": counts["events"]}


def _features(warehouse) -> tuple:
    from churn.features import default_feature_spec, snapshot_plan
    from churn.store import offline, raw

    spec = default_feature_spec()
    snapshots, end = snapshot_plan(*raw.data_range(warehouse))
    started = time.perf_counter()
    frame = offline.compute_features(warehouse, spec, snapshots, 30, end)
    offline.write_features(warehouse, frame, spec.version, spec.feature_names, spec.to_dict())
    return frame, spec, {"seconds": time.perf_counter() - started, "vectors": len(frame)}


def _materialize(tmp: Path, warehouse, spec) -> dict:
    """The publish step (notebook 06): the offline store's latest vectors into the online store."""
    from churn.store import materialize
    from churn.store.online import client_from_url
    from churn.store.redis_server import EmbeddedRedis

    server = EmbeddedRedis(tmp)
    try:
        store = materialize.online_store(warehouse, client_from_url(server.start(), socket_timeout=5))
        done = materialize.materialize(warehouse, store)
        stats, latest = done.written, done.latest
        started = time.perf_counter()
        read = store.online_read(latest["user_id"].to_numpy(), count=False)
        read_s = time.perf_counter() - started
    finally:
        server.stop()
    return {"seconds": stats.seconds, "users": stats.users, "read_all_ms": round(read_s * 1000, 1),
            "hit_rate": float(read.found.mean())}


def _scoring(frame, spec) -> dict:
    from churn.modeling.predict import ChurnPredictor
    from churn.modeling.train import make_pipeline

    labelled = frame[frame.label_mature]
    predictor = ChurnPredictor(make_pipeline(1.0).fit(labelled[spec.feature_names].to_numpy(float),
                                                      labelled.label.to_numpy(int)), spec.feature_names,
                               model_name="bench_model")
    started = time.perf_counter()
    scored = predictor.predict_frame(frame)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": len(scored), "rows_per_s": f"{len(scored) / seconds:,.0f}"}


def _pipeline_case(tmp: Path, n_users: int, label: str) -> list[tuple[str, dict]]:
    warehouse, generated = _generate(tmp, n_users)
    frame, spec, built = _features(warehouse)
    return [
        (f"generate {label} into DuckDB", generated),
        (f"build features, {label} (8 snapshots + current)", built),
        (f"materialize latest vectors into Redis, {label}", _materialize(tmp, warehouse, spec)),
        (f"batch scoring (predict_frame), {label}", _scoring(frame, spec)),
    ]


@case("default data (1,000 users)")
def bench_default(tmp: Path) -> list[tuple[str, dict]]:
    return _pipeline_case(tmp, 1000, "1,000 users")


@case("100,000 users")
def bench_100k(tmp: Path) -> list[tuple[str, dict]]:
    return _pipeline_case(tmp, 100_000, "100,000 users")


@case("daily cycles vs full rebuild (1,000 users, 5 cycles)")
def bench_cycle(tmp: Path) -> list[tuple[str, dict]]:
    from benchmarks.cycle import cycle_vs_rebuild

    return cycle_vs_rebuild(tmp, 1000, "1,000 users", cycles=5)


@case("daily cycles vs full rebuild (100,000 users, 3 cycles)")
def bench_cycle_100k(tmp: Path) -> list[tuple[str, dict]]:
    from benchmarks.cycle import cycle_vs_rebuild

    return cycle_vs_rebuild(tmp, 100_000, "100,000 users", cycles=3)


def _own_log(tmp: Path, n_events: int, fmt: str = "parquet") -> Path:
    """A product-style log of ``n_events`` rows (user, time, 8 types, amount) as Parquet or CSV,
    with its dataset file (inactivity rule, automatic spec); users active in bursts over two years."""
    import numpy as np
    import pandas as pd
    import yaml

    rng = np.random.default_rng(0)
    n_users = max(n_events // 100, 10)
    user = rng.integers(1, n_users + 1, n_events)
    start = rng.uniform(0, 600, n_users + 1)[user]  # each user's active period
    days = start + rng.exponential(90, n_events)
    frame = pd.DataFrame({
        "uid": user, "ts": pd.Timestamp("2023-01-01") + pd.to_timedelta(np.minimum(days, 729.9), unit="D"),
        "kind": rng.choice([f"type_{i}" for i in range(8)], n_events), "amount": rng.gamma(2.0, 10.0, n_events),
    })  # fmt: skip
    if fmt == "csv":
        frame.to_csv(tmp / "log.csv", index=False, chunksize=1_000_000)
    else:
        frame.to_parquet(tmp / "log.parquet", row_group_size=1_000_000)
    (tmp / "dataset.yaml").write_text(yaml.safe_dump({
        "name": "bench_log", "events": {"path": f"log.{fmt}", "user": "uid", "time": "ts", "type": "kind",
                                        "value": "amount"},
        "churn": {"rule": "inactivity"}, "snapshots": {"cadence_days": 30, "horizon_days": 60}}))
    return tmp / "dataset.yaml"


def _own_data_case(tmp: Path, n_events: int) -> list[tuple[str, dict]]:
    from churn.data.loader import load_files
    from churn.dataset import load_dataset
    from churn.features import LabelRule, snapshot_schedule
    from churn.features.auto import automatic_spec, longest_window
    from churn.store import offline, raw
    from churn.store.warehouse import Warehouse

    dataset = load_dataset(_own_log(tmp, n_events))
    warehouse = Warehouse(tmp / "own.duckdb")
    started = time.perf_counter()
    counts = load_files(warehouse, dataset)
    loaded = {"seconds": time.perf_counter() - started, "events": counts["events"], "users": counts["users"]}
    started = time.perf_counter()
    with warehouse.reader() as con:
        spec = automatic_spec(con, dataset)
    first, last = raw.data_range(warehouse)
    end = last.ceil("D")
    window = longest_window(spec)
    snapshots = snapshot_schedule(first, end, cadence_days=30, horizon_days=60, longest_window_days=window)
    frame = offline.compute_features(warehouse, spec, [*snapshots, end.to_pydatetime()], 60, end,
                                     rule=LabelRule("inactivity", lookback_days=window))
    built = {"seconds": time.perf_counter() - started, "vectors": len(frame), "features": len(spec.features),
             "snapshots": len(snapshots) + 1}
    label = f"{n_events / 1e6:g}M events"
    return [(f"own data: load CSV/Parquet log into DuckDB, {label}", loaded),
            (f"own data: automatic spec + point-in-time features, {label}", built)]


@case("own data (10M events)")
def bench_own_data(tmp: Path) -> list[tuple[str, dict]]:
    return _own_data_case(tmp, 10_000_000)


def _own_csv_case(tmp: Path, n_events: int) -> list[tuple[str, dict]]:
    """Loading a CSV log (checked in one streaming pass, copied once): the case's peak is the load's."""
    from churn.data.loader import load_files
    from churn.dataset import load_dataset
    from churn.store.warehouse import Warehouse

    dataset = load_dataset(_own_log(tmp, n_events, "csv"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    counts = load_files(Warehouse(tmp / "own.duckdb"), dataset)
    return [(f"own data: load a CSV log, {n_events / 1e6:g}M events",
             {"seconds": time.perf_counter() - started, "events": counts["events"],
              "csv_mb": round((tmp / "log.csv").stat().st_size / 2**20), "peak_before_load_mb": round(rss_before)})]


@case("own data CSV (10M events)")
def bench_own_csv(tmp: Path) -> list[tuple[str, dict]]:
    return _own_csv_case(tmp, 10_000_000)


def _own_quality_case(tmp: Path, n_events: int) -> list[tuple[str, dict]]:
    """The own-data quality gate (every row in DuckDB, Great Expectations on a seeded sample)."""
    from datetime import UTC, datetime

    from churn.data.loader import load_files
    from churn.dataset import load_dataset
    from churn.quality.gate import SAMPLE_ROWS
    from churn.quality.own_suite import validate_own_data
    from churn.store.warehouse import Warehouse

    dataset = load_dataset(_own_log(tmp, n_events))
    warehouse = Warehouse(tmp / "own.duckdb")
    load_files(warehouse, dataset)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    report = validate_own_data(warehouse, dataset, max_timestamp=datetime.now(UTC).replace(tzinfo=None),
                               report_dir=tmp / "quality")
    return [(f"own data: quality gate (SQL on every row, GE sample of {SAMPLE_ROWS:,}), {n_events / 1e6:g}M events",
             {"seconds": time.perf_counter() - started, "success": report.success,
              "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
              "peak_before_gate_mb": round(rss_before)})]


@case("own data quality gate (10M events)")
def bench_own_quality(tmp: Path) -> list[tuple[str, dict]]:
    return _own_quality_case(tmp, 10_000_000)


@case("full build (100,000 users)")
def bench_full_build(tmp: Path) -> list[tuple[str, dict]]:
    """The whole `ploomber build` at 100,000 users: per-task time and the process tree's peak."""
    from benchmarks.build import full_build

    return full_build(tmp, 100_000)


@case("A/B assignment")
def bench_assignment(tmp: Path) -> list[tuple[str, dict[str, Any]]]:
    """Hash-assign 100,000 users to arms (was a timing assertion in the unit tests)."""
    import numpy as np

    from churn.abtest import assign

    users = np.arange(100_000)
    started = time.perf_counter()
    arms = assign(users, "bench")
    return [("assign 100k users to A/B arms", {"seconds": time.perf_counter() - started, "users": len(arms)})]


def _run_case(name: str, queue: mp.Queue) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = CASES[name](Path(tmp))
    queue.put((rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def measure(name: str, repeats: int) -> list[Measurement]:
    """Run one case ``repeats`` times, each in a fresh spawned process; one Measurement per row."""
    ctx = mp.get_context("spawn")
    rows: dict[str, Measurement] = {}
    for _ in range(repeats):
        queue = ctx.Queue()
        proc = ctx.Process(target=_run_case, args=(name, queue))
        proc.start()
        results, peak = queue.get(timeout=3600)
        proc.join()
        for row, facts in results:
            facts = dict(facts)
            m = rows.setdefault(row, Measurement(row, [], 0.0, {}))
            m.seconds.append(facts.pop("seconds"))
            m.peak_mb, m.facts = max(m.peak_mb, peak), facts
    return list(rows.values())


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
        lines.append(f"| {m.name} | {len(m.seconds)} | {m.median:.3f} | {min(m.seconds):.3f} | "
                     f"{max(m.seconds):.3f} | {m.peak_mb:,.0f} | {facts} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--out", default="reports/benchmarks.md")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="skip the 100,000-user and 10M-event cases")
    parser.add_argument("-k", default="", help="only cases whose name contains this text")
    parser.add_argument("--serving-data-dir", default=None,
                        help="a finished build (e.g. data): also benchmark the API against it")
    args = parser.parse_args(argv)
    rows = []
    for name in CASES:
        heavy = "100,000" in name or "10M" in name
        if args.k not in name or (args.quick and heavy):
            continue
        repeats = 1 if heavy or "cycles" in name else args.repeats  # a cycles case repeats its cycles itself
        print(f"bench: {name} x{repeats}", flush=True)
        for m in measure(name, repeats):
            rows.append(m)
            print(f"  {m.name}: median {m.median:.3f} s, peak {m.peak_mb:,.0f} MB", flush=True)
    report = render(rows)
    if args.serving_data_dir:
        from benchmarks.serving import comparison, run_all

        print("bench: serving API (in-process path, single and batch HTTP with wrk)", flush=True)
        report += "\n## Serving\n\n" + comparison(run_all(args.serving_data_dir)) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
