"""The synthetic "source system": one simulated world, kept as Parquet, revealed up to a date.

A full build simulates the world once, from ``start`` to ``end`` plus :data:`WORLD_DAYS`, and
keeps it under ``<data_dir>/world/``. Each run then loads only what happened before its
``as_of`` (a full build: before ``end``); a daily cycle appends the rows of ``[last as_of, as_of)``.
So the history is the same whether it was reached in one run or in thirty. The folder is hidden
truth, like ``simulator.user_truth``: no feature or training code reads it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from churn.data import synthetic
from churn.store.raw import ParquetRows

WORLD_DAYS = 90
"""Days the synthetic world runs past ``end``: the daily cycles (and backfills) can reach
``end + WORLD_DAYS - 1``. The churn rate stays calibrated on ``[start, end)``."""
TIME_COLUMNS = {"events": "event_at", "billing": "billed_at", "user_truth": "week_start"}
ID_COLUMNS = {"events": "event_id", "billing": "billing_id", "user_truth": "user_id"}
_MANIFEST = "world.json"


class WorldError(ValueError):
    """A date the world cannot answer (before its start, past its end) or a damaged world folder."""


def _in_us(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps in microseconds, as the raw schema says (and Parquet keeps them)."""
    for col in frame.columns:
        if str(frame[col].dtype).startswith("datetime64"):
            frame[col] = frame[col].astype("datetime64[us]")
    return frame


def world_params(params: synthetic.SimulationParams) -> synthetic.SimulationParams:
    """``params`` with the world's horizon (:data:`WORLD_DAYS` past ``end``)."""
    fields = {**asdict(params), "world_days": WORLD_DAYS}
    return synthetic.SimulationParams(**fields)


def _key(params: synthetic.SimulationParams) -> str:
    return json.dumps(asdict(params), default=str, sort_keys=True)


