"""Your own data: CSV/Parquet files in the raw schema, refused with a precise message otherwise."""

from __future__ import annotations

import pandas as pd
import pytest

from churn.data.files import RawFileError, read_raw_files
from churn.store.raw import read_raw_tables, write_raw_tables
from churn.store.warehouse import Warehouse


def _write_valid(folder, fmt: str = "csv") -> None:
    users = pd.DataFrame({
        "user_id": [1, 2], "signup_at": ["2025-01-01 10:00:00", "2025-02-01 09:30:00"],
        "plan": ["basic", "pro"], "monthly_price": [9.99, 29.99], "country": ["US", "DE"],
        "acquisition_channel": ["organic", "referral"], "churned_at": [None, "2025-06-01 00:00:00"],
    })
    events = pd.DataFrame({
        "event_id": [1, 2, 3], "user_id": [1, 2, 2], "event_type": ["login", "page_view", "login"],
        "event_at": ["2025-01-02 08:00:00", "2025-02-02 12:00:00", "2025-03-01 18:00:00"],
    })
    billing = pd.DataFrame({
        "billing_id": [1], "user_id": [2], "billed_at": ["2025-02-01 09:30:00"],
        "billing_type": ["charge"], "plan": ["pro"], "amount": [29.99],
    })
    for name, frame in {"users": users, "events": events, "billing": billing}.items():
        if fmt == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        else:
            frame.to_parquet(folder / f"{name}.parquet", index=False)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_valid_files_load_into_the_warehouse(tmp_path, fmt):
    """CSV and Parquet in the documented schema end up as typed raw tables."""
    _write_valid(tmp_path, fmt)
    wh = Warehouse(tmp_path / "w.duckdb")
    counts = write_raw_tables(wh, [read_raw_files(tmp_path)])
    assert counts["users"] == 2 and counts["events"] == 3 and counts["billing"] == 1
    tables = read_raw_tables(wh)
    assert str(tables["events"]["event_at"].dtype).startswith("datetime64")
    assert tables["users"]["churned_at"].isna().sum() == 1


def test_missing_file_is_named(tmp_path):
    _write_valid(tmp_path)
    (tmp_path / "billing.csv").unlink()
    with pytest.raises(RawFileError, match="missing raw file for table 'billing'"):
        read_raw_files(tmp_path)


def test_missing_column_names_file_and_column(tmp_path):
    _write_valid(tmp_path)
    pd.read_csv(tmp_path / "events.csv").drop(columns="event_type").to_csv(tmp_path / "events.csv", index=False)
    with pytest.raises(RawFileError, match=r"events\.csv: missing column\(s\) \['event_type'\]"):
        read_raw_files(tmp_path)


def test_bad_value_names_file_column_and_example_row(tmp_path):
    _write_valid(tmp_path)
    frame = pd.read_csv(tmp_path / "users.csv").astype({"monthly_price": object})
    frame.loc[1, "monthly_price"] = "free"
    frame.to_csv(tmp_path / "users.csv", index=False)
    with pytest.raises(RawFileError, match=r"users\.csv: column 'monthly_price' not a valid DOUBLE .* row 2: .*'free'"):
        read_raw_files(tmp_path)


def test_empty_required_value_is_refused(tmp_path):
    _write_valid(tmp_path)
    frame = pd.read_csv(tmp_path / "events.csv")
    frame.loc[0, "user_id"] = None
    frame.to_csv(tmp_path / "events.csv", index=False)
    with pytest.raises(RawFileError, match="'user_id' is empty but the column is required"):
        read_raw_files(tmp_path)


def test_bad_file_leaves_previous_load_intact(tmp_path):
    """A failing load (here: a chunk that breaks half-way) never half-replaces the tables."""
    _write_valid(tmp_path)
    wh = Warehouse(tmp_path / "w.duckdb")
    good = read_raw_files(tmp_path)
    write_raw_tables(wh, [good])

    def chunks():
        yield good
        raise RawFileError("second file is malformed")

    with pytest.raises(RawFileError):
        write_raw_tables(wh, chunks())
    assert len(read_raw_tables(wh)["events"]) == 3


def test_malformed_csv_is_reported(tmp_path):
    _write_valid(tmp_path)
    (tmp_path / "users.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(RawFileError, match=r"users\.parquet: cannot be read as parquet"):
        read_raw_files(tmp_path)
