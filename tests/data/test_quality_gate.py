"""The quality gate judges every row in DuckDB and gives Great Expectations only a sample.

Two kinds of proof, for own data and for the simulator's tables:
- on a small table Great Expectations validates whole (the independent reference), the SQL
  outcomes agree with its outcomes: verdict, counts, observed text and examples;
- every SQL check catches a violation planted in a row OUTSIDE the Great Expectations sample,
  so the whole table really is checked (the sample is computed and the planted rows shown to be
  outside it).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from churn.data.loader import load_files
from churn.dataset import load_dataset
from churn.quality import gate, own_suite, runner, suites
from churn.store import raw_checks
from churn.store.warehouse import Warehouse

NOW = datetime(2024, 6, 1)
SIM_NOW = datetime(2026, 6, 1)


def _own_log(tmp_path: Path, n: int) -> tuple[Warehouse, object]:
    rows = [f"{1 + i % 6},2024-03-{1 + i % 28:02d} 10:{i % 60:02d},{'abc'[i % 3]},{i}" for i in range(n)]
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
    return wh, dataset


@pytest.fixture
def corrupted(tmp_path: Path) -> tuple[Warehouse, object]:
    """60 clean events, then a repeated id, an unknown user, a future time and a missing type."""
    wh, dataset = _own_log(tmp_path, 60)
    with wh.writer() as con:
        con.execute(
            "INSERT INTO raw_data.events VALUES (30, 2, 'a', TIMESTAMP '2024-03-05', 1), "
            "(61, 99, 'b', TIMESTAMP '2024-03-06', 1), (62, 3, 'c', TIMESTAMP '2030-01-01', 1), "
            "(63, 4, NULL, TIMESTAMP '2024-03-07', 1), (64, 98, 'a', TIMESTAMP '2024-03-08', 1)"
        )
    return wh, dataset


def _comparable(report: runner.QualityReport) -> pd.DataFrame:
    """The outcomes judged in SQL (or all of a GE-only report), without notes and scope."""
    frame = report.to_frame()
    frame = frame[frame["scope"].isna() | (frame["scope"] == gate.WHOLE_TABLE)].drop(columns=["notes", "scope"])
    # a null is None from DuckDB, NaN from a pandas string column: the same missing value
    frame["examples"] = frame["examples"].map(lambda xs: sorted("None" if str(x) == "nan" else str(x) for x in xs))
    frame["unexpected_count"] = frame["unexpected_count"].astype("float64")
    keys = ["table", "expectation", "column", "observed"]
    return frame.sort_values(keys, na_position="first").reset_index(drop=True)


def _agree(sql: runner.QualityReport, reference: runner.QualityReport) -> None:
    """Every SQL outcome equals Great Expectations' over the whole frames (and nothing is missing)."""
    ours, theirs = _comparable(sql), _comparable(reference)
    theirs = theirs[theirs["expectation"] != "expect_column_values_to_be_of_type"].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs)


def test_sql_outcomes_agree_with_great_expectations_on_a_small_own_log(
    corrupted: tuple[Warehouse, object], tmp_path: Path
) -> None:
    wh, dataset = corrupted
    report = own_suite.validate_own_data(wh, dataset, max_timestamp=NOW, report_dir=tmp_path / "q")
    frames = own_suite.read_own_frames(wh)
    reference = runner.validate_frames(
        frames, own_suite.own_data_suites(frames, max_timestamp=NOW, rule="inactivity", churn_share=None)
    )
    _agree(report, reference)
    failed = {(f.table, f.column, f.expectation_type): f for f in report.failures}
    assert failed["events", "event_id", "expect_column_values_to_be_unique"].examples == [30]
    assert sorted(failed["events", "user_id", "expect_column_values_to_be_in_set"].examples) == [98, 99]
    assert "1 of 65 rows" in failed["events", "event_at", "expect_column_values_to_be_between"].observed
    assert ("events", "event_type", "expect_column_values_to_not_be_null") in failed
    scopes = set(report.to_frame()["scope"])
    assert scopes == {gate.WHOLE_TABLE, "whole table (Great Expectations)"}  # 65 rows < the sample size
    docs = tmp_path / "q" / "data_docs"
    assert (docs / "index.html").exists()
    assert list((docs / "validations").glob("events_whole_table/**/*.html"))  # SQL outcomes in Data Docs too
    page = (tmp_path / "q" / "index.html").read_text()
    assert gate.WHOLE_TABLE in page and "checked on" in page


