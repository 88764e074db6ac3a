"""Declared tables: created from one declaration, upgraded in place when a release adds columns."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from churn.store import abtests, offline, tables
from churn.store.runs import RunLedger
from churn.store.tables import Col, SchemaError, Table
from churn.store.warehouse import Warehouse

# The warehouse as the release before declared DDL wrote it (schema version 1, no version table):
# copied from a 300-user `ploomber build` of that release. Tables the pipeline created from
# DataFrames carry no NOT NULL constraints.
OLD_WAREHOUSE_DDL = """
CREATE SCHEMA raw_data; CREATE SCHEMA ml_pipeline; CREATE SCHEMA monitoring; CREATE SCHEMA simulator;
CREATE TABLE raw_data.users (user_id BIGINT NOT NULL, signup_at TIMESTAMP NOT NULL, plan VARCHAR NOT NULL,
  monthly_price DOUBLE NOT NULL, country VARCHAR NOT NULL, acquisition_channel VARCHAR NOT NULL,
  churned_at TIMESTAMP);
CREATE TABLE raw_data.events (event_id BIGINT NOT NULL, user_id BIGINT NOT NULL, event_type VARCHAR NOT NULL,
  event_at TIMESTAMP NOT NULL);
CREATE TABLE raw_data.billing (billing_id BIGINT NOT NULL, user_id BIGINT NOT NULL, billed_at TIMESTAMP NOT NULL,
  billing_type VARCHAR NOT NULL, plan VARCHAR NOT NULL, amount DOUBLE NOT NULL);
CREATE TABLE raw_data.dataset (name VARCHAR, fingerprint VARCHAR, source VARCHAR, rule VARCHAR, config VARCHAR,
  loaded_at TIMESTAMP);
CREATE TABLE simulator.user_truth (user_id BIGINT NOT NULL, week_start DATE NOT NULL, engagement DOUBLE NOT NULL,
  churn_hazard DOUBLE NOT NULL);
CREATE TABLE ml_pipeline.feature_sets (feature_set VARCHAR, features VARCHAR, spec VARCHAR, rows BIGINT,
  written_at TIMESTAMP);
CREATE TABLE ml_pipeline.features (user_id BIGINT, snapshot_at TIMESTAMP, events_30d BIGINT, tenure_days DOUBLE,
  label TINYINT, label_mature BOOLEAN);
CREATE TABLE ml_pipeline.predictions (user_id BIGINT NOT NULL, model_name VARCHAR NOT NULL,
  model_version INTEGER NOT NULL, probability DOUBLE NOT NULL, risk_band VARCHAR NOT NULL,
  features_as_of TIMESTAMP NOT NULL, scored_at TIMESTAMP NOT NULL);
CREATE TABLE ml_pipeline.models (model_name VARCHAR NOT NULL, version INTEGER NOT NULL CHECK (version >= 1),
  stage VARCHAR NOT NULL CHECK (stage IN ('none', 'staging', 'production', 'archived')), metrics JSON NOT NULL,
  params JSON NOT NULL, features JSON NOT NULL, training_data_fingerprint VARCHAR, code_version VARCHAR,
  artifact_path VARCHAR NOT NULL, artifact_sha256 VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL, PRIMARY KEY (model_name, version));
CREATE TABLE ml_pipeline.model_events (event_id BIGINT PRIMARY KEY, model_name VARCHAR NOT NULL,
  version INTEGER NOT NULL, event VARCHAR NOT NULL, from_stage VARCHAR, to_stage VARCHAR,
  reason VARCHAR NOT NULL CHECK (length(trim(reason)) > 0), "at" TIMESTAMP NOT NULL);
CREATE TABLE ml_pipeline.ab_tests (test_name VARCHAR PRIMARY KEY, model_name VARCHAR NOT NULL,
  control_version INTEGER NOT NULL, variant_version INTEGER NOT NULL, traffic_split DOUBLE NOT NULL,
  status VARCHAR NOT NULL, params JSON NOT NULL, started_at TIMESTAMP NOT NULL, concluded_at TIMESTAMP,
  decision VARCHAR, reasons JSON);
CREATE TABLE ml_pipeline.ab_assignments (test_name VARCHAR NOT NULL, user_id BIGINT NOT NULL, arm VARCHAR NOT NULL,
  assigned_at TIMESTAMP NOT NULL, PRIMARY KEY (test_name, user_id));
CREATE TABLE ml_pipeline.ab_results (test_name VARCHAR NOT NULL, user_id BIGINT NOT NULL, arm VARCHAR NOT NULL,
  score DOUBLE NOT NULL, offered BOOLEAN NOT NULL, churned BOOLEAN NOT NULL, observed_day INTEGER NOT NULL,
  log_loss DOUBLE NOT NULL, PRIMARY KEY (test_name, user_id));
