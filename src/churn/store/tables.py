"""Every table the project stores, declared once: columns, types, constraints, schema version.

A table's existence still means "the phase that fills it has run" (readers rely on it), so
opening a writer never creates tables: a writer creates the tables it writes with
``create(con, TABLE)`` (or ``recreate`` to replace them) inside its transaction.

:func:`ensure` (run by every ``Warehouse.writer()`` and by the run ledger) upgrades the tables
that exist: a declared column missing from an older file is added with ``ALTER TABLE ... ADD
COLUMN`` (nullable, with its declared default: DuckDB cannot add a NOT NULL column to rows that
exist), then the numbered :data:`MIGRATIONS` steps run and the file's schema version is recorded
in ``main.schema_version``.

To declare a table: ``NAME = declare(Table("schema.name", (Col(...), ...), key=(...)))`` below.
To add a column: append a ``Col`` to its declaration (with a ``default`` if old rows need a
value) and bump :data:`SCHEMA_VERSION`; a :data:`MIGRATIONS` step only for what ADD COLUMN cannot
do (renames, backfills).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from churn.data.schema import RAW_SCHEMA_NAME, RAW_TABLES, TRUTH_SCHEMA_NAME, USER_TRUTH, TableSchema
from churn.store.warehouse import WarehouseError

SCHEMA_VERSION = 2
"""1: the release before declared DDL (no version recorded); 2: every table declared here."""
VERSION_TABLE = "main.schema_version"
WAREHOUSE, LEDGER = "warehouse", "ledger"  # the DuckDB files: churn.duckdb and runs.duckdb


class SchemaError(WarehouseError):
    """A stored file whose schema this code cannot use (newer release, unknown declaration)."""


@dataclass(frozen=True)
class Col:
    """One column: name, DuckDB type, NOT NULL, CHECK expression, DEFAULT expression."""

    name: str
    dtype: str
    not_null: bool = False
    check: str | None = None
    default: str | None = None

    def sql(self) -> str:
        parts = [_quote(self.name), self.dtype]
        if self.not_null:
            parts.append("NOT NULL")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        if self.check is not None:
            parts.append(f"CHECK ({self.check})")
        return " ".join(parts)

    def add_sql(self) -> str:
        """The column as ``ALTER TABLE ... ADD COLUMN`` can add it (no NOT NULL or CHECK)."""
        default = f" DEFAULT {self.default}" if self.default is not None else ""
        return f"{_quote(self.name)} {self.dtype}{default}"


@dataclass(frozen=True)
class Table:
    """A declared table.

    Args:
        name: ``schema.table``.
        columns: the declared columns, in order.
        key: primary-key columns (empty: none).
        unique: further UNIQUE column groups.
        database: which DuckDB file holds it (:data:`WAREHOUSE` or :data:`LEDGER`).
        open_columns: further columns are added by the writer (the features table: one per
            feature of the spec); only the declared ones are checked and migrated.
        migrate: whether :func:`ensure` adds missing declared columns in place. Not for the raw
            tables: a load rewrites them whole, and a data set of your own has its own columns.
    """

    name: str
    columns: tuple[Col, ...]
    key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    database: str = WAREHOUSE
    open_columns: bool = False
    migrate: bool = True
    doc: str = field(default="", compare=False)

    @property
    def schema(self) -> str:
        return self.name.split(".")[0]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ddl(self, extra: Iterable[Col] = ()) -> str:
        """``CREATE TABLE IF NOT EXISTS``. ``extra``: an open table's columns in the writer's
        order (declared ones keep their declaration; those it leaves out follow at the end)."""
        given = [next((c for c in self.columns if c.name == e.name), e) for e in extra]
        names = {c.name for c in given}
        lines = [c.sql() for c in (*given, *(c for c in self.columns if c.name not in names))]
        if self.key:
            lines.append(f"PRIMARY KEY ({', '.join(_quote(k) for k in self.key)})")
        lines += [f"UNIQUE ({', '.join(_quote(c) for c in group)})" for group in self.unique]
        body = ",\n    ".join(lines)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {body}\n)"


TABLES: dict[str, Table] = {}
"""Every declared table by ``schema.table``."""


def declare(table: Table) -> Table:
    """Register ``table`` (refusing a second declaration of the same name) and return it."""
    if table.name in TABLES:
        raise SchemaError(f"table {table.name} is declared twice")
    if len(table.name.split(".")) != 2:
        raise SchemaError(f"declare {table.name!r} as schema.table")
    unknown = set(table.key).union(*table.unique) - set(table.column_names)
    if unknown:
        raise SchemaError(f"{table.name}: key column(s) {sorted(unknown)} are not declared")
    TABLES[table.name] = table
    return table


def _quote(name: str) -> str:
    return f'"{name}"'  # every name quoted: `at`, `precision` are keywords


def from_schema(schema: str, raw: TableSchema) -> Table:
    """A raw table of the documented schema (``churn.data.schema``) as a declaration."""
    columns = tuple(Col(c.name, c.dtype, not_null=not c.nullable) for c in raw.columns)
    return Table(f"{schema}.{raw.name}", columns, migrate=False)


def nn(name: str, dtype: str, check: str | None = None) -> Col:
    """A NOT NULL column."""
    return Col(name, dtype, not_null=True, check=check)


# -- raw data (churn.data.schema is the documented contract; the truth is the simulator's) -------
USERS, EVENTS, BILLING = (declare(from_schema(RAW_SCHEMA_NAME, t)) for t in RAW_TABLES.values())
TRUTH = declare(from_schema(TRUTH_SCHEMA_NAME, USER_TRUTH))
SUBSCRIPTIONS = declare(
    Table(
        f"{RAW_SCHEMA_NAME}.subscriptions",
        (Col("user_id", "BIGINT"), Col("started_at", "TIMESTAMP"), Col("ended_at", "TIMESTAMP")),
        migrate=False,
        doc="Own data only (a data set with a subscriptions file): one row per subscription period.",
    )
)
LOADS = declare(
    Table(
        f"{RAW_SCHEMA_NAME}.loads",
        (nn("as_of", "TIMESTAMP"), nn("mode", "VARCHAR"), nn("users", "BIGINT"), nn("events", "BIGINT"),
         nn("billing", "BIGINT"), nn("truth_rows", "BIGINT"), nn("loaded_at", "TIMESTAMP")),
        doc="The watermark: one row per load (its cut as_of, full or append, rows per table).",
    )
)  # fmt: skip
RAW_CHECKS = declare(
    Table(
        f"{RAW_SCHEMA_NAME}.checks",
        (nn("through", "TIMESTAMP"), Col("full_loaded_at", "TIMESTAMP"), nn("users", "BIGINT"),
         nn("events", "BIGINT"), nn("billing", "BIGINT"), nn("checked_at", "TIMESTAMP")),
        doc="The last raw-data gate that passed: the watermark it judged up to, the full load it judged "
            "(loads.loaded_at), the rows per table it saw; a daily gate judges row by row what came after.",
    )
)  # fmt: skip
CHECKED_USERS = declare(
    Table(
        f"{RAW_SCHEMA_NAME}.checked_users",
        (nn("user_id", "BIGINT"), Col("churned_at", "TIMESTAMP")),
        doc="The users (id, churn date) as the last passing raw-data gate saw them: a daily gate re-judges "
            "the older rows of users who vanished or whose churn date moved.",
    )
)  # fmt: skip
LOADED_FILES = declare(
    Table(
        f"{RAW_SCHEMA_NAME}.loaded_files",
        (nn("part", "VARCHAR"), nn("file", "VARCHAR"), nn("sha256", "VARCHAR"), nn("bytes", "BIGINT"),
         Col("rows", "BIGINT"), Col("as_of", "TIMESTAMP"), nn("watermark", "TIMESTAMP"), nn("loaded_at", "TIMESTAMP"),
         Col("first_event_id", "BIGINT")),
        doc="Own data: every file appended to the raw tables (its sha256, rows, watermark, first event id).",
    )
)  # fmt: skip
DATASET = declare(
    Table(
        f"{RAW_SCHEMA_NAME}.dataset",
        (nn("name", "VARCHAR"), nn("fingerprint", "VARCHAR"), Col("source", "VARCHAR"), Col("rule", "VARCHAR"),
         Col("config", "VARCHAR"), nn("loaded_at", "TIMESTAMP")),
        doc="One row: which data set the raw tables hold (name, identity fingerprint, source, rule).",
    )
)  # fmt: skip

# -- offline store ---------------------------------------------------------------------------
FEATURES = declare(
    Table(
        "ml_pipeline.features",
        (nn("user_id", "BIGINT"), nn("snapshot_at", "TIMESTAMP"), Col("label", "TINYINT"),
         Col("label_mature", "BOOLEAN")),
        open_columns=True,
        doc="One vector per (user_id, snapshot_at); one further column per feature of the spec.",
    )
)  # fmt: skip
FEATURE_SETS = declare(
    Table(
        "ml_pipeline.feature_sets",
        (nn("feature_set", "VARCHAR"), nn("features", "VARCHAR"), Col("spec", "VARCHAR"), nn("rows", "BIGINT"),
         nn("written_at", "TIMESTAMP")),
        doc="The spec (version, feature order, spec itself) that produced ml_pipeline.features.",
    )
)  # fmt: skip
PREDICTIONS = declare(
    Table(
        "ml_pipeline.predictions",
        (nn("user_id", "BIGINT"), nn("model_name", "VARCHAR"), nn("model_version", "INTEGER"),
         nn("probability", "DOUBLE"), nn("risk_band", "VARCHAR"), nn("features_as_of", "TIMESTAMP"),
         nn("scored_at", "TIMESTAMP")),
    )
)  # fmt: skip

# -- model registry --------------------------------------------------------------------------
STAGES: tuple[str, ...] = ("none", "staging", "production", "archived")
MODELS = declare(
    Table(
        "ml_pipeline.models",
        (nn("model_name", "VARCHAR"), nn("version", "INTEGER", check="version >= 1"),
         nn("stage", "VARCHAR", check="stage IN ('none', 'staging', 'production', 'archived')"),
         nn("metrics", "JSON"), nn("params", "JSON"), nn("features", "JSON"),
         Col("training_data_fingerprint", "VARCHAR"), Col("code_version", "VARCHAR"),
         nn("artifact_path", "VARCHAR"),  # relative to the registry's models_dir
         nn("artifact_sha256", "VARCHAR"), nn("created_at", "TIMESTAMP"), nn("updated_at", "TIMESTAMP")),
        key=("model_name", "version"),
        doc="One row per registered model version; timestamps are UTC.",
    )
)  # fmt: skip
MODEL_EVENTS = declare(
    Table(
        "ml_pipeline.model_events",
        (nn("event_id", "BIGINT"),  # increasing: the order of changes
         nn("model_name", "VARCHAR"), nn("version", "INTEGER"), nn("event", "VARCHAR"),
         Col("from_stage", "VARCHAR"), Col("to_stage", "VARCHAR"),
         nn("reason", "VARCHAR", check="length(trim(reason)) > 0"), nn("at", "TIMESTAMP")),
        key=("event_id",),
        doc="Every registry change with its reason (UTC).",
    )
)  # fmt: skip

# -- A/B tests -------------------------------------------------------------------------------
AB_TESTS = declare(
    Table(
        "ml_pipeline.ab_tests",
        (nn("test_name", "VARCHAR"), nn("model_name", "VARCHAR"), nn("control_version", "INTEGER"),
         nn("variant_version", "INTEGER"), nn("traffic_split", "DOUBLE"), nn("status", "VARCHAR"),
         nn("params", "JSON"), nn("started_at", "TIMESTAMP"), Col("concluded_at", "TIMESTAMP"),
         Col("decision", "VARCHAR"), Col("reasons", "JSON")),
        key=("test_name",),
    )
)  # fmt: skip
AB_ASSIGNMENTS = declare(
    Table(
        "ml_pipeline.ab_assignments",
        (nn("test_name", "VARCHAR"), nn("user_id", "BIGINT"), nn("arm", "VARCHAR"), nn("assigned_at", "TIMESTAMP")),
        key=("test_name", "user_id"),
    )
)
AB_RESULTS = declare(
    Table(
        "ml_pipeline.ab_results",
        (nn("test_name", "VARCHAR"), nn("user_id", "BIGINT"), nn("arm", "VARCHAR"), nn("score", "DOUBLE"),
         nn("offered", "BOOLEAN"), nn("churned", "BOOLEAN"), nn("observed_day", "INTEGER"),
         nn("log_loss", "DOUBLE")),
        key=("test_name", "user_id"),
    )
)  # fmt: skip

AB_LOOKS = declare(
    Table(
        "ml_pipeline.ab_looks",
        (nn("test_name", "VARCHAR"), nn("look", "INTEGER"), nn("as_of", "DATE"), nn("test_day", "INTEGER"),
         nn("n_control", "BIGINT"), nn("conv_control", "BIGINT"), nn("n_variant", "BIGINT"),
         nn("conv_variant", "BIGINT"), Col("difference", "DOUBLE"), Col("likelihood_ratio", "DOUBLE"),
         Col("p_value", "DOUBLE"), nn("alpha", "DOUBLE"), nn("decision", "VARCHAR"), nn("looked_at", "TIMESTAMP")),
        key=("test_name", "look"),
        unique=(("test_name", "as_of"),),
        doc="One row per sequential look of a test that spans daily cycles.",
    )
)  # fmt: skip

# -- monitoring ------------------------------------------------------------------------------
DRIFT_REPORTS = declare(
    Table(
        "monitoring.drift_reports",
        (nn("run_id", "VARCHAR"), nn("run_at", "TIMESTAMP"), Col("as_of", "DATE"), Col("model_version", "INTEGER"),
         nn("feature", "VARCHAR"), nn("test", "VARCHAR"), Col("status", "VARCHAR"), Col("statistic", "DOUBLE"),
         Col("p_value", "DOUBLE"), Col("p_adjusted", "DOUBLE"), Col("effect_size", "DOUBLE"),
         Col("threshold", "DOUBLE"), Col("drifted", "BOOLEAN"), Col("n_reference", "BIGINT"),
         Col("n_current", "BIGINT"), Col("note", "VARCHAR"), Col("expected_drift", "BOOLEAN"),
         Col("drift_onset", "DATE")),
    )
)  # fmt: skip
METRICS_TIMELINE = declare(
    Table(
        "monitoring.metrics_timeline",
        (nn("run_id", "VARCHAR"), nn("run_at", "TIMESTAMP"), Col("as_of", "DATE"), Col("model_version", "INTEGER"),
         nn("snapshot_at", "TIMESTAMP"), Col("vectors", "BIGINT"), Col("churners", "BIGINT"),
         Col("churn_rate", "DOUBLE"), Col("auc", "DOUBLE"), Col("precision", "DOUBLE"), Col("recall", "DOUBLE"),
         Col("brier", "DOUBLE"), Col("mean_predicted", "DOUBLE"), Col("in_training", "BOOLEAN"),
         Col("note", "VARCHAR"), Col("newly_matured", "BOOLEAN")),
    )
)  # fmt: skip
ALERTS = declare(
    Table(
        "monitoring.alerts",
        (nn("alert_key", "VARCHAR"), nn("severity", "VARCHAR"), nn("metric", "VARCHAR"), Col("subject", "VARCHAR"),
         Col("value", "DOUBLE"), Col("threshold", "DOUBLE"), Col("period", "VARCHAR"), nn("message", "VARCHAR"),
         nn("status", "VARCHAR"), nn("raised_at", "TIMESTAMP"), Col("condition", "VARCHAR"),
         Col("raised_on", "DATE"), Col("last_seen_on", "DATE"), Col("resolved_on", "DATE"),
         Col("resolved_at", "TIMESTAMP"), Col("resolution", "VARCHAR")),
        key=("alert_key",),
        doc="Keyed, so each alert is raised once; an open alert is resolved when its condition clears.",
    )
)  # fmt: skip
RETRAINING_DECISIONS = declare(
    Table(
        "monitoring.retraining_decisions",
        (nn("decided_at", "TIMESTAMP"), nn("model_name", "VARCHAR"), Col("model_version", "INTEGER"),
         nn("retrain", "BOOLEAN"), nn("action", "VARCHAR"), Col("candidate_version", "INTEGER"),
         Col("triggers", "VARCHAR"), Col("as_of", "DATE"), Col("reasons", "VARCHAR"), Col("matured_labels", "BIGINT")),
    )
)  # fmt: skip
API_METRICS = declare(
    Table(
        "monitoring.api_metrics",
        (nn("run_id", "VARCHAR"), nn("run_at", "TIMESTAMP"), Col("requests", "BIGINT"),
         Col("server_errors", "BIGINT"), Col("latency_p50_ms", "DOUBLE"), Col("latency_p99_ms", "DOUBLE"),
         Col("latency_samples", "BIGINT"), Col("cache_hit_rate", "DOUBLE")),
        doc="The serving API's operational figures as seen by each monitoring run.",
    )
)  # fmt: skip

# -- the run ledger (data/runs.duckdb) -------------------------------------------------------
RUN_STATUSES: tuple[str, ...] = ("running", "succeeded", "failed", "died")
RUNS = declare(
    Table(
        "main.runs",
        (nn("run_id", "VARCHAR"), Col("as_of", "DATE"), nn("params", "JSON"), Col("code_version", "VARCHAR"),
         nn("status", "VARCHAR", check="status IN ('running', 'succeeded', 'failed', 'died')"),
         nn("pid", "INTEGER"), nn("host", "VARCHAR"), nn("started_at", "TIMESTAMP"), Col("finished_at", "TIMESTAMP"),
         nn("planned", "JSON"), nn("forced", "JSON"), Col("repaired_run", "VARCHAR"), Col("error", "VARCHAR")),
        key=("run_id",),
        database=LEDGER,
    )
)  # fmt: skip
RUN_TASKS = declare(
    Table(
        "main.run_tasks",
        (nn("run_id", "VARCHAR"), nn("task", "VARCHAR"), nn("status", "VARCHAR"), Col("elapsed_s", "DOUBLE"),
         Col("outputs", "JSON")),
        key=("run_id", "task"),
        database=LEDGER,
    )
)  # fmt: skip

MIGRATIONS: dict[int, Callable[[duckdb.DuckDBPyConnection], None]] = {}
"""Steps ADD COLUMN cannot express, by the schema version they lead to (run in order, once)."""


def declared(database: str = WAREHOUSE) -> list[Table]:
    """The declared tables of one DuckDB file, in declaration order."""
    return [t for t in TABLES.values() if t.database == database]


def stored_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version recorded in the file (1: none recorded, the release before)."""
    if not _exists(con, VERSION_TABLE):
        return 1
    return int(con.execute(f"SELECT coalesce(max(version), 1) FROM {VERSION_TABLE}").fetchall()[0][0])


