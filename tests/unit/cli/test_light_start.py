"""`churn build` hands over to Ploomber: its own process checks the parameters and imports none
of the model libraries (every Airflow task and every cycle phase is such a process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("sklearn", "scipy", "churn.registry", "churn.modeling.train")

# `churn params` runs the checks `churn build` runs before it starts Ploomber (the same
# Project(...) validation, the snapshot split rule included), then reports what it imported.
CHECK = """
import json, sys
from churn.cli import main
code = main(["--project", sys.argv[1], "--set", f"data_dir={sys.argv[2]}", "params",
             "--env--n_snapshots", "8", "--env--as_of", "2026-01-02"], standalone_mode=False)
print(json.dumps({"code": code, "heavy": sorted(m for m in json.loads(sys.argv[3]) if m in sys.modules)}))
"""


def test_the_parameter_checks_of_a_build_import_no_model_library(tmp_path):
    """The split rule the checks apply lives with the snapshots (churn.features), not in the
    training module, and the registry's errors are caught only once the registry is loaded: a
    command that never loads it cannot raise them."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(ROOT), str(tmp_path), json.dumps(HEAVY)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"code": None, "heavy": []}


def test_a_too_short_training_period_is_still_refused_by_the_light_check(tmp_path):
    """The split rule still judges the plan: 4 snapshots, 2 for validation, leave too few
    for training (the message names the minimum)."""
    from click.testing import CliRunner

    from churn.cli import main

    args = ["--project", str(ROOT), "--set", f"data_dir={tmp_path}", "params", "--env--n_snapshots", "4"]
    result = CliRunner().invoke(main, [*args, "--env--n_valid_snapshots", "2"])
    assert result.exit_code == 1
    assert "training needs at least 3" in result.output and "Traceback" not in result.output
