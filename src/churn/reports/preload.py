"""What a phase's warm kernel imports ahead of time: the modules the phase notebook imports.

Derived from the notebook's source each run, so it cannot drift from what the notebook does: the
import statements at the top level of its cells, plus the imports that the ``churn`` modules it
names do inside their functions (Great Expectations in the quality checks, SciPy in a confidence
interval): those run in the phase as surely as the import cell. Nothing else is imported: a phase
that draws no chart never loads Matplotlib, one that fits no model never loads scikit-learn.
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from churn.lean import skip_unused_optional

Import = tuple[str, tuple[str, ...]]
"""``(module, from-list)``: ``__import__(module, fromlist=names)``, what ``from module import
names`` loads (submodules among ``names`` included) without binding any name."""

OWN_PACKAGE = "churn"


def phase_imports(notebook: str | Path) -> tuple[Import, ...]:
    """The imports a phase notebook (percent-format ``.py`` or ``.ipynb``) will do, in order,
    without duplicates; () if its source cannot be read or parsed."""
    found: dict[Import, None] = {}
    for node in _top_level_imports(Path(notebook)):
        for module, names in _as_imports(node):
            found[(module, names)] = None
            found.update(dict.fromkeys(_lazy_imports(module, names)))
    return tuple(found)


def _top_level_imports(notebook: Path) -> Iterator[ast.Import | ast.ImportFrom]:
    try:
        text = notebook.read_text(encoding="utf-8")
    except OSError:
        return
    if notebook.suffix == ".ipynb":
        try:
            cells = ["".join(c["source"]) for c in json.loads(text)["cells"] if c["cell_type"] == "code"]
        except (ValueError, KeyError, TypeError):
            return
    else:
        cells = [text]
    for source in cells:
        try:
            tree = ast.parse(source)
        except SyntaxError:  # a cell with IPython magics: its imports are done by the phase itself
            continue
        yield from (node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))


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