def test_own_sql_checks_catch_violations_outside_the_sample(tmp_path: Path) -> None:
    """A 300-event log, a 25-row sample: each violation sits in a row the sample does not hold."""
    wh, dataset = _own_log(tmp_path, 300)
    sample, total = raw_checks.sample_rows(wh, "events", "event_id", 25, gate.SAMPLE_SEED)
    assert (len(sample), total) == (25, 300)
    outside = sorted(set(range(1, 301)) - set(sample["event_id"]))[:10]
    dup_of, dup, unknown, future, no_type = outside[0], outside[1], outside[2], outside[3], outside[4]
    with wh.writer() as con:
        con.execute(f"UPDATE raw_data.events SET event_id = {dup_of} WHERE event_id = {dup}")
        con.execute(f"UPDATE raw_data.events SET user_id = 4242 WHERE event_id = {unknown}")
        con.execute(f"UPDATE raw_data.events SET event_at = TIMESTAMP '2031-01-01' WHERE event_id = {future}")
        con.execute(f"UPDATE raw_data.events SET event_type = NULL WHERE event_id = {no_type}")
    after, _ = raw_checks.sample_rows(wh, "events", "event_id", 25, gate.SAMPLE_SEED)
    assert not set(after["event_id"]) & {dup_of, unknown, future, no_type}  # still outside the sample
    report = own_suite.validate_own_data(wh, dataset, max_timestamp=NOW, sample_rows=25)
    failed = {(f.column, f.expectation_type): f for f in report.failures}
    assert set(failed) == {
        ("event_id", "expect_column_values_to_be_unique"),
        ("user_id", "expect_column_values_to_be_in_set"),
        ("event_at", "expect_column_values_to_be_between"),
        ("event_type", "expect_column_values_to_not_be_null"),
    }
    assert failed["event_id", "expect_column_values_to_be_unique"].examples == [dup_of]
    assert "2 of 300 rows" in failed["event_id", "expect_column_values_to_be_unique"].observed
    assert failed["user_id", "expect_column_values_to_be_in_set"].examples == [4242]
    assert failed["event_at", "expect_column_values_to_be_between"].examples == ["2031-01-01 00:00:00"]
    assert "1 of 300 rows" in failed["event_type", "expect_column_values_to_not_be_null"].observed
    types = [r for r in report.results if r.expectation == "expect_column_values_to_be_of_type" and r.table == "events"]
    assert types and all(r.scope == "sample of 25 of 300 rows (Great Expectations)" for r in types)


def test_a_clean_log_passes(tmp_path: Path) -> None:
    wh, dataset = _own_log(tmp_path, 60)
    report = own_suite.validate_own_data(wh, dataset, max_timestamp=NOW, sample_rows=10)
    assert report.success, report.message()
    row_count = next(r for r in report.results if r.expectation == "expect_table_row_count_to_be_between")
    assert row_count.observed == "observed 60"


def test_the_sample_is_fixed_by_the_seed_and_spread_over_the_table(tmp_path: Path) -> None:
    wh, _ = _own_log(tmp_path, 2_000)
    first, total = raw_checks.sample_rows(wh, "events", "event_id", 100, 7)
    again, _ = raw_checks.sample_rows(wh, "events", "event_id", 100, 7)
    other, _ = raw_checks.sample_rows(wh, "events", "event_id", 100, 8)
    pd.testing.assert_frame_equal(first, again)
    assert total == 2_000 and len(first) == 100 and set(first["event_id"]) != set(other["event_id"])
    assert first["event_id"].min() < 400 and first["event_id"].max() > 1_600  # not the first rows
    whole, _ = raw_checks.sample_rows(wh, "events", "event_id", 5_000, 7)
    assert len(whole) == 2_000


def _simulated(tmp_path: Path) -> Warehouse:
    from churn.data.synthetic import SimulationParams, iter_chunks
    from churn.store.raw import write_raw_tables

    wh = Warehouse(tmp_path / "w.duckdb")
    write_raw_tables(wh, iter_chunks(SimulationParams(n_users=30, scenario="stable"), progress=False))
    return wh