class World:
    """A simulated world on disk.

    Args:
        folder: where the Parquet files live (``<data_dir>/world``).
        params: the simulation parameters, including ``world_days``.
    """

    def __init__(self, folder: str | Path, params: synthetic.SimulationParams) -> None:
        self.folder = Path(folder)
        self.params = params

    @classmethod
    def ensure(cls, folder: str | Path, params: synthetic.SimulationParams, progress: bool = True) -> World:
        """The world of ``params`` in ``folder``, simulated (all-or-nothing) if it is not there yet
        or was simulated with other parameters."""
        world = cls(folder, params)
        if not world.complete():
            world._simulate(progress)
        return world

    def complete(self) -> bool:
        """Whether the folder holds the whole world of these parameters."""
        manifest = self.folder / _MANIFEST
        try:
            return json.loads(manifest.read_text()).get("params") == _key(self.params)
        except (OSError, ValueError):
            return False

    def _simulate(self, progress: bool) -> None:
        tmp = self.folder.with_name(self.folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        rows: dict[str, int] = {}
        con = duckdb.connect()
        try:
            for i, frames in enumerate(synthetic.iter_chunks(self.params, progress=progress, plan_history=True)):
                for name, frame in frames.items():
                    # time-sorted row groups: a day's slice reads only its own. DuckDB sorts and
                    # writes (3-4x faster than pandas' two-key sort_values + to_parquet at 9M rows)
                    order = f" ORDER BY {TIME_COLUMNS[name]}, {ID_COLUMNS[name]}" if name in TIME_COLUMNS else ""
                    target = str(tmp / f"{name}-{i:05d}.parquet").replace("'", "''")
                    con.register("_frame", frame)
                    con.execute(
                        f"COPY (SELECT * FROM _frame{order}) TO '{target}' (FORMAT parquet, ROW_GROUP_SIZE 50000)"
                    )
                    con.unregister("_frame")
                    rows[name] = rows.get(name, 0) + len(frame)
        finally:
            con.close()
        (tmp / _MANIFEST).write_text(json.dumps({"params": _key(self.params), "rows": rows}))
        # the manifest is written last and the folder swapped in whole: a killed run leaves no half world
        shutil.rmtree(self.folder, ignore_errors=True)
        tmp.rename(self.folder)

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.params.start)

    @property
    def end(self) -> pd.Timestamp:
        """End (exclusive) of the simulated world."""
        return pd.Timestamp(self.params.world_end)

    def check_cut(self, cut: date | datetime | pd.Timestamp) -> pd.Timestamp:
        """``cut`` as a midnight inside the world, or :class:`WorldError` naming the range."""
        stamp = pd.Timestamp(cut)
        if stamp <= self.start:
            raise WorldError(
                f"as_of {stamp.date()} is before the data: the synthetic world starts on {self.start.date()}, "
                "so a run needs a date after it"
            )
        if stamp > self.end:
            raise WorldError(
                f"as_of {stamp.date()} is beyond the data: the synthetic world ends on {self.end.date()} "
                f"(end + {self.params.world_days} days), the last date a run can reveal"
            )
        return stamp

    def _read(self, table: str, where: str = "", params: list | None = None, chunk: int | None = None) -> pd.DataFrame:
        files = str(self.folder / (f"{table}-*.parquet" if chunk is None else f"{table}-{chunk:05d}.parquet"))
        order = ID_COLUMNS.get(table, "user_id")
        sql = f"SELECT * FROM read_parquet('{files}') {where} ORDER BY {order}"
        if table == "user_truth":
            sql += ", week_start"
        con = duckdb.connect()
        try:
            return con.execute(sql, params or []).df()
        finally:
            con.close()

    def _window(
        self, until: date | datetime | pd.Timestamp, since: date | datetime | pd.Timestamp | None
    ) -> tuple[pd.Timestamp, pd.Timestamp]:
        if not self.complete():
            raise WorldError(f"no complete simulated world in {self.folder}: run a full build (make build)")
        hi = self.check_cut(until)
        return (pd.Timestamp(since) if since is not None else pd.Timestamp("1900-01-01")), hi

    def _rows(self, table: str, lo: pd.Timestamp, hi: pd.Timestamp, chunk: int | None) -> ParquetRows:
        """The rows of ``table`` timed in ``[lo, hi)``, in id order (as :meth:`_read` orders them)."""
        files = str(self.folder / (f"{table}-*.parquet" if chunk is None else f"{table}-{chunk:05d}.parquet"))
        column = TIME_COLUMNS[table]
        order = ID_COLUMNS[table] + (", week_start" if table == "user_truth" else "")
        return ParquetRows(files, f"{column} >= ? AND {column} < ?", (lo.to_pydatetime(), hi.to_pydatetime()), order)

    def _frames(self, lo: pd.Timestamp, hi: pd.Timestamp, chunk: int | None) -> dict[str, pd.DataFrame]:
        return {name: _in_us(rows if isinstance(rows, pd.DataFrame) else rows.to_pandas())
                for name, rows in self._lazy(lo, hi, chunk).items()}  # fmt: skip

    def _lazy(self, lo: pd.Timestamp, hi: pd.Timestamp, chunk: int | None) -> dict[str, pd.DataFrame | ParquetRows]:
        """The users as of ``hi`` (a frame) and the timed tables as :class:`ParquetRows`."""
        users = self._read("users", chunk=chunk)
        plans = self._read(synthetic.PLAN_HISTORY, chunk=chunk)
        out: dict[str, pd.DataFrame | ParquetRows] = {
            "users": _in_us(synthetic.users_as_of(users, plans, self.params, hi))
        }
        out.update({table: self._rows(table, lo, hi, chunk) for table in TIME_COLUMNS})
        return out

    def reveal(
        self, until: date | datetime | pd.Timestamp, since: date | datetime | pd.Timestamp | None = None
    ) -> dict[str, pd.DataFrame]:
        """What the source system shows at ``until``: the users table as of then (whole) and the
        events, billing and truth rows timed in ``[since, until)`` (``since`` None: from the start).
        """
        return self._frames(*self._window(until, since), chunk=None)

    def iter_reveal(self, until: date | datetime | pd.Timestamp) -> Iterator[dict[str, pd.DataFrame | ParquetRows]]:
        """:meth:`reveal` of everything before ``until``, one simulation chunk at a time: the
        users as a frame, the events, billing and truth as :class:`churn.store.raw.ParquetRows`,
        which the store inserts straight from the Parquet files (a full load at 100,000 users
        never turns its 140M events into pandas; ``.to_pandas()`` gives the frame)."""
        lo, hi = self._window(until, None)
        for chunk in range(synthetic.n_chunks(self.params)):
            yield self._lazy(lo, hi, chunk)
