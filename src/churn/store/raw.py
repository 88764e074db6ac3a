"""Raw tables in the warehouse: written all-or-nothing, read back as DataFrames."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from churn.data.schema import RAW_SCHEMA_NAME, RAW_TABLES, TRUTH_SCHEMA_NAME, USER_TRUTH
from churn.store import tables
from churn.store.warehouse import Warehouse, WarehouseError, sql_timestamp

TRUTH_TABLE = f"{TRUTH_SCHEMA_NAME}.{USER_TRUTH.name}"
DATASET_TABLE = tables.DATASET.name
"""One row: which data set the raw tables hold (name, identity fingerprint, source, rule)."""
LOADS_TABLE = tables.LOADS.name
"""The watermark: one row per load (its cut ``as_of``, full or append, rows per table)."""


def dataset_row(info: dict[str, Any]) -> pd.DataFrame:
    """The ``raw_data.dataset`` row for ``info`` (name, fingerprint, source, rule, config)."""
    import json

    return pd.DataFrame(
        [
            {
                "name": str(info["name"]),
                "fingerprint": str(info["fingerprint"]),
                "source": str(info.get("source", "")),
                "rule": str(info.get("rule", "")),
                "config": json.dumps(info.get("config", {}), default=str),
                "loaded_at": pd.Timestamp.now(tz="UTC").tz_localize(None),
            }
        ]
    )


def dataset_info(warehouse: Warehouse) -> dict[str, Any] | None:
    """The data set the raw tables hold (None for a warehouse loaded before data sets existed)."""
    with warehouse.reader() as con:
        if not Warehouse.table_exists(con, DATASET_TABLE):
            return None
        frame = Warehouse.read_table(con, DATASET_TABLE)
    return {str(k): v for k, v in frame.iloc[0].to_dict().items()} if len(frame) else None


@dataclass(frozen=True)
class ParquetRows:
    """Rows of Parquet files that DuckDB reads where they lie: a bulk load without pandas.

    ``files``: a path or glob; ``where``: a condition with ``?`` placeholders for ``params``;
    ``order_by``: the order the rows are written in."""

    files: str
    where: str = "TRUE"
    params: tuple[Any, ...] = ()
    order_by: str | None = None

    def sql(self) -> str:
        source = "read_parquet('" + self.files.replace("'", "''") + "')"
        order = f" ORDER BY {self.order_by}" if self.order_by else ""
        return f"SELECT * FROM {source} WHERE {self.where}{order}"

    def to_pandas(self) -> pd.DataFrame:
        con = duckdb.connect()
        try:
            return con.execute(self.sql(), list(self.params)).df()
        finally:
            con.close()


def _append_rows(con: Any, table: str, rows: pd.DataFrame | ParquetRows) -> int:
    """Append a frame or :class:`ParquetRows` to ``table`` (columns by name); rows written."""
    if isinstance(rows, ParquetRows):
        return int(con.execute(f"INSERT INTO {table} BY NAME {rows.sql()}", list(rows.params)).fetchall()[0][0])
    return Warehouse.append(con, table, rows)


def write_raw_tables(
    warehouse: Warehouse,
    chunks: Iterable[dict[str, pd.DataFrame]] | Iterable[dict[str, pd.DataFrame | ParquetRows]],
    dataset: dict[str, Any] | None = None,
    as_of: pd.Timestamp | None = None,
) -> dict[str, int]:
    """Replace the raw tables (and the simulator's truth table) with the rows of ``chunks``.

    Each chunk maps table names (``users``, ``events``, ``billing`` and optionally
    ``user_truth``) to frames in the documented schema, or to :class:`ParquetRows` (inserted by
    DuckDB straight from the files). Everything happens in one transaction:
    if any chunk fails, the previous tables are left exactly as they were.

    ``dataset`` (name, fingerprint, source, rule) is recorded in ``raw_data.dataset`` in the
    same transaction, and so is the watermark (``raw_data.loads``: one ``full`` row at ``as_of``,
    the cut the rows stop at; None: no watermark, the tables cannot be appended to).

    Returns:
        Rows written per table.
    """
    counts = dict.fromkeys([*RAW_TABLES, USER_TRUTH.name], 0)
    with warehouse.writer() as con, warehouse.transaction(con):
        con.execute(f"DROP TABLE IF EXISTS {RAW_SCHEMA_NAME}.subscriptions")
        if dataset is not None:
            Warehouse.replace_table(con, DATASET_TABLE, dataset_row(dataset), tables.DATASET)
        else:  # an earlier data set's name and fingerprint would not describe these tables
            con.execute(f"DROP TABLE IF EXISTS {DATASET_TABLE}")
        for table in RAW_TABLES.values():
            con.execute(f"DROP TABLE IF EXISTS {RAW_SCHEMA_NAME}.{table.name}")
            con.execute(table.ddl(RAW_SCHEMA_NAME))
        # a truth table from an earlier synthetic run would not describe these users
        con.execute(f"DROP TABLE IF EXISTS {TRUTH_TABLE}")
        for chunk in chunks:
            unknown = set(chunk) - set(counts)
            if unknown:
                raise WarehouseError(f"unknown raw table(s) {sorted(unknown)}")
            if USER_TRUTH.name in chunk and not Warehouse.table_exists(con, TRUTH_TABLE):
                con.execute(USER_TRUTH.ddl(TRUTH_SCHEMA_NAME))
            for name, frame in chunk.items():
                schema = TRUTH_SCHEMA_NAME if name == USER_TRUTH.name else RAW_SCHEMA_NAME
                counts[name] += _append_rows(con, f"{schema}.{name}", frame)
        con.execute(f"DROP TABLE IF EXISTS {LOADS_TABLE}")
        if as_of is not None:
            _record_load(con, as_of, "full", counts)
    return counts


def _record_load(con: Any, as_of: pd.Timestamp, mode: str, counts: dict[str, int]) -> None:
    tables.create(con, tables.LOADS)
    con.execute(
        f"INSERT INTO {LOADS_TABLE} (as_of, mode, users, events, billing, truth_rows, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            pd.Timestamp(as_of).to_pydatetime(),
            mode,
            *(int(counts.get(t, 0)) for t in ("users", "events", "billing", "user_truth")),
            pd.Timestamp.now(tz="UTC").tz_localize(None).to_pydatetime(),
        ],
    )


def last_load(warehouse: Warehouse) -> pd.Timestamp | None:
    """The watermark: the cut of the latest load (rows before it are loaded), None without one.

    Synthetic data records its loads in ``raw_data.loads``; own data (``source: files``) in
    ``raw_data.loaded_files``, whose watermark is the instant before which the data was complete.
    """
    with warehouse.reader() as con:
        return _watermark(con)


def _watermark(con: Any) -> pd.Timestamp | None:
    """:func:`last_load` on an open connection (a writer checks it inside its transaction)."""
    if Warehouse.table_exists(con, LOADS_TABLE):
        value = con.execute(f"SELECT max(as_of) FROM {LOADS_TABLE}").fetchall()[0][0]
    elif Warehouse.table_exists(con, tables.LOADED_FILES.name):
        value = con.execute(f"SELECT max(watermark) FROM {tables.LOADED_FILES.name}").fetchall()[0][0]
    else:
        return None
    return pd.Timestamp(value) if value is not None else None


def read_loads(warehouse: Warehouse) -> pd.DataFrame:
    """Every recorded load, oldest first (empty without a watermark)."""
    with warehouse.reader() as con:
        if not Warehouse.table_exists(con, LOADS_TABLE):
            return pd.DataFrame()
        return con.execute(f"SELECT * FROM {LOADS_TABLE} ORDER BY as_of, loaded_at").df()


def append_raw_tables(
    warehouse: Warehouse, frames: dict[str, pd.DataFrame], since: pd.Timestamp, as_of: pd.Timestamp, fingerprint: str
) -> dict[str, int]:
    """Append one slice of the source system, ``[since, as_of)``, in one transaction.

    ``frames["users"]`` is the whole users table as of ``as_of`` (it replaces the old one: churn
    dates and plans in force change); the other frames hold only the slice's rows and are
    appended. Refused, changing nothing, when the raw tables hold another data set or their
    watermark is not ``since`` (a gap or an overlap).

    Returns:
        Rows appended per table (``users``: the users that are new since the last load).
    """
    counts = dict.fromkeys([*RAW_TABLES, USER_TRUTH.name], 0)
    with warehouse.writer() as con, warehouse.transaction(con):
        info = Warehouse.read_table(con, DATASET_TABLE) if Warehouse.table_exists(con, DATASET_TABLE) else None
        if info is None or not len(info) or str(info["fingerprint"].iloc[0]) != fingerprint:
            raise WarehouseError("the raw tables hold another data set (or none): run a full build before a cycle")
        mark = _watermark(con)
        if mark is None or mark != pd.Timestamp(since):
            raise WarehouseError(
                f"the raw tables are loaded up to {mark}, not {since}: the slice would leave a gap or load rows twice"
            )
        before = con.execute(f"SELECT count(*) FROM {RAW_SCHEMA_NAME}.users").fetchall()[0][0]
        con.execute(f"DELETE FROM {RAW_SCHEMA_NAME}.users")
        Warehouse.append(con, f"{RAW_SCHEMA_NAME}.users", frames["users"])
        counts["users"] = len(frames["users"]) - int(before)
        for name, frame in frames.items():
            if name == "users" or not len(frame):
                continue
            schema = TRUTH_SCHEMA_NAME if name == USER_TRUTH.name else RAW_SCHEMA_NAME
            if name == USER_TRUTH.name and not Warehouse.table_exists(con, TRUTH_TABLE):
                con.execute(USER_TRUTH.ddl(TRUTH_SCHEMA_NAME))
            counts[name] = Warehouse.append(con, f"{schema}.{name}", frame)
        _record_load(con, as_of, "append", counts)
    return counts


def read_raw_tables(warehouse: Warehouse) -> dict[str, pd.DataFrame]:
    """The three raw tables as DataFrames (from the reader snapshot)."""
    with warehouse.reader() as con:
        return {name: Warehouse.read_table(con, f"{RAW_SCHEMA_NAME}.{name}") for name in RAW_TABLES}


def raw_table_summary(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    """Row count and content fingerprint of every raw table (what a receipt records)."""
    summary: dict[str, dict[str, Any]] = {}
    with warehouse.reader() as con:
        for name in RAW_TABLES:
            fingerprint = Warehouse.content_hash(con, f"{RAW_SCHEMA_NAME}.{name}")
            summary[name] = {"rows": int(fingerprint.split(":")[0]), "fingerprint": fingerprint}
    return summary


def row_counts(warehouse: Warehouse) -> dict[str, int]:
    """Rows per raw table (what :func:`raw_table_summary` counts, without hashing every row)."""
    with warehouse.reader() as con:
        return {
            name: int(con.execute(f"SELECT count(*) FROM {RAW_SCHEMA_NAME}.{name}").fetchall()[0][0])
            for name in RAW_TABLES
        }


def describe_raw(warehouse: Warehouse, since: pd.Timestamp | None = None) -> dict[str, pd.DataFrame]:
    """Overview frames for the data report: weekly activity, event mix, billing mix, plans.

    ``since``: a daily run's report describes the events and billing rows it loaded (timed at or
    after ``since``: ``daily_activity`` instead of the weekly and weekday ones) and the users
    table as it is now; the whole history's overview is the full build's report (recomputing it
    every day reads every event: 4-8 s at 100,000 users)."""
    events, billing = "raw_data.events", "raw_data.billing"
    if since is not None:
        cut = sql_timestamp(since)
        events = f"(SELECT * FROM raw_data.events WHERE event_at >= {cut})"
        billing = f"(SELECT * FROM raw_data.billing WHERE billed_at >= {cut})"
    activity = {
        "weekly_activity": f"""
            SELECT date_trunc('week', event_at) AS week, count(*) AS events,
                   count(DISTINCT user_id) AS active_users
            FROM {events} GROUP BY 1 ORDER BY 1""",
        "weekday_activity": f"""
            SELECT dayname(event_at) AS weekday, isodow(event_at) AS dow, count(*) AS events
            FROM {events} GROUP BY 1, 2 ORDER BY 2""",
    }
    if since is not None:
        activity = {
            "daily_activity": f"""
                SELECT date_trunc('day', event_at) AS day, count(*) AS events,
                       count(DISTINCT user_id) AS active_users
                FROM {events} GROUP BY 1 ORDER BY 1"""
        }
    queries = {
        **activity,
        "event_types": f"""
            SELECT event_type, count(*) AS events, round(100.0 * count(*) / sum(count(*)) OVER (), 2)
                   AS pct FROM {events} GROUP BY 1 ORDER BY 2 DESC""",
        "billing_types": f"""
            SELECT billing_type, count(*) AS records, round(sum(amount), 2) AS amount
            FROM {billing} GROUP BY 1 ORDER BY 2 DESC""",
        "plans": """
            SELECT plan, count(*) AS users, round(avg(monthly_price), 2) AS price,
                   round(avg((churned_at IS NOT NULL)::INT), 4) AS churn_share
            FROM raw_data.users GROUP BY 1 ORDER BY 2 DESC""",
        "monthly_churn": """
            SELECT date_trunc('month', churned_at) AS month, count(*) AS churned
            FROM raw_data.users WHERE churned_at IS NOT NULL GROUP BY 1 ORDER BY 1""",
    }
    needs = {
        "billing_types": ("billing", "billing_type"),
        "plans": ("users", "plan"),
        "monthly_churn": ("users", "churned_at"),
    }
    with warehouse.reader() as con:
        out = {}
        for name, sql in queries.items():
            table, column = needs.get(name, ("events", "event_type"))
            columns = {
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw_data' "
                    "AND table_name = ?",
                    [table],
                ).fetchall()
            }
            has_rows = name != "billing_types" or con.execute("SELECT count(*) FROM raw_data.billing").fetchall()[0][0]
            if column in columns and has_rows:
                out[name] = con.execute(sql).df()
        return out


def data_range(warehouse: Warehouse) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(earliest, latest) activity timestamp over events and billing."""
    with warehouse.reader() as con:
        low, high = con.execute(
            "SELECT least((SELECT min(event_at) FROM raw_data.events), (SELECT min(billed_at) FROM raw_data.billing)),"
            " greatest((SELECT max(event_at) FROM raw_data.events), (SELECT max(billed_at) FROM raw_data.billing))"
        ).fetchall()[0]
    if low is None:
        raise WarehouseError("raw_data.events and raw_data.billing are empty: nothing to build features from")
    return pd.Timestamp(low), pd.Timestamp(high)


