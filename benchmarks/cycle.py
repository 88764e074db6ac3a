"""The daily cycle next to a full rebuild, at the same size (the data side of phases 01-07).

A full rebuild loads the simulated world up to ``end``, computes every snapshot, rewrites the
online store and scores the current snapshot; one cycle appends a day, computes that day's
snapshot (and matured labels), syncs the changed vectors and scores the day. Each step runs in a
fresh spawned process, so its peak RSS is its own; the world is simulated beforehand, untimed.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from pathlib import Path
from typing import Any

import pandas as pd


def _params(n_users: int):
    from churn.data.synthetic import SimulationParams

    return SimulationParams(n_users=n_users, scenario="drift")


def _dataset() -> dict[str, str]:
    return {"name": "synthetic", "fingerprint": "synthetic:bench", "source": "synthetic", "rule": "cancellation"}


def _score_latest(warehouse, spec, model_path: Path, train: bool) -> int:
    """Score the latest snapshot; a rebuild trains the model first (a cycle keeps it)."""
    import joblib

    from churn.modeling.predict import ChurnPredictor
    from churn.modeling.train import make_pipeline
    from churn.store import offline

    if train:
        frame = offline.read_features(warehouse)
        labelled = frame[frame.label_mature]
        model = make_pipeline(1.0).fit(labelled[spec.feature_names].to_numpy(float), labelled.label.to_numpy(int))
        joblib.dump(model, model_path)
    latest = offline.latest_vectors(warehouse)
    return len(
        ChurnPredictor(joblib.load(model_path), spec.feature_names, model_name="bench_model").predict_frame(latest)
    )


def _full(tmp: Path, n_users: int, redis_url: str) -> dict[str, Any]:
    from churn import cycle
    from churn.features import default_feature_spec
    from churn.features.historical import snapshot_plan
    from churn.features.rules import LabelRule
    from churn.store import offline, raw
    from churn.store.online import OnlineStore
    from churn.store.warehouse import Warehouse

    wh, spec = Warehouse(tmp / "churn.duckdb"), default_feature_spec()
    cycle.load_synthetic(wh, _params(n_users), _dataset(), None, progress=False)
    snapshots, end = snapshot_plan(*raw.data_range(wh))
    frame = offline.compute_features(wh, spec, snapshots, 30, end, rule=LabelRule("cancellation"))
    offline.write_features(wh, frame, "bench", spec.feature_names, spec.to_dict())
    store = OnlineStore.from_url(redis_url, "bench", spec.feature_names)
    store.clear()
    store.online_write_batch(offline.latest_vectors(wh))
    return {"vectors": len(frame), "scored": _score_latest(wh, spec, tmp / "model.joblib", train=True)}


def _cycle(tmp: Path, n_users: int, redis_url: str) -> dict[str, Any]:
    from churn import cycle
    from churn.features import default_feature_spec
    from churn.features.rules import LabelRule
    from churn.store import offline, raw
    from churn.store.online import OnlineStore
    from churn.store.warehouse import Warehouse

    wh, spec = Warehouse(tmp / "churn.duckdb"), default_feature_spec()
    mark = raw.last_load(wh)
    assert mark is not None, "the full rebuild step records the watermark"
    as_of = (mark + pd.Timedelta(days=1)).date()
    load = cycle.load_synthetic(wh, _params(n_users), _dataset(), as_of, progress=False)
    update = offline.update_features(wh, spec, pd.Timestamp(as_of), 30, LabelRule("cancellation"), "bench")
    written, _, _ = OnlineStore.from_url(redis_url, "bench", spec.feature_names).online_sync(offline.latest_vectors(wh))
    return {
        "new_events": load.counts.get("events", 0),
        "vectors": update["vectors"],
        "written": written.users,
        "scored": _score_latest(wh, spec, tmp / "model.joblib", train=False),
    }


def _step(fn_name: str, tmp: str, n_users: int, redis_url: str, queue: mp.Queue) -> None:
    import churn.cycle
    import churn.modeling.train
    import churn.store.online  # noqa: F401

    started = time.perf_counter()
    facts = globals()[fn_name](Path(tmp), n_users, redis_url)
    seconds = time.perf_counter() - started
    queue.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, facts))


def _in_process(fn_name: str, tmp: Path, n_users: int, redis_url: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_step, args=(fn_name, str(tmp), n_users, redis_url, queue))
    proc.start()
    seconds, peak, facts = queue.get(timeout=7200)
    proc.join()
    return {"seconds": seconds, "step_peak_mb": round(peak), **facts}


def cycle_vs_rebuild(tmp: Path, n_users: int, label: str) -> list[tuple[str, dict]]:
    """Rows for benchmarks.run: a full rebuild, then one daily cycle on top of it."""
    from churn import cycle
    from churn.data.world import World, world_params
    from churn.store.redis_server import EmbeddedRedis
    from churn.store.warehouse import Warehouse

    World.ensure(cycle.world_folder(Warehouse(tmp / "churn.duckdb")), world_params(_params(n_users)), progress=False)
    server = EmbeddedRedis(tmp / "redis")
    try:
        url = server.start()
        full = _in_process("_full", tmp, n_users, url)
        day = _in_process("_cycle", tmp, n_users, url)
    finally:
        server.stop()
    day["share_of_rebuild"] = f"{day['seconds'] / full['seconds']:.1%}"
    return [(f"full rebuild, phases 01-07 data side, {label}", full), (f"one daily cycle, same steps, {label}", day)]
