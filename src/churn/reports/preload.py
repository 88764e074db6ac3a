"""What a phase's warm kernel imports ahead of time: the modules the phase notebook imports.

Derived from the notebook's source at each run, so it cannot drift from what the notebook does:
the import statements at the top level of its cells, plus the third-party imports done inside
the ``churn`` functions it imports by name (every function of a ``churn`` module it imports
whole): Great Expectations in the quality checks; and Matplotlib's pyplot when a cell calls
pandas' ``.plot``. Nothing else: a phase that fits or loads no model never loads scikit-learn,
one without Great Expectations checks never loads it.
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from churn.lean import skip_unused_optional

Import = tuple[str, tuple[str, ...]]
"""``(module, from-list)``: ``__import__(module, fromlist=names)``, what ``from module import
names`` loads (submodules among ``names`` included) without binding any name."""

OWN_PACKAGE = "churn"


PLOTTING = ("matplotlib.pyplot", ())
"""What pandas imports when a cell calls ``.plot`` on a frame or series."""


def phase_imports(notebook: str | Path) -> tuple[Import, ...]:
    """The imports a phase notebook (percent-format ``.py`` or ``.ipynb``) will do, in order,
    without duplicates; () if its source cannot be read or parsed."""
    found: dict[Import, None] = {}
    cells = _cells(Path(notebook))
    for node in (node for tree in cells for node in tree.body):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for module, names in _as_imports(node):
                found[(module, names)] = None
                found.update(dict.fromkeys(_lazy_imports(module, names)))
    if any(isinstance(node, ast.Attribute) and node.attr == "plot" for tree in cells for node in ast.walk(tree)):
        found[PLOTTING] = None
    return tuple(found)


def _cells(notebook: Path) -> list[ast.Module]:
    """The syntax trees of the notebook's code cells (a cell with IPython magics is left out:
    its imports are done by the phase itself)."""
    try:
        text = notebook.read_text(encoding="utf-8")
    except OSError:
        return []
    if notebook.suffix == ".ipynb":
        try:
            sources = ["".join(c["source"]) for c in json.loads(text)["cells"] if c["cell_type"] == "code"]
        except (ValueError, KeyError, TypeError):
            return []
    else:
        sources = [text]
    trees = []
    for source in sources:
        try:
            trees.append(ast.parse(source))
        except SyntaxError:
            continue
    return trees


def _as_imports(node: ast.Import | ast.ImportFrom) -> list[Import]:
    if isinstance(node, ast.Import):
        return [(alias.name, ()) for alias in node.names]
    if node.level or not node.module:  # relative: not meaningful outside a package
        return []
    return [(node.module, tuple(alias.name for alias in node.names if alias.name != "*"))]


def _lazy_imports(module: str, names: tuple[str, ...]) -> list[Import]:
    """Third-party imports done inside the functions that ``from module import names`` brings
    in: every function of a module imported whole (``import m``, or a submodule in ``names``),
    the named functions and classes otherwise. Only our own modules are read."""
    if module.split(".")[0] != OWN_PACKAGE:
        return []
    found: list[Import] = []
    tree = _parse_module(module)
    if tree is not None and not names:
        found += _imports_inside_functions(tree)
    for name in names:
        sub = _parse_module(f"{module}.{name}")
        if sub is not None:
            found += _imports_inside_functions(sub)
        elif tree is not None:
            for node in tree.body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
                    found += _imports_inside_functions(node)
    return found


def _parse_module(dotted: str) -> ast.Module | None:
    """The syntax tree of one of our modules (found on disk, not imported), None if not a module."""
    base = _package_root().joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            try:
                return ast.parse(candidate.read_text(encoding="utf-8"))
            except (OSError, SyntaxError):
                return None
    return None


def _package_root() -> Path:
    """The folder holding the ``churn`` package."""
    import churn

    return Path(churn.__file__).resolve().parent.parent


def _imports_inside_functions(tree: ast.AST) -> list[Import]:
    found = []
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    found += [item for item in _as_imports(node) if _third_party(item[0])]
    return found


def _third_party(module: str) -> bool:
    top = module.split(".")[0]
    return top != OWN_PACKAGE and top not in sys.stdlib_module_names


def warm_up(imports: Sequence[Import]) -> None:
    """Do ``imports`` in this process (a warm kernel waiting for its phase), binding no name.

    An import that fails is skipped: the phase does it again in its own cell and shows the error
    there, with its traceback. Great Expectations is imported as the phase imports it
    (:func:`churn.quality.runner.import_gx`: analytics off, optional grammars skipped).
    """
    skip_unused_optional()
    for module, names in imports:
        try:
            if module.split(".")[0] == "great_expectations":
                from churn.quality.runner import import_gx

                import_gx()
            __import__(module, fromlist=names)
        except Exception:  # the phase meets it again, in its own cell, where it can be read
            continue
