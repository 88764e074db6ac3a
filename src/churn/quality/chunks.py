"""A warehouse table streamed in chunks that partition it by a key, for chunked validation.

Chunks are ranges of the key (cut at its quantiles, so they hold about ``chunk_rows`` rows
each); every row with a given key value lands in the same chunk, so a uniqueness expectation
validated chunk by chunk is exact (:func:`churn.quality.runner.validate_chunks`). Rows without
a key come last, in a chunk of their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from churn.store.warehouse import Warehouse, qualified

CHUNK_ROWS = 500_000
"""Rows per validated chunk: about 200 MB of pandas and Great Expectations at the peak."""


def chunks_by_key(
    warehouse: Warehouse,
    table: str,
    key: str,
    chunk_rows: int = CHUNK_ROWS,
    select: str | None = None,
    where: str | None = None,
) -> Iterator[pd.DataFrame]:
    """``select`` (default: every column of ``table``; it must expose ``key``) in key ranges of
    about ``chunk_rows`` rows, ordered by the key; only rows matching ``where`` (a condition on
    ``table``'s columns, e.g. a slice of ids). Always at least one (maybe empty) frame."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, not {chunk_rows}")
    qualified(table)
    column = '"' + key.replace('"', '""') + '"'
    source = f"({select or f'SELECT * FROM {table}'}) AS _rows"
    only = f"({where})" if where else "TRUE"
    with warehouse.reader() as con:
        (rows,) = con.execute(f"SELECT count({column}) FROM {table} WHERE {only}").fetchall()[0]
        parts = max(1, -(-int(rows) // chunk_rows))
        cuts = [q / parts for q in range(1, parts)]
        quantiles = f"SELECT quantile_disc({column}, {cuts}) FROM {table} WHERE {only}"
        bounds = con.execute(quantiles).fetchall()[0][0] if cuts else []
        edges = [None, *sorted(set(bounds or [])), None]
        for low, high in zip(edges, edges[1:], strict=False):
            conditions = [only, f"{column} IS NOT NULL"]
            conditions += [f"{column} > {int(low)}"] if low is not None else []
            conditions += [f"{column} <= {int(high)}"] if high is not None else []
            yield con.execute(f"SELECT * FROM {source} WHERE {' AND '.join(conditions)} ORDER BY {column}").df()
        nulls = con.execute(f"SELECT * FROM {source} WHERE {only} AND {column} IS NULL").df()
        if len(nulls):
            yield nulls
