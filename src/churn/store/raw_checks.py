"""Row- and set-level checks of the raw tables computed in DuckDB over every row.

The quality gate (:mod:`churn.quality.gate`) translates its Great Expectations expectations into
:class:`Check` values and runs them here, so a 140M-event log is judged whole in a few table
scans instead of being copied into pandas. All the row-level checks of one table share ONE scan
(``count(*) FILTER (...)`` per check); a uniqueness check of an integer key is one more scan that
builds a bitmap of the ids (``bitstring_agg``: a bit per possible id, 17 MB for 140M dense ids),
grouping only when the ids are too sparse for a bitmap or when duplicates exist (to name them).

Each table is read through a source that adds the derived flags the suites use
(:data:`USER_KNOWN`: the row's user exists in users; :data:`AFTER_CHURN`: the row is at or after
its user's ``churned_at``), computed with one join, exactly as
:func:`churn.quality.suites.prepare_raw_frames` derives them in pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from churn.store import tables
from churn.store.warehouse import Warehouse, sql_timestamp

USER_KNOWN = "user_known"
AFTER_CHURN = "after_churn"
KINDS = ("unique", "not_null", "between", "in_set", "row_count", "non_null_share", "distinct_count", "columns")
BITMAP_MAX_IDS = 1 << 31
"""Largest id range (max - min + 1) a uniqueness check judges with a bitmap (256 MB); wider
ranges are grouped."""
EXAMPLES = 20
"""Offending values fetched per failed check (the report keeps a few distinct ones)."""

_USERS, _EVENTS, _BILLING, _SUBS = (t.name for t in (tables.USERS, tables.EVENTS, tables.BILLING, tables.SUBSCRIPTIONS))
_TIMESTAMP_OF = {_EVENTS: "event_at", _BILLING: "billed_at", _SUBS: "started_at"}
SOURCES = {"users": _USERS, "events": _EVENTS, "billing": _BILLING, "subscriptions": _SUBS}
"""Short table name (as the suites name them) -> warehouse table."""
EVENT_TYPES = "event_types"
"""A derived source: the distinct event types of the whole log (the vocabulary check)."""


@dataclass(frozen=True)
class Check:
    """One check of a column (or the table): which rows break it.

    ``kind``: ``unique`` (non-null values occurring more than once; every occurrence counts),
    ``not_null``, ``between`` (non-null values outside ``[low, high]``, inclusive, either end
    open), ``in_set`` (non-null values not in ``values``), ``row_count``, ``non_null_share``,
    ``distinct_count`` (aggregates: ``observed`` is the value), ``columns`` (the column names).
    ``flag``: only the rows whose derived flag equals the value are judged (e.g. unknown users:
    ``(USER_KNOWN, False)`` with no allowed value)."""

    kind: str
    column: str | None = None
    low: Any = None
    high: Any = None
    values: tuple[Any, ...] = ()
    flag: tuple[str, bool] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown check kind {self.kind!r}; expected one of {KINDS}")
        if self.kind not in ("row_count", "columns") and not self.column:
            raise ValueError(f"a {self.kind} check needs a column")
        if self.flag is not None and self.flag[0] not in (USER_KNOWN, AFTER_CHURN):
            raise ValueError(f"unknown derived flag {self.flag[0]!r}; expected {USER_KNOWN} or {AFTER_CHURN}")


@dataclass
class CheckResult:
    """What a check found: rows judged (``element_count``, of which ``missing_count`` null),
    offending rows and up to :data:`EXAMPLES` offending values (row-level checks), or the
    ``observed`` value (aggregates)."""

    element_count: int
    missing_count: int = 0
    unexpected_count: int | None = None
    examples: list[Any] = field(default_factory=list)
    observed: Any = None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [str(r[0]) for r in con.execute(f"DESCRIBE {table}").fetchall()]


def source_sql(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The rows of ``table`` (a key of :data:`SOURCES` or :data:`EVENT_TYPES`) with the derived
    flags its checks may use (left out when a needed column is missing)."""
    if table == EVENT_TYPES:
        return f"SELECT DISTINCT event_type FROM {_EVENTS}"
    name = SOURCES[table]
    if name == _USERS:
        return f"SELECT * FROM {_USERS}"
    columns, user_columns = set(_columns(con, name)), set(_columns(con, _USERS))
    derived = []
    joins = ""
    if "user_id" in columns and "user_id" in user_columns:
        derived.append(f"coalesce(t.user_id IN (SELECT user_id FROM {_USERS}), false) AS {USER_KNOWN}")
        ts = _TIMESTAMP_OF[name]
        if ts in columns and "churned_at" in user_columns and name != _SUBS:
            # the first users row of an id, as pandas' drop_duplicates keeps it
            first = f"SELECT user_id, first(churned_at ORDER BY rowid) AS _churned_at FROM {_USERS} GROUP BY user_id"
            joins = f" LEFT JOIN ({first}) AS _u ON _u.user_id = t.user_id"
            derived.append(f"coalesce(t.{ts} >= _u._churned_at, false) AS {AFTER_CHURN}")
    return f"SELECT t.*{''.join(', ' + d for d in derived)} FROM {name} AS t{joins}"


