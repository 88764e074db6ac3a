"""Your own data: users, events and billing as CSV or Parquet files in the documented raw schema.

Files are read and checked completely before anything is written, so a bad file never leaves a
half-loaded warehouse. Errors name the file, the column and an example row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churn.data.schema import RAW_TABLES, Column, TableSchema

SUFFIXES = (".parquet", ".csv")


class RawFileError(ValueError):
    """A raw input file is missing or does not follow the documented schema."""


def find_raw_files(raw_dir: str | Path) -> dict[str, Path]:
    """Locate ``users``, ``events`` and ``billing`` files (``.parquet`` preferred over ``.csv``)."""
    root = Path(raw_dir)
    if not root.is_dir():
        raise RawFileError(f"raw data folder {root} does not exist (set raw_dir in env.yaml)")
    found: dict[str, Path] = {}
    for table in RAW_TABLES:
        candidates = [root / f"{table}{suffix}" for suffix in SUFFIXES]
        existing = [p for p in candidates if p.exists()]
        if not existing:
            raise RawFileError(
                f"missing raw file for table {table!r}: expected one of "
                f"{', '.join(str(p) for p in candidates)}"
            )
        found[table] = existing[0]
    return found


def read_raw_file(path: Path, table: TableSchema) -> pd.DataFrame:
    """Read one file and coerce it to ``table``'s schema, or raise ``RawFileError``."""
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:
        raise RawFileError(f"{path}: cannot be read as {path.suffix[1:]} ({exc})") from None
    missing = [c for c in table.column_names if c not in frame.columns]
    if missing:
        raise RawFileError(
            f"{path}: missing column(s) {missing}; the {table.name} table needs "
            f"{table.column_names}"
        )
    return pd.DataFrame({c.name: _coerce(path, frame, c) for c in table.columns})


def _coerce(path: Path, frame: pd.DataFrame, column: Column) -> pd.Series:
    raw = frame[column.name]
    if column.dtype == "BIGINT":
        values = pd.to_numeric(raw, errors="coerce")
        bad = raw.notna() & (values.isna() | (values % 1 != 0))
        values = values.astype("Int64") if not bad.any() else values
    elif column.dtype == "DOUBLE":
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        bad = raw.notna() & values.isna()
    elif column.dtype in ("TIMESTAMP", "DATE"):
        values = pd.to_datetime(raw, errors="coerce").astype("datetime64[us]")
        bad = raw.notna() & values.isna()
    else:
        values = raw.astype("string")
        bad = pd.Series(False, index=raw.index)
    _raise_on(path, frame, column, bad, f"not a valid {column.dtype}")
    if not column.nullable:
        _raise_on(path, frame, column, values.isna(), "is empty but the column is required")
    return values.astype("int64") if column.dtype == "BIGINT" and not column.nullable else values


def _raise_on(path: Path, frame: pd.DataFrame, column: Column, bad: pd.Series, what: str) -> None:
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        example = frame.iloc[row].to_dict()
        raise RawFileError(
            f"{path}: column {column.name!r} {what} in {int(bad.sum())} row(s); "
            f"first at row {row + 1}: {example}"
        )


def read_raw_files(raw_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Read and check all three raw tables from ``raw_dir``."""
    return {table: read_raw_file(path, RAW_TABLES[table]) for table, path in find_raw_files(raw_dir).items()}
