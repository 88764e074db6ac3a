"""Load a data set's own files (CSV or Parquet, the user's column names) into the warehouse.

Everything runs in DuckDB: the files are read where they lie, their columns mapped to the
platform's names, timestamps parsed in the data set's time zone and stored as naive UTC, and
the set-level checks (unparsable or future times, non-integer ids, events of unknown users,
plausible vocabularies) are SQL over the whole table, so a 10M-row log never becomes a pandas
frame. All of it happens in one transaction: a bad file leaves the previous tables untouched.

Reading and parsing the files is :mod:`churn.data.parsing` (its public names are re-exported
here); this module shapes and checks the tables and loads them.

The platform's tables for own data:

* ``raw_data.events``: ``event_id, user_id, event_type, event_at, value`` (``event_type`` is the
  user's vocabulary, or ``event`` when the log has no type column; ``value`` may be NULL);
* ``raw_data.users``: ``user_id, signup_at, churned_at`` plus the declared attribute columns
  (signup defaults to the first event, churned_at is NULL unless a column is named);
* ``raw_data.subscriptions``: ``user_id, started_at, ended_at`` (only with a subscriptions file);
* ``raw_data.billing``: empty (billing is optional for own data).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from churn.data.parsing import (
    PROBLEMS,
    SOURCE_FILE,
    Parsed,
    _q,
    cutoff_of,
    drop_helper_columns,
    first_bad,
    in_files,
    matching_files,
    only_files,
    parse_part,
    split_at,
    ts_literal,
)
from churn.data.schema import BILLING, RAW_SCHEMA_NAME
from churn.dataset import Dataset, DatasetError, SubscriptionsConfig, UsersConfig
from churn.store import tables
from churn.store.raw import TRUTH_TABLE
from churn.store.warehouse import Warehouse

__all__ = [  # the public API, including what churn.data.parsing holds since the split
    "EVENTS_TABLE", "MAX_EVENT_TYPES", "PROBLEMS", "SOURCE_FILE", "SUBSCRIPTIONS_TABLE", "USERS_TABLE", "Parsed",
    "check_users", "check_vocabulary", "count_rows", "cutoff_of", "drop_helper_columns", "event_select",
    "first_bad", "in_files", "load_all", "load_files", "matching_files", "normalised_events_sql",
    "numbered_events_sql", "only_files", "parse_part", "part_files", "refuse_unknown_ends", "split_at",
    "stage_subscriptions", "stage_users", "subscription_select", "ts_literal", "user_select", "users_sql",
]  # fmt: skip

MAX_EVENT_TYPES = 200
"""More distinct event types than this looks like an id or free text, not a vocabulary."""
MAX_ATTRIBUTE_LEVELS = 50
DEFAULT_EVENT_TYPE = "event"
EVENTS_TABLE = f"{RAW_SCHEMA_NAME}.events"
USERS_TABLE = f"{RAW_SCHEMA_NAME}.users"
SUBSCRIPTIONS_TABLE = f"{RAW_SCHEMA_NAME}.subscriptions"


def check_vocabulary(con: duckdb.DuckDBPyConnection, dataset: Dataset, events: str) -> None:
    """Event types are a vocabulary (bounded) and the churn rule's types occur in ``events``."""
    cfg = dataset.events
    if cfg is None or cfg.type is None:
        return
    present = {r[0] for r in con.execute(f"SELECT DISTINCT event_type FROM {events}").fetchall()}
    n_types = len(present - {None})  # one scan for the count (NULL not a type) and the set
    if n_types > MAX_EVENT_TYPES:
        raise DatasetError(
            f"events.type: column {cfg.type!r} has {n_types:,} distinct values (at most "
            f"{MAX_EVENT_TYPES}): is it an id or free text rather than the event type?"
        )
    wanted = dataset.churn.event_types or []
    missing = sorted(set(wanted) - present)
    if missing:
        raise DatasetError(
            f"churn.event_types: {missing} never occur in the events (types present: {sorted(present)[:20]})"
        )


