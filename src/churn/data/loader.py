"""Load a data set's own files (CSV or Parquet, the user's column names) into the warehouse.

Everything runs in DuckDB: the files are read where they lie, their columns mapped to the
platform's names, timestamps parsed in the data set's time zone and stored as naive UTC, and
the set-level checks (unparsable or future times, non-integer ids, events of unknown users,
plausible vocabularies) are SQL over the whole table, so a 10M-row log never becomes a pandas
frame. All of it happens in one transaction: a bad file leaves the previous tables untouched.

The platform's tables for own data:

* ``raw_data.events``: ``event_id, user_id, event_type, event_at, value`` (``event_type`` is the
  user's vocabulary, or ``event`` when the log has no type column; ``value`` may be NULL);
* ``raw_data.users``: ``user_id, signup_at, churned_at`` plus the declared attribute columns
  (signup defaults to the first event, churned_at is NULL unless a column is named);
* ``raw_data.subscriptions``: ``user_id, started_at, ended_at`` (only with a subscriptions file);
* ``raw_data.billing``: empty (billing is optional for own data).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from churn.data.schema import BILLING, RAW_SCHEMA_NAME
from churn.dataset import Dataset, DatasetError, EventsConfig, SubscriptionsConfig, UsersConfig
from churn.store import tables
from churn.store.raw import TRUTH_TABLE
from churn.store.warehouse import Warehouse

MAX_EVENT_TYPES = 200
"""More distinct event types than this looks like an id or free text, not a vocabulary."""
MAX_ATTRIBUTE_LEVELS = 50
DEFAULT_EVENT_TYPE = "event"
_INTEGER = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


def _reader(dataset: Dataset, key: str, path: str) -> str:
    """``read_csv(...)``/``read_parquet(...)`` over the file or glob, or a DatasetError."""
    target = dataset.resolve(path)
    matches = sorted(target.parent.glob(target.name)) if target.parent.is_dir() else []
    if not matches:
        raise DatasetError(f"{key}.path: no file matches {target} (paths are relative to the dataset file)")
    suffixes = {"".join(m.suffixes[-2:]) if m.suffix == ".gz" else m.suffix for m in matches}
    literal = "'" + str(target).replace("'", "''") + "'"
    if suffixes <= {".parquet"}:
        return f"read_parquet({literal}, union_by_name = true)"
    if suffixes <= {".csv", ".csv.gz", ".tsv", ".txt"}:
        return f"read_csv({literal}, union_by_name = true, sample_size = -1)"
    raise DatasetError(f"{key}.path: {target} matches {sorted(suffixes)} files; use .csv or .parquet (not mixed)")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(con: duckdb.DuckDBPyConnection, reader: str, key: str, dataset: Dataset) -> dict[str, str]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    except duckdb.Error as exc:
        raise DatasetError(f"{key}.path: cannot read {dataset.resolve(getattr(dataset, key).path)} ({exc})") from None
    return {r[0]: r[1].upper() for r in rows}


def _need(columns: dict[str, str], key: str, field: str, column: str | None, file: Path) -> None:
    if column is not None and column not in columns:
        raise DatasetError(f"{key}.{field}: column {column!r} is not in {file} (its columns: {sorted(columns)})")


def _time_expr(column: str, dtype: str, tz: str, fmt: str | None) -> str:
    """A naive UTC TIMESTAMP from the column (NULL when unparsable)."""
    col = _q(column)
    if "WITH TIME ZONE" in dtype:
        return f"CAST(timezone('UTC', {col}) AS TIMESTAMP)"
    if fmt:
        parsed = f"try_strptime(CAST({col} AS VARCHAR), '{fmt.replace(chr(39), chr(39) * 2)}')"
    elif dtype.startswith(("TIMESTAMP", "DATE")):
        parsed = f"CAST({col} AS TIMESTAMP)"
    else:
        parsed = f"try_cast(CAST({col} AS VARCHAR) AS TIMESTAMP)"
    return f"CAST(timezone('UTC', timezone('{tz}', {parsed})) AS TIMESTAMP)"


def _id_expr(column: str, dtype: str) -> str:
    col = _q(column)
    return f"CAST({col} AS BIGINT)" if dtype in _INTEGER else f"try_cast(trim(CAST({col} AS VARCHAR)) AS BIGINT)"


def _first_bad(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[int, str] | None:
    """(count, example) of rows of ``sql`` (a SELECT of one VARCHAR column ``x``), if any."""
    count, example = con.execute(f"SELECT count(*), any_value(x) FROM ({sql})").fetchall()[0]
    return (int(count), example) if count else None


def _check_time_zone(con: duckdb.DuckDBPyConnection, key: str, tz: str) -> None:
    try:
        con.execute(f"SELECT timezone('{tz.replace(chr(39), '')}', TIMESTAMP '2020-01-01')").fetchall()
    except duckdb.Error:
        raise DatasetError(
            f"{key}.timezone: unknown time zone {tz!r} (use an IANA name such as Europe/Berlin or UTC)"
        ) from None


def _stage(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    key: str,
    cfg: EventsConfig | UsersConfig | SubscriptionsConfig,
    select: dict[str, tuple[str, str]],
    table: str,
    now: datetime,
) -> None:
    """Create temp ``table`` with ``select`` (name -> (kind, source column)), checking each value.

    kinds: id (integer), time (required), time? (nullable), text, number?.
    """
    reader = _reader(dataset, key, cfg.path)
    file = dataset.resolve(cfg.path)
    columns = _columns(con, reader, key, dataset)
    for _, column in select.values():
        _need(columns, key, _field(cfg, column), column, file)
    _check_time_zone(con, key, cfg.timezone)
    fmt = getattr(cfg, "time_format", None)
    exprs, checks = [], {}
    for name, (kind, column) in select.items():
        if kind == "id":
            expr = _id_expr(column, columns[column])
            checks[name] = ("is not an integer id (ids must be whole numbers)", True)
        elif kind.startswith("time"):
            expr = _time_expr(column, columns[column], cfg.timezone.replace("'", ""), fmt)
            hint = f" with time_format {fmt!r}" if fmt else " (set time_format, e.g. '%d/%m/%Y %H:%M')"
            checks[name] = (f"cannot be parsed as a timestamp{hint}", kind == "time")
        elif kind == "number":
            expr = f"try_cast({_q(column)} AS DOUBLE)"
            checks[name] = ("is not a number", False)
        else:
            expr = f"CAST({_q(column)} AS VARCHAR)"
            if kind == "text":
                checks[name] = ("is empty", True)
        exprs.append(f"{expr} AS {_q(name)}")
    raw = ", ".join(f"{_q(c)} AS {_q('_raw_' + n)}" for n, (_, c) in select.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {', '.join(exprs)}, {raw} FROM {reader}")
    for name, (problem, required) in checks.items():
        kind, column = select[name]
        source = _q("_raw_" + name)
        given = "" if required else f" AND {source} IS NOT NULL AND trim(CAST({source} AS VARCHAR)) <> ''"
        bad = _first_bad(con, f"SELECT CAST({source} AS VARCHAR) AS x FROM {table} WHERE {_q(name)} IS NULL{given}")
        where = f"{key}.{_field(cfg, column)}: column {column!r} of {file}"
        if bad:
            raise DatasetError(f"{where} {problem} in {bad[0]:,} row(s), e.g. {bad[1]!r}")
        if kind.startswith("time"):
            future = _first_bad(
                con,
                f"SELECT CAST({_q(name)} AS VARCHAR) AS x FROM {table} "
                f"WHERE {_q(name)} > TIMESTAMP '{now:%Y-%m-%d %H:%M:%S}'",
            )
            if future:
                raise DatasetError(
                    f"{where} holds {future[0]:,} future timestamp(s) (after {now:%Y-%m-%d %H:%M} "
                    f"UTC), e.g. {future[1]} UTC: check the time zone or the data"
                )
    for name in select:
        con.execute(f"ALTER TABLE {table} DROP COLUMN {_q('_raw_' + name)}")


def _field(cfg: object, column: str) -> str:
    """The dataset key that named ``column`` (for error messages)."""
    for field, value in cfg.__dict__.items():
        if value == column or (isinstance(value, list) and column in value):
            return field
    return "?"


def _check_vocabulary(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> None:
    events = dataset.events
    if events is None or events.type is None:
        return
    present = {r[0] for r in con.execute("SELECT DISTINCT event_type FROM _own_events").fetchall()}
    n_types = len(present - {None})  # one scan for the count (NULL not a type) and the set
    if n_types > MAX_EVENT_TYPES:
        raise DatasetError(
            f"events.type: column {events.type!r} has {n_types:,} distinct values (at most "
            f"{MAX_EVENT_TYPES}): is it an id or free text rather than the event type?"
        )
    wanted = dataset.churn.event_types or []
    missing = sorted(set(wanted) - present)
    if missing:
        raise DatasetError(
            f"churn.event_types: {missing} never occur in the events (types present: {sorted(present)[:20]})"
        )


def _check_users(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> None:
    users = dataset.users
    assert users is not None
    dup = _first_bad(con, "SELECT CAST(user_id AS VARCHAR) AS x FROM _own_users GROUP BY user_id HAVING count(*) > 1")
    if dup:
        raise DatasetError(
            f"users.user: {dup[0]:,} user id(s) appear more than once in {dataset.resolve(users.path)}, e.g. {dup[1]}"
        )
    unknown = _first_bad(
        con,
        "SELECT CAST(user_id AS VARCHAR) AS x FROM (SELECT DISTINCT user_id FROM _own_events) "
        "ANTI JOIN _own_users USING (user_id)",
    )
    if unknown:
        raise DatasetError(
            f"events.user: {unknown[0]:,} user(s) of the events are not in the users file "
            f"{dataset.resolve(users.path)}, e.g. {unknown[1]}"
        )
    for attribute in users.attributes:
        (levels,) = con.execute(f"SELECT count(DISTINCT {_q(attribute)}) FROM _own_users").fetchall()[0]
        if levels > MAX_ATTRIBUTE_LEVELS:
            raise DatasetError(
                f"users.attributes: {attribute!r} has {levels:,} distinct values (at most "
                f"{MAX_ATTRIBUTE_LEVELS} for a categorical attribute)"
            )


def _users_sql(dataset: Dataset) -> str:
    """The users table: from the file (signup defaulting to the first event) or from the events."""
    first = "SELECT user_id, min(event_at) AS first_event FROM _own_events GROUP BY 1"
    if dataset.users is None:
        return f"SELECT user_id, first_event AS signup_at, CAST(NULL AS TIMESTAMP) AS churned_at FROM ({first})"
    signup = "least(u.signup_at, f.first_event)" if dataset.users.signup else "f.first_event"
    churned = "u.churned_at" if dataset.users.churned_at else "CAST(NULL AS TIMESTAMP)"
    attributes = "".join(f", coalesce(u.{_q(a)}, 'unknown') AS {_q(a)}" for a in dataset.users.attributes)
    return (
        f"SELECT u.user_id, coalesce({signup}, u.signup_at) AS signup_at, {churned} AS churned_at{attributes} "
        f"FROM _own_users u LEFT JOIN ({first}) f USING (user_id) WHERE coalesce({signup}, u.signup_at) IS NOT NULL"
    )


def load_files(warehouse: Warehouse, dataset: Dataset, now: datetime | None = None) -> dict[str, int]:
    """Replace the raw tables with the data set's files, all or nothing; rows per table.

    ``raw_data.dataset`` records the data set (name, fingerprint, rule) in the same transaction.
    """
    from churn.store.raw import DATASET_TABLE, dataset_row

    now = now or datetime.now(UTC).replace(tzinfo=None)
    ev = dataset.events
    assert ev is not None, "a files data set has events"
    counts: dict[str, int] = {}
    with warehouse.writer() as con, warehouse.transaction(con):
        select = {"user_id": ("id", ev.user), "event_at": ("time", ev.time)}
        if ev.type:
            select["event_type"] = ("text", ev.type)
        if ev.value:
            select["value"] = ("number", ev.value)
        _stage(con, dataset, "events", ev, select, "_own_events_staged", now)
        type_expr = "event_type" if ev.type else f"'{DEFAULT_EVENT_TYPE}'"
        value_expr = "value" if ev.value else "CAST(NULL AS DOUBLE)"
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _own_events AS SELECT row_number() OVER (ORDER BY event_at, user_id) "
            f"AS event_id, user_id, {type_expr} AS event_type, event_at, {value_expr} AS value "
            "FROM _own_events_staged"
        )
        (n_events,) = con.execute("SELECT count(*) FROM _own_events").fetchall()[0]
        if not n_events:
            raise DatasetError(f"events.path: {dataset.resolve(ev.path)} holds no events")
        _check_vocabulary(con, dataset)
        if dataset.users is not None:
            u = dataset.users
            uselect = {"user_id": ("id", u.user)}
            if u.signup:
                uselect["signup_at"] = ("time?", u.signup)
            if u.churned_at:
                uselect["churned_at"] = ("time?", u.churned_at)
            uselect.update({a: ("attr", a) for a in u.attributes})
            _stage(con, dataset, "users", u, uselect, "_own_users", now)
            for column in ("signup_at", "churned_at"):
                if column not in uselect:
                    con.execute(f"ALTER TABLE _own_users ADD COLUMN {column} TIMESTAMP")
            _check_users(con, dataset)
        if dataset.subscriptions is not None:
            s = dataset.subscriptions
            _stage(
                con,
                dataset,
                "subscriptions",
                s,
                {"user_id": ("id", s.user), "started_at": ("time", s.start), "ended_at": ("time?", s.end)},
                "_own_subs",
                now,
            )
            bad = _first_bad(con, "SELECT CAST(user_id AS VARCHAR) AS x FROM _own_subs WHERE ended_at < started_at")
            if bad:
                raise DatasetError(
                    f"subscriptions.end: {bad[0]:,} subscription(s) end before they start, e.g. user {bad[1]}"
                )
        for table in ("events", "users", "billing", "subscriptions"):
            con.execute(f"DROP TABLE IF EXISTS {RAW_SCHEMA_NAME}.{table}")
        con.execute(f"DROP TABLE IF EXISTS {TRUTH_TABLE}")  # it described other users
        con.execute(f"CREATE TABLE {RAW_SCHEMA_NAME}.events AS SELECT * FROM _own_events")
        con.execute(f"CREATE TABLE {RAW_SCHEMA_NAME}.users AS {_users_sql(dataset)} ORDER BY user_id")
        con.execute(BILLING.ddl(RAW_SCHEMA_NAME))
        counts = {"events": int(n_events), "billing": 0}
        if dataset.subscriptions is not None:
            con.execute(
                f"CREATE TABLE {RAW_SCHEMA_NAME}.subscriptions AS SELECT user_id, started_at, ended_at "
                "FROM _own_subs ORDER BY user_id, started_at"
            )
            counts["subscriptions"] = con.execute(f"SELECT count(*) FROM {RAW_SCHEMA_NAME}.subscriptions").fetchall()[
                0
            ][0]
        counts["users"] = con.execute(f"SELECT count(*) FROM {RAW_SCHEMA_NAME}.users").fetchall()[0][0]
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
    return counts
