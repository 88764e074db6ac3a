"""A different event log (a shop's purchases) gets features from a spec alone, no new code."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pandas as pd
import pytest
import yaml

from churn.features import compile_features_sql, get_historical_features, load_spec

SHOP_SPEC = """
name: shop_features
version: "2024.1"
entity: customer_id
sources:
  purchases: {table: shop.purchases, entity_column: customer_id, timestamp_column: ordered_at}
  returns: {table: shop.returns, entity_column: customer_id, timestamp_column: returned_on}
features:
  - {name: orders_30d, source: purchases, aggregation: count, window_days: 30}
  - {name: order_days_30d, source: purchases, aggregation: count_distinct_days, window_days: 30}
  - {name: revenue_90d, source: purchases, aggregation: sum, column: amount, window_days: 90}
  - {name: revenue_30d, source: purchases, aggregation: sum, column: amount, window_days: 30}
  - {name: avg_order_90d, source: purchases, aggregation: mean, column: amount, window_days: 90}
  - {name: largest_order, source: purchases, aggregation: max, column: amount, window_days: null}
  - {name: last_order_amount, source: purchases, aggregation: latest, column: amount, window_days: null}
  - {name: days_since_last_order, source: purchases, aggregation: days_since_last, window_days: null, default: 365}
  - {name: returns_90d, source: returns, aggregation: count, window_days: 90}
  - {name: spend_trend, aggregation: ratio, numerator: revenue_30d, denominator: revenue_90d, scale: 3.0, default: 1.0}
"""


@pytest.fixture()
def shop() -> Iterator[duckdb.DuckDBPyConnection]:
    """shop.purchases (TIMESTAMP) and shop.returns (DATE) for two customers."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA shop")
    con.execute("CREATE TABLE shop.purchases (order_id BIGINT, customer_id VARCHAR, ordered_at TIMESTAMP, amount DECIMAL(10, 2))")
    con.execute("CREATE TABLE shop.returns (return_id BIGINT, customer_id VARCHAR, returned_on DATE)")
    con.execute("""INSERT INTO shop.purchases VALUES
        (1, 'c1', '2024-05-30 18:00', 20.00), (2, 'c1', '2024-05-30 19:00', 10.00),
        (3, 'c1', '2024-05-10 09:00', 30.00), (4, 'c1', '2024-03-15 09:00', 100.00),
        (5, 'c1', '2024-06-01 00:00', 999.00), (6, 'c2', '2023-01-01 00:00', 5.00)""")
    con.execute("INSERT INTO shop.returns VALUES (1, 'c1', DATE '2024-05-31'), (2, 'c1', DATE '2024-06-01')")
    yield con
    con.close()


def test_purchases_spec_compiles_and_gives_hand_computed_features(shop, tmp_path) -> None:
    """Counts, sums, means, max, latest, recency, a ratio and a DATE source, all from YAML."""
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP_SPEC)
    spec = load_spec(path)
    entity_df = pd.DataFrame({"customer_id": ["c1", "c2", "c3"], "event_timestamp": [pd.Timestamp("2024-06-01")] * 3})
    got = get_historical_features(shop, spec, entity_df).set_index("customer_id")
    c1 = got.loc["c1"]
    assert (c1["orders_30d"], c1["order_days_30d"], c1["returns_90d"]) == (3, 2, 1)
    assert c1["revenue_90d"] == pytest.approx(160.0) and c1["avg_order_90d"] == pytest.approx(40.0)
    assert (c1["largest_order"], c1["last_order_amount"]) == (100.0, 10.0)
    assert c1["days_since_last_order"] == pytest.approx(1 + 5 / 24)  # 2024-05-30 19:00 -> 06-01 00:00
    assert c1["spend_trend"] == pytest.approx(3 * 60 / 160)
    assert got.loc["c2", "days_since_last_order"] == pytest.approx(517.0)
    assert got.loc["c3", "days_since_last_order"] == 365.0 and got.loc["c3", "spend_trend"] == 1.0
    assert not got.isna().any(axis=None)


def test_compiled_sql_reads_only_the_declared_tables(shop) -> None:
    """The compiled text names the shop tables and none of the churn raw tables."""
    sql = compile_features_sql(load_spec(yaml.safe_load(SHOP_SPEC)), "entities", shop)
    assert '"shop"."purchases"' in sql and '"shop"."returns"' in sql and "raw_data" not in sql