def check_users(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, events: str, users: str, known: str | None = None
) -> None:
    """Users of ``users`` are unique, every user of ``events`` is in ``known`` (default: ``users``)
    and attributes are categorical."""
    cfg = dataset.users
    assert cfg is not None
    dup = first_bad(con, f"SELECT CAST(user_id AS VARCHAR) AS x FROM {users} GROUP BY user_id HAVING count(*) > 1")
    if dup:
        raise DatasetError(
            f"users.user: {dup[0]:,} user id(s) appear more than once in {dataset.resolve(cfg.path)}, e.g. {dup[1]}"
        )
    unknown = first_bad(
        con,
        f"SELECT CAST(user_id AS VARCHAR) AS x FROM (SELECT DISTINCT user_id FROM {events}) "
        f"ANTI JOIN {known or users} USING (user_id)",
    )
    if unknown:
        raise DatasetError(
            f"events.user: {unknown[0]:,} user(s) of the events are not in the users file "
            f"{dataset.resolve(cfg.path)}, e.g. {unknown[1]}"
        )
    for attribute in cfg.attributes:
        (levels,) = con.execute(f"SELECT count(DISTINCT {_q(attribute)}) FROM {users}").fetchall()[0]
        if levels > MAX_ATTRIBUTE_LEVELS:
            raise DatasetError(
                f"users.attributes: {attribute!r} has {levels:,} distinct values (at most "
                f"{MAX_ATTRIBUTE_LEVELS} for a categorical attribute)"
            )


def users_sql(dataset: Dataset, events: str, users: str = "_own_users") -> str:
    """The users rows: from the users file (signup defaulting to the first event in ``events``)
    or, without one, every user of ``events`` with its first event as signup."""
    first = f"SELECT user_id, min(event_at) AS first_event FROM {events} GROUP BY 1"
    if dataset.users is None:
        return f"SELECT user_id, first_event AS signup_at, CAST(NULL AS TIMESTAMP) AS churned_at FROM ({first})"
    signup = "least(u.signup_at, f.first_event)" if dataset.users.signup else "f.first_event"
    churned = "u.churned_at" if dataset.users.churned_at else "CAST(NULL AS TIMESTAMP)"
    attributes = "".join(f", coalesce(u.{_q(a)}, 'unknown') AS {_q(a)}" for a in dataset.users.attributes)
    return (
        f"SELECT u.user_id, coalesce({signup}, u.signup_at) AS signup_at, {churned} AS churned_at{attributes} "
        f"FROM {users} u LEFT JOIN ({first}) f USING (user_id) WHERE coalesce({signup}, u.signup_at) IS NOT NULL"
    )


def event_select(dataset: Dataset) -> dict[str, tuple[str, str]]:
    """The events part's columns: platform name -> (kind, the user's column)."""
    ev = dataset.events
    assert ev is not None, "a files data set has events"
    select = {"user_id": ("id", ev.user), "event_at": ("time", ev.time)}
    if ev.type:
        select["event_type"] = ("text", ev.type)
    if ev.value:
        select["value"] = ("number", ev.value)
    return select


def user_select(cfg: UsersConfig) -> dict[str, tuple[str, str]]:
    select = {"user_id": ("id", cfg.user)}
    if cfg.signup:
        select["signup_at"] = ("time?", cfg.signup)
    if cfg.churned_at:
        select["churned_at"] = ("time?", cfg.churned_at)
    select.update({a: ("attr", a) for a in cfg.attributes})
    return select


def subscription_select(cfg: SubscriptionsConfig) -> dict[str, tuple[str, str]]:
    return {"user_id": ("id", cfg.user), "started_at": ("time", cfg.start), "ended_at": ("time?", cfg.end)}


def normalised_events_sql(dataset: Dataset, parsed: str, keep: tuple[str, ...] = ()) -> str:
    """``parsed`` events as (user_id, event_type, event_at, value, _source_file, *keep): the type
    is ``event`` without a type column, the value NULL without a value column."""
    ev = dataset.events
    assert ev is not None
    type_expr = "event_type" if ev.type else f"'{DEFAULT_EVENT_TYPE}'"
    value_expr = "value" if ev.value else "CAST(NULL AS DOUBLE)"
    extra = "".join(f", {_q(c)}" for c in keep)
    return (
        f"SELECT user_id, {type_expr} AS event_type, event_at, {value_expr} AS value, {_q(SOURCE_FILE)}{extra} "
        f"FROM ({parsed})"
    )


def numbered_events_sql(events: str, first_id: int = 0, keep: tuple[str, ...] = ()) -> str:
    """Normalised ``events`` with ids after ``first_id`` in time order: the stored columns (and
    the ``keep`` columns of ``events``)."""
    extra = "".join(f", {_q(c)}" for c in keep)
    return (
        f"SELECT {int(first_id)} + row_number() OVER (ORDER BY event_at, user_id) AS event_id, user_id, "
        f"event_type, event_at, value{extra} FROM ({events})"
    )


