"""The own-data quality gate validates the event log in chunks: the merged report equals the one
over the whole table at once (counts, verdicts, examples), so bounded memory costs no accuracy."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from churn.data.loader import load_files
from churn.dataset import load_dataset
from churn.quality import own_suite, runner
from churn.store.warehouse import Warehouse

NOW = datetime(2024, 6, 1)


@pytest.fixture
def corrupted(tmp_path: Path) -> tuple[Warehouse, object]:
    """60 clean events, then a repeated id, an unknown user, a future time and a missing type."""
    rows = [f"{1 + i % 6},2024-03-{1 + i % 28:02d} 10:{i % 60:02d},{'abc'[i % 3]},{i}" for i in range(60)]
    (tmp_path / "log.csv").write_text("member,when,what,amount\n" + "\n".join(rows) + "\n")
    (tmp_path / "ds.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "shop",
                "events": {"path": "log.csv", "user": "member", "time": "when", "type": "what", "value": "amount"},
                "churn": {"rule": "inactivity", "lookback_days": 30},
                "snapshots": {"cadence_days": 7, "horizon_days": 14},
            }
        )
    )
    wh = Warehouse(tmp_path / "w.duckdb")
    dataset = load_dataset(tmp_path / "ds.yaml")
    load_files(wh, dataset, now=NOW)
    with wh.writer() as con:
        con.execute(
            "INSERT INTO raw_data.events VALUES (30, 2, 'a', TIMESTAMP '2024-03-05', 1), "
            "(61, 99, 'b', TIMESTAMP '2024-03-06', 1), (62, 3, 'c', TIMESTAMP '2030-01-01', 1), "
            "(63, 4, NULL, TIMESTAMP '2024-03-07', 1), (64, 98, 'a', TIMESTAMP '2024-03-08', 1)"
        )
    return wh, dataset


def _comparable(report: runner.QualityReport) -> pd.DataFrame:
    frame = report.to_frame().drop(columns=["notes"])
    frame["examples"] = frame["examples"].map(lambda xs: sorted(map(str, xs)))
    return frame.sort_values(["table", "expectation", "column"], na_position="first").reset_index(drop=True)


def test_chunked_report_equals_the_whole_table_report(corrupted: tuple[Warehouse, object], tmp_path: Path) -> None:
    wh, dataset = corrupted
    chunked = own_suite.validate_own_data(wh, dataset, max_timestamp=NOW, report_dir=tmp_path / "q", chunk_rows=7)
    assert chunked.raw["events"]["chunks"] >= 9  # 65 events, about 7 per chunk
    frames = own_suite.read_own_frames(wh)
    suites = own_suite.own_data_suites(frames, max_timestamp=NOW, rule="inactivity", churn_share=None)
    whole = runner.validate_frames(frames, suites)
    pd.testing.assert_frame_equal(_comparable(chunked), _comparable(whole))
    failed = {(f.table, f.column, f.expectation_type): f for f in chunked.failures}
    assert failed["events", "event_id", "expect_column_values_to_be_unique"].examples == [30]
    assert sorted(failed["events", "user_id", "expect_column_values_to_be_in_set"].examples) == [98, 99]
    assert "1 of 65 rows" in failed["events", "event_at", "expect_column_values_to_be_between"].observed
    assert ("events", "event_type", "expect_column_values_to_not_be_null") in failed
    assert (tmp_path / "q" / "data_docs" / "index.html").exists()


def test_a_clean_log_passes_in_chunks(tmp_path: Path, corrupted: tuple[Warehouse, object]) -> None:
    wh, dataset = corrupted
    with wh.writer() as con:
        con.execute("DELETE FROM raw_data.events WHERE event_id > 60 OR (event_id = 30 AND user_id = 2)")
    report = own_suite.validate_own_data(wh, dataset, max_timestamp=NOW, chunk_rows=10)
    assert report.success, report.message()
    row_count = next(r for r in report.results if r.expectation == "expect_table_row_count_to_be_between")
    assert row_count.observed == "observed 60"  # summed over the chunks


def test_an_aggregate_expectation_over_several_chunks_is_refused() -> None:
    """A unique-value count cannot be added up over chunks; the runner says so instead of lying."""
    gx = runner.import_gx()
    suite = [gx.expectations.ExpectColumnUniqueValueCountToBeBetween(column="x", min_value=1, max_value=2)]
    chunks = [pd.DataFrame({"x": [1, 2]}), pd.DataFrame({"x": [3]})]
    with pytest.raises(ValueError, match="cannot be merged over 2 chunks"):
        runner.validate_chunks({"t": chunks}, {"t": suite})


def test_the_simulator_tables_checked_in_chunks_give_the_whole_table_report(tmp_path: Path) -> None:
    """The same for the synthetic raw tables (the 100k-user build's memory peak was this gate):
    a repeated event id, an event after its user's churn and one of an unknown user are found
    with the same counts and examples in chunks as over the whole tables."""
    from churn.data.synthetic import SimulationParams, iter_chunks
    from churn.quality import suites
    from churn.store.raw import read_raw_tables, write_raw_tables

    wh = Warehouse(tmp_path / "w.duckdb")
    write_raw_tables(wh, iter_chunks(SimulationParams(n_users=30, scenario="stable"), progress=False))
    with wh.writer() as con:
        churned = con.execute(
            "SELECT user_id, churned_at FROM raw_data.users WHERE churned_at IS NOT NULL LIMIT 1"
        ).fetchall()[0]
        con.execute(
            "INSERT INTO raw_data.events SELECT event_id, user_id, event_type, event_at FROM raw_data.events "
            "WHERE event_id = 7"
        )
        con.execute(
            "INSERT INTO raw_data.events SELECT max(event_id) + 1, ?, 'login', ? + INTERVAL 1 DAY FROM raw_data.events",
            [churned[0], churned[1]],
        )
        con.execute(
            "INSERT INTO raw_data.events SELECT max(event_id) + 1, 999999, 'login', TIMESTAMP '2024-02-01' "
            "FROM raw_data.events"
        )
    rules = suites.raw_data_suites(max_timestamp=NOW + pd.Timedelta(days=3650))
    chunked = runner.validate_chunks(suites.raw_chunks(wh, chunk_rows=5_000), rules)
    assert chunked.raw["events"]["chunks"] >= 4
    tables = read_raw_tables(wh)
    whole = runner.validate_frames(
        suites.prepare_raw_frames(tables["users"], tables["events"], tables["billing"]), rules
    )
    pd.testing.assert_frame_equal(_comparable(chunked), _comparable(whole))
    failed = [(f.table, f.column, f.expectation_type, f.examples) for f in chunked.failures]
    assert ("events", "event_id", "expect_column_values_to_be_unique", [7]) in failed
    assert ("events", "user_id", "expect_column_values_to_be_in_set", [999999]) in failed  # unknown user
    assert ("events", "user_id", "expect_column_values_to_be_in_set", [churned[0]]) in failed  # after churn


def test_a_daily_run_checks_the_slice_it_appended(tmp_path: Path) -> None:
    """After an append only the new events are validated row by row (the slice starts at the
    first id the run added); a full load, or a run that added no event, says so."""
    from churn.data.append import append_files, latest_event_slice

    (tmp_path / "log").mkdir()
    (tmp_path / "ds.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "shop",
                "events": {"path": "log/*.csv", "user": "member", "time": "when", "type": "what"},
                "churn": {"rule": "inactivity", "lookback_days": 30},
                "snapshots": {"cadence_days": 7, "horizon_days": 14},
            }
        )
    )
    (tmp_path / "log" / "d1.csv").write_text("member,when,what\n1,2024-03-01,a\n2,2024-03-01,b\n3,2024-03-01,a\n")
    wh, dataset = Warehouse(tmp_path / "w.duckdb"), load_dataset(tmp_path / "ds.yaml")
    load_files(wh, dataset, now=NOW)
    assert latest_event_slice(wh) is None  # a full load: check everything
    (tmp_path / "log" / "d2.csv").write_text("member,when,what\n1,2024-03-02,a\n4,2024-03-02,c\n")
    append_files(wh, dataset, "2024-03-03", now=NOW)
    assert latest_event_slice(wh) == 4
    with wh.writer() as con:  # an old row goes bad: not the slice's business
        con.execute("UPDATE raw_data.events SET user_id = 77 WHERE event_id = 1")
    report = own_suite.validate_own_data(wh, dataset, max_timestamp=NOW, min_event_id=latest_event_slice(wh))
    assert report.success, report.message()
    vocabulary = [r.observed for r in report.results if r.table == "event_types"]
    assert vocabulary == ["observed 3", "observed 3"]  # the whole log's types; it is not empty
    with wh.writer() as con:
        con.execute("UPDATE raw_data.events SET user_id = 88 WHERE event_id = 5")
    report = own_suite.validate_own_data(wh, dataset, max_timestamp=NOW, min_event_id=latest_event_slice(wh))
    unknown = next(f for f in report.failures if f.column == "user_id")
    assert unknown.examples == [88]  # the slice's bad row; the old one (77) is not re-judged
    append_files(wh, dataset, "2024-03-04", now=NOW)  # nothing new
    assert latest_event_slice(wh) == 4  # no load recorded: the last one's slice again
