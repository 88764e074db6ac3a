"""Own files into the warehouse: the user's column names, any vocabulary, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from churn.data.loader import load_files
from churn.dataset import DatasetError, load_dataset
from churn.store.warehouse import Warehouse

EVENTS = "member,when,what,amount\n7,2024-03-01 10:00,boost,2.5\n7,2024-03-02 11:00,zap,\n9,2024-03-05 00:30,boost,1\n"


def _dataset(tmp_path: Path, log: str = EVENTS, **changes) -> Path:
    (tmp_path / "log.csv").write_text(log)
    data = {
        "name": "app",
        "events": {
            "path": "log.csv",
            "user": "member",
            "time": "when",
            "type": "what",
            "value": "amount",
            "timezone": "Europe/Berlin",
        },
        "churn": {"rule": "inactivity", "lookback_days": 30},
        "snapshots": {"cadence_days": 7, "horizon_days": 14},
    }
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "dataset.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _read(wh: Warehouse, sql: str) -> pd.DataFrame:
    with wh.reader() as con:
        return con.execute(sql).df()


def test_own_names_and_vocabulary_are_mapped_and_times_stored_as_utc(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    counts = load_files(wh, load_dataset(_dataset(tmp_path)))
    assert counts == {"events": 3, "billing": 0, "users": 2}
    events = _read(wh, "SELECT * FROM raw_data.events ORDER BY event_id")
    assert list(events.columns) == ["event_id", "user_id", "event_type", "event_at", "value"]
    assert events.event_type.tolist() == ["boost", "zap", "boost"]  # free vocabulary
    assert events.event_at.iloc[0] == pd.Timestamp("2024-03-01 09:00")  # Berlin (UTC+1) -> UTC
    assert pd.isna(events.value.iloc[1])
    users = _read(wh, "SELECT * FROM raw_data.users ORDER BY user_id")
    assert users.user_id.tolist() == [7, 9] and users.signup_at.iloc[0] == pd.Timestamp("2024-03-01 09:00")
    assert users.churned_at.isna().all()  # no churn dates: the inactivity rule labels churn
    info = _read(wh, "SELECT * FROM raw_data.dataset")
    assert info.name.iloc[0] == "app" and info.rule.iloc[0] == "inactivity"


def test_dates_long_ago_are_accepted(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    load_files(wh, load_dataset(_dataset(tmp_path, "member,when,what,amount\n1,1987-05-01,a,1\n")))
    assert _read(wh, "SELECT year(min(event_at)) AS y FROM raw_data.events").y.iloc[0] == 1987


@pytest.mark.parametrize(
    ("log", "changes", "message"),
    [
        (EVENTS, {"events": {"user": "customer"}}, r"events.user: column 'customer' is not in .*log.csv"),
        (
            "member,when,what,amount\n7,yesterday,boost,1\n",
            {},
            r"events.time: column 'when' .* cannot be parsed .* 'yesterday'",
        ),
        ("member,when,what,amount\n7,2999-01-01,boost,1\n", {}, r"events.time: .*1 future timestamp"),
        (
            "member,when,what,amount\nx7,2024-01-01,boost,1\n",
            {},
            r"events.user: column 'member' .* not an integer id .*'x7'",
        ),
        (
            "member,when,what,amount\n7,2024-01-01,boost,lots\n",
            {},
            r"events.value: column 'amount' .* not a number .*'lots'",
        ),
        (EVENTS, {"events": {"timezone": "Mars/Olympus"}}, r"events.timezone: unknown time zone 'Mars/Olympus'"),
        (EVENTS, {"churn": {"event_types": ["purchase"]}}, r"churn.event_types: \['purchase'\] never occur"),
    ],
)
def test_bad_input_is_named_and_previous_tables_kept(tmp_path: Path, log: str, changes: dict, message: str) -> None:
    wh = Warehouse(tmp_path / "w.duckdb")
    load_files(wh, load_dataset(_dataset(tmp_path)))
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(DatasetError, match=message):
        load_files(wh, load_dataset(_dataset(bad, log, **changes)))
    assert len(_read(wh, "SELECT * FROM raw_data.events")) == 3  # the previous load is intact


def test_events_of_users_missing_from_the_users_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("member,plan\n7,gold\n")
    path = _dataset(tmp_path, users={"path": "people.csv", "user": "member", "attributes": ["plan"]})
    with pytest.raises(DatasetError, match=r"events.user: 1 user\(s\) of the events are not in the users file .* 9"):
        load_files(Warehouse(tmp_path / "w.duckdb"), load_dataset(path))


def test_a_glob_of_parquet_files_is_one_log(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "member": [1, 2],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "what": ["a", "b"],
            "amount": [1.0, 2.0],
        }
    )
    for i in range(2):
        frame.assign(member=frame.member + 10 * i).to_parquet(tmp_path / f"part{i}.parquet")
    path = _dataset(tmp_path, events={"path": "part*.parquet", "timezone": "UTC"})
    assert load_files(Warehouse(tmp_path / "w.duckdb"), load_dataset(path))["events"] == 4


def test_raw_tables_written_without_a_data_set_drop_the_previous_data_sets_record(tmp_path: Path) -> None:
    """Replacing the raw tables (e.g. a simulator run) must not leave the earlier data set's name
    and fingerprint behind: models would be judged against the wrong identity."""
    from churn.data.synthetic import SimulationParams, iter_chunks
    from churn.store.raw import dataset_info, write_raw_tables

    wh = Warehouse(tmp_path / "w.duckdb")
    load_files(wh, load_dataset(_dataset(tmp_path)))
    assert dataset_info(wh)["name"] == "app"
    write_raw_tables(wh, iter_chunks(SimulationParams(n_users=50, scenario="stable"), progress=False))
    assert dataset_info(wh) is None


def test_text_times_with_their_own_offset_are_converted_by_it(tmp_path: Path) -> None:
    """A CSV time with an offset is read as that instant, whatever the data set's time zone."""
    log = "member,when,what,amount\n7,2024-03-01 10:00:00+02:00,a,1\n7,2024-03-01 10:00:00Z,a,1\n7,2024-03-01,a,1\n"
    wh = Warehouse(tmp_path / "w.duckdb")
    load_files(wh, load_dataset(_dataset(tmp_path, log)))
    times = _read(wh, "SELECT event_at FROM raw_data.events ORDER BY event_id").event_at.tolist()
    # Berlin is UTC+1 in March: only the time without an offset is shifted by it
    assert times == [
        pd.Timestamp("2024-02-29 23:00"),
        pd.Timestamp("2024-03-01 08:00"),
        pd.Timestamp("2024-03-01 10:00"),
    ]