def stage_users(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, files: list[Path], now: datetime, cutoff: datetime | None = None
) -> Parsed:
    """Temp table ``_own_users`` (user_id, signup_at, churned_at, attributes) from ``files``. With
    ``cutoff`` (a run's date) a signup or churn date on or after it is refused: not known yet."""
    cfg = dataset.users
    assert cfg is not None
    select = user_select(cfg)
    parsed = parse_part(con, dataset, "users", cfg, select, files, now)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _own_users AS {parsed.sql}")
    for column in ("signup_at", "churned_at"):
        if column not in select:
            con.execute(f"ALTER TABLE _own_users ADD COLUMN {column} TIMESTAMP")
    for column, key in (("signup_at", "signup"), ("churned_at", "churned_at")):
        bad = cutoff and first_bad(
            con, f"SELECT CAST(user_id AS VARCHAR) AS x FROM _own_users WHERE {column} >= {ts_literal(cutoff)}"
        )
        if bad:
            raise DatasetError(
                f"users.{key}: {bad[0]:,} user(s) with a {column} on or after the run's date {cutoff:%Y-%m-%d} "
                f"(as_of), e.g. user {bad[1]}: a run takes only what was known before its date"
            )
    return parsed


def stage_subscriptions(con: duckdb.DuckDBPyConnection, dataset: Dataset, files: list[Path], now: datetime) -> Parsed:
    """Temp table ``_own_subs`` (user_id, started_at, ended_at) from ``files``, ends after starts."""
    cfg = dataset.subscriptions
    assert cfg is not None
    parsed = parse_part(con, dataset, "subscriptions", cfg, subscription_select(cfg), files, now)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _own_subs AS {parsed.sql}")
    bad = first_bad(con, "SELECT CAST(user_id AS VARCHAR) AS x FROM _own_subs WHERE ended_at < started_at")
    if bad:
        raise DatasetError(f"subscriptions.end: {bad[0]:,} subscription(s) end before they start, e.g. user {bad[1]}")
    return parsed


def load_files(
    warehouse: Warehouse, dataset: Dataset, now: datetime | None = None, as_of: date | datetime | str | None = None
) -> dict[str, int]:
    """Replace the raw tables with the data set's files, all or nothing; rows per table.

    ``raw_data.dataset`` records the data set (name, fingerprint, rule) and
    ``raw_data.loaded_files`` every file loaded (with its sha256) in the same transaction, so a
    later :func:`churn.data.append.append_files` loads only what is new. With ``as_of`` (a run's
    date) only the data before that date is loaded: files entirely on or after it wait for a
    later run, a file across it is refused. The log is read where it lies, once: parsed, numbered
    and written into ``raw_data.events`` in one pass, then checked from the table.
    """
    from churn.data.append import file_records

    now = now or datetime.now(UTC).replace(tzinfo=None)
    files = part_files(dataset)
    records = file_records(files)  # hashed before the lock: the files are read-only inputs
    with warehouse.writer() as con, warehouse.transaction(con):
        return load_all(con, dataset, files, records, now, cutoff_of(as_of))


def part_files(dataset: Dataset) -> dict[str, list[Path]]:
    """The files of each part (events, users, subscriptions) the dataset file names."""
    assert dataset.events is not None, "a files data set has events"
    files = {"events": matching_files(dataset, "events", dataset.events.path)}
    for key in ("users", "subscriptions"):
        cfg = getattr(dataset, key)
        if cfg is not None:
            files[key] = matching_files(dataset, key, cfg.path)
    return files


