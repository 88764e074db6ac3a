"""Model registry: versions, stages and history in DuckDB; verified artifacts on disk."""

from churn.registry.records import (
    DEFAULT_MODEL_NAME,
    STAGES,
    ArtifactIntegrityError,
    ModelVersion,
    RegistryError,
)
from churn.registry.registry import ModelRegistry

__all__ = [
    "DEFAULT_MODEL_NAME",
    "STAGES",
    "ArtifactIntegrityError",
    "ModelRegistry",
    "ModelVersion",
    "RegistryError",
]
