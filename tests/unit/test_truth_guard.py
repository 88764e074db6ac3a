"""No feature, training, scoring or serving code can reach the simulator's hidden truth.

A static check on the syntax trees, so it sees what a grep for names misses: an accessor reached
through a module alias (``raw.truth_hazard``), a wrapper defined anywhere in ``src/churn`` that
reads the truth (found transitively, however deep), or the table named in SQL. The runtime
counterpart (features are identical with the truth table dropped) is in tests/model.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
# Code that must never see the truth: features, training, monitoring and retraining, the feature
# stores, the API, and the phase notebooks from build-features to decide-retraining.
GUARDED = sorted(
    [
        *(SRC / "churn" / "features").rglob("*.py"),
        *(SRC / "churn" / "modeling").rglob("*.py"),
        *(SRC / "churn" / "monitoring").rglob("*.py"),
        *(SRC / "churn" / "serving").rglob("*.py"),
        SRC / "churn" / "store" / "offline.py",
        SRC / "churn" / "store" / "online.py",
        *(ROOT / "notebooks").glob("0[3-9]_*.py"),
    ]
)
# Where the truth is defined: its schema and table name, and the simulator's own answers.
SEEDS = {
    "churn.data.schema.TRUTH_SCHEMA_NAME",
    "churn.data.schema.USER_TRUTH",
    "churn.data.synthetic.DRIFT_TRUTH",
    "churn.data.world.World",  # the simulated world beyond each run's as_of (data/world)
}
TRUTH_TEXT = ("simulator.", "user_truth")  # the table, as SQL names it


@dataclass
class Definition:
    """A top-level name of a module and the (resolved) names and strings it uses."""

    qualname: str
    uses: set[str] = field(default_factory=set)
    names_truth_in_text: bool = False


def _module_name(path: Path, src: Path) -> str:
    """``churn.store.raw`` for src/churn/store/raw.py; a file outside ``src`` (a notebook) is its stem."""
    if not path.is_relative_to(src):
        return path.stem
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module, module: str) -> dict[str, str]:
    """Local name -> the fully qualified name it stands for (import aliases and module-level defs)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative import inside the package
                base = ".".join([*module.split(".")[: -node.level], node.module])
            for alias in node.names:
                names[alias.asname or alias.name] = f"{base}.{alias.name}"
    return names


def _dotted(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ["a", "b", "c"]; None for anything else (calls, subscripts ...)."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else [*inner, node.attr]
    return None


def _has_docstring(node: ast.AST) -> bool:
    body = getattr(node, "body", None)
    return (
        isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and bool(body)
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )


def _uses(node: ast.AST, local: dict[str, str]) -> tuple[set[str], set[str], bool]:
    """(resolved qualified names, bare identifiers, truth named in a string) used under ``node``;
    docstrings do not count (they may say what must not be read)."""
    resolved, identifiers, text = set(), set(), False
    docstrings = {id(n.body[0].value) for n in ast.walk(node) if _has_docstring(n)}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and id(sub) not in docstrings:
            text |= any(t in sub.value for t in TRUTH_TEXT)
        elif isinstance(sub, ast.Attribute | ast.Name):
            identifiers.add(sub.attr if isinstance(sub, ast.Attribute) else sub.id)
            parts = _dotted(sub)
            if parts and parts[0] in local:
                resolved.add(".".join([local[parts[0]], *parts[1:]]))
        elif isinstance(sub, ast.alias):
            identifiers.add(sub.name.split(".")[-1])
    return resolved, identifiers, text


def _definitions(path: Path, src: Path) -> Iterator[Definition]:
    module = _module_name(path, src)
    tree = ast.parse(path.read_text())
    local = _imports(tree, module)
    top = [
        n
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Assign | ast.AnnAssign)
    ]
    for node in top:
        targets = (
            [node.name] if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            else [t.id for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                  if isinstance(t, ast.Name)]
        )  # fmt: skip
        own = {**local, **{n: f"{module}.{n}" for n in _top_names(tree)}}
        resolved, _, text = _uses(node, own)
        for name in targets:
            yield Definition(f"{module}.{name}", resolved, text)


