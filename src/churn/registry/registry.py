"""The model registry: versions, stages and their history in DuckDB, artifacts under ``models_dir``.

Invariant: at most one ``production`` version per model name, and once a name has one it always
has exactly one (a production version only leaves production by being replaced or rolled back).
Every change is a row in ``ml_pipeline.model_events`` with a reason, written in the same
transaction as the change itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from churn.registry import artifacts, writes
from churn.registry.records import (
    EVENT_COLUMNS,
    ModelVersion,
    RegistryError,
    as_version,
    check_event,
    check_name,
    check_reason,
    check_stage,
    fetch_versions,
    utcnow,
)
from churn.store import models
from churn.store.warehouse import Warehouse


class ModelRegistry:
    """Register, find, promote, archive, roll back and load models.

    Args:
        warehouse: the platform warehouse (writes go through ``writer()`` in one transaction).
        models_dir: folder for artifacts (``data/models``); one per warehouse.
    """

    def __init__(self, warehouse: Warehouse, models_dir: str | os.PathLike[str]) -> None:
        self.warehouse = warehouse
        self.models_dir = Path(models_dir)
        self._markers: dict[str, tuple[tuple[int, int, int] | None, str]] = {}

    # -- reads (published snapshot) -----------------------------------------------------------
    @contextmanager
    def _reader(self) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """Snapshot connection, or None while the registry tables do not exist yet."""
        if not (self.warehouse.snapshot_path.exists() or self.warehouse.path.exists()):
            yield None
            return
        with self.warehouse.reader() as con:
            yield con if models.exist(con) else None

    def list_models(self, model_name: str | None = None, stage: str | None = None) -> list[ModelVersion]:
        """All versions (optionally of one name and/or in one stage), by name and version."""
        if stage is not None:
            check_stage(stage)
        with self._reader() as con:
            return [] if con is None else fetch_versions(con, self.models_dir, model_name, stage)

    def get_model(
        self, model_name: str, version: int | str | None = None, stage: str | None = None
    ) -> ModelVersion:
        """One version: the given one, else the newest in ``stage``, else the newest overall."""
        with self._reader() as con:
            found = [] if con is None else fetch_versions(con, self.models_dir, model_name)
        return writes.pick_version(model_name, found, version, stage)

    def get_production(self, model_name: str) -> ModelVersion | None:
        """The production version of ``model_name``, or None if it has none."""
        found = self.list_models(model_name, "production")
        return found[0] if found else None

    def production_marker(self, model_name: str) -> str:
        """``v<version>:<sha256>`` of the production version (``"none"`` without one).

        Cheap to poll: the answer is cached until the published snapshot file changes (a new
        snapshot is a new file), so an unchanged registry costs one ``stat``, not a connection.
        """
        stamp = self.warehouse.file_stamp()
        cached = self._markers.get(model_name)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return cached[1]
        with self._reader() as con:
            found = None if con is None else models.production_artifact(con, model_name)
        marker = f"v{found[0]}:{found[1]}" if found else "none"
        self._markers[model_name] = (stamp, marker)  # stamp taken before the read: never stale
        return marker

    def list_events(self, model_name: str | None = None) -> pd.DataFrame:
        """The change history (oldest first), optionally for one model name."""
        with self._reader() as con:
            return pd.DataFrame(columns=EVENT_COLUMNS) if con is None else models.select_events(con, model_name)

    def load_model(
        self, model_name: str, version: int | str | None = None, stage: str = "production"
    ) -> tuple[object, ModelVersion]:
        """Unpickle a version (``version`` if given, else the newest in ``stage``) after its
        artifact's sha256 is verified; raises ``ArtifactIntegrityError`` otherwise."""
        record = self.get_model(model_name, version, None if version is not None else stage)
        return artifacts.load_verified(record.artifact_path, record.artifact_sha256), record

    # -- writes (one transaction each) --------------------------------------------------------
    @contextmanager
    def _writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.warehouse.writer() as con:
            models.create(con)
            with self.warehouse.transaction(con):
                yield con

    def register_model(
        self,
        model_name: str,
        version: int | str | None = None,
        model_path: str | os.PathLike[str] | None = None,
        model: object | None = None,
        metrics: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        features: list[str] | None = None,
        training_data_fingerprint: str | None = None,
        code_version: str | None = None,
        stage: str = "none",
        reason: str = "registered",
        idempotent: bool = False,
    ) -> ModelVersion:
        """Store a new version: ``model`` is saved with joblib, or ``model_path`` is copied in.

        ``version=None`` takes the next free number. An existing (name, version) is refused
        before anything is written. ``stage`` other than ``none`` is applied in the same
        transaction (``production`` archives the current production version).

        ``idempotent`` (what the pipeline phases use, so re-running one is safe): a version of the
        same name with the same artifact sha256, or with the same training-data fingerprint,
        clean code version, parameters and features, is reused instead of duplicated (moved to
        ``stage`` unless it is production); and versions left in stage ``none`` by an interrupted
        run are archived with a reason, in the same transaction.
        """
        check_name(model_name), check_stage(stage)
        reason = check_reason(reason)
        if (model is None) == (model_path is None):
            raise RegistryError("register_model needs exactly one of model= or model_path=")
        source = Path(model_path) if model_path is not None else None
        if source is not None and not source.is_file():
            raise RegistryError(f"model_path {source} does not exist or is not a file")
        row = {
            "model_name": model_name, "metrics": metrics, "params": params, "features": features,
            "training_data_fingerprint": training_data_fingerprint, "code_version": code_version,
        }
        wanted = None if version is None else as_version(version)
        return self._register(row, wanted, model, source, stage, reason, idempotent)

    def _register(
        self, row: dict[str, Any], wanted: int | None, model: object, source: Path | None, stage: str, reason: str,
        idempotent: bool = False,
    ) -> ModelVersion:
        """Rows and artifact together: if the transaction does not commit, the file goes too."""
        placed: list[Path] = []
        with self.warehouse.writer() as con:
            models.create(con)
            try:
                with self.warehouse.transaction(con):
                    if idempotent:
                        writes.archive_orphans(con, self.models_dir, row["model_name"], utcnow())
                    record = self._insert_with_artifact(con, row, wanted, model, source, stage, reason, placed,
                                                        idempotent)
            except BaseException:
                for path in placed:  # only before COMMIT: a committed row keeps its artifact
                    path.unlink(missing_ok=True)
                raise
        return record

    def _insert_with_artifact(
        self, con: duckdb.DuckDBPyConnection, row: dict[str, Any], wanted: int | None, model: object,
        source: Path | None, stage: str, reason: str, placed: list[Path], idempotent: bool = False,
    ) -> ModelVersion:
        name = row["model_name"]
        number = wanted or writes.next_version(con, name)
        writes.refuse_duplicate(con, name, number)  # before any file is touched
        rel = artifacts.artifact_relpath(name, number, source.suffix if source else ".joblib")
        target = self.models_dir / rel
        tmp, sha = artifacts.stage_artifact(target, model=model, source=source)
        try:
            now = utcnow()
            same = writes.find_identical(con, self.models_dir, row, sha) if idempotent else None
            if same is not None:
                return writes.reuse(con, self.models_dir, same, stage, reason, now)
            writes.insert_version(con, {**row, "version": number, "artifact_path": rel, "artifact_sha256": sha}, now)
            writes.add_event(con, name, number, "registered", None, "none", reason, now)
            os.replace(tmp, target)  # atomic: readers never see half a file
            placed.append(target)
            if stage != "none":  # after the move: change_stage verifies the artifact
                writes.change_stage(con, self.models_dir, name, number, stage, reason, now)
        finally:
            tmp.unlink(missing_ok=True)
        return writes.require(con, self.models_dir, name, number)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One warehouse transaction for a registry change and the caller's own writes (e.g. an
        A/B test's conclusion with the promotion it decided): all of it commits, or none."""
        with self._writer() as con:
            yield con

    def promote_model(
        self, model_name: str, version: int | str, stage: str, reason: str,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> ModelVersion:
        """Move a version to ``stage``; to ``production`` also archives the current production.
        With ``con`` (from :meth:`transaction`) it joins that transaction."""
        check_stage(stage)
        reason, number = check_reason(reason), as_version(version)
        if con is not None:
            writes.change_stage(con, self.models_dir, model_name, number, stage, reason, utcnow())
            return writes.require(con, self.models_dir, model_name, number)
        with self._writer() as own:
            return self.promote_model(model_name, number, stage, reason, con=own)

    def archive_model(self, model_name: str, version: int | str, reason: str) -> ModelVersion:
        """Archive a version (not the production one: replace it or roll back instead)."""
        return self.promote_model(model_name, version, "archived", reason)

    def rollback(self, model_name: str, reason: str, con: duckdb.DuckDBPyConnection | None = None) -> ModelVersion:
        """Restore the previous production version and archive the current one.

        The previous one is the version most recently demoted from production other than by a
        rollback, so repeated rollbacks walk further back instead of toggling. With ``con``
        (from :meth:`transaction`) it joins that transaction.
        """
        reason = check_reason(reason)
        if con is None:
            with self._writer() as own:
                return self.rollback(model_name, reason, con=own)
        restored = writes.rollback_production(con, self.models_dir, model_name, reason, utcnow())
        return writes.require(con, self.models_dir, model_name, restored)

    def record_event(self, model_name: str, version: int | str, event: str, reason: str,
                     con: duckdb.DuckDBPyConnection | None = None) -> None:
        """Record a decision that changes no stage (e.g. ``kept`` after an A/B test); with ``con``
        (from :meth:`transaction`) it joins that transaction."""
        check_event(event)
        reason, number = check_reason(reason), as_version(version)
        if con is None:
            with self._writer() as own:
                return self.record_event(model_name, number, event, reason, con=own)
        current = writes.require(con, self.models_dir, model_name, number)
        writes.add_event(con, model_name, number, event, current.stage, current.stage, reason, utcnow())
