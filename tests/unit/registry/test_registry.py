"""Model registry: versions, one production per name, events with reasons, verified artifacts."""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path

import joblib
import pytest

from churn.registry import ArtifactIntegrityError, ModelRegistry, ModelVersion, RegistryError, writes

NAME = "churn_model"


@pytest.fixture()
def registry(warehouse, tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(warehouse, tmp_path / "models")


def _register(registry: ModelRegistry, count: int = 1, name: str = NAME) -> list[ModelVersion]:
    return [
        registry.register_model(name, model={"coef": [i, i + 1]}, metrics={"auc": 0.7 + i / 100})
        for i in range(count)
    ]


def _state(registry: ModelRegistry) -> tuple:
    """Everything a change could touch: rows, events and artifact bytes."""
    models = [(m.model_name, m.version, m.stage, m.artifact_sha256, m.updated_at) for m in registry.list_models()]
    events = registry.list_events().to_dict("records")
    files = {p: p.read_bytes() for p in sorted(registry.models_dir.rglob("*")) if p.is_file()}
    return models, events, files


def _stages(registry: ModelRegistry, name: str = NAME) -> dict[int, str]:
    return {m.version: m.stage for m in registry.list_models(name)}


def test_register_and_get_round_trip_keeps_every_field(registry):
    """What is registered comes back field for field, with the artifact's sha256 and path."""
    registered = registry.register_model(
        NAME, model={"w": [1.5, 2.5]}, metrics={"auc": 0.81, "brier": float("nan")},
        params={"C": 0.5}, features=["logins_30d", "tenure_days"],
        training_data_fingerprint="8000:123", code_version="abc123",
    )
    got = registry.get_model(NAME, 1)
    assert got == registered
    assert (got.version, got.stage, got.features) == (1, "none", ["logins_30d", "tenure_days"])
    assert got.metrics == {"auc": 0.81, "brier": None}  # JSON has no NaN
    assert (got.params, got.training_data_fingerprint, got.code_version) == ({"C": 0.5}, "8000:123", "abc123")
    assert got.artifact_path == registry.models_dir / NAME / "v1.joblib"
    assert joblib.load(got.artifact_path) == {"w": [1.5, 2.5]}
    assert len(got.artifact_sha256) == 64 and got.created_at == got.updated_at
    assert json.loads(json.dumps(got.to_dict()))["artifact_path"] == str(got.artifact_path)


def test_register_with_model_path_copies_the_file_like_the_original_platform(registry, tmp_path):
    """The original call ``register_model(model_name=, version=, model_path=, metrics=)`` works and
    the registry keeps its own copy, so later edits of the source file do not matter."""
    source = tmp_path / "trained.pkl"
    joblib.dump({"kind": "logreg"}, source)
    record = registry.register_model(model_name=NAME, version=3, model_path=source, metrics={"auc": 0.8})
    source.write_bytes(b"changed later")
    model, loaded = registry.load_model(NAME, version=3)
    assert model == {"kind": "logreg"} and loaded.version == 3
    assert record.artifact_path == registry.models_dir / NAME / "v3.pkl"


def test_versions_auto_increment_per_model_name(registry):
    """version=None takes the next number, counted separately for each model name."""
    assert [m.version for m in _register(registry, 3)] == [1, 2, 3]
    assert [m.version for m in _register(registry, 2, name="other")] == [1, 2]
    registry.register_model(NAME, version=7, model={})
    assert registry.register_model(NAME, model={}).version == 8


def test_registering_an_existing_version_is_refused_and_changes_nothing(registry):
    """A duplicate (name, version) raises a clear error; no row, event or artifact byte changes."""
    _register(registry, 2)
    before = _state(registry)
    with pytest.raises(RegistryError, match="churn_model v2 is already registered"):
        registry.register_model(NAME, version=2, model={"other": True})
    assert _state(registry) == before


def test_register_needs_exactly_one_of_model_and_model_path(registry, tmp_path):
    """Neither or both sources, or a missing file, are refused before anything is written."""
    with pytest.raises(RegistryError, match="exactly one"):
        registry.register_model(NAME)
    with pytest.raises(RegistryError, match="does not exist"):
        registry.register_model(NAME, model_path=tmp_path / "nope.joblib")
    assert registry.list_models() == [] and not registry.models_dir.exists()


def test_promote_to_production_archives_the_previous_production(registry):
    """Promoting v2 archives v1 in the same change, and both moves are events."""
    _register(registry, 3)
    registry.promote_model("churn_model", 1, "production", "first model")
    registry.promote_model("churn_model", 2, "staging", "candidate")
    registry.promote_model("churn_model", 2, "production", "beats v1 in A/B test")
    assert _stages(registry) == {1: "archived", 2: "production", 3: "none"}
    assert registry.get_production(NAME).version == 2
    last = registry.list_events(NAME).tail(2)
    assert last[["version", "event", "from_stage", "to_stage"]].values.tolist() == [
        [1, "archived", "production", "archived"],
        [2, "promoted", "staging", "production"],
    ]


def test_random_promotions_always_leave_exactly_one_production(registry):
    """After any sequence of promotions (refused ones included) there is exactly one
    production version once there has been one."""
    _register(registry, 4)
    rng, seen_production = random.Random(11), False
    for step in range(15):
        version, stage = rng.randint(1, 4), rng.choice(["staging", "production", "archived", "none"])
        with contextlib.suppress(RegistryError):  # e.g. demoting the production version directly is refused
            registry.promote_model("churn_model", version, stage, f"step {step}")
        count = list(_stages(registry).values()).count("production")
        seen_production |= count > 0
        assert count == (1 if seen_production else 0)
    assert seen_production


def test_every_change_writes_an_event_with_its_reason(registry):
    """Register, promote, archive, roll back and recorded decisions each leave a reasoned event."""
    _register(registry, 3)
    registry.promote_model("churn_model", 1, "production", "initial release")
    registry.promote_model("churn_model", 2, "production", "retrained on drift")
    registry.archive_model(NAME, 3, "worse than v2")
    registry.rollback(NAME, "v2 misbehaves in production")
    registry.record_event(NAME, 1, "kept", "A/B test: control kept")
    events = registry.list_events(NAME)
    assert events["event_id"].is_monotonic_increasing and events["reason"].str.strip().ne("").all()
    assert events["event"].tolist() == [
        "registered", "registered", "registered", "promoted", "archived", "promoted",
        "archived", "rolled_back", "restored", "kept",
    ]
    assert "retrained on drift" in events["reason"].iloc[4]  # the replaced version says why


def test_empty_reason_is_refused(registry):
    """Every change needs a reason: blank ones are refused and change nothing."""
    _register(registry)
    before = _state(registry)
    for call in (lambda: registry.promote_model("churn_model", 1, "staging", "  "),
                 lambda: registry.archive_model(NAME, 1, ""),
                 lambda: registry.register_model(NAME, model={}, reason="")):
        with pytest.raises(RegistryError, match="reason"):
            call()
    assert _state(registry) == before


def test_rollback_restores_the_previous_production(registry):
    """Rollback archives the current production and brings back the one it replaced."""
    _register(registry, 2)
    registry.promote_model("churn_model", 1, "production", "initial")
    registry.promote_model("churn_model", 2, "production", "retrained")
    restored = registry.rollback(NAME, "v2 error rate too high")
    assert restored.version == 1 and restored.stage == "production"
    assert _stages(registry) == {1: "production", 2: "archived"}
    assert registry.load_model(NAME)[1].version == 1


def test_repeated_rollbacks_walk_back_instead_of_toggling(registry):
    """A version demoted by a rollback is never brought back by the next rollback."""
    _register(registry, 3)
    for version in (1, 2, 3):
        registry.promote_model("churn_model", version, "production", f"release v{version}")
    assert registry.rollback(NAME, "v3 bad").version == 2
    assert registry.rollback(NAME, "v2 bad too").version == 1
    with pytest.raises(RegistryError, match="no earlier production version"):
        registry.rollback(NAME, "and v1?")


def test_rollback_without_history_errors(registry):
    """No production at all, or a first production with nothing before it: a clear error."""
    _register(registry, 2)
    with pytest.raises(RegistryError, match="no production version to roll back"):
        registry.rollback(NAME, "nothing deployed")
    registry.promote_model("churn_model", 2, "production", "first release")
    before = _state(registry)
    with pytest.raises(RegistryError, match="no earlier production version"):
        registry.rollback(NAME, "try anyway")
    assert _state(registry) == before


def test_promote_unknown_version_or_stage_errors_and_leaves_registry_unchanged(registry):
    """Unknown versions, stages and names are named in the error; nothing changes."""
    _register(registry, 2)
    registry.promote_model("churn_model", 1, "production", "initial")
    before = _state(registry)
    with pytest.raises(RegistryError, match=r"no version 9 \(versions: 1, 2\)"):
        registry.promote_model("churn_model", 9, "production", "typo")
    with pytest.raises(RegistryError, match="unknown stage 'prod'"):
        registry.promote_model("churn_model", 2, "prod", "typo")
    with pytest.raises(RegistryError, match="no model named 'nope'"):
        registry.promote_model("nope", 1, "staging", "typo")
    assert _state(registry) == before


def test_production_version_cannot_be_archived_directly(registry):
    """Archiving production would leave none: refused, pointing at promote or rollback."""
    _register(registry)
    registry.promote_model("churn_model", 1, "production", "initial")
    with pytest.raises(RegistryError, match="roll back instead"):
        registry.archive_model(NAME, 1, "retire")
    assert registry.get_production(NAME).version == 1


def test_load_returns_the_registered_model_and_its_record(registry):
    """load_model gives back the pickled object of the production (or a given) version."""
    _register(registry, 2)
    registry.promote_model("churn_model", 2, "production", "best")
    model, record = registry.load_model(NAME)
    assert model == {"coef": [1, 2]} and record.version == 2
    assert registry.load_model(NAME, version=1)[0] == {"coef": [0, 1]}


def test_tampered_artifact_is_refused_on_load(registry):
    """Changed bytes are detected before unpickling; the error names path and both hashes."""
    (record,) = _register(registry)
    data = bytearray(record.artifact_path.read_bytes())
    data[-2] ^= 0xFF
    record.artifact_path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError) as err:
        registry.load_model(NAME, version=1)
    assert str(record.artifact_path) in str(err.value) and record.artifact_sha256 in str(err.value)
    assert "actual" in str(err.value)


