"""One predictor shared by batch scoring and the API: probabilities, risk bands, explanations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

DEFAULT_BANDS: tuple[float, float] = (0.02, 0.1)
"""(medium, high) probability bounds used when a model does not carry its own. Models trained
here carry medium = the training churn rate, high = the max-F1 decision threshold."""


def log1p_columns(x: np.ndarray, columns: list[int] | tuple[int, ...]) -> np.ndarray:
    """``x`` (n, k) with ``sign(v) * log1p(|v|)`` in ``columns`` (monotone; 0 stays 0)."""
    out = np.array(x, dtype=float, copy=True, ndmin=2)
    if len(columns):
        cols = list(columns)
        out[:, cols] = np.sign(out[:, cols]) * np.log1p(np.abs(out[:, cols]))
    return out


@dataclass
class ChurnPredictor:
    """A fitted scaling + logistic-regression pipeline with its feature order and version.

    ``model_name`` is the registry name it is trained for (env.yaml ``model_name``); ``version``
    is None until the registry assigns one, and the loaded predictor carries it
    (:func:`churn.modeling.lifecycle.load_predictor`). ``log_features`` enter the pipeline as
    ``log1p`` (counts, amounts, day measures); the API and batch scoring pass raw feature values,
    the predictor transforms them.
    """

    pipeline: Pipeline
    features: list[str]
    model_name: str
    version: int | None = None
    bands: tuple[float, float] = DEFAULT_BANDS
    log_features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.log_features) - set(self.features)
        if unknown:
            raise ValueError(f"log_features {sorted(unknown)} are not features of the model")
        self._log_idx = [i for i, f in enumerate(self.features) if f in set(self.log_features)]
        self._linear = "scale" in self.pipeline.named_steps
        if not self._linear:  # e.g. gradient boosting: scored through sklearn, explained by nothing
            return
        scale, model = self.pipeline.named_steps["scale"], self.pipeline.named_steps["model"]
        # Precomputed so scoring one vector is a dot product, not a sklearn call (~50x faster).
        self._mean = np.asarray(scale.mean_, dtype=float)
        self._scale = np.asarray(scale.scale_, dtype=float)
        self._coef = np.asarray(model.coef_[0], dtype=float)
        self._intercept = float(model.intercept_[0])
        self._terms = self._python_terms()

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickling: artifacts saved before ``proba_one`` existed get its terms here."""
        self.__dict__.update(state)
        if state.get("_linear", True) and "_terms" not in state and "_coef" in state:
            self._terms = self._python_terms()

    def _python_terms(self) -> list[tuple[bool, float, float, float]]:
        """Per feature: (log1p input?, mean, scale, coefficient) as Python floats, for ``proba_one``."""
        logged = set(getattr(self, "_log_idx", []))
        columns = zip(self._mean.tolist(), self._scale.tolist(), self._coef.tolist(), strict=True)
        return [(i in logged, mean, scale, coef) for i, (mean, scale, coef) in enumerate(columns)]

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Raw feature values -> the model's inputs (log1p on ``log_features``)."""
        idx: list[int] = getattr(self, "_log_idx", [])  # artifacts pickled before log_features existed
        return log1p_columns(x, idx) if idx else np.asarray(x, dtype=float)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Log-odds for a (n, n_features) array in ``self.features`` order."""
        if not getattr(self, "_linear", True):
            p = np.clip(self.pipeline_proba(x), 1e-12, 1 - 1e-12)
            logit: np.ndarray = np.log(p / (1 - p))
            return logit
        logits: np.ndarray = ((self.transform(x) - self._mean) / self._scale) @ self._coef + self._intercept
        return logits

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Churn probabilities for a (n, n_features) array."""
        proba: np.ndarray = 1.0 / (1.0 + np.exp(-self.logits(np.atleast_2d(x))))
        return proba

    def proba_one(self, vector: Sequence[float]) -> float:
        """One vector's probability from the coefficient form in plain Python: at a dozen
        features numpy's per-call overhead is most of ``predict_proba``'s time (the API's single
        prediction). Equal to ``predict_proba`` up to rounding (the sum's order)."""
        terms = self._terms
        logit = 0.0
        for (log, mean, scale, coef), value in zip(terms, vector, strict=True):
            if log:
                value = math.copysign(math.log1p(abs(value)), value)
            logit += (value - mean) / scale * coef
        return 1.0 / (1.0 + math.exp(-(logit + self._intercept)))

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the features -> user_id, probability, risk_band."""
        p = self.predict_proba(frame[self.features].to_numpy(float))
        return pd.DataFrame({"user_id": frame["user_id"].to_numpy(), "probability": p,
                             "risk_band": risk_bands(p, self.bands)})

    def explain(self, vector: np.ndarray) -> pd.DataFrame:
        """Exact per-feature contributions to the logit (coefficient x scaled value), largest
        absolute first; with the intercept they sum to the model's logit."""
        if not getattr(self, "_linear", True):
            raise NotImplementedError("per-feature contributions exist only for the logistic regression model")
        scaled = (self.transform(np.atleast_2d(vector))[0] - self._mean) / self._scale
        table = pd.DataFrame({"feature": self.features, "value": np.asarray(vector, dtype=float),
                              "contribution": scaled * self._coef})
        return table.reindex(table["contribution"].abs().sort_values(ascending=False).index)

    @property
    def intercept(self) -> float:
        return self._intercept

    def coefficient_form_matches(self, n_probes: int = 256, tolerance: float = 1e-9) -> bool:
        """True when the coefficient form (a dot product: what ``logits`` computes and the API
        scores with) gives the sklearn pipeline's probabilities, fed the predictor's own log1p
        inputs, on probe vectors spread around the training data. The pipeline is the source of
        truth; a model without scaling + logistic regression (e.g. gradient boosting) has no
        coefficient form, and one whose pipeline does more (a transform before the scaler) has a
        wrong one: both are scored by the pipeline (:meth:`pipeline_proba`). Both coefficient
        paths are checked: the vectorised ``predict_proba`` and the single-vector ``proba_one``."""
        if "scale" not in self.pipeline.named_steps:
            return False
        n = len(self.features)
        scaler = self.pipeline.named_steps["scale"]
        center = np.asarray(getattr(scaler, "mean_", np.zeros(n)), dtype=float)
        spread = np.asarray(getattr(scaler, "scale_", np.ones(n)), dtype=float)
        probes = np.abs(center + spread * np.random.default_rng(0).standard_normal((n_probes, n)) * 2)
        reference = self.pipeline_proba(probes)
        one_by_one = np.array([self.proba_one(p) for p in probes[:32].tolist()])  # the single-vector path too
        return bool(max(np.max(np.abs(self.predict_proba(probes) - reference)),
                        np.max(np.abs(one_by_one - reference[:32]))) <= tolerance)

    def pipeline_proba(self, x: np.ndarray) -> np.ndarray:
        """Churn probabilities from the sklearn pipeline itself (log1p inputs applied)."""
        proba: np.ndarray = self.pipeline.predict_proba(self.transform(np.atleast_2d(x)))[:, 1]
        return proba


def risk_band(probability: float, bands: tuple[float, float] = DEFAULT_BANDS) -> str:
    """:func:`risk_bands` for one probability."""
    return "high" if probability >= bands[1] else "medium" if probability >= bands[0] else "low"


def risk_bands(probabilities: np.ndarray, bands: tuple[float, float] = DEFAULT_BANDS) -> np.ndarray:
    """'high' at or above ``bands[1]``, 'medium' at or above ``bands[0]``, else 'low'."""
    p = np.asarray(probabilities, dtype=float)
    return np.select([p >= bands[1], p >= bands[0]], ["high", "medium"], default="low")
