"""The default raw data set meets the platform's targets and is reproducible."""

from __future__ import annotations

from churn.data.synthetic import SimulationParams, iter_chunks
from churn.store.raw import raw_table_summary, write_raw_tables
from churn.store.warehouse import Warehouse


def _scalar(warehouse: Warehouse, sql: str):
    with warehouse.reader() as con:
        return con.execute(sql).fetchall()[0][0]


def test_default_volumes_match_the_spec(default_warehouse):
    """1,000 users, 1.2M-1.6M events, 8-12% of users churn within the year."""
    assert _scalar(default_warehouse, "SELECT count(*) FROM raw_data.users") == 1000
    assert 1_200_000 <= _scalar(default_warehouse, "SELECT count(*) FROM raw_data.events") <= 1_600_000
    churn = _scalar(default_warehouse, "SELECT avg((churned_at IS NOT NULL)::INT) FROM raw_data.users")
    assert 0.08 <= churn <= 0.12


def test_no_activity_after_churn_or_before_signup(default_warehouse):
    sql = """SELECT count(*) FROM raw_data.events e JOIN raw_data.users u USING (user_id)
             WHERE e.event_at >= coalesce(u.churned_at, TIMESTAMP '9999-01-01') OR e.event_at < u.signup_at"""
    assert _scalar(default_warehouse, sql) == 0


def test_engagement_decays_before_churn_on_average(default_warehouse):
    """Churners are less active in their last 4 weeks than in the 8 weeks before."""
    sql = """SELECT avg(last4 / 4.0) / avg(prev8 / 8.0) FROM (
               SELECT u.user_id,
                 count(*) FILTER (WHERE e.event_at >= u.churned_at - INTERVAL 28 DAY) AS last4,
                 count(*) FILTER (WHERE e.event_at < u.churned_at - INTERVAL 28 DAY
                                  AND e.event_at >= u.churned_at - INTERVAL 84 DAY) AS prev8
               FROM raw_data.users u JOIN raw_data.events e USING (user_id)
               WHERE u.churned_at IS NOT NULL AND u.churned_at - u.signup_at > INTERVAL 120 DAY
               GROUP BY 1) WHERE prev8 > 0"""
    assert _scalar(default_warehouse, sql) < 0.9


def test_two_builds_with_the_same_seed_have_identical_contents(default_warehouse, tmp_path):
    """Content fingerprints of every raw table are equal for seed 42 and differ for seed 43."""
    again, other = Warehouse(tmp_path / "again.duckdb"), Warehouse(tmp_path / "other.duckdb")
    write_raw_tables(again, iter_chunks(SimulationParams(scenario="stable"), progress=False))
    write_raw_tables(other, iter_chunks(SimulationParams(seed=43, scenario="stable"), progress=False))
    reference = raw_table_summary(default_warehouse)
    assert raw_table_summary(again) == reference
    assert all(raw_table_summary(other)[t] != reference[t] for t in reference)