def load_all(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    files: dict[str, list[Path]],
    records: list[dict],
    now: datetime,
    cutoff: datetime | None,
) -> dict[str, int]:
    """:func:`load_files` inside the caller's transaction."""
    from churn.data.append import LOADED_FILES_TABLE, records_frame
    from churn.store.raw import DATASET_TABLE, dataset_row

    ev = dataset.events
    assert ev is not None
    for table in ("events", "users", "billing", "subscriptions"):  # the caller's transaction restores them on error
        con.execute(f"DROP TABLE IF EXISTS {RAW_SCHEMA_NAME}.{table}")
    con.execute(f"DROP TABLE IF EXISTS {TRUTH_TABLE}")  # it described other users
    # the log is read once, numbered in time order and written once; the checks read the table.
    # A later file's rows (all at/after the cutoff) come after every taken row, so deleting them
    # leaves the taken rows numbered 1..n, as if only they had been read.
    keep = (SOURCE_FILE, PROBLEMS)
    parsed = parse_part(
        con, dataset, "events", ev, event_select(dataset), files["events"], now, into=EVENTS_TABLE,
        shape=lambda sql: numbered_events_sql(normalised_events_sql(dataset, sql, keep=(PROBLEMS,)), keep=keep),
    )  # fmt: skip
    take, later = split_at(parsed, "events", cutoff)
    n_events = sum(parsed.files[f][0] for f in take)
    if not n_events:
        when = f" before {cutoff:%Y-%m-%d}" if cutoff else ""
        raise DatasetError(f"events.path: {dataset.resolve(ev.path)} holds no events{when}")
    if later:  # the table numbers its files (1 = the first of files["events"])
        numbers = ", ".join(str(1 + [str(f) for f in files["events"]].index(f)) for f in later)
        con.execute(f"DELETE FROM {EVENTS_TABLE} WHERE {_q(SOURCE_FILE)} IN ({numbers})")
    drop_helper_columns(con, EVENTS_TABLE)
    check_vocabulary(con, dataset, EVENTS_TABLE)
    loaded = {"events": take}
    if dataset.users is not None:
        loaded["users"] = list(stage_users(con, dataset, files["users"], now, cutoff).files)
        check_users(con, dataset, EVENTS_TABLE, "_own_users")
    con.execute(f"CREATE TABLE {USERS_TABLE} AS {users_sql(dataset, EVENTS_TABLE)} ORDER BY user_id")
    con.execute(BILLING.ddl(RAW_SCHEMA_NAME))
    counts = {"events": int(n_events), "billing": 0}
    if dataset.subscriptions is not None:
        subs = stage_subscriptions(con, dataset, files["subscriptions"], now)
        loaded["subscriptions"], _ = split_at(subs, "subscriptions", cutoff)
        taken = f"(SELECT * FROM _own_subs WHERE {in_files(loaded['subscriptions'])})"
        refuse_unknown_ends(con, taken, cutoff)
        con.execute(
            f"CREATE TABLE {SUBSCRIPTIONS_TABLE} AS SELECT user_id, started_at, ended_at FROM {taken} "
            "ORDER BY user_id, started_at"
        )
        counts["subscriptions"] = count_rows(con, SUBSCRIPTIONS_TABLE)
    counts["users"] = count_rows(con, USERS_TABLE)
    Warehouse.replace_table(
        con,
        DATASET_TABLE,
        dataset_row(
            {
                "name": dataset.name,
                "fingerprint": dataset.fingerprint(),
                "source": dataset.source,
                "rule": dataset.churn.rule,
                "config": dataset.model_dump(mode="json"),
            }
        ),
        tables.DATASET,
    )
    kept = [r | {"rows": parsed.files[r["file"]][0] if r["part"] == "events" else None}
            for r in records if r["file"] in loaded.get(r["part"], [])]  # fmt: skip
    frame = records_frame(kept, as_of=cutoff, watermark=cutoff or _day_after(con), first_event_id=1)
    Warehouse.replace_table(con, LOADED_FILES_TABLE, frame, tables.LOADED_FILES)
    return counts


def refuse_unknown_ends(con: duckdb.DuckDBPyConnection, subs: str, cutoff: datetime | None) -> None:
    """An end at or after the run's date is not known yet on that date: refused (leakage)."""
    if cutoff is None:
        return
    bad = first_bad(con, f"SELECT CAST(user_id AS VARCHAR) AS x FROM {subs} WHERE ended_at >= {ts_literal(cutoff)}")
    if bad:
        raise DatasetError(
            f"subscriptions.end: {bad[0]:,} subscription(s) end on or after the run's date {cutoff:%Y-%m-%d} "
            f"(as_of), e.g. user {bad[1]}: an end is only known once it happened; leave it empty until then"
        )


def count_rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _day_after(con: duckdb.DuckDBPyConnection) -> datetime:
    """The midnight after the latest loaded event: the data is complete before it."""
    (latest,) = con.execute(f"SELECT date_trunc('day', max(event_at)) + INTERVAL 1 DAY FROM {EVENTS_TABLE}").fetchall()[
        0
    ]
    return latest
