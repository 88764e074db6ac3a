"""The project the CLI works on: its folder, its ``env.yaml`` defaults, and the stores they name.

This is the command line's edge: the one place of the CLI that reads YAML (the library modules
take explicit arguments).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from churn import params as params_mod

if TYPE_CHECKING:
    from churn.registry import ModelRegistry
    from churn.store.warehouse import Warehouse

PIPELINE = "pipeline.yaml"
ENV = "env.yaml"


class ProjectError(RuntimeError):
    """The project folder or its configuration cannot be used."""


def find_root(start: Path | None = None) -> Path:
    """The nearest folder from ``start`` (default: the working directory) up with a pipeline.yaml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PIPELINE).is_file():
            return folder
    raise ProjectError(f"no {PIPELINE} in {here} or above: run inside the project or pass --project")


def load_defaults(root: Path) -> dict[str, Any]:
    """``env.yaml`` with ``{{here}}`` resolved to the project folder."""
    path = root / ENV
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ProjectError(f"{path} is missing") from None
    data = yaml.safe_load(text.replace("{{here}}", str(root))) or {}
    if not isinstance(data, dict):
        raise ProjectError(f"{path} must be a mapping of parameter names to values")
    return data


@dataclass
class Project:
    """A project folder plus parameter overrides, validated on creation."""

    root: Path
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.defaults = load_defaults(self.root)
        self.params = params_mod.validate(self.defaults, self.overrides)

    def path(self, key: str) -> Path:
        return Path(str(self.params[key]))

    @property
    def data_dir(self) -> Path:
        return self.path("data_dir")

    @property
    def reports_dir(self) -> Path:
        return self.path("reports_dir")

    @property
    def models_dir(self) -> Path:
        return self.path("models_dir")

    @property
    def model_name(self) -> str:
        return str(self.params["model_name"])

    @property
    def receipts_dir(self) -> Path:
        return self.data_dir / "products"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @cached_property
    def warehouse(self) -> Warehouse:  # imported lazily: the CLI's --help stays fast
        from churn.store.warehouse import Warehouse

        return Warehouse(self.path("warehouse"))

    @cached_property
    def registry(self) -> ModelRegistry:
        from churn.registry import ModelRegistry

        return ModelRegistry(self.warehouse, self.models_dir)

    def redis_url(self) -> str:
        """The configured Redis URL, else the embedded server's (not started here)."""
        from churn.store.redis_server import EmbeddedRedis

        return str(self.params.get("redis_url") or "") or EmbeddedRedis(self.data_dir).url


BUILD_PARAMS = "last-build.json"


def write_build_params(logs_dir: Path, overrides: dict[str, str]) -> Path:
    """Remember the ``--env--`` overrides of the latest build (atomically)."""
    import json

    logs_dir.mkdir(parents=True, exist_ok=True)
    target = logs_dir / BUILD_PARAMS
    tmp = target.with_name(f".{BUILD_PARAMS}.tmp")
    tmp.write_text(json.dumps(overrides, indent=2))
    tmp.replace(target)
    return target


def read_build_params(logs_dir: Path) -> dict[str, str]:
    """The overrides the latest build ran with (empty when none was recorded)."""
    import json

    try:
        data = json.loads((logs_dir / BUILD_PARAMS).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def task_names(root: Path) -> list[str]:
    """The pipeline's task names, in pipeline.yaml order."""
    spec = yaml.safe_load((root / PIPELINE).read_text()) or {}
    return [str(t.get("name") or Path(t["source"]).stem) for t in spec.get("tasks", [])]


def check_task(name: str, root: Path) -> str:
    """``name`` if it is a task, else an error naming the closest one."""
    import difflib

    names = task_names(root)
    if name in names:
        return name
    match = difflib.get_close_matches(name, names, n=1, cutoff=0.4)
    hint = f" (did you mean {match[0]}?)" if match else ""
    raise ProjectError(f"no phase named {name!r}{hint}; the phases are: {', '.join(names)}")
