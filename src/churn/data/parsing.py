"""Read a data set's own files where they lie (CSV or Parquet, the user's column names) and parse
them in DuckDB: ids, timestamps in the data set's time zone (stored as naive UTC), numbers and
text, each checked (unparsable, empty, future) with the key, column, file and an example in the
error. :func:`parse_part` returns the SQL that reads a part in the platform's names, or reads the
files once into a table (``into``). :mod:`churn.data.loader` builds the raw tables from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from churn.dataset import Dataset, DatasetError, EventsConfig, SubscriptionsConfig, UsersConfig
from churn.store.warehouse import sql_timestamp as ts_literal

SOURCE_FILE = "_source_file"
"""Column DuckDB adds to the rows it reads: the file each row came from."""
PROBLEMS = "_problem"
"""Column :func:`parse_part` ``into`` adds while loading: a row's first problem (NULL: none)."""
_OFFSET = r"\d:\d\d(:\d\d(\.\d+)?)?\s*(Z|[+-]\d\d(:?\d\d)?)$"
_INTEGER = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")


def matching_files(dataset: Dataset, key: str, path: str) -> list[Path]:
    """The files ``path`` (a file or glob, relative to the dataset file) names, sorted, or a
    DatasetError when none matches or the kinds are mixed."""
    target = dataset.resolve(path)
    matches = sorted(target.parent.glob(target.name)) if target.parent.is_dir() else []
    if not matches:
        raise DatasetError(f"{key}.path: no file matches {target} (paths are relative to the dataset file)")
    suffixes = {"".join(m.suffixes[-2:]) if m.suffix == ".gz" else m.suffix for m in matches}
    if not (suffixes <= {".parquet"} or suffixes <= {".csv", ".csv.gz", ".tsv", ".txt"}):
        raise DatasetError(f"{key}.path: {target} matches {sorted(suffixes)} files; use .csv or .parquet (not mixed)")
    return matches


def _reader(files: list[Path]) -> str:
    """``read_csv([...])``/``read_parquet([...])`` over ``files``, with a ``_source_file`` column."""
    listed = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
    if files[0].suffix == ".parquet":
        return f"read_parquet({listed}, union_by_name = true, filename = '{SOURCE_FILE}')"
    # every CSV column as text, parsed by the platform: no sniffing pass over a large file, and
    # a bad value anywhere in it is reported with the column and an example, not a reader error
    return f"read_csv({listed}, union_by_name = true, all_varchar = true, filename = '{SOURCE_FILE}')"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(con: duckdb.DuckDBPyConnection, reader: str, key: str, file: Path) -> dict[str, str]:
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    except duckdb.Error as exc:
        raise DatasetError(f"{key}.path: cannot read {file} ({exc})") from None
    return {r[0]: r[1].upper() for r in rows if r[0] != SOURCE_FILE}


def _need(columns: dict[str, str], key: str, field: str, column: str | None, file: Path) -> None:
    if column is not None and column not in columns:
        raise DatasetError(f"{key}.{field}: column {column!r} is not in {file} (its columns: {sorted(columns)})")


def _time_expr(column: str, dtype: str, tz: str, fmt: str | None) -> str:
    """A naive UTC TIMESTAMP from the column (NULL when unparsable)."""
    col = _q(column)

    def to_utc(naive: str) -> str:  # naive local times of ``tz``; UTC needs no conversion
        return naive if tz in ("UTC", "Etc/UTC") else f"CAST(timezone('UTC', timezone('{tz}', {naive})) AS TIMESTAMP)"

    if "WITH TIME ZONE" in dtype:
        return f"CAST(timezone('UTC', {col}) AS TIMESTAMP)"
    if fmt:
        return to_utc(f"try_strptime(CAST({col} AS VARCHAR), '{fmt.replace(chr(39), chr(39) * 2)}')")
    if dtype.startswith(("TIMESTAMP", "DATE")):
        return to_utc(f"CAST({col} AS TIMESTAMP)")
    text = f"CAST({col} AS VARCHAR)"
    # a text time with its own offset (2024-03-01 10:00+02, ...Z) is converted by that offset
    return (
        f"CASE WHEN regexp_matches({text}, '{_OFFSET}') THEN "
        f"CAST(timezone('UTC', try_cast({text} AS TIMESTAMPTZ)) AS TIMESTAMP) "
        f"ELSE {to_utc(f'try_cast({text} AS TIMESTAMP)')} END"
    )


def _id_expr(column: str, dtype: str) -> str:
    col = _q(column)
    return f"CAST({col} AS BIGINT)" if dtype in _INTEGER else f"try_cast(trim(CAST({col} AS VARCHAR)) AS BIGINT)"


