"""Own data day after day: new files only, only the past of the run, late events within the
lookback, re-deliveries skipped, all or nothing; day-by-day loads equal one full load."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from churn.data.append import LOADED_FILES_TABLE, append_files
from churn.data.loader import load_files
from churn.dataset import DatasetError, load_dataset
from churn.store.warehouse import Warehouse

NOW = datetime(2024, 6, 1)
HEADER = "member,when,what,amount\n"
DAY1 = HEADER + "1,2024-03-01 10:00,buy,2.5\n2,2024-03-01 11:00,view,\n"
DAY2 = HEADER + "1,2024-03-02 09:00,view,\n3,2024-03-02 12:00,buy,7\n"
DAY3 = HEADER + "2,2024-03-03 08:00,buy,1\n3,2024-03-03 23:59,view,\n"


def _dataset(root: Path, **changes: dict) -> Path:
    data: dict = {
        "name": "shop",
        "events": {"path": "log/*.csv", "user": "member", "time": "when", "type": "what", "value": "amount"},
        "churn": {"rule": "inactivity", "lookback_days": 30},
        "snapshots": {"cadence_days": 7, "horizon_days": 14},
        **changes,
    }
    (root / "log").mkdir(exist_ok=True)
    path = root / "dataset.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _deliver(root: Path, name: str, text: str) -> None:
    (root / "log" / name).write_text(text)


def _tables(wh: Warehouse) -> dict[str, pd.DataFrame]:
    with wh.reader() as con:
        return {
            t: con.execute(f"SELECT * FROM raw_data.{t} ORDER BY ALL").df() for t in ("events", "users", "loaded_files")
        }


def test_day_by_day_appends_equal_one_full_load(tmp_path: Path) -> None:
    """Three daily files appended one run at a time give exactly the tables of one full load."""
    daily, full = tmp_path / "daily", tmp_path / "full"
    for root in (daily, full):
        root.mkdir()
        _dataset(root)
    wh = Warehouse(daily / "w.duckdb")
    for day, text in enumerate([DAY1, DAY2, DAY3], start=1):
        _deliver(daily, f"day{day}.csv", text)
        _deliver(full, f"day{day}.csv", text)
        result = append_files(wh, load_dataset(daily / "dataset.yaml"), f"2024-03-0{day + 1}", now=NOW)
        assert result.initial == (day == 1) and result.loaded["events"] == [str(daily / "log" / f"day{day}.csv")]
    assert result.added == {"events": 2, "users": 0} and result.watermark == datetime(2024, 3, 4)
    assert result.summary().startswith("as_of 2024-03-04: 1 new file(s), 2 events, 0 users added")
    reference = Warehouse(full / "w.duckdb")
    load_files(reference, load_dataset(full / "dataset.yaml"), now=NOW)
    mine, theirs = _tables(wh), _tables(reference)
    pd.testing.assert_frame_equal(mine["events"], theirs["events"])
    pd.testing.assert_frame_equal(mine["users"], theirs["users"])
    assert mine["loaded_files"]["rows"].tolist() == [2, 2, 2]
    again = append_files(wh, load_dataset(daily / "dataset.yaml"), "2024-03-04", now=NOW)
    assert again.loaded["events"] == [] and len(again.already_loaded) == 3  # a rerun is a no-op
    pd.testing.assert_frame_equal(_tables(wh)["events"], mine["events"])


def test_files_after_the_run_wait_and_a_file_across_it_is_refused(tmp_path: Path) -> None:
    _dataset(tmp_path)
    wh = Warehouse(tmp_path / "w.duckdb")
    _deliver(tmp_path, "day1.csv", DAY1)
    _deliver(tmp_path, "day3.csv", DAY3)
    first = append_files(wh, load_dataset(tmp_path / "dataset.yaml"), "2024-03-02", now=NOW)
    assert first.waiting == [str(tmp_path / "log" / "day3.csv")]
    assert len(_tables(wh)["events"]) == 2
    _deliver(tmp_path, "both.csv", HEADER + "4,2024-03-03 10:00,buy,1\n4,2024-03-05 10:00,buy,1\n")
    before = _tables(wh)
    with pytest.raises(DatasetError, match=r"events.path: .*both.csv holds rows from .* across the run's date"):
        append_files(wh, load_dataset(tmp_path / "dataset.yaml"), "2024-03-04", now=NOW)
    for table, frame in _tables(wh).items():  # nothing written, not even the day3 file
        pd.testing.assert_frame_equal(frame, before[table])


def test_late_events_within_the_lookback_are_taken_older_ones_refused(tmp_path: Path) -> None:
    _dataset(tmp_path)
    wh = Warehouse(tmp_path / "w.duckdb")
    _deliver(tmp_path, "day1.csv", DAY1)
    append_files(wh, load_dataset(tmp_path / "dataset.yaml"), "2024-03-10", now=NOW)
    _deliver(tmp_path, "late.csv", HEADER + "5,2024-03-08 10:00,buy,1\n5,2024-03-10 10:00,buy,1\n")
    result = append_files(wh, load_dataset(tmp_path / "dataset.yaml"), "2024-03-11", now=NOW)
    assert result.late_events == 1 and result.added == {"events": 2, "users": 1}
    _deliver(tmp_path, "too_late.csv", HEADER + "6,2024-03-06 23:00,buy,1\n")
    before = _tables(wh)
    with pytest.raises(DatasetError, match=r"too_late.csv holds 1 event\(s\) before 2024-03-08 .* at most 3 day"):
        append_files(wh, load_dataset(tmp_path / "dataset.yaml"), "2024-03-12", now=NOW)
    pd.testing.assert_frame_equal(_tables(wh)["events"], before["events"])
    taken = append_files(wh, load_dataset(tmp_path / "dataset.yaml"), "2024-03-12", now=NOW, lookback_days=10)
    assert taken.late_events == 1  # a longer lookback, when the caller chooses it


def test_redelivered_events_and_copied_files_are_skipped(tmp_path: Path) -> None:
    _dataset(tmp_path)
    wh = Warehouse(tmp_path / "w.duckdb")
    _deliver(tmp_path, "day1.csv", DAY1)
    append_files(wh, load_dataset(tmp_path / "dataset.yaml"), "2024-03-02", now=NOW)
    _deliver(tmp_path, "day1-copy.csv", DAY1)  # the same bytes under another name
    _deliver(tmp_path, "day2.csv", DAY2 + "2,2024-03-01 11:00,view,\n")  # one row already loaded
    result = append_files(wh, load_dataset(tmp_path / "dataset.yaml"), "2024-03-03", now=NOW)
    assert sorted(result.already_loaded) == [str(tmp_path / "log" / f) for f in ("day1-copy.csv", "day1.csv")]
    assert result.duplicates_skipped == 1 and result.added["events"] == 2
    events = _tables(wh)["events"]
    assert events.event_id.tolist() == [1, 2, 3, 4] and len(events.drop(columns="event_id").drop_duplicates()) == 4


@pytest.mark.parametrize(
    ("as_of", "message"),
    [("2024-03-01", r"as_of 2024-03-01 is before the data already loaded"), ("2024-07-01", r"in the future")],
)
def test_a_run_date_before_the_loaded_data_or_in_the_future_is_refused(
    tmp_path: Path, as_of: str, message: str
) -> None:
    _dataset(tmp_path)
    wh = Warehouse(tmp_path / "w.duckdb")
    _deliver(tmp_path, "day1.csv", DAY1)
    append_files(wh, load_dataset(tmp_path / "dataset.yaml"), "2024-03-02", now=NOW)
    with pytest.raises(DatasetError, match=message):
        append_files(wh, load_dataset(tmp_path / "dataset.yaml"), as_of, now=NOW)


def test_a_loaded_file_that_changed_is_refused(tmp_path: Path) -> None:
    _dataset(tmp_path)
    wh = Warehouse(tmp_path / "w.duckdb")
    _deliver(tmp_path, "day1.csv", DAY1)
    load_files(wh, load_dataset(tmp_path / "dataset.yaml"), now=NOW)
    _deliver(tmp_path, "day1.csv", DAY1 + "9,2024-03-01 12:00,buy,1\n")
    with pytest.raises(DatasetError, match=r"day1.csv changed since it was loaded .* immutable"):
        append_files(wh, load_dataset(tmp_path / "dataset.yaml"), "2024-03-05", now=NOW)
    with wh.reader() as con:
        assert con.execute(f"SELECT count(*) FROM {LOADED_FILES_TABLE}").fetchall() == [(1,)]


def test_users_and_subscriptions_grow_and_fill_in_what_they_lacked(tmp_path: Path) -> None:
    (tmp_path / "people").mkdir()
    (tmp_path / "subs").mkdir()
    path = _dataset(
        tmp_path,
        users={"path": "people/*.csv", "user": "member", "churned_at": "left", "attributes": ["plan"]},
        subscriptions={"path": "subs/*.csv", "user": "member", "start": "from", "end": "to"},
        churn={"rule": "subscription", "grace_days": 3},
    )
    (tmp_path / "people" / "a.csv").write_text("member,plan,left\n1,gold,\n2,free,\n")
    (tmp_path / "subs" / "a.csv").write_text("member,from,to\n1,2024-02-01,\n2,2024-02-01,2024-02-20\n")
    _deliver(tmp_path, "day1.csv", DAY1)
    wh = Warehouse(tmp_path / "w.duckdb")
    append_files(wh, load_dataset(path), "2024-03-02", now=NOW)
    _deliver(tmp_path, "day2.csv", DAY2)  # user 3 is new: without a users row it is refused
    with pytest.raises(DatasetError, match=r"events.user: 1 user\(s\) of the events are not in the users file"):
        append_files(wh, load_dataset(path), "2024-03-03", now=NOW)
    (tmp_path / "people" / "b.csv").write_text("member,plan,left\n3,gold,\n1,gold,2024-03-02 20:00\n")
    (tmp_path / "subs" / "b.csv").write_text("member,from,to\n1,2024-02-01,2024-03-02\n3,2024-03-02,\n")
    result = append_files(wh, load_dataset(path), "2024-03-03", now=NOW)
    assert result.added == {"events": 2, "users": 1, "subscriptions": 1}
    with wh.reader() as con:
        users = con.execute("SELECT user_id, plan, churned_at FROM raw_data.users ORDER BY 1").df()
        subs = con.execute("SELECT * FROM raw_data.subscriptions ORDER BY ALL").df()
    assert users.plan.tolist() == ["gold", "free", "gold"]
    assert users.churned_at.iloc[0] == pd.Timestamp("2024-03-02 20:00") and users.churned_at.iloc[1:].isna().all()
    assert subs.ended_at.iloc[0] == pd.Timestamp("2024-03-02") and len(subs) == 3
    (tmp_path / "people" / "c.csv").write_text("member,plan,left\n2,free,2024-03-05\n")  # not known yet
    with pytest.raises(
        DatasetError, match=r"users.churned_at: 1 user\(s\) with a churned_at on or after .* 2024-03-04"
    ):
        append_files(wh, load_dataset(path), "2024-03-04", now=NOW)
    (tmp_path / "people" / "c.csv").unlink()
    (tmp_path / "subs" / "c.csv").write_text("member,from,to\n2,2024-02-01,2024-02-25\n")
    with pytest.raises(DatasetError, match=r"subscriptions.end: 1 subscription\(s\) already loaded with another end"):
        append_files(wh, load_dataset(path), "2024-03-04", now=NOW)


def test_a_changed_reading_of_the_files_is_refused(tmp_path: Path) -> None:
    """New files must be read like the stored ones: a dataset file whose events section changed
    (here: another time zone) cannot append; it needs a rebuild."""
    _dataset(tmp_path)
    wh = Warehouse(tmp_path / "w.duckdb")
    _deliver(tmp_path, "day1.csv", DAY1)
    append_files(wh, load_dataset(tmp_path / "dataset.yaml"), "2024-03-02", now=NOW)
    events = {"path": "log/*.csv", "user": "member", "time": "when", "type": "what", "value": "amount"}
    _dataset(tmp_path, events={**events, "timezone": "Europe/Berlin"})
    _deliver(tmp_path, "day2.csv", DAY2)
    with pytest.raises(DatasetError, match=r"events: the dataset file's 'events' section changed .* rebuild"):
        append_files(wh, load_dataset(tmp_path / "dataset.yaml"), "2024-03-03", now=NOW)
