"""Model registry: versions, stages and history in DuckDB; verified artifacts on disk."""

from churn.registry.records import (
    STAGES,
    ArtifactIntegrityError,
    ModelVersion,
    RegistryError,
)
from churn.registry.registry import ModelRegistry

__all__ = [
    "STAGES",
    "ArtifactIntegrityError",
    "ModelRegistry",
    "ModelVersion",
    "RegistryError",
]
