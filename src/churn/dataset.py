"""The dataset file: one small YAML that tells the platform what a data set is.

It names the event log (a path or glob, the user's own column names, the time zone), optional
users and subscriptions, the churn label rule, an optional feature spec file, and the snapshot
cadence and horizon. ``datasets/synthetic.yaml`` is the default; ``examples/`` holds two more.
Every key is validated (pydantic): an unknown or missing key is named together with the file.

Run ``python -m churn.dataset args FILE`` to get the ``ploomber build`` arguments of a data
set's workspace (``make build DATASET=FILE`` does this).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DEFAULT_DATASET = "synthetic"
"""The default data set; its workspace is ``data/`` and ``reports/`` themselves."""

Days = Annotated[int, Field(ge=1, le=3650)]
Column = Annotated[str, Field(min_length=1, max_length=200)]


class DatasetError(ValueError):
    """A dataset file (or the data it names) that cannot be used, with the file and key named."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventsConfig(_Strict):
    """The event log: one row per event (a purchase, a login, ...)."""

    path: str = Field(description="file or glob (CSV or Parquet), relative to the dataset file")
    user: Column = Field(description="column holding the user (customer) id; integer ids")
    time: Column = Field(description="column holding when the event happened")
    type: Column | None = Field(None, description="column holding the event type (free vocabulary)")
    value: Column | None = Field(None, description="numeric column such as an amount")
    timezone: str = Field("UTC", description="time zone of naive timestamps (IANA name)")
    time_format: str | None = Field(None, description="strptime format when times are not ISO, e.g. '%d/%m/%Y %H:%M'")


class UsersConfig(_Strict):
    """Optional users table: attributes (plan, country, ...) and signup / churn dates."""

    path: str
    user: Column
    signup: Column | None = Field(None, description="signup time; default: the user's first event")
    churned_at: Column | None = Field(None, description="explicit churn date (the cancellation rule)")
    attributes: list[Column] = Field(default_factory=list, description="free categorical columns")
    timezone: str = "UTC"
    time_format: str | None = None


class SubscriptionsConfig(_Strict):
    """Optional subscriptions: one row per subscription period (start, end or empty)."""

    path: str
    user: Column
    start: Column
    end: Column
    timezone: str = "UTC"
    time_format: str | None = None


class ChurnRule(_Strict):
    """The label rule (SPEC 8.1)."""

    rule: Literal["cancellation", "inactivity", "subscription"]
    lookback_days: Days | None = Field(
        None,
        description="inactivity: population = users active within this many days before the "
        "snapshot (default: the longest feature window)",
    )
    event_types: list[str] | None = Field(
        None, description="inactivity: only these event types count as activity (default: all)"
    )
    grace_days: Annotated[int, Field(ge=0, le=3650)] = Field(
        0, description="subscription: a new subscription within this many days of the end is a renewal"
    )

    @model_validator(mode="after")
    def _keys_fit_the_rule(self) -> ChurnRule:
        if self.rule != "inactivity" and (self.lookback_days is not None or self.event_types is not None):
            raise ValueError(f"lookback_days and event_types are for the inactivity rule, not {self.rule}")
        if self.rule != "subscription" and self.grace_days:
            raise ValueError(f"grace_days is for the subscription rule, not {self.rule}")
        if self.event_types is not None and not self.event_types:
            raise ValueError("event_types must list at least one type (or be left out)")
        return self


class SnapshotsConfig(_Strict):
    """Where feature vectors are taken: every ``cadence_days``, labels ``horizon_days`` ahead."""

    cadence_days: Days
    horizon_days: Days
    count: Annotated[int, Field(ge=3, le=500)] | None = Field(
        None, description="use only the newest this many labelled snapshots (default: all that fit)"
    )
    n_valid: Annotated[int, Field(ge=1, le=50)] = Field(2, description="newest labelled snapshots used for validation")


Bounds = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]


class QualityConfig(_Strict):
    """Quality-gate bounds; left out, they are derived from the data and reported."""

    churn_share: Bounds | None = Field(None, description="share of users with a churn date (cancellation)")
    label_rate: Bounds | None = Field(None, description="share of matured labels that are 1")

    @model_validator(mode="after")
    def _ordered(self) -> QualityConfig:
        for key in ("churn_share", "label_rate"):
            bounds = getattr(self, key)
            if bounds is not None and bounds[0] > bounds[1]:
                raise ValueError(f"{key}: lower bound {bounds[0]} is above the upper bound {bounds[1]}")
        return self