CREATE TABLE monitoring.alerts (alert_key VARCHAR PRIMARY KEY, severity VARCHAR NOT NULL, metric VARCHAR NOT NULL,
  subject VARCHAR, value DOUBLE, threshold DOUBLE, period VARCHAR, message VARCHAR NOT NULL,
  status VARCHAR NOT NULL, raised_at TIMESTAMP NOT NULL);
CREATE TABLE monitoring.api_metrics (run_id VARCHAR, run_at TIMESTAMP, requests BIGINT, server_errors BIGINT,
  latency_p50_ms DOUBLE, latency_p99_ms DOUBLE, latency_samples BIGINT, cache_hit_rate DOUBLE);
CREATE TABLE monitoring.drift_reports (feature VARCHAR, test VARCHAR, status VARCHAR, statistic DOUBLE,
  p_value DOUBLE, p_adjusted DOUBLE, effect_size DOUBLE, threshold DOUBLE, drifted BOOLEAN, n_reference BIGINT,
  n_current BIGINT, note VARCHAR, expected_drift BOOLEAN, run_id VARCHAR, run_at TIMESTAMP);
CREATE TABLE monitoring.metrics_timeline (snapshot_at TIMESTAMP, vectors BIGINT, churners BIGINT,
  churn_rate DOUBLE, auc DOUBLE, "precision" DOUBLE, recall DOUBLE, brier DOUBLE, mean_predicted DOUBLE,
  in_training BOOLEAN, note VARCHAR, model_version BIGINT, run_id VARCHAR, run_at TIMESTAMP);
CREATE TABLE monitoring.retraining_decisions (decided_at TIMESTAMP, model_name VARCHAR, model_version BIGINT,
  retrain BOOLEAN, action VARCHAR, candidate_version BIGINT, triggers VARCHAR);
INSERT INTO ml_pipeline.predictions VALUES (7, 'churn_model', 1, 0.25, 'low', '2025-12-01', '2025-12-02 10:00');
INSERT INTO ml_pipeline.ab_tests VALUES ('t1', 'churn_model', 1, 2, 0.5, 'running', '{"seed": 1}',
  '2025-12-01', NULL, NULL, NULL);
"""
# The run ledger before `as_of` existed.
OLD_LEDGER_DDL = """
CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, params JSON NOT NULL, code_version VARCHAR,
  status VARCHAR NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'died')), pid INTEGER NOT NULL,
  host VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, planned JSON NOT NULL,
  forced JSON NOT NULL, repaired_run VARCHAR, error VARCHAR);
CREATE TABLE run_tasks (run_id VARCHAR NOT NULL, task VARCHAR NOT NULL, status VARCHAR NOT NULL,
  elapsed_s DOUBLE, outputs JSON, PRIMARY KEY (run_id, task));
INSERT INTO runs VALUES ('r1', '{}', NULL, 'succeeded', 1, 'h', '2025-12-01', '2025-12-01', '[]', '{}', NULL, NULL);
"""


def _columns(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[str, str]]:
    schema, table = name.split(".")
    return [
        (str(c), str(t))
        for c, t in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? "
            "AND table_name = ? ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
    ]


def _old_warehouse(path: Path) -> Warehouse:
    con = duckdb.connect(str(path))
    con.execute(OLD_WAREHOUSE_DDL)
    con.close()
    return Warehouse(path)


def test_every_declared_table_is_created_from_its_declaration(warehouse: Warehouse) -> None:
    """Each declaration creates a table with exactly the declared columns and types."""
    con = duckdb.connect(str(warehouse.path))
    try:
        tables.create(con, *tables.TABLES.values())
        for table in tables.TABLES.values():
            declared = [(c.name, c.dtype) for c in table.columns]
            assert _columns(con, table.name) == declared, table.name
    finally:
        con.close()


def test_warehouse_of_the_previous_release_opens_and_upgrades(tmp_path: Path) -> None:
    """A version-1 warehouse opened by a writer is recorded as the current version, keeps every
    row, and the store's readers and writers work on it."""
    warehouse = _old_warehouse(tmp_path / "churn.duckdb")
    with warehouse.writer() as con:
        assert tables.stored_version(con) == tables.SCHEMA_VERSION
        for table in tables.declared():
            if Warehouse.table_exists(con, table.name):
                assert set(table.column_names) <= {c for c, _ in _columns(con, table.name)}, table.name
    assert offline.read_predictions(warehouse).user_id.tolist() == [7]
    assert abtests.get_test(warehouse, "t1")["params"] == {"seed": 1}
    abtests.conclude_test(warehouse, "t1", "keep", ["no effect"])
    assert abtests.get_test(warehouse, "t1")["status"] == "concluded"
    with warehouse.reader() as con:  # opened once more: upgraded once, not once per writer
        versions = con.execute(f"SELECT version FROM {tables.VERSION_TABLE}").fetchall()
    assert versions == [(tables.SCHEMA_VERSION,)]


