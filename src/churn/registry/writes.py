"""The steps of registry writes (their SQL in ``churn.store.models``), each run inside the
caller's transaction.

Nothing here commits: ``ModelRegistry`` wraps every public write in one
``warehouse.transaction``, so a failure at any step leaves the registry exactly as it was.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from churn.registry import artifacts
from churn.registry.records import (
    STAGE_EVENTS,
    ModelVersion,
    RegistryError,
    as_version,
    check_stage,
    fetch_versions,
    to_json,
)
from churn.store import models

Con = duckdb.DuckDBPyConnection


def pick_version(
    model_name: str, found: list[ModelVersion], version: int | str | None, stage: str | None
) -> ModelVersion:
    """The given version, else the newest in ``stage``, else the newest; clear errors otherwise."""
    if not found:
        raise RegistryError(f"no model named {model_name!r} is registered")
    known = ", ".join(str(m.version) for m in found)
    if version is not None:
        number = as_version(version)
        match = [m for m in found if m.version == number]
        if not match:
            raise RegistryError(f"model {model_name!r} has no version {number} (versions: {known})")
        if stage is not None and match[0].stage != check_stage(stage):
            raise RegistryError(f"{model_name} v{number} is in stage {match[0].stage!r}, not {stage!r}")
        return match[0]
    if stage is not None:
        found = [m for m in found if m.stage == check_stage(stage)]
        if not found:
            raise RegistryError(f"model {model_name!r} has no version in stage {stage!r}")
    return found[-1]


def require(con: Con, models_dir: Path, model_name: str, version: int) -> ModelVersion:
    """The stored (name, version), or a RegistryError naming it and the known versions."""
    found = fetch_versions(con, models_dir, model_name)
    return pick_version(model_name, found, version, None)


def next_version(con: Con, model_name: str) -> int:
    """One more than the highest version of ``model_name`` (1 for a new name)."""
    return models.next_version(con, model_name)


def refuse_duplicate(con: Con, model_name: str, version: int) -> None:
    """Registered versions are immutable: refuse to register one twice."""
    if models.select_versions(con, model_name, version=version):
        raise RegistryError(
            f"{model_name} v{version} is already registered; registered versions and their artifacts "
            "are immutable: register a new version (version=None takes the next one)"
        )


def insert_version(con: Con, row: dict[str, Any], at: datetime) -> None:
    """Insert a new version in stage ``none`` (JSON columns serialised here)."""
    stored = {**row, "metrics": to_json(row.get("metrics") or {}), "params": to_json(row.get("params") or {}),
              "features": to_json(list(row.get("features") or []))}
    models.insert_version(con, stored, at)


def add_event(
    con: Con, model_name: str, version: int, event: str, from_stage: str | None,
    to_stage: str | None, reason: str, at: datetime,
) -> None:
    """Append one history row."""
    models.add_event(con, model_name, version, event, from_stage, to_stage, reason, at)


def set_stage(con: Con, record: ModelVersion, to_stage: str, event: str, reason: str, at: datetime) -> None:
    """Change one version's stage and record the event."""
    models.update_stage(con, record.model_name, record.version, to_stage, at)
    add_event(con, record.model_name, record.version, event, record.stage, to_stage, reason, at)


def current_production(con: Con, models_dir: Path, model_name: str) -> ModelVersion | None:
    """The production version of ``model_name`` as seen inside the transaction."""
    found = fetch_versions(con, models_dir, model_name, "production")
    return found[0] if found else None


def change_stage(
    con: Con, models_dir: Path, model_name: str, version: int, stage: str, reason: str, at: datetime
) -> None:
    """Move a version to ``stage``; entering production archives the current production first."""
    record = require(con, models_dir, model_name, version)
    if record.stage == stage:
        raise RegistryError(f"{model_name} v{version} is already in stage {stage!r}")
    if record.stage == "production":
        raise RegistryError(
            f"{model_name} v{version} is the production version: promote another version or "
            "roll back instead, so that a production version always exists"
        )
    if stage == "production":
        artifacts.read_verified(record.artifact_path, record.artifact_sha256)  # never serve a bad file
        current = current_production(con, models_dir, model_name)
        if current is not None:
            set_stage(con, current, "archived", "archived", f"replaced by v{version}: {reason}", at)
    set_stage(con, record, stage, STAGE_EVENTS[stage], reason, at)
    check_single_production(con, model_name)


def previous_production(con: Con, model_name: str, exclude: int) -> int | None:
    """The version most recently demoted from production other than by a rollback."""
    return models.last_production_exit(con, model_name, exclude)


def rollback_production(con: Con, models_dir: Path, model_name: str, reason: str, at: datetime) -> int:
    """Archive the current production version and restore the previous one; returns its version."""
    current = current_production(con, models_dir, model_name)
    if current is None:
        raise RegistryError(f"model {model_name!r} has no production version to roll back")
    previous = previous_production(con, model_name, current.version)
    if previous is None:
        raise RegistryError(
            f"cannot roll back {model_name} v{current.version}: no earlier production version to restore"
        )
    restored = require(con, models_dir, model_name, previous)
    artifacts.read_verified(restored.artifact_path, restored.artifact_sha256)
    set_stage(con, current, "archived", "rolled_back", reason, at)
    set_stage(con, restored, "production", "restored", reason, at)
    check_single_production(con, model_name)
    return previous


def check_single_production(con: Con, model_name: str) -> None:
    """Last line of defence before commit: never two production versions of one name."""
    count = models.count_production(con, model_name)
    if count > 1:
        raise RegistryError(f"refusing to commit {count} production versions of {model_name!r}")


def find_identical(con: Con, models_dir: Path, row: dict[str, Any], sha256: str) -> ModelVersion | None:
    """A version of ``row``'s model that this registration would duplicate: the same artifact
    bytes, or the same training data, clean code version, parameters and features."""
    code = row.get("code_version")
    for record in reversed(fetch_versions(con, models_dir, row["model_name"])):
        if record.artifact_sha256 == sha256:
            return record
        same_inputs = (row.get("training_data_fingerprint") is not None and code and not code.endswith("+dirty")
                       and record.training_data_fingerprint == row.get("training_data_fingerprint")
                       and record.code_version == code
                       and to_json(record.params) == to_json(row.get("params") or {})
                       and to_json(record.features) == to_json(list(row.get("features") or [])))
        if same_inputs:
            return record
    return None


def reuse(con: Con, models_dir: Path, record: ModelVersion, stage: str, reason: str, at: datetime) -> ModelVersion:
    """Return ``record`` instead of a duplicate, in ``stage`` unless it already serves production."""
    add_event(con, record.model_name, record.version, "reused", record.stage, record.stage,
              f"identical model registered again: {reason}", at)
    if stage not in (record.stage, "none") and record.stage != "production":
        change_stage(con, models_dir, record.model_name, record.version, stage, reason, at)
    return require(con, models_dir, record.model_name, record.version)


def archive_orphans(con: Con, models_dir: Path, model_name: str, at: datetime) -> list[int]:
    """Archive every version left in stage ``none`` (a registration whose staging never came,
    e.g. a run killed between the two); returns their numbers."""
    orphans = fetch_versions(con, models_dir, model_name, "none")
    for record in orphans:
        set_stage(con, record, "archived", "archived",
                  "orphan: registered but never staged (an interrupted run); archived by the next registration", at)
    return [record.version for record in orphans]