def test_sql_outcomes_agree_with_great_expectations_on_small_simulator_tables(tmp_path: Path) -> None:
    """A repeated event id, an event after its user's churn, one of an unknown user and type,
    a future event and a negative amount: the same counts and examples as Great Expectations
    validating the whole tables (prepared in pandas by prepare_raw_frames)."""
    from churn.store.raw import read_raw_tables

    wh = _simulated(tmp_path)
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
            "INSERT INTO raw_data.events SELECT max(event_id) + 1, 999999, 'teleport', TIMESTAMP '2031-02-01' "
            "FROM raw_data.events"
        )
        con.execute("UPDATE raw_data.billing SET amount = -3 WHERE billing_id = 2")
    report = suites.validate_raw(wh, max_timestamp=SIM_NOW)
    tables = read_raw_tables(wh)
    reference = runner.validate_frames(
        suites.prepare_raw_frames(tables["users"], tables["events"], tables["billing"]),
        suites.raw_data_suites(max_timestamp=SIM_NOW),
    )
    _agree(report, reference)
    failed = [(f.table, f.column, f.expectation_type, f.examples) for f in report.failures]
    assert ("events", "event_id", "expect_column_values_to_be_unique", [7]) in failed
    assert ("events", "user_id", "expect_column_values_to_be_in_set", [999999]) in failed  # unknown user
    assert ("events", "user_id", "expect_column_values_to_be_in_set", [churned[0]]) in failed  # after churn
    assert ("events", "event_type", "expect_column_values_to_be_in_set", ["teleport"]) in failed
    assert ("billing", "amount", "expect_column_values_to_be_between", [-3.0]) in failed
    assert len(failed) == 6


