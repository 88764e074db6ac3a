"""The warehouse a build writes has exactly the declared tables (churn.store.tables)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from churn.store import tables


def _stored(path: Path) -> dict[str, list[tuple[str, str, bool]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT table_schema || '.' || table_name, column_name, data_type, is_nullable = 'YES' "
            "FROM information_schema.columns ORDER BY table_schema, table_name, ordinal_position"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[tuple[str, str, bool]]] = {}
    for name, column, dtype, nullable in rows:
        out.setdefault(name, []).append((column, dtype, nullable))
    return out


def _declared(table: tables.Table) -> list[tuple[str, str, bool]]:
    return [(c.name, c.dtype, not c.not_null) for c in table.columns]


def _check(path: Path, database: str) -> None:
    stored = _stored(path)
    assert stored.pop(tables.VERSION_TABLE) == [("version", "INTEGER", False), ("applied_at", "TIMESTAMP", False)]
    undeclared = set(stored) - set(tables.TABLES)
    assert not undeclared, f"tables written without a declaration in churn.store.tables: {undeclared}"
    for name, columns in stored.items():
        table = tables.TABLES[name]
        assert table.database == database, name
        if table.open_columns:  # the declared columns keep their types; the rest are the spec's
            assert [c for c in columns if c[0] in table.column_names] == _declared(table), name
        else:
            assert columns == _declared(table), name


def test_build_writes_every_table_as_declared(small_build: Path) -> None:
    """Every table of the small build's warehouse and run ledger: declared, same columns, types
    and NOT NULLs as its declaration creates on an empty file."""
    _check(small_build / "data" / "churn.duckdb", tables.WAREHOUSE)
    _check(small_build / "data" / "runs.duckdb", tables.LEDGER)
