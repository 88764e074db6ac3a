"""Ploomber task hooks that keep the last good report of a phase when a run fails.

Papermill writes the executed notebook to its product path cell by cell, so a failing run used to
leave ``reports/NN_<phase>.ipynb`` holding the failed notebook while ``.html`` (converted only on
success) and the warehouse (every write is one transaction) still came from the last good run.
The hooks, set on every notebook task in ``pipeline.yaml``:

* ``on_render`` (before anything runs): keep a copy of the current report,
  ``.NN_<phase>.ipynb.last-good`` (hidden, so globs over ``*.ipynb`` never see it);
* ``on_failure``: move the failed notebook to ``NN_<phase>.failed.ipynb`` and put the copy back;
* ``on_finish`` (success): drop the copy and any ``.failed.ipynb`` of an earlier failure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

NB_KEY = "nb_ipynb"  # the product key of a task's executed notebook (pipeline.yaml)


def _notebook(product: Any) -> Path:
    """The executed-notebook path of a task's products (a MetaProduct or a single File)."""
    try:
        return Path(str(product[NB_KEY]))
    except (KeyError, TypeError):
        return Path(str(product))


def last_good_path(notebook: Path) -> Path:
    return notebook.with_name(f".{notebook.name}.last-good")


def failed_path(notebook: Path) -> Path:
    """``NN_phase.ipynb`` -> ``NN_phase.failed.ipynb``."""
    return notebook.with_name(f"{notebook.stem}.failed{notebook.suffix}")


def keep_last_good(product: Any) -> None:
    """``on_render``: copy the current report aside before the task may overwrite it."""
    notebook = _notebook(product)
    if notebook.is_file():
        tmp = last_good_path(notebook).with_suffix(".tmp")
        tmp.write_bytes(notebook.read_bytes())
        os.replace(tmp, last_good_path(notebook))


def restore_last_good(product: Any) -> None:
    """``on_failure``: the failed notebook becomes ``NN_phase.failed.ipynb``; the last good
    report, if there was one, is back at its own name."""
    notebook = _notebook(product)
    kept = last_good_path(notebook)
    if notebook.is_file():
        os.replace(notebook, failed_path(notebook))
    if kept.is_file():
        os.replace(kept, notebook)


def drop_last_good(product: Any) -> None:
    """``on_finish``: the run succeeded, so its report is the good one."""
    notebook = _notebook(product)
    last_good_path(notebook).unlink(missing_ok=True)
    failed_path(notebook).unlink(missing_ok=True)