def test_missing_artifact_is_refused_on_load_and_on_promotion(registry):
    """A deleted artifact can neither be loaded nor promoted to production."""
    (record,) = _register(registry)
    record.artifact_path.unlink()
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        registry.load_model(NAME, version=1)
    with pytest.raises(ArtifactIntegrityError, match=str(record.artifact_path)):
        registry.promote_model("churn_model", 1, "production", "deploy")
    assert registry.get_production(NAME) is None


def test_failure_in_the_middle_of_promote_leaves_registry_unchanged(registry, monkeypatch):
    """If the promotion fails right after the old production was demoted, the transaction
    rolls back: the old version is still production and no event was kept."""
    _register(registry, 2)
    registry.promote_model("churn_model", 1, "production", "initial")
    before = _state(registry)
    real_set_stage = writes.set_stage

    def demote_then_crash(con, record, *args, **kwargs):
        real_set_stage(con, record, *args, **kwargs)
        raise RuntimeError("crash after the demotion statement")

    monkeypatch.setattr(writes, "set_stage", demote_then_crash)
    with pytest.raises(RuntimeError, match="crash"):
        registry.promote_model("churn_model", 2, "production", "retrained")
    assert _state(registry) == before
    assert registry.get_production(NAME).version == 1


def test_failed_registration_leaves_no_row_and_no_artifact(registry, monkeypatch):
    """A registration that fails after its artifact was moved into place removes the file
    again with the rolled-back rows, so no orphan can shadow a later version."""
    _register(registry)
    before = _state(registry)

    def crash(*args, **kwargs):
        raise RuntimeError("crash while promoting the new version")

    monkeypatch.setattr(writes, "change_stage", crash)
    with pytest.raises(RuntimeError, match="crash"):
        registry.register_model(NAME, model={"new": 1}, stage="production", reason="release")
    assert _state(registry) == before
    assert not (registry.models_dir / NAME / "v2.joblib").exists()