def _literal(con: duckdb.DuckDBPyConnection, value: Any) -> str:
    """``value`` as a SQL literal (numbers, strings, timestamps)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (datetime, pd.Timestamp)):
        return sql_timestamp(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise ValueError(f"cannot compare with {value!r} in SQL")


def _bad_condition(con: duckdb.DuckDBPyConnection, check: Check) -> str | None:
    """SQL condition true on the rows a row-level check counts as unexpected (None: not row-level)."""
    column = _q(check.column or "")
    flagged = f"{_q(check.flag[0])} = {_literal(con, check.flag[1])}" if check.flag else "TRUE"
    if check.kind == "not_null":
        return f"{flagged} AND {column} IS NULL"
    if check.kind == "between":
        outside = [f"{column} < {_literal(con, check.low)}"] if check.low is not None else []
        outside += [f"{column} > {_literal(con, check.high)}"] if check.high is not None else []
        return f"{flagged} AND {column} IS NOT NULL AND ({' OR '.join(outside) or 'FALSE'})"
    if check.kind == "in_set":
        allowed = ", ".join(_literal(con, v) for v in check.values)
        return f"{flagged} AND {column} IS NOT NULL" + (f" AND {column} NOT IN ({allowed})" if allowed else "")
    return None


def _examples(con: duckdb.DuckDBPyConnection, source: str, column: str, condition: str) -> list[Any]:
    rows = con.execute(
        f"SELECT DISTINCT {_q(column)} FROM ({source}) AS _s WHERE {condition} ORDER BY 1 LIMIT {EXAMPLES}"
    ).fetchall()
    return [r[0] for r in rows]


def _unique(con: duckdb.DuckDBPyConnection, source: str, table: str, column: str, where: str) -> CheckResult:
    """Rows whose non-null value occurs more than once (all occurrences), in the whole table."""
    col = _q(column)
    base = f"FROM ({source}) AS _s WHERE {where}"
    total, values, low, high, integer = con.execute(
        f"SELECT count(*), count({col}), min({col}), max({col}), "
        f"typeof(any_value({col})) IN ('BIGINT', 'INTEGER', 'SMALLINT', 'TINYINT', 'UBIGINT', 'UINTEGER') {base}"
    ).fetchall()[0]
    if values == 0:
        return CheckResult(element_count=int(total), missing_count=int(total), unexpected_count=0)
    if integer and int(high) - int(low) + 1 <= BITMAP_MAX_IDS:
        (distinct,) = con.execute(
            f"SELECT bit_count(bitstring_agg({col}, {int(low)}, {int(high)})) {base} AND {col} IS NOT NULL"
        ).fetchall()[0]
        if int(distinct) == int(values):
            return CheckResult(element_count=int(total), missing_count=int(total - values), unexpected_count=0)
    repeated = f"SELECT {col} AS v, count(*) AS n {base} AND {col} IS NOT NULL GROUP BY {col} HAVING count(*) > 1"
    unexpected, examples = con.execute(
        f"SELECT coalesce(sum(n), 0), list(v ORDER BY v)[1:{EXAMPLES}] FROM ({repeated})"
    ).fetchall()[0]
    return CheckResult(int(total), int(total - values), int(unexpected), list(examples or []))


def _unique_new(con: duckdb.DuckDBPyConnection, name: str, column: str, new: str) -> CheckResult:
    """Uniqueness of ``column`` in ``name`` when only the rows matching ``new`` are new (the older
    ones were unique at the last passing check): duplicates among the new rows, plus every row,
    old or new, holding a new row's id that an older row holds too (a semi-join: the older rows'
    ids are read once, the new ids are the hash table). ``element_count``: the new rows."""
    col = _q(column)
    inner = _unique(con, f"SELECT * FROM {name}", name, column, f"({new})")
    across = (
        f"SELECT {col} AS v FROM {name} WHERE NOT ({new}) AND {col} IN "
        f"(SELECT DISTINCT {col} FROM {name} WHERE ({new}) AND {col} IS NOT NULL)"
    )
    old_rows, values = con.execute(
        f"SELECT count(*), list(DISTINCT v ORDER BY v)[1:{EXAMPLES}] FROM ({across})"
    ).fetchall()[0]
    if not old_rows:
        return inner
    (new_rows,) = con.execute(
        f"SELECT count(*) FROM {name} WHERE ({new}) AND {col} IN (SELECT DISTINCT v FROM ({across}))"
    ).fetchall()[0]
    examples = sorted({*(inner.examples or []), *(values or [])})[:EXAMPLES]
    # rows counted by both (a new id repeated among the new rows and held by an old row) once
    (both,) = con.execute(
        f"SELECT count(*) FROM {name} WHERE ({new}) AND {col} IN (SELECT DISTINCT v FROM ({across})) AND {col} IN "
        f"(SELECT {col} FROM {name} WHERE ({new}) GROUP BY {col} HAVING count(*) > 1)"
    ).fetchall()[0]
    unexpected = int(inner.unexpected_count or 0) + int(old_rows) + int(new_rows) - int(both)
    return CheckResult(inner.element_count, inner.missing_count, unexpected, examples)


def run_checks(
    warehouse: Warehouse, table: str, checks: Sequence[Check], where: str | None = None, new: str | None = None
) -> list[CheckResult]:
    """Run ``checks`` on ``table`` (a key of :data:`SOURCES` or :data:`EVENT_TYPES`), every row of
    it, or only those matching ``where`` (a condition on its columns: a daily run's slice) for
    the row-level checks; aggregates judge the whole table, and so does uniqueness: over every
    row, or, with ``new`` (the condition of the rows loaded since the last passing check, whose
    ids were unique then), the new rows' ids among themselves and against the older rows'.

    The row-level checks share one scan; examples are fetched only for the checks that fail."""
    with warehouse.reader() as con:
        con.execute("SET enable_progress_bar = false")  # no progress widgets in the gate's notebook
        source = source_sql(con, table)
        only = f"({where})" if where else "TRUE"
        row_level = {i: _bad_condition(con, c) for i, c in enumerate(checks)}
        row_level = {i: cond for i, cond in row_level.items() if cond is not None}
        flags = {i: f"{_q(c.flag[0])} = {_literal(con, c.flag[1])}" for i, c in enumerate(checks) if c.flag}
        selects = ["count(*)"]
        for i, cond in row_level.items():
            selects.append(f"count(*) FILTER ({flags.get(i, 'TRUE')})")  # rows judged
            selects.append(f"count(*) FILTER ({flags.get(i, 'TRUE')} AND {_q(checks[i].column or '')} IS NULL)")
            selects.append(f"count(*) FILTER ({cond})")
        counts = con.execute(f"SELECT {', '.join(selects)} FROM ({source}) AS _s WHERE {only}").fetchall()[0]
        out: list[CheckResult] = []
        position = {i: 1 + 3 * n for n, i in enumerate(row_level)}
        for i, check in enumerate(checks):
            if i in row_level:
                judged, missing, bad = (int(v) for v in counts[position[i] : position[i] + 3])
                if check.kind == "not_null":  # the nulls are the offence: GE counts them as unexpected
                    missing = 0
                examples = _examples(con, source, check.column or "", f"{only} AND {row_level[i]}") if bad else []
                out.append(CheckResult(judged, missing, bad, examples))
            elif check.kind == "unique" and new is not None and table in SOURCES:
                out.append(_unique_new(con, SOURCES[table], check.column or "", new))
            elif check.kind == "unique":
                out.append(_unique(con, source, table, check.column or "", "TRUE"))
            else:  # on the stored table when the check needs no derived flag: no join to scan
                base = f"SELECT * FROM {SOURCES[table]}" if table in SOURCES and check.kind != "columns" else source
                out.append(_aggregate(con, base, check))
    return out


def _aggregate(con: duckdb.DuckDBPyConnection, source: str, check: Check) -> CheckResult:
    """A whole-table value: row count, share of non-null values, distinct values, column names."""
    if check.kind == "columns":
        names = [str(d[0]) for d in con.execute(f"SELECT * FROM ({source}) AS _s LIMIT 0").description]
        return CheckResult(element_count=0, observed=names)
    col = _q(check.column or "")
    expr = {
        "row_count": "count(*)",
        "non_null_share": f"count({col}) / nullif(count(*), 0)",
        "distinct_count": f"count(DISTINCT {col})",
    }[check.kind]
    total, value = con.execute(f"SELECT count(*), {expr} FROM ({source}) AS _s").fetchall()[0]
    return CheckResult(element_count=int(total), observed=value)


def sample_rows(
    warehouse: Warehouse,
    table: str,
    key: str,
    rows: int,
    seed: int,
    columns: Sequence[str] | None = None,
    where: str | None = None,
) -> tuple[pd.DataFrame, int]:
    """(sample, rows in the table): up to ``rows`` rows of ``table`` (a key of :data:`SOURCES`): the ones with the smallest
    ``hash(key, seed)`` (ties by key, then storage order), so the sample is fixed by the seed, spread over the whole
    table and the same on every run. One filtered scan: rows whose hash falls in the lowest
    ``1.5 * rows / count`` of its range are kept, then ordered (a full ordering only when the
    filter kept too few). ``where``: sample only the rows matching it (a daily run's new rows);
    the count is then theirs."""
    if rows < 1:
        raise ValueError(f"a sample needs at least one row, not {rows}")
    name = SOURCES[table]
    order = f"hash({_q(key)}, {int(seed)}), {_q(key)}, rowid"  # rowid: a key repeated (subscriptions)
    only = f"({where})" if where else "TRUE"
    with warehouse.reader() as con:
        con.execute("SET enable_progress_bar = false")
        (count,) = con.execute(f"SELECT count(*) FROM {name} WHERE {only}").fetchall()[0]
        select = f"SELECT * FROM {name}" if columns is None else f"SELECT {', '.join(map(_q, columns))} FROM {name}"
        select += f" WHERE {only}"
        if count > 2 * rows:
            cut = int(min(1.0, 1.5 * rows / count) * 2**64)
            kept = con.execute(
                f"{select} AND hash({_q(key)}, {int(seed)}) < {cut}::UBIGINT ORDER BY {order} LIMIT {int(rows)}"
            ).df()
            if len(kept) == rows:
                return kept.reset_index(drop=True), int(count)
        return con.execute(f"{select} ORDER BY {order} LIMIT {int(rows)}").df(), int(count)


# -- a daily run's gate: what is new since the last passing check ---------------------------------
_CHECKS, _CHECKED_USERS, _LOADS = tables.RAW_CHECKS.name, tables.CHECKED_USERS.name, tables.LOADS.name
INCREMENTAL = ("events", "billing")
"""The tables a daily run appends to (and judges by their new rows); users is replaced whole."""


@dataclass(frozen=True)
class Increment:
    """What a daily run's gate judges row by row: the rows loaded since the last passing gate.

    ``through``: that gate judged every row timed before it (the watermark of then); ``new``:
    per table of :data:`INCREMENTAL`, the rows timed at or after it (it also verified that the
    rows before it are still the ones it judged: their count); ``affected_users``: users whose
    older rows are judged again because the users table changed under them (the user vanished,
    or its churn date moved before ``through``); ``whole``: tables judged in full after all, and why.
    """

    through: pd.Timestamp
    checked_at: pd.Timestamp
    new_rows: dict[str, int]
    total_rows: dict[str, int]
    affected_users: tuple[int, ...] = ()
    whole: dict[str, str] = field(default_factory=dict)

    def new(self, table: str) -> str | None:
        """SQL condition of ``table``'s new rows (None: the table is judged whole)."""
        if table not in INCREMENTAL or table in self.whole:
            return None
        return f"{_q(_TIMESTAMP_OF[SOURCES[table]])} >= {sql_timestamp(self.through)}"

    def where(self, table: str) -> str | None:
        """The rows of ``table`` its row-level checks judge: the new ones and the older rows of
        the affected users (None: every row)."""
        new = self.new(table)
        if new is None or not self.affected_users:
            return new
        return f"{new} OR user_id IN ({', '.join(map(str, self.affected_users))})"

    def scope(self, table: str) -> str:
        """Which rows of ``table`` the row-level checks saw, in words (the reports' "checked on")."""
        if table not in INCREMENTAL:
            return "whole table (DuckDB)"
        if table in self.whole:
            return f"whole table (DuckDB): {self.whole[table]}"
        users = (
            f" and the older rows of {len(self.affected_users):,} users whose record changed"
            if self.affected_users
            else ""
        )
        return (
            f"the {_rows(self.new_rows[table])} loaded since the check of {self.through.date()}{users} "
            f"(of {self.total_rows[table]:,}; DuckDB)"
        )

    def unique_scope(self, table: str) -> str:
        if table not in INCREMENTAL or table in self.whole:
            return self.scope(table)
        return f"the ids of the {_rows(self.new_rows[table], 'new row')} against all {_rows(self.total_rows[table])} (DuckDB)"


def _rows(n: int, what: str = "row") -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def increment(warehouse: Warehouse) -> Increment | None:
    """What is new since the last passing gate of these raw tables, or None (judge everything):
    no gate passed yet, or the raw tables were loaded in full since (a new full load)."""
    with warehouse.reader() as con:
        if not all(Warehouse.table_exists(con, t) for t in (_CHECKS, _CHECKED_USERS, _LOADS)):
            return None
        rows = con.execute(f"SELECT through, full_loaded_at, events, billing, checked_at FROM {_CHECKS}").fetchall()
        full = con.execute(f"SELECT max(loaded_at) FROM {_LOADS} WHERE mode = 'full'").fetchall()[0][0]
        if len(rows) != 1 or full is None or rows[0][1] != full:
            return None
        through, _, *checked, checked_at = rows[0]
        cut = sql_timestamp(through)
        new_rows, total_rows, whole = {}, {}, {}
        for table, seen in zip(INCREMENTAL, checked, strict=True):
            name, ts = SOURCES[table], _q(_TIMESTAMP_OF[SOURCES[table]])
            # older = all but the new rows (those with a NULL time too): the count of a table is
            # free, and the filter on the new rows' times reads only their row groups
            (total,) = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0]
            (newer,) = con.execute(f"SELECT count(*) FROM {name} WHERE {ts} >= {cut}").fetchall()[0]
            older = total - newer
            new_rows[table], total_rows[table] = int(newer), int(total)
            if older != seen:  # rows before the watermark were added or removed since the check
                whole[table] = (
                    f"{older:,} rows are timed before {pd.Timestamp(through).date()}, the last check saw {seen:,}"
                )
        # users who vanished, or whose churn date moved before `through` (a newly churned user's
        # date lies after it: its older rows cannot be after its churn)
        affected = con.execute(
            f"SELECT c.user_id FROM {_CHECKED_USERS} AS c LEFT JOIN (SELECT user_id, min(churned_at) AS churned_at, "
            f"count(*) AS n FROM {_USERS} GROUP BY user_id) AS u USING (user_id) "
            f"WHERE u.n IS NULL OR (u.churned_at IS DISTINCT FROM c.churned_at AND u.churned_at < {cut}) ORDER BY 1"
        ).fetchall()
    return Increment(
        through=pd.Timestamp(through),
        checked_at=pd.Timestamp(checked_at),
        new_rows=new_rows,
        total_rows=total_rows,
        affected_users=tuple(int(r[0]) for r in affected),
        whole=whole,
    )


def record_check(warehouse: Warehouse, through: pd.Timestamp) -> None:
    """Remember a passing gate (one transaction): it judged every row timed before ``through``
    (the raw tables' watermark) and the users as they are now. The next daily gate judges only
    what came after (:func:`increment`)."""
    with warehouse.writer() as con, warehouse.transaction(con):
        full = (
            con.execute(f"SELECT max(loaded_at) FROM {_LOADS} WHERE mode = 'full'").fetchall()[0][0]
            if (Warehouse.table_exists(con, _LOADS))
            else None
        )
        counts = [con.execute(f"SELECT count(*) FROM {SOURCES[t]}").fetchall()[0][0] for t in ("users", *INCREMENTAL)]
        tables.recreate(con, tables.RAW_CHECKS)
        con.execute(
            f"INSERT INTO {_CHECKS} VALUES (?, ?, ?, ?, ?, now()::TIMESTAMP)",
            [pd.Timestamp(through).to_pydatetime(), full, *(int(c) for c in counts)],
        )
        tables.recreate(con, tables.CHECKED_USERS)
        con.execute(f"INSERT INTO {_CHECKED_USERS} SELECT user_id, churned_at FROM {_USERS}")