def is_simulated(warehouse: Warehouse) -> bool:
    """Whether the raw tables come from the simulator, by the data set's record
    (``raw_data.dataset.source``): asked without touching the simulator's truth."""
    return (dataset_info(warehouse) or {}).get("source") == "synthetic"


def truth_hazard(warehouse: Warehouse) -> pd.DataFrame:
    """Each user's latest weekly churn hazard from the simulator's hidden truth.

    Only simulators (the A/B test's live-traffic simulation) and validation tests may call this:
    features and training never see it.
    """
    with warehouse.reader() as con:
        if not Warehouse.table_exists(con, TRUTH_TABLE):
            raise WarehouseError(
                f"{TRUTH_TABLE} does not exist: simulated A/B traffic needs synthetic data "
                "(source: synthetic), because outcomes are drawn from the simulator's truth"
            )
        return con.execute(
            f"SELECT user_id, arg_max(churn_hazard, week_start) AS weekly_hazard FROM {TRUTH_TABLE} GROUP BY 1"
        ).df()


def user_dates(warehouse: Warehouse, user_id: int) -> tuple[Any, Any] | None:
    """(signup_at, churned_at) of one user from ``raw_data.users``; None when no such user.

    Raises:
        WarehouseError: no users table (a data set without one, or nothing loaded yet).
    """
    table = tables.USERS.name
    with warehouse.reader() as con:
        if not Warehouse.table_exists(con, table):
            raise WarehouseError(f"{table} does not exist")
        rows = con.execute(f"SELECT signup_at, churned_at FROM {table} WHERE user_id = ?", [int(user_id)]).fetchall()
    return (rows[0][0], rows[0][1]) if rows else None


def user_lifetimes(warehouse: Warehouse) -> pd.DataFrame | None:
    """``user_id, signup_at, churned_at`` of every user (the API's 404 reasons); None for a data
    set without a users table."""
    with warehouse.reader() as con:
        if not Warehouse.table_exists(con, tables.USERS.name):
            return None
        return con.execute(f"SELECT user_id, signup_at, churned_at FROM {tables.USERS.name}").df()