def test_production_marker_changes_only_when_production_changes(registry):
    """The API's change detector: 'none', then v<version>:<sha256> of production."""
    assert registry.production_marker(NAME) == "none"
    first, second = _register(registry, 2)
    registry.promote_model("churn_model", 1, "production", "initial")
    marker = registry.production_marker(NAME)
    assert marker == f"v1:{first.artifact_sha256}"
    registry.promote_model("churn_model", 2, "staging", "candidate")
    assert registry.production_marker(NAME) == marker
    registry.promote_model("churn_model", 2, "production", "winner")
    assert registry.production_marker(NAME) == f"v2:{second.artifact_sha256}"


def test_production_marker_is_cheap_while_nothing_changes(registry, monkeypatch):
    """Polling an unchanged registry opens no DuckDB connection; any write is noticed."""
    _register(registry, 2)
    registry.promote_model("churn_model", 1, "production", "initial")
    opened, real_reader = [], registry.warehouse.reader
    monkeypatch.setattr(registry.warehouse, "reader", lambda: opened.append(1) or real_reader())
    for _ in range(5):
        assert registry.production_marker(NAME).startswith("v1:")
    assert len(opened) == 1
    registry.promote_model("churn_model", 2, "production", "winner")
    assert registry.production_marker(NAME).startswith("v2:") and len(opened) == 2