def _top_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def truth_accessors(src: Path = SRC) -> dict[str, str]:
    """Every top-level name in ``src``/churn that leads to the truth -> why (the step towards a seed)."""
    defs = {d.qualname: d for p in sorted((src / "churn").rglob("*.py")) for d in _definitions(p, src)}
    why = dict.fromkeys(SEEDS, "defines the truth")
    why |= {q: "names the truth table in a string" for q, d in defs.items() if d.names_truth_in_text}
    changed = True
    while changed:  # a name that uses an accessor is one too, however deep the wrapping
        changed = False
        for qualname, d in defs.items():
            hit = next((u for u in sorted(d.uses) if u in why), None)
            if qualname not in why and hit is not None:
                why[qualname] = f"uses {hit}"
                changed = True
    return why


def violations(path: Path, accessors: dict[str, str]) -> list[str]:
    """What in ``path`` reaches an accessor: resolved names, a bare accessor name, or SQL text."""
    tree = ast.parse(path.read_text())
    module = _module_name(path, SRC)
    own = {**_imports(tree, module), **{n: f"{module}.{n}" for n in _top_names(tree)}}
    resolved, identifiers, text = _uses(tree, own)
    # A bare attribute name is only evidence when it is unmistakable (``x.truth_hazard`` through
    # an alias the resolver cannot follow); ``generate`` is a word, ``truth_hazard`` is not.
    short = {q.rsplit(".", 1)[-1]: q for q in accessors if "truth" in q.rsplit(".", 1)[-1].lower()}
    found = [f"{q} ({accessors[q]})" for q in sorted(resolved) if q in accessors]
    found += [f"{name} (the name of {short[name]})" for name in sorted(identifiers) if name in short]
    if text:
        found.append(f"a string naming {' or '.join(TRUTH_TEXT)}")
    return found


@pytest.fixture(scope="module")
def accessors() -> dict[str, str]:
    return truth_accessors()


def test_every_known_accessor_of_the_truth_is_found(accessors: dict[str, str]) -> None:
    """The seeds, the table name, and the wrappers around them (e.g. ``raw.truth_hazard``)."""
    assert {"churn.store.raw.TRUTH_TABLE", "churn.store.raw.truth_hazard", *SEEDS} <= set(accessors)
    assert "churn.store.raw.read_raw_tables" not in accessors  # reading the raw tables is fine


@pytest.mark.parametrize("path", GUARDED, ids=lambda p: str(p.relative_to(ROOT)))
def test_guarded_code_never_reaches_the_truth(path: Path, accessors: dict[str, str]) -> None:
    """No feature, training, monitoring, store-of-features, API or phase-notebook source reaches
    the simulator's truth, directly or through any wrapper."""
    assert not violations(path, accessors), violations(path, accessors)


@pytest.mark.parametrize(
    "code",
    [
        "from churn.store import raw\nraw.truth_hazard(wh)",
        "import churn.store.raw as r\nx = r.truth_hazard",
        "from churn.store.raw import truth_hazard as th\nth(wh)",
        "import churn\nchurn.store.raw.TRUTH_TABLE",
        "from churn.data.schema import USER_TRUTH",
        "con.sql('SELECT * FROM simulator.user_truth')",
        "from churn.data import synthetic\nsynthetic.DRIFT_TRUTH['shifted']",
        "from churn.store import raw as q\nf = getattr(q, 'x')\nf.truth_hazard",
    ],
)
def test_the_guard_catches_each_way_of_reaching_the_truth(code: str, accessors: dict[str, str], tmp_path: Path) -> None:
    """Module aliases, renamed imports, fully dotted names, SQL text and bare attribute names."""
    path = tmp_path / "phase.py"
    path.write_text(code)
    assert violations(path, accessors)


def test_the_guard_catches_a_new_wrapper(tmp_path: Path) -> None:
    """A helper added anywhere in src that calls an accessor becomes an accessor itself."""
    fake_src = tmp_path / "src"
    (fake_src / "churn" / "store").mkdir(parents=True)
    (fake_src / "churn" / "store" / "raw.py").write_text(
        "from churn.data.schema import USER_TRUTH\n\ndef truth_hazard(wh):\n    return USER_TRUTH\n"
    )
    (fake_src / "churn" / "helpers.py").write_text(
        "from churn.store import raw\n\ndef risk(wh):\n    return raw.truth_hazard(wh)\n"
    )
    found = truth_accessors(fake_src)
    assert found["churn.helpers.risk"] == "uses churn.store.raw.truth_hazard"
    phase = tmp_path / "phase.py"
    phase.write_text("from churn import helpers\nhelpers.risk(wh)\n")
    assert violations(phase, found)
