"""The conda environment and the pip project install the same pinned packages (the lock)."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _pyproject_pins() -> set[str]:
    """Runtime dependencies and every extra (notebook, dev)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {}).values()
    return set(project["dependencies"]).union(*extras)


def _conda_pins() -> tuple[str, set[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return python, set(pip)


def test_environment_yml_installs_the_lock_and_the_project():
    """environment.yml's pip section installs requirements.lock (which pins every direct
    dependency at pyproject's version, see below) and the project itself, nothing else."""
    _, conda = _conda_pins()
    assert conda == {"-r requirements.lock", "-e .[notebook,dev]"}
    assert (ROOT / "requirements.lock").is_file()


def test_every_dependency_is_pinned_exactly():
    """Direct dependencies use == pins, so a fresh install resolves the same versions."""
    assert all("==" in dep for dep in _pyproject_pins())


def test_runtime_dependencies_leave_out_the_notebook_and_dev_tools():
    """`pip install churn` brings the library and the API, not Jupyter, Ploomber or pytest."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {dep.split("==")[0].split("[")[0].lower() for dep in project["dependencies"]}
    assert runtime.isdisjoint({"ploomber", "papermill", "jupyterlab", "voila", "pytest", "nbval", "ruff", "mypy"})
    assert {"duckdb", "redis", "scikit-learn", "fastapi"} <= runtime
    assert set(project["optional-dependencies"]) == {"notebook", "dev"}


def test_python_versions_agree():
    """Both files ask for Python 3.11."""
    python, _ = _conda_pins()
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python == "python=3.11" and requires == "==3.11.*"


def test_lock_pins_every_direct_dependency_at_the_same_version():
    """requirements.lock (the full tree) agrees with the direct pins."""
    lock = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            lock[name.lower().replace("_", "-")] = version.strip()
    for dep in _pyproject_pins():
        name, version = dep.split("==")
        name = name.split("[")[0].lower().replace("_", "-")
        assert lock.get(name) == version, f"{name}: lock has {lock.get(name)}, pyproject {version}"
