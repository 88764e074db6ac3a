"""A model belongs to the data set it was trained on: another data set (or the synthetic one
with another seed or size) puts its own model in production, and the old one is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from churn.modeling.lifecycle import (
    DatasetMismatchError,
    archive_other_datasets,
    check_dataset,
    dataset_params,
    production_stage_for,
)
from churn.registry import ModelRegistry

SMALL = {"name": "synthetic", "fingerprint": "synthetic:aaaa"}  # n_users 1000
LARGE = {"name": "synthetic", "fingerprint": "synthetic:bbbb"}  # n_users 100000


def _register(registry: ModelRegistry, info: dict, stage: str):
    return registry.register_model(
        "churn_model", model={"w": 1}, params=dataset_params(info), stage=stage, reason="test"
    )


def test_a_model_of_another_identity_is_replaced_in_production_and_refused(warehouse, tmp_path: Path) -> None:
    registry = ModelRegistry(warehouse, tmp_path / "models")
    assert production_stage_for(None, SMALL)[0] == "production"
    old = _register(registry, SMALL, "production")
    stale_candidate = _register(registry, SMALL, "staging")
    assert production_stage_for(registry.get_production("churn_model"), SMALL) == (
        "staging",
        "candidate from train-model",
    )
    stage, why = production_stage_for(registry.get_production("churn_model"), LARGE)
    assert stage == "production" and "synthetic:aaaa" in why and "synthetic:bbbb" in why
    new = _register(registry, LARGE, "none")
    registry.promote_model("churn_model", new.version, stage, why)
    assert archive_other_datasets(registry, "churn_model", LARGE) == [stale_candidate.version]
    assert registry.get_production("churn_model").version == new.version
    with pytest.raises(DatasetMismatchError, match=r"v1 was trained on data set synthetic:aaaa.*holds synthetic:bbbb"):
        check_dataset(registry.get_model("churn_model", old.version), LARGE)
    check_dataset(registry.get_production("churn_model"), LARGE)  # its own data: fine