def test_a_declared_new_column_is_added_to_existing_rows_with_its_default(tmp_path: Path) -> None:
    """ADD COLUMN migration: old rows get the declared default, the version moves on."""
    warehouse = _old_warehouse(tmp_path / "churn.duckdb")
    newer = Table(
        tables.PREDICTIONS.name,
        (*tables.PREDICTIONS.columns, Col("segment", "VARCHAR", default="'all'"), Col("as_of", "DATE")),
    )
    con = duckdb.connect(str(warehouse.path))
    try:
        added = tables.ensure(con, catalog=[newer], version=tables.SCHEMA_VERSION + 1)
        assert added == ["ml_pipeline.predictions.segment", "ml_pipeline.predictions.as_of"]
        assert con.execute("SELECT user_id, segment, as_of FROM ml_pipeline.predictions").fetchall() == [
            (7, "all", None)
        ]
        assert tables.stored_version(con) == tables.SCHEMA_VERSION + 1
        assert tables.ensure(con, catalog=[newer], version=tables.SCHEMA_VERSION + 1) == []  # idempotent
    finally:
        con.close()


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upgrade is all-or-nothing: a step that fails rolls back the added columns and the version."""
    warehouse = _old_warehouse(tmp_path / "churn.duckdb")
    newer = Table(tables.PREDICTIONS.name, (*tables.PREDICTIONS.columns, Col("segment", "VARCHAR")))

    def broken(con: duckdb.DuckDBPyConnection) -> None:
        raise RuntimeError("step failed")

    monkeypatch.setitem(tables.MIGRATIONS, tables.SCHEMA_VERSION + 1, broken)
    con = duckdb.connect(str(warehouse.path))
    try:
        with pytest.raises(RuntimeError, match="step failed"):
            tables.ensure(con, catalog=[newer], version=tables.SCHEMA_VERSION + 1)
        assert "segment" not in {c for c, _ in _columns(con, tables.PREDICTIONS.name)}
        assert tables.stored_version(con) == 1
    finally:
        con.close()


def test_a_file_from_a_newer_release_is_refused_unchanged(warehouse: Warehouse) -> None:
    with warehouse.writer() as con:
        con.execute(f"INSERT INTO {tables.VERSION_TABLE} VALUES (99, now()::TIMESTAMP)")
    with pytest.raises(SchemaError, match="schema version 99 .* newer release"), warehouse.writer():
        pass


def test_run_ledger_from_before_as_of_gains_the_column(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "runs.duckdb"))
    con.execute(OLD_LEDGER_DDL)
    con.close()
    ledger = RunLedger(tmp_path)
    ledger.mark_died("r1", "test")  # any write opens the ledger and upgrades it
    runs = ledger.runs()
    assert runs.run_id.tolist() == ["r1"] and runs.status.tolist() == ["died"]
    assert "as_of" in runs and runs.as_of.isna().all()


def test_open_table_takes_declared_columns_and_the_frames_further_columns(warehouse: Warehouse) -> None:
    """The features table: declared key columns keep their constraints, features their types."""
    frame = pd.DataFrame(
        {"user_id": [1], "snapshot_at": [pd.Timestamp("2025-06-01")], "events_30d": [3], "label": [0]}
    ).astype({"label": "int8"})
    frame["label_mature"] = True
    with warehouse.writer() as con:
        Warehouse.replace_table(con, tables.FEATURES.name, frame, tables.FEATURES)
        assert _columns(con, tables.FEATURES.name) == [  # the frame's order: readers rely on it
            ("user_id", "BIGINT"), ("snapshot_at", "TIMESTAMP"), ("events_30d", "BIGINT"), ("label", "TINYINT"),
            ("label_mature", "BOOLEAN"),
        ]  # fmt: skip
        with pytest.raises(duckdb.ConstraintException):
            bad = frame.assign(user_id=None)  # noqa: F841 - read by DuckDB
            con.execute(f"INSERT INTO {tables.FEATURES.name} BY NAME SELECT * FROM bad")


def test_declarations_refuse_duplicates_and_unknown_keys() -> None:
    with pytest.raises(SchemaError, match="declared twice"):
        tables.declare(Table(tables.MODELS.name, tables.MODELS.columns))
    with pytest.raises(SchemaError, match="key column"):
        tables.declare(Table("ml_pipeline.x", (Col("a", "INTEGER"),), key=("b",)))


def test_raw_tables_of_your_own_data_are_never_widened(warehouse: Warehouse) -> None:
    """An own data set's users table has its own columns: opening a writer must not add the
    synthetic schema's (a load rewrites raw tables whole; they are not migrated in place)."""
    with warehouse.writer() as con:
        con.execute("CREATE TABLE raw_data.users (user_id BIGINT, signup_at TIMESTAMP, churned_at TIMESTAMP)")
    with warehouse.writer() as con:
        assert [c for c, _ in _columns(con, tables.USERS.name)] == ["user_id", "signup_at", "churned_at"]
