"""The production model, held in memory and swapped when the registry's production changes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import numpy as np

from churn.features.spec import feature_docs
from churn.modeling.lifecycle import load_predictor
from churn.modeling.predict import ChurnPredictor
from churn.registry import ModelRegistry, ModelVersion, RegistryError
from churn.serving.errors import ServiceUnavailable, scrub
from churn.store import materialize, offline
from churn.store.warehouse import WarehouseError

log = logging.getLogger("churn.serving")


@dataclass(frozen=True)
class LoadedModel:
    """One loaded production version; replaced as a whole, so a request never sees a mix."""

    predictor: ChurnPredictor
    record: ModelVersion
    feature_set: str
    namespace: str  # the online store's namespace: the feature spec's key for this feature set
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    docs: dict[str, dict[str, str | None]] = field(default_factory=dict)  # feature -> description, unit
    exact_form: bool = True  # the coefficient form equals the pipeline (checked on load)

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Churn probabilities: the coefficient form when it was checked equal, else the pipeline."""
        if self.exact_form:
            return self.predictor.predict_proba(x)
        return self.predictor.pipeline_proba(x)

    def proba_one(self, values: tuple[float, ...]) -> float:
        """One vector's probability (``proba`` without arrays when the coefficient form serves)."""
        if self.exact_form:
            return self.predictor.proba_one(values)
        return float(self.proba(np.array([values], dtype=float))[0])

    @property
    def serving_form(self) -> str:
        return "coefficients" if self.exact_form else "pipeline"

    @property
    def features(self) -> list[str]:
        return self.predictor.features

    @property
    def version(self) -> int:
        return self.record.version


class ModelHolder:
    """Loads ``model_name``'s production version and reloads it when its marker changes.

    ``refresh`` is cheap when nothing changed (``production_marker`` is one ``stat``), so a
    background task can call it every couple of seconds; the request path only reads ``current``.
    """

    def __init__(self, registry: ModelRegistry, model_name: str) -> None:
        self.registry = registry
        self.model_name = model_name
        self.current: LoadedModel | None = None
        self.error: str | None = None
        self._marker: str | None = None

    def require(self) -> LoadedModel:
        """The loaded model, or a 503 that says how to get one."""
        model = self.current
        if model is None:
            reason = f" ({self.error})" if self.error else ""
            raise ServiceUnavailable(
                f"no production model of {self.model_name!r} is loaded yet{reason}: run `make build` "
                "(train-model) or promote a version to production; the service picks it up by itself")
        return model

    def refresh(self) -> bool:
        """Load the production version if it changed; True when a new model was swapped in."""
        try:
            marker = self.registry.production_marker(self.model_name)
            if marker == self._marker or marker == "none":
                if marker == "none" and self.current is None:
                    self.error = "the registry has no production version yet"
                return False
            model = self._load()
        except (WarehouseError, RegistryError, duckdb.Error, OSError) as exc:
            # keep serving the model we have: a bad new artifact must not take the service down
            self.error = scrub(str(exc))
            log.warning("model refresh failed, keeping %s: %s", self._marker, exc)
            return False
        previous, self.current, self._marker, self.error = self.current, model, model.record.marker, None
        log.info("serving %s v%s (was %s)", self.model_name, model.version,
                 previous.version if previous else "none")
        return True

    def _load(self) -> LoadedModel:
        try:
            predictor, record = load_predictor(self.registry, self.model_name)
        except TypeError as exc:
            raise RegistryError(str(exc)) from None
        feature_set = record.params.get("feature_set") or offline.feature_set(self.registry.warehouse)[0]
        try:
            spec = offline.feature_spec(self.registry.warehouse)
        except (WarehouseError, duckdb.Error, ValueError) as exc:  # documentation only: never block a load
            log.warning("feature descriptions unavailable: %s", exc)
            spec = {}
        docs = feature_docs(spec, predictor.features)
        exact = predictor.coefficient_form_matches()
        if not exact:
            log.warning("%s v%s: the coefficient form differs from the pipeline; scoring with the pipeline",
                        self.model_name, record.version)
        return LoadedModel(predictor=predictor, record=record, feature_set=str(feature_set),
                           namespace=materialize.namespace(self.registry.warehouse, str(feature_set)), docs=docs,
                           exact_form=exact)
