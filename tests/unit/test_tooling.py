"""The developer tooling stays wired: clean notebooks in git, hooks that run the pinned tools."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_carry_no_outputs(path: Path) -> None:
    """Dashboards are committed clean (nbstripout in pre-commit): no outputs, no execution counts."""
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert cells
    dirty = [i for i, c in enumerate(cells) if c.get("outputs") or c.get("execution_count") is not None]
    assert not dirty, f"{path.name}: code cells {dirty} have outputs; run .venv/bin/nbstripout --keep-id {path}"


def test_pre_commit_hooks_run_tools_pinned_in_the_dev_extra() -> None:
    """Every hook calls a tool from .venv that the `dev` extra pins, so hooks and CI agree."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    pinned = {dep.split("==")[0].lower() for dep in dev}
    tools = {hook["entry"].split()[0] for hook in hooks}
    assert {tool.removeprefix(".venv/bin/") for tool in tools} <= pinned
    assert all(tool.startswith(".venv/bin/") for tool in tools)
    assert {"ruff-check", "ruff-format", "mypy", "nbstripout"} <= {hook["id"] for hook in hooks}
