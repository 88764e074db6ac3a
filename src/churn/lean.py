"""Start-up cost: optional modules our processes would import for nothing.

``nbformat`` (so Ploomber, Papermill and nbconvert) and Great Expectations (through Altair)
import ``jsonschema``, and jsonschema, when ``rfc3987_syntax`` is installed (jupyter-events'
``format-nongpl`` extra brings it), compiles that package's 39 Lark grammars at import, to check
the ``iri`` string format: 2-5 s in every pipeline run's Ploomber process and in each Great
Expectations phase kernel, for a format nothing here validates.

Ploomber's own import loads three packages only because they are installed, for features a
build never uses (:data:`PLOOMBER_OPTIONAL`): 0.6 of its 1.7 CPU-s, in every ``churn build``,
``churn cycle`` and Airflow task.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

OPTIONAL_SKIPPED = ("rfc3987_syntax",)

PLOOMBER_OPTIONAL = ("matplotlib", "sqlalchemy", "tornado.web")
"""Imported under ``try`` while Ploomber loads: ploomber-engine's memory-profile plots
(Matplotlib, 0.5 CPU-s), Ploomber's SQL clients (SQLAlchemy), Jupytext's contents managers for a
Jupyter server (``tornado.web``). Skipped during that import only: anything that needs one of
them later (a hook, a plot) imports it as usual."""

GX_OPTIONAL = ("sqlalchemy",)
"""Imported under ``try`` by Great Expectations for its SQL data sources, which nothing here uses
(tables are validated as DataFrames): 0.3 of its 1.5 CPU-s import. Ploomber, not GE, requires
SQLAlchemy; GE runs as it does where SQLAlchemy is not installed."""


def skip_unused_optional() -> None:
    """Mark :data:`OPTIONAL_SKIPPED` as absent (``sys.modules[name] = None``), so jsonschema's
    ``try: import`` skips that optional checker as it does where the package is not installed.
    Only before anything in the process has imported jsonschema (else it is too late and the
    module, if loaded, stays)."""
    if "jsonschema" in sys.modules:
        return
    for name in OPTIONAL_SKIPPED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


@contextmanager
def absent(names: tuple[str, ...]) -> Iterator[None]:
    """Within the block, ``import name`` (and of its submodules) fails as if ``name`` were not
    installed, for each of ``names`` not imported yet; afterwards they import normally."""
    added = [name for name in names if name not in sys.modules]
    for name in added:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in added:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def ploomber_cli() -> Any:
    """Ploomber's command router, imported without :data:`OPTIONAL_SKIPPED` and
    :data:`PLOOMBER_OPTIONAL`."""
    skip_unused_optional()
    with absent(PLOOMBER_OPTIONAL):
        for module in ("jupytext", "ploomber", "ploomber.clients.db", "ploomber_engine.profiling"):
            importlib.import_module(module)  # each of these tries one of them at import
        from ploomber_cli.cli import cmd_router
    return cmd_router
