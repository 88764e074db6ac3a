"""The default synthetic data set, generated once per test session into a temp warehouse."""

from __future__ import annotations

import pytest

from churn.data.synthetic import SimulationParams, iter_chunks
from churn.store.raw import write_raw_tables
from churn.store.warehouse import Warehouse


@pytest.fixture(scope="session")
def default_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """1,000 users, seed 42: exactly what `make build` writes."""
    warehouse = Warehouse(tmp_path_factory.mktemp("default") / "churn.duckdb")
    write_raw_tables(warehouse, iter_chunks(SimulationParams(), progress=False))
    return warehouse