class MonitoringConfig(_Strict):
    """Alert and retraining thresholds (``env.yaml``'s are tuned for the simulator).

    Left out, a key keeps ``env.yaml``'s value, except the churn-rate alert of a data set of
    your own: the simulator's 3% would fire on every snapshot of real data, so it is off
    (1.0) unless given. Thresholds are not part of the data set's identity: changing one does
    not make another data set of the same data."""

    alert_auc_min: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="critical alert when a snapshot's AUC falls below"
    )
    alert_churn_rate_max: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="warning when a snapshot's churn (label) rate exceeds"
    )
    retrain_min_drifted: Annotated[int, Field(ge=1)] | None = Field(None, description="drifted features that trigger")
    retrain_max_auc_drop: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="AUC drop below the training validation AUC that triggers"
    )
    retrain_min_new_labels: Annotated[int, Field(ge=0)] | None = Field(
        None, description="labelled vectors newer than the training data that trigger"
    )

    def env(self, own_data: bool) -> dict[str, str]:
        """The ``env.yaml`` overrides these settings make."""
        values = self.model_dump(exclude_none=True)
        if own_data:
            values.setdefault("alert_churn_rate_max", 1.0)
        return {key: str(value) for key, value in values.items()}


class ModelConfig(_Strict):
    """The model family: logistic regression (default) or scikit-learn's gradient boosting."""

    kind: Literal["logistic", "hist_gradient_boosting"] = "logistic"


