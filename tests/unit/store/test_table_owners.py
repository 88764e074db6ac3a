"""Only ``churn.store`` names the stored tables and Redis keys (an AST check of ``src/churn``).

A string constant outside ``src/churn/store`` that names a declared warehouse table, or a Redis
key of this project (``churn:...``), fails this test unless it is listed below with its reason.
Docstrings are not code and are skipped.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from churn.store import tables

SRC = Path(__file__).resolve().parents[3] / "src" / "churn"
SCHEMAS = sorted({t.schema for t in tables.TABLES.values() if t.database == tables.WAREHOUSE})
TABLE_NAME = re.compile(r"(?<![\w.])(?:" + "|".join(SCHEMAS) + r")\.[A-Za-z_]+")
REDIS_KEY = re.compile(r"^churn:[a-z]")

# file (relative to src/churn) -> names it may mention, and why. Shrink this list; never grow it
# without a reason a reviewer accepts.
ALLOWED: dict[str, set[str]] = {
    # the feature spec's sources and label rules compile SQL against the raw tables (the offline
    # builder, churn.features.historical.get_historical_features, runs on a store reader)
    "features/auto.py": {"raw_data.events", "raw_data.subscriptions", "raw_data.users"},
    "features/defaults.py": {"raw_data.billing", "raw_data.events", "raw_data.users"},
    "features/historical.py": {"raw_data.users"},
    "features/rules.py": {"raw_data.events", "raw_data.subscriptions", "raw_data.users"},
    # messages and API documentation, not access
    "serving/dashboard_schemas.py": {"ml_pipeline.ab_tests"},
    "serving/openapi.py": {"raw_data.users"},
    "serving/latest.py": {"raw_data.users"},
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _mentions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            out |= set(TABLE_NAME.findall(node.value))
            if REDIS_KEY.match(node.value):
                out.add(node.value)
    return out


def test_only_the_store_names_tables_and_redis_keys() -> None:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith("store/"):
            continue
        extra = _mentions(path) - ALLOWED.get(relative, set())
        if extra:
            found[relative] = sorted(extra)
    assert not found, f"tables or Redis keys named outside churn.store (use a store function): {found}"


def test_the_check_catches_a_table_named_in_code(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text('"""mentions monitoring.alerts in a docstring."""\nSQL = f"SELECT * FROM monitoring.alerts"\n'
                      'KEY = "churn:fs:x"\nMODULE = "churn.monitoring.phase"\n')  # fmt: skip
    assert _mentions(sample) == {"monitoring.alerts", "churn:fs:x"}