def ensure(
    con: duckdb.DuckDBPyConnection,
    database: str = WAREHOUSE,
    catalog: Iterable[Table] | None = None,
    version: int = SCHEMA_VERSION,
) -> list[str]:
    """Upgrade the file behind ``con`` to ``version`` (run when a writer opens it, outside any
    transaction of the caller's).

    Every declared table of ``database`` (or ``catalog``) that exists gets its missing columns,
    the :data:`MIGRATIONS` steps between the stored and the current version run, and the new
    version is recorded, all in one transaction: a failed upgrade leaves the file as it was.

    Returns:
        What was changed: one ``"schema.table.column"`` per added column, ``"migration N"`` per step.

    Raises:
        SchemaError: the file was written by a newer release (its version is above ``version``).
    """
    tables = list(catalog) if catalog is not None else declared(database)
    stored = stored_version(con)
    if stored > version:
        raise SchemaError(
            f"this file has schema version {stored} but this code knows only up to {version}: it was "
            "written by a newer release of churn; upgrade the code instead of opening it with this one"
        )
    changes: list[str] = []
    con.execute("BEGIN TRANSACTION")
    try:
        changes += _add_missing_columns(con, tables)
        for step in range(stored + 1, version + 1):
            if step in MIGRATIONS:
                MIGRATIONS[step](con)
                changes.append(f"migration {step}")
        if stored < version or not _exists(con, VERSION_TABLE):
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)"
            )
            con.execute(f"INSERT INTO {VERSION_TABLE} VALUES (?, now()::TIMESTAMP)", [version])
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return changes


