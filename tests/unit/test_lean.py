"""Our processes skip optional imports they would make for nothing, and only those."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from churn.lean import PLOOMBER_OPTIONAL, absent

SRC = Path(__file__).resolve().parents[2] / "src"


def test_absent_fails_an_import_inside_the_block_only() -> None:
    with absent(("churn_lean_probe", "json")):
        with pytest.raises(ModuleNotFoundError):
            import churn_lean_probe  # noqa: F401
        import json as already_loaded  # imported before the block: left alone

        assert already_loaded.dumps(1) == "1"
    assert "churn_lean_probe" not in sys.modules  # no None left behind: importable again


@pytest.mark.slow  # imports Ploomber, Matplotlib and SQLAlchemy in a fresh process (make test runs it)
def test_ploomber_loads_without_its_unused_optional_packages_and_they_still_import_later() -> None:
    """In a fresh process (a `churn build`'s Ploomber process), Ploomber's CLI and task classes
    load without Matplotlib, SQLAlchemy or tornado.web; a later import of each works."""
    code = f"""
import json, sys
from churn.lean import ploomber_cli
ploomber_cli()
import ploomber.tasks, ploomber.executors, papermill, ploomber_engine.profiling
loaded = [m for m in {PLOOMBER_OPTIONAL!r} if sys.modules.get(m) is not None]
import matplotlib.pyplot, sqlalchemy, tornado.web
print(json.dumps({{"loaded": loaded, "profiling_plots": ploomber_engine.profiling.plt is not None}}))
"""
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"loaded": [], "profiling_plots": False}
