"""The feature spec: declarative, point-in-time features over any timestamped tables.

A spec names its sources (a table, its entity column and its timestamp column) and its features
(source, aggregation, window, optional column and filter). Everything that ends up in SQL is
checked here first: names are plain identifiers and filter values plain scalars, so a spec can
never inject SQL. Columns are checked against the database at compile time
(:func:`churn.features.compile.check_spec_against_database`).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_VERSION = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")

COUNT_AGGREGATIONS = ("count", "count_distinct_days")
VALUE_AGGREGATIONS = ("sum", "mean", "max", "latest")  # need a numeric ``column``
RECENCY_AGGREGATIONS = ("days_since_last", "days_since_first")
AGGREGATIONS = (*COUNT_AGGREGATIONS, *VALUE_AGGREGATIONS, *RECENCY_AGGREGATIONS, "ratio")
MAX_WINDOW_DAYS = 365
RESERVED_NAMES = frozenset({"snapshot_at", "label", "label_mature", "event_timestamp"})

Scalar = str | int | float | bool


class FeatureSpecError(ValueError):
    """A feature spec that cannot be compiled, with the problem named."""


@dataclass(frozen=True)
class SourceSpec:
    """A timestamped table: ``table`` (``schema.table``) keyed by ``entity_column``."""

    table: str
    entity_column: str
    timestamp_column: str


@dataclass(frozen=True)
class FeatureDef:
    """One feature: an aggregation of ``source`` rows in ``[t - window_days, t)``.

    ``window_days=None`` means lifetime (every row before ``t``); ``filter`` maps a column to a
    value or a list of allowed values. A ratio is ``scale * numerator / denominator`` (feature
    names), ``default`` (else 0.0) when the denominator is 0. With no row in the window the
    value is ``default`` if given, else 0, except ``days_since_*``: the window length ("at least
    30 days"); lifetime ones must give a default. A ``default`` may also name another non-ratio
    feature, e.g. ``days_since_last_event`` falls back to ``tenure_days``. No output is NULL.
    """

    name: str
    aggregation: str
    source: str | None = None
    window_days: int | None = None
    column: str | None = None
    filter: dict[str, Scalar | list[Scalar]] | None = None
    numerator: str | None = None
    denominator: str | None = None
    scale: float = 1.0
    default: float | str | None = None
    description: str = ""
    unit: str = ""  # shown with the value (API explanations); empty: derived from the aggregation

    @property
    def is_ratio(self) -> bool:
        return self.aggregation == "ratio"

    def filter_items(self) -> list[tuple[str, list[Scalar]]]:
        """The filter as (column, allowed values) pairs, in a stable order."""
        return [(c, v if isinstance(v, list) else [v]) for c, v in sorted((self.filter or {}).items())]


@dataclass(frozen=True)
class FeatureSpec:
    """A versioned set of features for one entity (``version`` namespaces stored keys)."""

    name: str
    version: str
    sources: dict[str, SourceSpec]
    features: tuple[FeatureDef, ...]
    entity: str = "user_id"
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        validate_spec(self)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def key(self) -> str:
        """``name:version``, the namespace for everything stored from this spec."""
        return f"{self.name}:{self.version}"

    def feature(self, name: str) -> FeatureDef:
        return next(f for f in self.features if f.name == name)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (round-trips through :func:`load_spec`)."""
        return asdict(self)


def _ident(value: object, what: str) -> None:
    if not isinstance(value, str) or not IDENT.match(value):
        raise FeatureSpecError(f"{what} {value!r} is not a plain identifier (letters, digits, _)")


def _check_source(name: str, source: SourceSpec) -> None:
    _ident(name, "source name")
    if not isinstance(source.table, str) or not TABLE_NAME.match(source.table):
        raise FeatureSpecError(f"source {name!r}: table {source.table!r} is not schema.table")
    _ident(source.entity_column, f"source {name!r}: entity_column")
    _ident(source.timestamp_column, f"source {name!r}: timestamp_column")


def _check_filter(feature: FeatureDef) -> None:
    if feature.filter is None:
        return
    if not isinstance(feature.filter, dict) or not feature.filter:
        raise FeatureSpecError(f"feature {feature.name!r}: filter must be a non-empty mapping")
    for column, values in feature.filter_items():
        _ident(column, f"feature {feature.name!r}: filter column")
        if not values or not all(isinstance(v, Scalar) for v in values):
            raise FeatureSpecError(
                f"feature {feature.name!r}: filter {column!r} needs a value or a non-empty list "
                f"of strings/numbers/booleans, got {feature.filter[column]!r}"
            )


def _check_window(feature: FeatureDef) -> None:
    w = feature.window_days
    if w is not None and (isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= MAX_WINDOW_DAYS):
        raise FeatureSpecError(
            f"feature {feature.name!r}: invalid window_days {w!r}; use an integer 1..{MAX_WINDOW_DAYS} "
            "or null for lifetime"
        )


def _check_aggregate(spec: FeatureSpec, f: FeatureDef) -> None:
    if f.source not in spec.sources:
        raise FeatureSpecError(
            f"feature {f.name!r}: unknown source {f.source!r} (declared: {sorted(spec.sources)})"
        )
    _check_window(f)
    _check_filter(f)
    if f.numerator is not None or f.denominator is not None or f.scale != 1.0:
        raise FeatureSpecError(f"feature {f.name!r}: numerator/denominator/scale are only for ratios")
    if f.aggregation in VALUE_AGGREGATIONS and f.column is None:
        raise FeatureSpecError(f"feature {f.name!r}: {f.aggregation} needs a column")
    if f.aggregation in VALUE_AGGREGATIONS:
        _ident(f.column, f"feature {f.name!r} ({f.aggregation}) column")
    elif f.column is not None:
        raise FeatureSpecError(f"feature {f.name!r}: {f.aggregation} counts rows and takes no column")
    if f.aggregation in RECENCY_AGGREGATIONS and f.window_days is None and f.default is None:
        raise FeatureSpecError(
            f"feature {f.name!r}: a lifetime {f.aggregation} needs a default for entities with no "
            "rows (a number, or another feature's name such as a tenure feature)"
        )


def _check_ratio(spec: FeatureSpec, f: FeatureDef) -> None:
    if f.source is not None or f.window_days is not None or f.column is not None or f.filter:
        raise FeatureSpecError(f"feature {f.name!r}: a ratio takes numerator/denominator only")
    for role in ("numerator", "denominator"):
        ref = getattr(f, role)
        if ref not in spec.feature_names:
            raise FeatureSpecError(f"feature {f.name!r}: {role} {ref!r} is not a feature of this spec")
        if spec.feature(ref).is_ratio:
            raise FeatureSpecError(f"feature {f.name!r}: {role} {ref!r} is itself a ratio")
    if isinstance(f.default, str) or isinstance(f.scale, bool) or not isinstance(f.scale, int | float):
        raise FeatureSpecError(f"feature {f.name!r}: ratio scale and default must be numbers")


def _check_default(spec: FeatureSpec, f: FeatureDef) -> None:
    if f.default is None or (isinstance(f.default, int | float) and not isinstance(f.default, bool)):
        if not math.isfinite(f.default or 0.0) or not math.isfinite(f.scale):
            raise FeatureSpecError(f"feature {f.name!r}: default and scale must be finite numbers")
        return
    ref = spec.feature(f.default) if f.default in spec.feature_names else None
    if ref is None or ref.is_ratio or ref is f or isinstance(ref.default, str):
        raise FeatureSpecError(
            f"feature {f.name!r}: default {f.default!r} must be a number or the name of another "
            "non-ratio feature whose own default is a number"
        )


def validate_spec(spec: FeatureSpec) -> None:
    """Raise :class:`FeatureSpecError` naming the first problem of ``spec``."""
    _ident(spec.name, "spec name")
    _ident(spec.entity, "entity")
    if not isinstance(spec.version, str) or not _VERSION.match(spec.version):
        raise FeatureSpecError(f"spec version {spec.version!r}: use 1-32 of letters, digits, _ . -")
    if not spec.features:
        raise FeatureSpecError(f"spec {spec.name!r} declares no features")
    for name, source in spec.sources.items():
        _check_source(name, source)
    seen: set[str] = set()
    for f in spec.features:
        _ident(f.name, "feature name")
        if f.name in seen or f.name in RESERVED_NAMES or f.name == spec.entity:
            raise FeatureSpecError(f"duplicate or reserved feature name {f.name!r}")
        seen.add(f.name)
        if f.aggregation not in AGGREGATIONS:
            known = ", ".join(AGGREGATIONS)
            raise FeatureSpecError(f"feature {f.name!r}: unknown aggregation {f.aggregation!r} (known: {known})")
    for f in spec.features:
        (_check_ratio if f.is_ratio else _check_aggregate)(spec, f)
        _check_default(spec, f)


_T = TypeVar("_T")


def _build(kind: type[_T], data: Any, where: str) -> _T:
    if not isinstance(data, dict):
        raise FeatureSpecError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(kind)}  # type: ignore[arg-type]  # kind is a dataclass
    unknown = sorted(set(data) - known)
    if unknown:
        raise FeatureSpecError(f"{where}: unknown key(s) {unknown} (allowed: {sorted(known)})")
    try:
        return kind(**data)
    except TypeError as exc:  # a required key is missing
        raise FeatureSpecError(f"{where}: {exc}") from None