def create(con: duckdb.DuckDBPyConnection, *tables: Table, extra: Iterable[Col] = ()) -> None:
    """Create the declared ``tables`` that do not exist yet (inside the caller's transaction).

    ``extra``: the writer's further columns of an open table (the features table's features).
    """
    extra = tuple(extra)
    for table in tables:
        if extra and not table.open_columns:
            raise SchemaError(f"{table.name} has a fixed set of columns: declare new ones in churn.store.tables")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.schema}")
        con.execute(table.ddl(extra))


def recreate(con: duckdb.DuckDBPyConnection, table: Table, extra: Iterable[Col] = ()) -> None:
    """Drop ``table`` and create it empty from its declaration (a writer replacing all rows)."""
    con.execute(f"DROP TABLE IF EXISTS {table.name}")
    create(con, table, extra=extra)


def frame_columns(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> list[Col]:
    """The columns of ``frame``, in order, with the types DuckDB reads them as."""
    described = con.execute("DESCRIBE SELECT * FROM frame").fetchall()
    return [Col(str(row[0]), str(row[1])) for row in described]


def _holds_own_data(con: duckdb.DuckDBPyConnection) -> bool:
    """The raw tables hold a data set's own files: their columns are the data set's (free user
    attributes, a value column), not the simulator's declared ones."""
    if not _exists(con, DATASET.name):
        return False
    rows = con.execute(f"SELECT source FROM {DATASET.name}").fetchall()
    return bool(rows) and rows[0][0] == "files"


def _add_missing_columns(con: duckdb.DuckDBPyConnection, tables: Iterable[Table]) -> list[str]:
    # own data's users/events/billing are shaped by its dataset file: the simulator's columns
    # (plan, monthly_price, ...) must not be added to them
    own = {USERS.name, EVENTS.name, BILLING.name} if _holds_own_data(con) else set()
    tables = [t for t in tables if t.name not in own]
    existing: dict[str, set[str]] = {}
    for schema, table, column in con.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database()"
    ).fetchall():
        existing.setdefault(f"{schema}.{table}", set()).add(column)
    added = []
    for table in tables:
        have = existing.get(table.name)
        if have is None or not table.migrate:
            continue  # not created yet: the phase that writes it creates it
        for col in table.columns:
            if col.name not in have:
                con.execute(f"ALTER TABLE {table.name} ADD COLUMN {col.add_sql()}")
                added.append(f"{table.name}.{col.name}")
    return added


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    schema, table = name.split(".")
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ? "
        "AND table_catalog = current_database()",
        [schema, table],
    ).fetchall()
    return bool(rows[0][0])