def test_register_straight_into_production_keeps_one_production(registry):
    """stage='production' at registration archives the current production in the same change."""
    _register(registry)
    registry.promote_model("churn_model", 1, "production", "initial")
    registry.register_model(NAME, model={"new": 1}, stage="production", reason="hotfix release")
    assert _stages(registry) == {1: "archived", 2: "production"}


def test_reads_on_an_empty_warehouse_return_nothing(registry):
    """Before anything is registered, reads are empty rather than errors (get_model explains)."""
    assert registry.list_models() == [] and registry.get_production(NAME) is None
    assert registry.list_events().empty
    with pytest.raises(RegistryError, match="no model named"):
        registry.get_model(NAME)


def _idempotent(registry: ModelRegistry, model: object, stage: str = "staging", **row) -> ModelVersion:
    facts = {"training_data_fingerprint": "6900:123", "code_version": "abc1234", "params": {"C": 1.0},
             "features": ["a", "b"], **row}
    return registry.register_model(NAME, model=model, stage=stage, reason="train-model", idempotent=True, **facts)


def test_registering_the_same_model_again_reuses_its_version(registry):
    """A re-run of a training phase (same artifact bytes) gets the existing version back: one
    row per artifact hash, the reuse recorded as an event, and a production version stays so."""
    first = _idempotent(registry, {"coef": [1, 2]}, stage="production")
    again = _idempotent(registry, {"coef": [1, 2]}, stage="staging")
    assert again.version == first.version and again.stage == "production"
    shas = [m.artifact_sha256 for m in registry.list_models(NAME)]
    assert len(shas) == len(set(shas)) == 1
    assert registry.list_events(NAME).event.iloc[-1] == "reused"


def test_same_training_data_and_clean_code_reuse_even_if_the_bytes_differ(registry):
    """Same data fingerprint, clean code version, parameters and features: reused. A dirty
    working tree, other data or other parameters: a new version."""
    first = _idempotent(registry, {"coef": [1, 2]})
    assert _idempotent(registry, {"coef": [1, 2], "pickled": "again"}).version == first.version
    assert _idempotent(registry, {"coef": [3]}, code_version="abc1234+dirty").version == 2
    assert _idempotent(registry, {"coef": [4]}, training_data_fingerprint="7000:1").version == 3
    assert _idempotent(registry, {"coef": [5]}, params={"C": 0.1}).version == 4


def test_an_archived_identical_version_comes_back_to_the_requested_stage(registry):
    first = _idempotent(registry, {"coef": [1]})
    registry.archive_model(NAME, first.version, "lost its A/B test")
    assert _idempotent(registry, {"coef": [1]}, stage="staging").stage == "staging"


def test_versions_left_in_stage_none_are_archived_with_a_reason(registry):
    """A registration whose staging never came (a run killed in between, with the old two-step
    flow) does not stay in stage none: the next pipeline registration archives it, saying why."""
    orphan = registry.register_model(NAME, model={"orphan": 1})
    assert orphan.stage == "none"
    _idempotent(registry, {"coef": [1]})
    assert _stages(registry) == {1: "archived", 2: "staging"}
    archived = registry.list_events(NAME).query("version == 1 and event == 'archived'")
    assert "orphan" in archived.reason.iloc[0]


def test_register_and_stage_are_one_transaction(registry, monkeypatch):
    """A crash while staging a new version leaves neither the row (in stage none) nor its file."""
    before = _state(registry)

    def crash(*args, **kwargs):
        raise RuntimeError("killed while staging")

    monkeypatch.setattr(writes, "change_stage", crash)
    with pytest.raises(RuntimeError, match="killed"):
        _idempotent(registry, {"coef": [1]})
    assert _state(registry) == before
