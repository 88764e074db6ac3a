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
from churn.store.warehouse import Warehouse

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
        return f"TIMESTAMP '{pd.Timestamp(value).isoformat(sep=' ')}'"
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


def run_checks(
    warehouse: Warehouse, table: str, checks: Sequence[Check], where: str | None = None
) -> list[CheckResult]:
    """Run ``checks`` on ``table`` (a key of :data:`SOURCES` or :data:`EVENT_TYPES`), every row of
    it, or only those matching ``where`` (a condition on its columns: a daily run's slice) for
    the row-level checks; uniqueness and aggregates judge the whole table.

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
    warehouse: Warehouse, table: str, key: str, rows: int, seed: int, columns: Sequence[str] | None = None
) -> tuple[pd.DataFrame, int]:
    """(sample, rows in the table): up to ``rows`` rows of ``table`` (a key of :data:`SOURCES`): the ones with the smallest
    ``hash(key, seed)`` (ties by key, then storage order), so the sample is fixed by the seed, spread over the whole
    table and the same on every run. One filtered scan: rows whose hash falls in the lowest
    ``1.5 * rows / count`` of its range are kept, then ordered (a full ordering only when the
    filter kept too few)."""
    if rows < 1:
        raise ValueError(f"a sample needs at least one row, not {rows}")
    name = SOURCES[table]
    order = f"hash({_q(key)}, {int(seed)}), {_q(key)}, rowid"  # rowid: a key repeated (subscriptions)
    with warehouse.reader() as con:
        con.execute("SET enable_progress_bar = false")
        (count,) = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0]
        select = f"SELECT * FROM {name}" if columns is None else f"SELECT {', '.join(map(_q, columns))} FROM {name}"
        if count > 2 * rows:
            cut = int(min(1.0, 1.5 * rows / count) * 2**64)
            kept = con.execute(
                f"{select} WHERE hash({_q(key)}, {int(seed)}) < {cut}::UBIGINT ORDER BY {order} LIMIT {int(rows)}"
            ).df()
            if len(kept) == rows:
                return kept.reset_index(drop=True), int(count)
        return con.execute(f"{select} ORDER BY {order} LIMIT {int(rows)}").df(), int(count)
