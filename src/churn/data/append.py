"""Own data, day after day: load only the files that are new since the last load.

:func:`append_files` is what a daily cycle (``as_of`` set) calls for a ``source: files`` data
set; a full build calls :func:`churn.data.loader.load_files`, which also records every file it
loaded. The contract:

* **New files only.** ``raw_data.loaded_files`` records every file loaded (path, sha256, size,
  rows, the run's ``as_of`` and the watermark). A file already recorded is skipped; a copy of a
  recorded file under another name (same sha256) too; a recorded file whose content changed is
  refused (raw files are immutable: deliver a correction as a new file, or rebuild).
* **Only the past of the run.** ``as_of`` is the run's date: the data must lie before its
  midnight (UTC). An event file entirely on or after it waits, unrecorded, for a later run; a
  file with rows on both sides is refused; so is anything in the future of ``now``, a
  subscription end, signup or churn date on or after ``as_of``, and an ``as_of`` before the data
  already loaded.
* **Late events within a lookback.** The watermark is the instant before which the data was
  complete at the last load (its ``as_of``; after a full build the midnight after the latest
  event). Events up to ``lookback_days`` (default :data:`LATE_EVENT_LOOKBACK_DAYS`) before it
  are taken (and counted as late); older ones are refused: history that old is frozen in
  features already computed, so changing it needs a full rebuild.
* **Ids already loaded are skipped.** Own logs carry no event id: an event equal to one already
  stored (same user, time, type and value) is a re-delivery and is skipped. A user id already
  loaded keeps its row (a churn date it lacked is filled in from a newer users file); a
  subscription already loaded (same user and start) keeps its row (an end it lacked is filled
  in; a different end is refused). New events get ids after the largest stored one, in time
  order; new users get the first event as signup unless a users file says otherwise.
* **All or nothing.** Every check runs before anything is written, and the writes happen in one
  transaction: a refused file leaves the tables, and the record, exactly as they were.
* **Identity.** ``raw_data.dataset`` (the data set's name and fingerprint, which models are
  judged against) is kept: the same data set, grown. A warehouse that holds no load of this
  data set yet gets an initial load of everything before ``as_of``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from churn.data import loader
from churn.data.loader import EVENTS_TABLE, SUBSCRIPTIONS_TABLE, USERS_TABLE, cutoff_of, in_files
from churn.dataset import Dataset, DatasetError
from churn.store import tables
from churn.store.raw import DATASET_TABLE
from churn.store.warehouse import Warehouse

LOADED_FILES_TABLE = tables.LOADED_FILES.name
"""One row per loaded file (declared in :mod:`churn.store.tables`)."""
LATE_EVENT_LOOKBACK_DAYS = 3
"""Events may arrive this many days after the watermark of the load that should have had them."""
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def file_records(files: dict[str, list[Path]]) -> list[dict]:
    """``{part, file, sha256, bytes}`` for every file of every part."""
    return [
        {"part": part, "file": str(path), "sha256": file_sha256(path), "bytes": path.stat().st_size}
        for part, paths in files.items()
        for path in paths
    ]


def records_frame(
    records: list[dict], *, as_of: datetime | None, watermark: datetime, first_event_id: int | None = None
) -> pd.DataFrame:
    """The ``raw_data.loaded_files`` rows of one load (``first_event_id``: the first event id it
    added, None when it added none)."""
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    frame = pd.DataFrame([{"rows": None, **r} for r in records], columns=["part", "file", "sha256", "bytes", "rows"])
    return frame.astype({"part": str, "file": str, "sha256": str, "bytes": "int64", "rows": "Int64"}).assign(
        as_of=pd.Series([as_of] * len(frame), dtype="datetime64[us]"),
        watermark=pd.Series([watermark] * len(frame), dtype="datetime64[us]"),
        loaded_at=pd.Series([loaded_at] * len(frame), dtype="datetime64[us]"),
        first_event_id=pd.Series([first_event_id] * len(frame), dtype="Int64"),
    )


@dataclass
class AppendResult:
    """What one :func:`append_files` call did."""

    as_of: datetime
    initial: bool  # nothing of this data set was loaded before: an initial load
    previous_watermark: datetime | None
    watermark: datetime
    loaded: dict[str, list[str]] = field(default_factory=dict)  # part -> files loaded now
    already_loaded: list[str] = field(default_factory=list)  # recorded before (or a copy of one)
    waiting: list[str] = field(default_factory=list)  # event files on or after as_of
    added: dict[str, int] = field(default_factory=dict)  # rows added per table
    duplicates_skipped: int = 0  # events equal to stored ones
    late_events: int = 0  # events before the previous watermark (within the lookback)

    def summary(self) -> str:
        files = sum(len(v) for v in self.loaded.values())
        return (
            f"as_of {self.as_of:%Y-%m-%d}: {files} new file(s), "
            + ", ".join(f"{n:,} {t}" for t, n in self.added.items())
            + f" added; {self.duplicates_skipped:,} duplicate and {self.late_events:,} late event(s); "
            f"{len(self.already_loaded)} file(s) already loaded, {len(self.waiting)} waiting for a later date"
        )


def _previous(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> pd.DataFrame | None:
    """The load record of this data set, None when the warehouse holds no load of it."""
    for table in (LOADED_FILES_TABLE, DATASET_TABLE, EVENTS_TABLE, USERS_TABLE):
        if not Warehouse.table_exists(con, table):
            return None
    stored = con.execute(f"SELECT name, config FROM {DATASET_TABLE}").fetchall()
    if [r[0] for r in stored] != [dataset.name]:
        return None
    _same_reading(json.loads(stored[0][1] or "{}"), dataset)
    return con.execute(f"SELECT * FROM {LOADED_FILES_TABLE}").df()


_READING = ("events", "users", "subscriptions")
"""Dataset keys that decide how rows are read: appending under other ones would mix two readings."""


def _same_reading(stored: dict[str, Any], dataset: Dataset) -> None:
    now = dataset.model_dump(mode="json")
    for key in _READING:
        if stored.get(key) != now.get(key):
            raise DatasetError(
                f"{key}: the dataset file's {key!r} section changed since the data was loaded "
                f"({stored.get(key)} -> {now.get(key)}); new files would be read differently from the "
                "stored ones: rebuild the data set (make build DATASET=...)"
            )


def append_files(
    warehouse: Warehouse,
    dataset: Dataset,
    as_of: date | datetime | str,
    *,
    now: datetime | None = None,
    lookback_days: int = LATE_EVENT_LOOKBACK_DAYS,
) -> AppendResult:
    """Load the data set's files that are new since the last load, for the run of ``as_of``.

    See the module docstring for the contract. Raises :class:`DatasetError` naming the file,
    key and what to do; nothing is written then.
    """
    cutoff = cutoff_of(as_of)
    if cutoff is None:
        raise DatasetError("append_files needs the run's date (as_of); a full build uses load_files")
    if lookback_days < 0:
        raise DatasetError(f"lookback_days must be >= 0, not {lookback_days}")
    now = now or datetime.now(UTC).replace(tzinfo=None)
    if cutoff > now:
        raise DatasetError(f"as_of {cutoff:%Y-%m-%d} is in the future (now {now:%Y-%m-%d %H:%M} UTC)")
    files = loader.part_files(dataset)
    records = file_records(files)
    with warehouse.writer() as con, warehouse.transaction(con):
        previous = _previous(con, dataset)
        if previous is None:
            loader.load_all(con, dataset, files, records, now, cutoff)
            done = con.execute(f"SELECT part, file FROM {LOADED_FILES_TABLE}").fetchall()
            loaded: dict[str, list[str]] = {}
            for part, file in done:
                loaded.setdefault(part, []).append(file)
            waiting = [r["file"] for r in records if r["part"] == "events" and r["file"] not in loaded["events"]]
            added = {t: loader.count_rows(con, f"raw_data.{t}") for t in ("events", "users")}
            return AppendResult(cutoff, True, None, cutoff, loaded, [], waiting, added)
        return _append(con, dataset, records, previous, cutoff, now, lookback_days)


def _new_records(records: list[dict], previous: pd.DataFrame) -> tuple[list[dict], list[str]]:
    """(records to load, files already loaded); a recorded file with new content is refused."""
    known = dict(zip(previous["file"], previous["sha256"], strict=True))
    hashes = set(previous["sha256"])
    new: list[dict] = []
    seen: list[dict] = []
    for record in records:
        before = known.get(record["file"])
        if before is not None and before != record["sha256"]:
            loaded_on = previous.loc[previous["file"] == record["file"], "loaded_at"].max()
            raise DatasetError(
                f"{record['part']}.path: {record['file']} changed since it was loaded ({loaded_on:%Y-%m-%d %H:%M} "
                "UTC): raw files are immutable; deliver new or corrected rows as a new file, or rebuild "
                "the data set from scratch (make build DATASET=...)"
            )
        (seen if before is not None or record["sha256"] in hashes else new).append(record)
    return new, [r["file"] for r in seen]


def _append(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    records: list[dict],
    previous: pd.DataFrame,
    cutoff: datetime,
    now: datetime,
    lookback_days: int,
) -> AppendResult:
    before = pd.Timestamp(previous["watermark"].max()).to_pydatetime()
    if cutoff < before:
        raise DatasetError(
            f"as_of {cutoff:%Y-%m-%d} is before the data already loaded (complete up to {before:%Y-%m-%d %H:%M} "
            "UTC): a run appends only after the last one; rerun from an empty workspace to go back"
        )
    new, seen = _new_records(records, previous)
    paths = {part: [Path(r["file"]) for r in new if r["part"] == part] for part in ("events", "users", "subscriptions")}
    result = AppendResult(cutoff, False, before, max(before, cutoff), already_loaded=seen)
    result.added = {"events": 0, "users": 0}
    rows: dict[str, int] = {}
    sql = f"SELECT user_id, event_type, event_at, value, '' AS {loader.SOURCE_FILE} FROM {EVENTS_TABLE} LIMIT 0"
    if paths["events"]:
        assert dataset.events is not None
        select = loader.event_select(dataset)
        parsed = loader.parse_part(con, dataset, "events", dataset.events, select, paths["events"], now)
        take, result.waiting = loader.split_at(parsed, "events", cutoff)
        rows = {f: parsed.files[f][0] for f in take}
        if take:
            sql = loader.normalised_events_sql(dataset, loader.only_files(parsed, take))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _new_events AS {sql}")
    result.late_events = _check_late(con, before, lookback_days)
    result.duplicates_skipped = _drop_known_events(con)
    result.loaded["events"] = list(rows)
    result.added["users"] = _add_users(con, dataset, paths["users"], now, result)
    if dataset.subscriptions is not None:
        result.added["subscriptions"] = _add_subscriptions(con, dataset, paths["subscriptions"], now, cutoff, result)
    (last_id,) = con.execute(f"SELECT coalesce(max(event_id), 0) FROM {EVENTS_TABLE}").fetchall()[0]
    result.added["events"] = loader.count_rows(con, "_new_events")
    con.execute(
        f"INSERT INTO {EVENTS_TABLE} BY NAME {loader.numbered_events_sql('SELECT * FROM _new_events', last_id)}"
    )
    loader.check_vocabulary(con, dataset, EVENTS_TABLE)
    kept = [r | {"rows": rows.get(r["file"])} for r in new if r["file"] in result.loaded.get(r["part"], [])]
    first = int(last_id) + 1 if result.added["events"] else None
    Warehouse.append(
        con, LOADED_FILES_TABLE, records_frame(kept, as_of=cutoff, watermark=result.watermark, first_event_id=first)
    )
    return result


def _check_late(con: duckdb.DuckDBPyConnection, watermark: datetime, lookback_days: int) -> int:
    """Refuse events older than the lookback before ``watermark``; the number of late ones."""
    floor = watermark - timedelta(days=lookback_days)
    count, first, file = con.execute(
        f"SELECT count(*), min(event_at), any_value({loader.SOURCE_FILE}) FROM _new_events "
        f"WHERE event_at < {loader.ts_literal(floor)}"
    ).fetchall()[0]
    if count:
        raise DatasetError(
            f"events.path: {file} holds {count:,} event(s) before {floor:%Y-%m-%d %H:%M} UTC (the earliest "
            f"{first}): events may arrive at most {lookback_days} day(s) after the load that covered their time "
            f"(data loaded up to {watermark:%Y-%m-%d %H:%M}); older history is frozen in the features already "
            "built, so changing it needs a full rebuild (make build DATASET=...)"
        )
    (late,) = con.execute(
        f"SELECT count(*) FROM _new_events WHERE event_at < {loader.ts_literal(watermark)}"
    ).fetchall()[0]
    return int(late)


def _drop_known_events(con: duckdb.DuckDBPyConnection) -> int:
    """Delete new events equal to stored ones (a re-delivery); how many."""
    before = loader.count_rows(con, "_new_events")
    con.execute(
        f"DELETE FROM _new_events n WHERE EXISTS (SELECT 1 FROM {EVENTS_TABLE} e WHERE e.user_id = n.user_id "
        "AND e.event_at = n.event_at AND e.event_type = n.event_type AND e.value IS NOT DISTINCT FROM n.value "
        "AND e.event_at >= (SELECT min(event_at) FROM _new_events))"
    )
    return before - loader.count_rows(con, "_new_events")


def _add_users(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, files: list[Path], now: datetime, result: AppendResult
) -> int:
    """Insert the users first seen now; fill in churn dates stored users lacked. Rows added."""
    if dataset.users is None:
        new = f"SELECT * FROM ({loader.users_sql(dataset, '_new_events')}) ANTI JOIN {USERS_TABLE} USING (user_id)"
    else:
        if files:
            loader.stage_users(con, dataset, files, now, result.as_of)
            result.loaded["users"] = [str(f) for f in files]
        else:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _own_users AS SELECT * FROM {USERS_TABLE} LIMIT 0")
        known = f"(SELECT user_id FROM {USERS_TABLE} UNION ALL SELECT user_id FROM _own_users)"
        loader.check_users(con, dataset, "_new_events", "_own_users", known=known)
        con.execute(
            f"UPDATE {USERS_TABLE} u SET churned_at = n.churned_at FROM _own_users n "
            "WHERE u.user_id = n.user_id AND u.churned_at IS NULL AND n.churned_at IS NOT NULL"
        )
        new = (
            f"SELECT * FROM ({loader.users_sql(dataset, '_new_events', '_own_users')}) "
            f"ANTI JOIN {USERS_TABLE} USING (user_id)"
        )
    con.execute(f"CREATE OR REPLACE TEMP TABLE _new_users AS {new}")
    con.execute(f"INSERT INTO {USERS_TABLE} BY NAME SELECT * FROM _new_users ORDER BY user_id")
    return loader.count_rows(con, "_new_users")


def _add_subscriptions(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    files: list[Path],
    now: datetime,
    cutoff: datetime,
    result: AppendResult,
) -> int:
    """Insert new subscriptions, fill in ends stored ones lacked; rows added. A different end for
    a stored subscription is refused."""
    if not files:
        return 0
    parsed = loader.stage_subscriptions(con, dataset, files, now)
    take, waiting = loader.split_at(parsed, "subscriptions", cutoff)
    result.loaded["subscriptions"], result.waiting = take, [*result.waiting, *waiting]
    con.execute(f"DELETE FROM _own_subs WHERE NOT ({in_files(take)})")
    loader.refuse_unknown_ends(con, "_own_subs", cutoff)
    clash = loader.first_bad(
        con,
        f"SELECT CAST(n.user_id AS VARCHAR) AS x FROM _own_subs n JOIN {SUBSCRIPTIONS_TABLE} s "
        "USING (user_id, started_at) WHERE s.ended_at IS NOT NULL AND s.ended_at IS DISTINCT FROM n.ended_at",
    )
    if clash:
        raise DatasetError(
            f"subscriptions.end: {clash[0]:,} subscription(s) already loaded with another end, e.g. user "
            f"{clash[1]}: an end, once loaded, cannot change without a full rebuild"
        )
    con.execute(
        f"UPDATE {SUBSCRIPTIONS_TABLE} s SET ended_at = n.ended_at FROM _own_subs n WHERE s.user_id = n.user_id "
        "AND s.started_at = n.started_at AND s.ended_at IS NULL AND n.ended_at IS NOT NULL"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _new_subs AS SELECT DISTINCT user_id, started_at, ended_at FROM _own_subs "
        f"ANTI JOIN {SUBSCRIPTIONS_TABLE} USING (user_id, started_at)"
    )
    con.execute(f"INSERT INTO {SUBSCRIPTIONS_TABLE} BY NAME SELECT * FROM _new_subs ORDER BY user_id, started_at")
    return loader.count_rows(con, "_new_subs")


def latest_event_slice(warehouse: Warehouse) -> int | None:
    """The first event id the latest load appended, for a quality gate that checks only the new
    slice: None after a full load (check everything) or without a load record; one past the
    last id when the latest append added no event (an empty slice)."""
    with warehouse.reader() as con:
        if not Warehouse.table_exists(con, LOADED_FILES_TABLE):
            return None
        rows = con.execute(
            f"SELECT as_of, min(first_event_id) FROM {LOADED_FILES_TABLE} "
            f"WHERE loaded_at = (SELECT max(loaded_at) FROM {LOADED_FILES_TABLE}) GROUP BY as_of"
        ).fetchall()
        if not rows or rows[0][0] is None:
            return None
        if rows[0][1] is not None:
            return int(rows[0][1])
        (last,) = con.execute(f"SELECT coalesce(max(event_id), 0) FROM {EVENTS_TABLE}").fetchall()[0]
        return int(last) + 1
