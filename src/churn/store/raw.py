"""Raw tables in the warehouse: written all-or-nothing, read back as DataFrames."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from churn.data.schema import RAW_SCHEMA_NAME, RAW_TABLES, TRUTH_SCHEMA_NAME, USER_TRUTH
from churn.store import tables
from churn.store.warehouse import Warehouse, WarehouseError

TRUTH_TABLE = f"{TRUTH_SCHEMA_NAME}.{USER_TRUTH.name}"
DATASET_TABLE = tables.DATASET.name
"""One row: which data set the raw tables hold (name, identity fingerprint, source, rule)."""


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


def write_raw_tables(
    warehouse: Warehouse, chunks: Iterable[dict[str, pd.DataFrame]], dataset: dict[str, Any] | None = None
) -> dict[str, int]:
    """Replace the raw tables (and the simulator's truth table) with the rows of ``chunks``.

    Each chunk maps table names (``users``, ``events``, ``billing`` and optionally
    ``user_truth``) to frames in the documented schema. Everything happens in one transaction:
    if any chunk fails, the previous tables are left exactly as they were.

    ``dataset`` (name, fingerprint, source, rule) is recorded in ``raw_data.dataset`` in the
    same transaction.

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
                counts[name] += Warehouse.append(con, f"{schema}.{name}", frame)
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


def describe_raw(warehouse: Warehouse) -> dict[str, pd.DataFrame]:
    """Overview frames for the data report: weekly activity, event mix, billing mix, plans."""
    queries = {
        "weekly_activity": """
            SELECT date_trunc('week', event_at) AS week, count(*) AS events,
                   count(DISTINCT user_id) AS active_users
            FROM raw_data.events GROUP BY 1 ORDER BY 1""",
        "weekday_activity": """
            SELECT dayname(event_at) AS weekday, isodow(event_at) AS dow, count(*) AS events
            FROM raw_data.events GROUP BY 1, 2 ORDER BY 2""",
        "event_types": """
            SELECT event_type, count(*) AS events, round(100.0 * count(*) / sum(count(*)) OVER (), 2)
                   AS pct FROM raw_data.events GROUP BY 1 ORDER BY 2 DESC""",
        "billing_types": """
            SELECT billing_type, count(*) AS records, round(sum(amount), 2) AS amount
            FROM raw_data.billing GROUP BY 1 ORDER BY 2 DESC""",
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


def has_simulator_truth(warehouse: Warehouse) -> bool:
    """Whether the raw tables come with the simulator's hidden truth (synthetic data only)."""
    with warehouse.reader() as con:
        return Warehouse.table_exists(con, TRUTH_TABLE)


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