def first_bad(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[int, str] | None:
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


@dataclass(frozen=True)
class Parsed:
    """A part's files read in the platform's names: ``sql`` selects the parsed columns plus
    ``_source_file``; ``files`` maps each file to (rows, earliest, latest) of its ``time`` column."""

    sql: str
    files: dict[str, tuple[int, datetime | None, datetime | None]]


def parse_part(
    con: duckdb.DuckDBPyConnection,
    dataset: Dataset,
    key: str,
    cfg: EventsConfig | UsersConfig | SubscriptionsConfig,
    select: dict[str, tuple[str, str]],
    files: list[Path],
    now: datetime,
    into: str | None = None,
    shape: Callable[[str], str] | None = None,
) -> Parsed:
    """Check ``files`` of part ``key`` in one streaming pass and return the SQL that reads them.

    ``select`` maps platform names to (kind, source column); kinds: id (integer), time
    (required), time? (nullable), text, number?, attr. Every unparsable id, time or number, an
    empty required value and a time after ``now`` is a DatasetError naming the key, column, file
    and an example. Without ``into`` nothing is materialised: the caller copies ``sql`` once,
    where it belongs.

    With ``into`` (a table name) the files are read ONCE: the table is created from
    ``shape(sql)`` (default: ``sql`` itself; it must keep the columns ``_source_file`` and
    ``_problems``) in the same pass that records each row's problems, and the checks are then
    read from the table (a columnar scan, not a second parse). The caller drops the two helper
    columns (:func:`drop_helper_columns`) and runs inside a transaction: a DatasetError leaves
    the table half-made.
    """
    reader = _reader(files)
    file = dataset.resolve(cfg.path)
    columns = _columns(con, reader, key, file)
    for _, column in select.values():
        _need(columns, key, _field(cfg, column), column, file)
    _check_time_zone(con, key, cfg.timezone)
    fmt = getattr(cfg, "time_format", None)
    exprs: dict[str, str] = {}
    checks: list[tuple[str, str, str]] = []
    for name, (kind, column) in select.items():
        raw, value = _q(column), _q(f"__p_{name}")  # the user's column, its parsed value
        given = f"{raw} IS NOT NULL AND trim(CAST({raw} AS VARCHAR)) <> ''"
        where = f"{key}.{_field(cfg, column)}: column {column!r} of {file}"
        if kind == "id":
            exprs[name] = _id_expr(column, columns[column])
            checks.append((f"{value} IS NULL", raw, f"{where} is not an integer id (ids must be whole numbers)"))
        elif kind.startswith("time"):
            exprs[name] = _time_expr(column, columns[column], cfg.timezone.replace("'", ""), fmt)
            hint = f" with time_format {fmt!r}" if fmt else " (set time_format, e.g. '%d/%m/%Y %H:%M')"
            bad = f"{value} IS NULL" + ("" if kind == "time" else f" AND {given}")
            checks.append((bad, raw, f"{where} cannot be parsed as a timestamp{hint}"))
            future = f"{where} holds {{n}} future timestamp(s) (after {now:%Y-%m-%d %H:%M} UTC), e.g. {{example}} UTC"
            checks.append((f"{value} > {ts_literal(now)}", value, future + ": check the time zone or the data"))
        elif kind == "number":
            exprs[name] = f"try_cast({raw} AS DOUBLE)"
            checks.append((f"{value} IS NULL AND {given}", raw, f"{where} is not a number"))
        else:
            exprs[name] = f"CAST({raw} AS VARCHAR)"
            if kind == "text":
                checks.append((f"{value} IS NULL", raw, f"{where} is empty"))
    time = next((n for n, (k, _) in select.items() if k == "time"), None)
    checks = [(f"coalesce({cond}, FALSE)", example, problem) for cond, example, problem in checks]
    values = ", ".join(f"{e} AS {_q(f'__p_{n}')}" for n, e in exprs.items())
    if into is None:
        stats = _file_stats(
            None if time is None else _q(f"__p_{time}"), [(c, f"CAST({e} AS VARCHAR)") for c, e, _ in checks]
        )
        rows = con.execute(f"SELECT {stats} FROM (SELECT *, {values} FROM {reader}) GROUP BY 1 ORDER BY 1").fetchall()
        parsed = f"SELECT {', '.join(f'{e} AS {_q(n)}' for n, e in exprs.items())}, {_q(SOURCE_FILE)} FROM {reader}"
    else:
        # a row's first problem ('<check>:<offending text>'; NULL for a good row: nearly free to
        # carry) and its file as a number: the sort that numbers the events moves little more
        # than the stored columns. Only the first failing check is reported, and every row that
        # fails it has it as its first problem, so its count is exact.
        cases = " ".join(
            f"WHEN {c} THEN '{i}:' || coalesce(CAST({e} AS VARCHAR), '')" for i, (c, e, _) in enumerate(checks)
        )
        problem = f"CASE {cases} END" if checks else "CAST(NULL AS VARCHAR)"
        names = [str(f) for f in files]
        listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in names) + "]"
        named = ", ".join(f"{_q(f'__p_{n}')} AS {_q(n)}" for n in exprs)
        source = (
            f"SELECT {named}, CAST(list_position({listed}, {_q(SOURCE_FILE)}) AS USMALLINT) AS {_q(SOURCE_FILE)}, "
            f"{problem} AS {PROBLEMS} FROM (SELECT *, {values} FROM {reader})"
        )
        con.execute(f"CREATE TABLE {into} AS {(shape or (lambda sql: sql))(source)}")
        found = [
            (f"starts_with({PROBLEMS}, '{i}:')", f"substr({PROBLEMS}, {len(str(i)) + 2})") for i in range(len(checks))
        ]
        rows = con.execute(
            f"SELECT {_file_stats(time and _q(time), found)} FROM {into} GROUP BY 1 ORDER BY 1"
        ).fetchall()
        rows = [(names[int(r[0]) - 1], *r[1:]) for r in rows]
        parsed = f"SELECT * EXCLUDE ({PROBLEMS}) FROM {into}"
    n = len(checks)
    for i, (_, _, problem) in enumerate(checks):
        count = sum(int(r[4 + i]) for r in rows)
        if count:
            example = next(r[4 + n + i] for r in rows if r[4 + i])
            if "{n}" in problem:
                raise DatasetError(problem.format(n=f"{count:,}", example=example))
            raise DatasetError(f"{problem} in {count:,} row(s), e.g. {example!r}")
    return Parsed(parsed, {r[0]: (int(r[1]), r[2], r[3]) for r in rows})