def test_simulator_sql_checks_catch_violations_outside_the_sample(tmp_path: Path) -> None:
    wh = _simulated(tmp_path)
    n = 40
    sample, total = raw_checks.sample_rows(wh, "events", "event_id", n, gate.SAMPLE_SEED)
    billing_sample, _ = raw_checks.sample_rows(wh, "billing", "billing_id", n, gate.SAMPLE_SEED)
    with wh.reader() as con:
        ids = [r[0] for r in con.execute("SELECT event_id FROM raw_data.events ORDER BY event_id").fetchall()]
        billing_ids = [r[0] for r in con.execute("SELECT billing_id FROM raw_data.billing ORDER BY 1").fetchall()]
        churned = con.execute(
            "SELECT user_id, churned_at FROM raw_data.users WHERE churned_at IS NOT NULL LIMIT 1"
        ).fetchall()[0]
    outside = [i for i in ids if i not in set(sample["event_id"])][:: max(1, total // 20)][:6]
    dup_of, dup, unknown, after, teleport, future = outside
    negative = next(i for i in billing_ids if i not in set(billing_sample["billing_id"]))
    with wh.writer() as con:
        con.execute(f"UPDATE raw_data.events SET event_id = {dup_of} WHERE event_id = {dup}")
        con.execute(f"UPDATE raw_data.events SET user_id = 999999 WHERE event_id = {unknown}")
        con.execute(
            f"UPDATE raw_data.events SET user_id = ?, event_at = ? + INTERVAL 1 HOUR WHERE event_id = {after}",
            [churned[0], churned[1]],
        )
        con.execute(f"UPDATE raw_data.events SET event_type = 'teleport' WHERE event_id = {teleport}")
        con.execute(f"UPDATE raw_data.events SET event_at = TIMESTAMP '2031-01-01' WHERE event_id = {future}")
        con.execute(f"UPDATE raw_data.billing SET amount = -1 WHERE billing_id = {negative}")
    after_sample, _ = raw_checks.sample_rows(wh, "events", "event_id", n, gate.SAMPLE_SEED)
    assert not set(after_sample["event_id"]) & set(outside)
    report = suites.validate_raw(wh, max_timestamp=SIM_NOW, sample_rows=n)
    failed = {(f.table, f.column, f.expectation_type, str(f.notes)[:20]): f for f in report.failures}
    found = {(t, c, e) for t, c, e, _ in failed}
    assert found == {
        ("events", "event_id", "expect_column_values_to_be_unique"),
        ("events", "user_id", "expect_column_values_to_be_in_set"),  # unknown user and after churn
        ("events", "event_type", "expect_column_values_to_be_in_set"),
        ("events", "event_at", "expect_column_values_to_be_between"),
        ("billing", "amount", "expect_column_values_to_be_between"),
    }
    examples = {(t, c, e, n_): f.examples for (t, c, e, n_), f in failed.items()}
    assert [dup_of] in examples.values() and [999999] in examples.values() and [churned[0]] in examples.values()
    assert ["teleport"] in examples.values() and [-1.0] in examples.values()


def test_a_daily_run_checks_the_slice_it_appended(tmp_path: Path) -> None:
    """After an append only the new events are judged row by row (the slice starts at the first
    id the run added); a full load, or a run that added no event, says so."""
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


def _daily(tmp_path: Path) -> tuple[Warehouse, object, object]:
    """A 30-user world loaded up to `end`, judged whole and remembered as passed, then one day
    appended by a cycle (2026-01-02): (warehouse, params, data set)."""
    from churn import cycle
    from churn.data.synthetic import SimulationParams
    from churn.store import raw

    wh = Warehouse(tmp_path / "w.duckdb")
    params = SimulationParams(n_users=30, scenario="stable")
    dataset = {"name": "synthetic", "fingerprint": "f", "source": "synthetic", "rule": "cancellation"}
    cycle.load_synthetic(wh, params, dataset, None, progress=False)
    assert suites.validate_raw(wh, max_timestamp=SIM_NOW, sample_rows=40).success
    raw_checks.record_check(wh, raw.last_load(wh))
    cycle.load_synthetic(wh, params, dataset, datetime(2026, 1, 2).date(), progress=False)
    return wh, params, dataset


def _daily_gate(wh: Warehouse) -> runner.QualityReport:
    return suites.validate_raw(
        wh, max_timestamp=datetime(2026, 1, 1, 23, 59), increment=raw_checks.increment(wh), sample_rows=40
    )


def test_a_daily_gate_judges_the_new_rows_and_their_ids_against_every_row(tmp_path: Path) -> None:
    """In a cycle the row-level checks see the rows loaded since the last passing gate (the report
    says so), the ids of those rows are judged against the older ones: a new row repeating an OLD
    row's id (which a check of the new rows alone would miss) fails, and so do an unknown user, an
    unknown event type and a future time planted in the new rows."""
    wh, _, _ = _daily(tmp_path)
    increment = raw_checks.increment(wh)
    assert increment is not None and not increment.whole and not increment.affected_users
    with wh.reader() as con:
        new_ids = [
            r[0]
            for r in con.execute(
                "SELECT event_id FROM raw_data.events WHERE event_at >= TIMESTAMP '2026-01-01' ORDER BY 1"
            ).fetchall()
        ]
        total = con.execute("SELECT count(*) FROM raw_data.events").fetchall()[0][0]
        old_id = con.execute("SELECT min(event_id) FROM raw_data.events").fetchall()[0][0]
    assert increment.new_rows["events"] == len(new_ids) > 4 and increment.total_rows["events"] == total
    clean = _daily_gate(wh)
    assert clean.success, clean.message()
    scopes = {(r.table, r.expectation, r.column): r.scope for r in clean.results}
    assert scopes["events", "expect_column_values_to_be_between", "event_at"] == (
        f"the {len(new_ids):,} rows loaded since the check of 2026-01-01 (of {total:,}; DuckDB)"
    )
    unique_scope = scopes["events", "expect_column_values_to_be_unique", "event_id"]
    assert unique_scope == f"the ids of the {len(new_ids):,} new rows against all {total:,} rows (DuckDB)"
    assert scopes["users", "expect_column_values_to_be_unique", "user_id"] == gate.WHOLE_TABLE

    duplicate, unknown, teleport, future = new_ids[:4]
    with wh.writer() as con:
        con.execute(f"UPDATE raw_data.events SET event_id = {old_id} WHERE event_id = {duplicate}")
        con.execute(f"UPDATE raw_data.events SET user_id = 999999 WHERE event_id = {unknown}")
        con.execute(f"UPDATE raw_data.events SET event_type = 'teleport' WHERE event_id = {teleport}")
        con.execute(f"UPDATE raw_data.events SET event_at = TIMESTAMP '2026-01-01 23:59:30' WHERE event_id = {future}")
    report = _daily_gate(wh)
    failed = {(f.column, f.expectation_type): f for f in report.failures}
    assert set(failed) == {
        ("event_id", "expect_column_values_to_be_unique"),
        ("user_id", "expect_column_values_to_be_in_set"),
        ("event_type", "expect_column_values_to_be_in_set"),
        ("event_at", "expect_column_values_to_be_between"),
    }
    unique = next(r for r in report.results if r.column == "event_id" and not r.success)
    assert unique.examples == [old_id] and unique.unexpected_count == 2  # the old row and the new one
    assert failed["user_id", "expect_column_values_to_be_in_set"].examples == [999999]
    assert failed["event_type", "expect_column_values_to_be_in_set"].examples == ["teleport"]


def test_a_daily_gate_judges_again_what_changed_under_the_older_rows(tmp_path: Path) -> None:
    """What an incremental gate could miss is judged again: the slices of a run whose gate
    failed (no pass recorded), an older row inserted behind the watermark (its table judged
    whole), a user who vanished from users and one whose churn date moved before older rows."""
    from churn.store import raw

    wh, params, dataset = _daily(tmp_path)
    from churn import cycle

    first_day = raw_checks.increment(wh).new_rows["events"]
    cycle.load_synthetic(wh, params, dataset, datetime(2026, 1, 3).date(), progress=False)  # no pass recorded
    assert raw_checks.increment(wh).new_rows["events"] > first_day  # both days are judged
    raw_checks.record_check(wh, raw.last_load(wh))
    assert raw_checks.increment(wh).new_rows["events"] == 0

    with wh.reader() as con:
        (old_id,) = con.execute("SELECT max(event_id) FROM raw_data.events").fetchall()[0]
        vanished, late_user, churn_at = con.execute(
            "SELECT (SELECT min(user_id) FROM raw_data.events), u.user_id, max(e.event_at) - INTERVAL 1 DAY "
            "FROM raw_data.users u JOIN raw_data.events e USING (user_id) WHERE u.churned_at IS NULL "
            "AND u.user_id <> (SELECT min(user_id) FROM raw_data.events) GROUP BY u.user_id ORDER BY 2 LIMIT 1"
        ).fetchall()[0]
    with wh.writer() as con:
        con.execute(f"INSERT INTO raw_data.events VALUES ({old_id + 1}, 2, 'teleport', TIMESTAMP '2025-06-01')")
        con.execute(f"DELETE FROM raw_data.users WHERE user_id = {vanished}")
        con.execute("UPDATE raw_data.users SET churned_at = ? WHERE user_id = ?", [churn_at, late_user])
    increment = raw_checks.increment(wh)
    assert set(increment.whole) == {"events"} and "last check saw" in increment.whole["events"]
    assert increment.affected_users == tuple(sorted((vanished, late_user)))
    report = _daily_gate(wh)
    failed = {(f.table, f.column, f.expectation_type, tuple(f.examples)) for f in report.failures}
    assert ("events", "event_type", "expect_column_values_to_be_in_set", ("teleport",)) in failed
    assert ("events", "user_id", "expect_column_values_to_be_in_set", (vanished,)) in failed  # unknown user
    assert ("events", "user_id", "expect_column_values_to_be_in_set", (late_user,)) in failed  # after churn
    scope = next(r.scope for r in report.results if r.table == "billing" and r.column == "amount")
    assert "older rows of 2 users" in scope


def test_a_new_full_load_forgets_the_last_pass(tmp_path: Path) -> None:
    """A full load replaces the tables the last pass judged: the next gate judges everything."""
    from churn import cycle

    wh, params, dataset = _daily(tmp_path)
    assert raw_checks.increment(wh) is not None
    cycle.load_synthetic(wh, params, dataset, None, progress=False)
    assert raw_checks.increment(wh) is None


def test_a_daily_overview_describes_the_rows_the_cycle_loaded(tmp_path: Path) -> None:
    """generate-data's overview in a cycle counts the appended rows (timed from the last load),
    per day and type, as pandas counts them in the slice; the users table whole."""
    from churn.store import raw

    wh, _, _ = _daily(tmp_path)
    since = pd.Timestamp("2026-01-01")
    overview = raw.describe_raw(wh, since=since)
    tables = raw.read_raw_tables(wh)
    events = tables["events"][tables["events"].event_at >= since]
    assert "weekly_activity" not in overview
    daily = overview["daily_activity"]
    assert list(daily.events) == [len(events)] and list(daily.active_users) == [events.user_id.nunique()]
    expected = events.event_type.value_counts()
    assert dict(zip(overview["event_types"].event_type, overview["event_types"].events, strict=True)) == dict(expected)
    assert overview["plans"].users.sum() == len(tables["users"])
    billing = tables["billing"][tables["billing"].billed_at >= since]
    assert overview.get("billing_types", pd.DataFrame(columns=["records"])).records.sum() == len(billing)
