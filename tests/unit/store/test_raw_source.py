"""Whether the raw tables are simulated is read from the data set's record, not from the
simulator's truth table (monitoring and the ab-test phase ask without touching the truth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from churn.data.synthetic import SimulationParams, iter_chunks
from churn.store import raw
from churn.store.warehouse import Warehouse

CHUNKS = SimulationParams(n_users=30, scenario="stable")


@pytest.mark.parametrize(("source", "simulated"), [("synthetic", True), ("files", False), (None, False)])
def test_is_simulated_follows_the_data_sets_record(tmp_path: Path, source: str | None, simulated: bool) -> None:
    """The record decides: simulator rows recorded as another source (or with no record) are not
    treated as simulated, although the truth table is there."""
    wh = Warehouse(tmp_path / "w.duckdb")
    record = None if source is None else {"name": "d", "fingerprint": "f", "source": source, "rule": "cancellation"}
    raw.write_raw_tables(wh, iter_chunks(CHUNKS, progress=False), dataset=record)
    assert len(raw.truth_hazard(wh)) == 30  # the truth is stored either way
    assert raw.is_simulated(wh) is simulated


def test_a_warehouse_without_raw_tables_is_not_simulated(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    with wh.writer():
        pass
    assert raw.is_simulated(wh) is False
