"""`churn build` / `churn params` refuse bad parameters before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from churn.cli import main

ROOT = Path(__file__).resolve().parents[3]


def test_build_refuses_an_abbreviated_parameter_before_running_anything(tmp_path):
    """The issue's `--env--n_user 10`: refused, the right name given, no warehouse touched."""
    data = tmp_path / "data"
    result = CliRunner().invoke(
        main, ["--project", str(ROOT), "--set", f"data_dir={data}", "build", "--env--n_user", "10"]
    )
    assert result.exit_code == 1
    assert "unknown parameter --env--n_user (did you mean --env--n_users?)" in result.output
    assert not data.exists()  # not even a log: nothing ran


def test_build_refuses_too_few_users_with_the_reason(tmp_path):
    result = CliRunner().invoke(
        main, ["--project", str(ROOT), "--set", f"data_dir={tmp_path}", "build", "--force", "--env--n_users", "10"]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: n_users=10 is too few")


def test_set_overrides_are_checked_too():
    result = CliRunner().invoke(main, ["--project", str(ROOT), "--set", "n_user=3", "params"])
    assert result.exit_code == 1 and "did you mean --env--n_users" in result.output


def test_params_prints_the_effective_values_marking_overrides():
    result = CliRunner().invoke(main, ["--project", str(ROOT), "params", "--env--n_users", "300"])
    assert result.exit_code == 0, result.output
    assert "n_users                  300 *" in result.output
    assert "seed                     42\n" in result.output


def test_every_command_has_help():
    """`--help` works everywhere, also outside a project folder."""
    commands = [
        "build",
        "phase",
        "params",
        "predict",
        "explain",
        "models",
        "models list",
        "models show",
        "models promote",
        "models rollback",
        "models archive",
        "runs",
        "status",
        "plot",
        "db",
        "redis-cli",
        "logs",
        "version",
    ]
    for command in commands:
        result = CliRunner().invoke(main, [*command.split(), "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Usage: " in result.output


def test_python_dash_m_runs_the_cli_as_churn():
    out = subprocess.run(
        [sys.executable, "-m", "churn.cli", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0 and out.stdout.startswith("Usage: churn")


def test_status_plot_and_phase_use_the_parameters_of_the_last_build(tmp_path):
    """`churn build --env--n_users 300` is remembered, so `churn status` judges "outdated"
    against the build as it ran; a --set still wins."""
    from churn.cli import Context
    from churn.cli.project import read_build_params, write_build_params

    data = tmp_path / "data"
    write_build_params(data / "logs", {"n_users": "300", "data_dir": str(data)})
    assert read_build_params(data / "logs") == {"n_users": "300", "data_dir": str(data)}
    assert Context(ROOT, {"data_dir": str(data)}).built_project().params["n_users"] == 300
    assert Context(ROOT, {"data_dir": str(data), "n_users": "500"}).built_project().params["n_users"] == 500
    assert Context(ROOT, {"data_dir": str(tmp_path / "other")}).built_project().params["n_users"] == 1000
