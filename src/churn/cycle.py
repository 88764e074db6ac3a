"""The daily cycle: which date a run is for, and loading the source system up to it.

A full build (``as_of`` empty) loads the synthetic world up to ``end``; a cycle for ``as_of``
appends what happened in ``[last load, as_of)`` (the watermark in ``raw_data.loads``). ``make
cycle`` picks the day after the last successful run (the run ledger); ``make backfill`` runs the
cycles of a date range in order. Dates the data cannot answer are refused before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from churn.data import synthetic
from churn.data.world import World, WorldError, world_params
from churn.store import raw
from churn.store.runs import RunLedger
from churn.store.warehouse import Warehouse


class CycleError(ValueError):
    """A cycle date or range that cannot run (before the data, beyond it, backwards)."""


@dataclass(frozen=True)
class Load:
    """What one generate-data run did: the cut, the mode and the rows per table."""

    as_of: pd.Timestamp
    mode: str  # full | append | none (the date was already loaded)
    counts: dict[str, int]
    since: pd.Timestamp | None = None

    def describe(self) -> str:
        if self.mode == "none":
            return f"raw tables already loaded up to {self.as_of.date()}: nothing new to append"
        window = (
            f"[{self.since.date()}, {self.as_of.date()})" if self.since is not None else f"before {self.as_of.date()}"
        )
        rows = ", ".join(f"{k} {v:+,d}" if self.mode == "append" else f"{k} {v:,d}" for k, v in self.counts.items())
        return f"{self.mode} load of the rows {window}: {rows}"


def world_folder(warehouse: Warehouse) -> Path:
    """Where the synthetic world of a workspace lives (next to its warehouse)."""
    return warehouse.path.parent / "world"


def load_synthetic(
    warehouse: Warehouse,
    params: synthetic.SimulationParams,
    dataset: dict[str, Any],
    as_of: date | None,
    progress: bool = True,
) -> Load:
    """Load the synthetic world into the raw tables up to ``as_of`` (None: ``end``).

    A full load when the warehouse has no watermark for this data set (or ``as_of`` is None);
    otherwise an append of ``[watermark, as_of)``; nothing when ``as_of`` is the watermark (a
    re-run). A date before the watermark, before the world's start or past its end raises
    :class:`CycleError` before anything is written.
    """
    world = World(world_folder(warehouse), world_params(params))
    cut = pd.Timestamp(as_of if as_of is not None else params.end)
    try:
        world.check_cut(cut)
    except WorldError as exc:
        raise CycleError(str(exc)) from None
    mark = _watermark(warehouse, str(dataset["fingerprint"])) if as_of is not None else None
    if mark is not None and cut < mark:
        raise CycleError(
            f"as_of {cut.date()} is before the data already loaded (up to {mark.date()}): a cycle only moves "
            "forward; run a full build (make build) to start over"
        )
    world = World.ensure(world.folder, world.params, progress=progress)
    if mark is not None and cut == mark:
        return Load(cut, "none", {})
    if mark is None:
        counts = raw.write_raw_tables(warehouse, world.iter_reveal(cut), dataset=dataset, as_of=cut)
        return Load(cut, "full", counts)
    counts = raw.append_raw_tables(warehouse, world.reveal(cut, since=mark), mark, cut, str(dataset["fingerprint"]))
    return Load(cut, "append", counts, since=mark)


def _watermark(warehouse: Warehouse, fingerprint: str) -> pd.Timestamp | None:
    """The watermark, if the raw tables hold this data set; None means: load in full."""
    if not warehouse.path.exists():
        return None
    info = raw.dataset_info(warehouse)
    if info is None or str(info.get("fingerprint")) != fingerprint:
        return None
    return raw.last_load(warehouse)


# -- which date: make cycle / make backfill ----------------------------------------------------------
def _succeeded(data_dir: str | Path) -> pd.DataFrame:
    return RunLedger(data_dir).runs("succeeded")


def last_run_date(data_dir: str | Path, warehouse: Warehouse, runs: pd.DataFrame | None = None) -> date | None:
    """The date of the last successful run: its ``as_of``, or for a full build the cut it loaded
    (the watermark); None before any successful run. ``runs``: the ledger's successful runs,
    when the caller has read them already."""
    runs = _succeeded(data_dir) if runs is None else runs
    if runs.empty:
        return None
    as_of = runs["as_of"].iloc[-1]
    if as_of is not None and not pd.isna(as_of):
        return pd.Timestamp(as_of).date()
    mark = raw.last_load(warehouse) if warehouse.path.exists() else None
    return mark.date() if mark is not None else None


def succeeded_dates(data_dir: str | Path, runs: pd.DataFrame | None = None) -> set[date]:
    """Every ``as_of`` a successful run was for."""
    runs = _succeeded(data_dir) if runs is None else runs
    if runs.empty:
        return set()
    return {pd.Timestamp(v).date() for v in runs["as_of"] if v is not None and not pd.isna(v)}


def next_cycle_date(data_dir: str | Path, warehouse: Warehouse, runs: pd.DataFrame | None = None) -> date:
    """The day after the last successful run; :class:`CycleError` before a first build."""
    last = last_run_date(data_dir, warehouse, runs)
    if last is None:
        raise CycleError(f"no successful build in {data_dir} yet: run `make build` before `make cycle`")
    return last + timedelta(days=1)


def plan_cycle(data_dir: str | Path, warehouse: Warehouse, as_of: date | None, force: bool = False) -> date | None:
    """The date a cycle should run for (``as_of`` or the next one), None when it already ran
    successfully and ``force`` is not set. Refuses a date before the last run's."""
    runs = _succeeded(data_dir)  # read once for the three questions below
    following = next_cycle_date(data_dir, warehouse, runs)
    last = following - timedelta(days=1)
    day = as_of or following
    if day in succeeded_dates(data_dir, runs) or day == last:
        return day if force else None
    if day < last:
        raise CycleError(
            f"as_of {day} is before the last run ({last}): cycles only move forward; run a full build to start over"
        )
    return day


def backfill_dates(first: date, last: date) -> list[date]:
    """Every day of ``[first, last]``, or :class:`CycleError` for a range in the wrong order."""
    if last < first:
        raise CycleError(f"backfill range in the wrong order: FROM {first} is after TO {last}")
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]