def load_spec(source: str | PathLike[str] | dict[str, Any]) -> FeatureSpec:
    """A validated spec from a mapping or a YAML file (the only file this package reads)."""
    if isinstance(source, dict):
        data = source
    else:
        import yaml  # only needed for spec files

        data = yaml.safe_load(Path(source).read_text())
    if not isinstance(data, dict):
        raise FeatureSpecError(f"feature spec {source!r} is not a mapping")
    data = dict(data)
    sources = data.pop("sources", None) or {}
    features = data.pop("features", None) or []
    if not isinstance(sources, dict) or not isinstance(features, list | tuple):
        raise FeatureSpecError("feature spec: 'sources' must be a mapping and 'features' a list")
    data["sources"] = {n: _build(SourceSpec, s, f"source {n!r}") for n, s in sources.items()}
    data["features"] = [_build(FeatureDef, f, f"feature #{i + 1}") for i, f in enumerate(features)]
    return _build(FeatureSpec, data, "feature spec")


# units of features whose spec gives none, by aggregation (value aggregations keep their column's unit)
DERIVED_UNITS = {"count": "count", "count_distinct_days": "days", "days_since_last": "days",
                 "days_since_first": "days", "ratio": "ratio"}


def feature_docs(spec: dict[str, Any], features: list[str]) -> dict[str, dict[str, str | None]]:
    """Each feature's description and unit from the feature spec (None where it says nothing)."""
    defs = {f.get("name"): f for f in spec.get("features", []) if isinstance(f, dict)}
    docs: dict[str, dict[str, str | None]] = {}
    for name in features:
        f = defs.get(name, {})
        docs[name] = {"description": f.get("description") or None,
                      "unit": f.get("unit") or DERIVED_UNITS.get(f.get("aggregation", "")) or None}
    return docs
