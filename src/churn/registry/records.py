"""Registry tables, the ``ModelVersion`` record and the checks every registry write applies."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from churn.store import models, tables

STAGES = tables.STAGES
# the event a stage change writes, by target stage (rollback writes rolled_back/restored)
STAGE_EVENTS: dict[str, str] = {
    "none": "demoted",
    "staging": "promoted",
    "production": "promoted",
    "archived": "archived",
}

EVENT_COLUMNS = models.EVENT_COLUMNS
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_EVENT = re.compile(r"^[a-z][a-z_]{0,39}$")


class RegistryError(Exception):
    """A registry request that cannot be honoured, explained for a person."""


class ArtifactIntegrityError(RegistryError):
    """A model artifact is missing or its bytes differ from the sha256 the registry recorded."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model, as stored in ``ml_pipeline.models``."""

    model_name: str
    version: int
    stage: str
    metrics: dict[str, Any]
    params: dict[str, Any]
    features: list[str]
    training_data_fingerprint: str | None
    code_version: str | None
    artifact_path: Path
    artifact_sha256: str
    created_at: datetime
    updated_at: datetime

    @property
    def marker(self) -> str:
        """``v<version>:<sha256>``: changes whenever a different artifact is in this slot."""
        return f"v{self.version}:{self.artifact_sha256}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (paths and timestamps as strings) for the API and dashboards."""
        out = asdict(self)
        out["artifact_path"] = str(self.artifact_path)
        out["created_at"] = self.created_at.isoformat()
        out["updated_at"] = self.updated_at.isoformat()
        return out


def utcnow() -> datetime:
    """Naive UTC timestamp (the TIMESTAMP columns hold UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def check_name(model_name: str) -> str:
    """Model names become folder names, so only safe characters are allowed."""
    if not isinstance(model_name, str) or not _NAME.match(model_name):
        raise RegistryError(
            f"invalid model name {model_name!r}: use letters, digits, '_', '-', '.' (max 100)"
        )
    return model_name


def check_stage(stage: str) -> str:
    """Refuse anything but the four registry stages."""
    if stage not in STAGES:
        raise RegistryError(f"unknown stage {stage!r}: expected one of {', '.join(STAGES)}")
    return stage


def check_reason(reason: str) -> str:
    """Every change is explained: an empty reason is refused."""
    if not isinstance(reason, str) or not reason.strip():
        raise RegistryError("a non-empty reason is required for every registry change")
    return reason.strip()


def check_event(event: str) -> str:
    """Event names are short lower-case words (e.g. ``kept``)."""
    if not isinstance(event, str) or not _EVENT.match(event):
        raise RegistryError(f"invalid event name {event!r}: use lower-case letters and '_'")
    return event


def as_version(version: int | str) -> int:
    """Accept ``3``, ``"3"`` or ``"v3"``; versions are positive integers."""
    if isinstance(version, str) and re.fullmatch(r"v?\d+", version.strip()):
        version = int(version.strip().lstrip("v"))
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RegistryError(f"invalid version {version!r}: expected a positive integer")
    return version


def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays unwrapped, NaN/inf as null, other objects as str."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _jsonable(value.tolist())  # numpy scalar or array
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; a metric that is undefined is stored as null
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # e.g. an estimator inside sklearn get_params()


def to_json(value: Any) -> str:
    """Deterministic JSON text for the metrics/params/features columns."""
    return json.dumps(_jsonable(value), sort_keys=True, allow_nan=False)


def fetch_versions(
    con: duckdb.DuckDBPyConnection, models_dir: Path, model_name: str | None = None, stage: str | None = None
) -> list[ModelVersion]:
    """Registered versions (optionally of one name and/or in one stage), by name and version."""
    return [_from_row(row, models_dir) for row in models.select_versions(con, model_name, stage)]


def _from_row(row: tuple[Any, ...], models_dir: Path) -> ModelVersion:
    name, version, stage, metrics, params, features, fingerprint, code, path, sha, created, updated = row
    return ModelVersion(
        model_name=name,
        version=int(version),
        stage=stage,
        metrics=json.loads(metrics),
        params=json.loads(params),
        features=json.loads(features),
        training_data_fingerprint=fingerprint,
        code_version=code,
        artifact_path=models_dir / path,
        artifact_sha256=sha,
        created_at=created,
        updated_at=updated,
    )