class Dataset(_Strict):
    """A validated dataset file. Paths are resolved against the file's folder."""

    name: str = Field(description="lower-case identifier; names the workspace data/<name>/")
    description: str = ""
    source: Literal["files", "synthetic"] = "files"
    events: EventsConfig | None = None
    users: UsersConfig | None = None
    subscriptions: SubscriptionsConfig | None = None
    churn: ChurnRule
    features: str | None = Field(None, description="feature spec file; default: derived from the data")
    snapshots: SnapshotsConfig
    quality: QualityConfig = QualityConfig()
    model: ModelConfig = ModelConfig()
    # thresholds, not data: outside the identity (exclude) so tuning one keeps the models valid
    monitoring: MonitoringConfig = Field(MonitoringConfig(), exclude=True)
    base_dir: Path = Field(Path("."), exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> Dataset:
        if not NAME.match(self.name):
            raise ValueError(
                f"name {self.name!r}: use lower-case letters, digits and _ (max 40), starting with a letter"
            )
        if self.source == "files" and self.events is None:
            raise ValueError("events is required (the event log) unless source is synthetic")
        if self.source == "synthetic" and (self.events or self.users or self.subscriptions):
            raise ValueError("a synthetic data set takes no events/users/subscriptions: the simulator writes them")
        if (
            self.churn.rule == "cancellation"
            and self.source == "files"
            and (self.users is None or self.users.churned_at is None)
        ):
            raise ValueError(
                "churn rule cancellation needs users.churned_at (a column with the churn date); "
                "for a log without churn dates use rule: inactivity"
            )
        if self.churn.rule == "subscription" and self.subscriptions is None:
            raise ValueError("churn rule subscription needs a subscriptions table (path, user, start, end)")
        if self.churn.event_types is not None and self.events is not None and self.events.type is None:
            raise ValueError("churn.event_types needs events.type (a column with the event type)")
        return self

    def resolve(self, path: str) -> Path:
        """A path of the file made absolute against the dataset file's folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate)

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_DATASET

    def feature_set(self, spec_name: str, version: str) -> str:
        """The offline/online feature-set name: the default data set keeps the spec version;
        others are prefixed with their name, so a shared Redis holds one namespace per data set
        (online keys are ``churn:fs:<feature set>:...``)."""
        return version if self.is_default else f"{self.name}.{spec_name}.{version}"

    def fingerprint(self, **extra: Any) -> str:
        """Content identity: the validated keys, sizes and times of the files they name, and
        ``extra`` (the synthetic generation parameters). A different data set, another seed or
        another n_users gives another fingerprint."""
        facts: dict[str, Any] = {"dataset": self.model_dump(mode="json"), "extra": extra, "files": {}}
        for part in (self.events, self.users, self.subscriptions):
            for f in sorted(self.resolve(part.path).parent.glob(Path(part.path).name)) if part else []:
                stat = f.stat()
                facts["files"][f.name] = [stat.st_size, int(stat.st_mtime)]
        if self.features:
            facts["spec"] = self.resolve(self.features).read_text() if self.resolve(self.features).exists() else None
        blob = json.dumps(facts, sort_keys=True, default=str).encode()
        return f"{self.name}:{hashlib.sha256(blob).hexdigest()[:16]}"


def _location(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _explain(path: Path, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = _location(error["loc"])
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown key {key!r} (check the spelling; README 'Bring your own data' lists the keys)")
        elif error["type"] == "missing":
            problems.append(f"missing required key {key!r}")
        else:
            problems.append(f"{key}: {error['msg'].removeprefix('Value error, ')}")
    return f"dataset file {path}: " + "; ".join(problems)


def load_dataset(path: str | Path) -> Dataset:
    """Read and validate a dataset file, or raise :class:`DatasetError` naming the file and key."""
    import yaml

    file = Path(path).expanduser()
    if not file.is_file():
        raise DatasetError(f"dataset file {file} does not exist")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise DatasetError(f"dataset file {file}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"dataset file {file}: expected a mapping of keys (name, events, churn, snapshots, ...)")
    if "base_dir" in data:
        raise DatasetError(f"dataset file {file}: unknown key 'base_dir'")
    try:
        dataset = Dataset(**data, base_dir=file.resolve().parent)
    except ValidationError as exc:
        raise DatasetError(_explain(file, exc)) from None
    if dataset.features and not dataset.resolve(dataset.features).is_file():
        raise DatasetError(
            f"dataset file {file}: features: spec file {dataset.resolve(dataset.features)} does not exist"
        )
    return dataset


def workspace(dataset: Dataset, root: str | Path = ".") -> dict[str, Path]:
    """Where a data set lives: the default one in ``data/`` and ``reports/``, others in
    ``data/<name>/`` and ``reports/<name>/`` (warehouse, registry, artifacts, Redis, receipts)."""
    base = Path(root)
    data = base / "data" if dataset.is_default else base / "data" / dataset.name
    reports = base / "reports" if dataset.is_default else base / "reports" / dataset.name
    return {"data_dir": data, "reports_dir": reports, "warehouse": data / "churn.duckdb", "models_dir": data / "models"}


def ploomber_args(path: str | Path, root: str | Path = ".") -> list[str]:
    """``--env--KEY value`` arguments that point a build at the data set and its workspace."""
    dataset = load_dataset(path)
    places = workspace(dataset, Path(root).resolve())
    args = {
        **{k: str(v) for k, v in places.items()},
        "dataset": str(Path(path).resolve()),
        "dataset_id": dataset.fingerprint(),
        "horizon_days": str(dataset.snapshots.horizon_days),
        "n_valid_snapshots": str(dataset.snapshots.n_valid),
        **dataset.monitoring.env(own_data=dataset.source == "files"),
    }
    return [part for key, value in args.items() for part in (f"--env--{key}", value)]


def cli_sets(path: str | Path, root: str | Path = ".") -> list[str]:
    """``--set KEY=value`` options that point the ``churn`` command at the data set's workspace
    (where its build wrote the warehouse, models, receipts and ``logs/last-build.json``)."""
    places = workspace(load_dataset(path), Path(root).resolve())
    return [part for key, value in places.items() for part in ("--set", f"{key}={value}")]


def main(argv: list[str] | None = None) -> int:
    """``args FILE`` prints the ploomber arguments; ``sets FILE`` the churn command's ``--set``
    options; ``data-dir FILE`` the workspace's data dir."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in {"args", "sets", "data-dir", "check"}:
        print("usage: python -m churn.dataset {args|sets|data-dir|check} DATASET.yaml", file=sys.stderr)
        return 2
    try:
        if argv[0] == "args":
            print(" ".join(ploomber_args(argv[1])))
        elif argv[0] == "sets":
            print(" ".join(shlex.quote(part) for part in cli_sets(argv[1])))
        elif argv[0] == "data-dir":
            print(workspace(load_dataset(argv[1]))["data_dir"])
        else:
            print(f"{argv[1]}: ok ({load_dataset(argv[1]).name})")
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