def _file_stats(time: str | None, checks: list[tuple[str, str]]) -> str:
    """Per file (grouped by its first column): rows, earliest and latest ``time``, then per
    check (condition, example) the offending rows and one example."""
    stats = [_q(SOURCE_FILE), "count(*)", *([f"min({time})", f"max({time})"] if time else ["NULL", "NULL"])]
    stats += [f"count(*) FILTER (WHERE {cond})" for cond, _ in checks]
    stats += [f"any_value({example}) FILTER (WHERE {cond})" for cond, example in checks]
    return ", ".join(stats)


def drop_helper_columns(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Drop what :func:`parse_part` ``into`` added to ``table`` (the source file, the problems)."""
    for column in (SOURCE_FILE, PROBLEMS):
        con.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {column}")


def _field(cfg: object, column: str) -> str:
    """The dataset key that named ``column`` (for error messages)."""
    for field, value in cfg.__dict__.items():
        if value == column or (isinstance(value, list) and column in value):
            return field
    return "?"


def split_at(parsed: Parsed, key: str, cutoff: datetime | None) -> tuple[list[str], list[str]]:
    """(files to load now, files entirely at or after ``cutoff``: a later run's). A file with
    rows on both sides is a DatasetError: a run takes whole files, and only the past."""
    if cutoff is None:
        return list(parsed.files), []
    now_, later = [], []
    for file, (rows, first, last) in parsed.files.items():
        if not rows or first is None or last is None or last < cutoff:
            now_.append(file)
        elif first >= cutoff:
            later.append(file)
        else:
            raise DatasetError(
                f"{key}.path: {file} holds rows from {first} to {last} UTC, across the run's date "
                f"{cutoff:%Y-%m-%d} (as_of): a run loads only data before its date, so deliver one file per "
                "day (or period) or run with a later as_of"
            )
    return now_, later


def in_files(files: list[str]) -> str:
    """SQL condition: the row came from one of ``files``."""
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files) or "NULL"
    return f"{_q(SOURCE_FILE)} IN ({listed})"


def only_files(parsed: Parsed, files: list[str]) -> str:
    """``parsed.sql`` restricted to ``files`` (all of them: no filter)."""
    if set(files) == set(parsed.files):
        return parsed.sql
    return f"SELECT * FROM ({parsed.sql}) WHERE {in_files(files)}"


def cutoff_of(as_of: date | datetime | str | None) -> datetime | None:
    """The instant a run's date ``as_of`` starts (midnight UTC); data must lie before it."""
    if as_of in (None, ""):
        return None
    if isinstance(as_of, datetime):
        return as_of.replace(tzinfo=None)
    if isinstance(as_of, str):
        as_of = date.fromisoformat(as_of[:10])
    return datetime(as_of.year, as_of.month, as_of.day)
