"""Raw-data quality suite: a clean hand-built dataset passes; each corruption is named.

Great Expectations is slow to import and to set up, so the suites are built once per
module and the corruption cases are validated together in a single ``validate_frames``
call (one table set per case, keyed ``<case>/<table>``).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from churn.data.schema import RAW_TABLES
from churn.quality import (
    DataQualityError,
    QualityReport,
    prepare_raw_frames,
    raw_data_suites,
    validate_frames,
)

# one worker: its first validation imports Great Expectations and the module fixture validates
# every corruption case (~2 CPU-s each), once instead of on both xdist workers
pytestmark = pytest.mark.xdist_group("gx_raw_suite")

MIN_TS = datetime(2024, 1, 1)
MAX_TS = datetime(2024, 12, 31, 23, 59)
N_USERS = 12


def _users() -> pd.DataFrame:
    plans = ["basic", "pro", "enterprise", "basic"] * 3
    prices = {"basic": 9.99, "pro": 29.99, "enterprise": 99.99}
    churned = [pd.NaT] * N_USERS
    churned[3] = pd.Timestamp("2024-06-01 12:00")  # 1 of 12 churned: inside (0.02, 0.30)
    return pd.DataFrame(
        {
            "user_id": pd.array(range(1, N_USERS + 1), dtype="int64"),
            "signup_at": pd.date_range("2024-01-05", periods=N_USERS, freq="7D"),
            "plan": plans,
            "monthly_price": [prices[p] for p in plans],
            "country": ["US", "GB", "DE", "FR", "BR", "IN"] * 2,
            "acquisition_channel": ["organic", "paid_search", "referral", "social"] * 3,
            "churned_at": pd.to_datetime(pd.Series(churned)),
        }
    )


def _events() -> pd.DataFrame:
    types = ["login", "page_view", "feature_use", "search", "export", "invite_sent",
             "support_ticket", "login", "page_view", "login", "search", "export"]
    return pd.DataFrame(
        {
            "event_id": pd.array(range(100, 112), dtype="int64"),
            "user_id": pd.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], dtype="int64"),
            "event_type": types,
            # microseconds, as DuckDB returns them (prepare_raw_frames casts to ns)
            "event_at": pd.date_range("2024-04-01", periods=12, freq="13h").astype(
                "datetime64[us]"
            ),
        }
    )


def _billing() -> pd.DataFrame:
    types = ["charge", "charge", "payment_failed", "refund", "plan_change", "charge"] * 2
    return pd.DataFrame(
        {
            "billing_id": pd.array(range(500, 512), dtype="int64"),
            "user_id": pd.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], dtype="int64"),
            "billed_at": pd.date_range("2024-03-01", periods=12, freq="5D").astype(
                "datetime64[us]"
            ),
            "billing_type": types,
            "plan": ["basic", "pro", "enterprise"] * 4,
            "amount": [9.99, 29.99, 0.0, 9.99, 29.99, 99.99] * 2,
        }
    )


def _clean() -> dict[str, pd.DataFrame]:
    return {"users": _users(), "events": _events(), "billing": _billing()}


def _duplicate_user_ids(t: dict[str, pd.DataFrame]) -> None:
    t["users"].loc[4, "user_id"] = 3  # user 5 disappears, 3 appears twice
    t["events"] = t["events"][t["events"].user_id != 5]
    t["billing"] = t["billing"][t["billing"].user_id != 5]


def _negative_amount(t: dict[str, pd.DataFrame]) -> None:
    t["billing"].loc[2, "amount"] = -42.5


def _unknown_user_events(t: dict[str, pd.DataFrame]) -> None:
    t["events"].loc[[0, 1], "user_id"] = [9001, 9002]


def _future_timestamps(t: dict[str, pd.DataFrame]) -> None:
    t["events"].loc[5, "event_at"] = pd.Timestamp("2031-02-03 04:05:06")


def _far_future_timestamp(t: dict[str, pd.DataFrame]) -> None:
    # outside the datetime64[ns] range: stays in microseconds, must still be caught
    t["billing"].loc[1, "billed_at"] = pd.Timestamp("2500-01-01")


def _unknown_event_type(t: dict[str, pd.DataFrame]) -> None:
    t["events"].loc[7, "event_type"] = "teleport"


def _missing_column(t: dict[str, pd.DataFrame]) -> None:
    t["billing"] = t["billing"].drop(columns=["billing_type"])


# case -> (corruption, table, column, expectation type, an example value in the message)
CASES = {
    "duplicate_user_ids": (_duplicate_user_ids, "users", "user_id",
                           "expect_column_values_to_be_unique", "[3]"),
    "negative_amount": (_negative_amount, "billing", "amount",
                        "expect_column_values_to_be_between", "-42.5"),
    "unknown_user_events": (_unknown_user_events, "events", "user_id",
                            "expect_column_values_to_be_in_set", "9001"),
    "future_timestamps": (_future_timestamps, "events", "event_at",
                          "expect_column_values_to_be_between", "2031-02-03 04:05:06"),
    "far_future_timestamp": (_far_future_timestamp, "billing", "billed_at",
                             "expect_column_values_to_be_between", "2500-01-01"),
    "unknown_event_type": (_unknown_event_type, "events", "event_type",
                           "expect_column_values_to_be_in_set", "teleport"),
    "missing_column": (_missing_column, "billing", None,
                       "expect_table_columns_to_match_ordered_list", "'billing_type'"),
}


def test_prepare_raw_frames_derives_columns_without_touching_inputs() -> None:
    t = _clean()
    t["events"].loc[0, "user_id"] = 9001
    frames = prepare_raw_frames(t["users"], t["events"], t["billing"])
    assert frames["events"]["user_known"].tolist() == [False] + [True] * 11
    assert frames["billing"]["user_known"].all()
    assert list(frames["users"].columns) == RAW_TABLES["users"].column_names
    assert frames["events"]["event_at"].dtype == "datetime64[ns]"
    assert "user_known" not in t["events"].columns
    assert t["events"]["event_at"].dtype == "datetime64[us]"


@pytest.fixture(scope="module")
def suites() -> dict:
    return raw_data_suites(min_timestamp=MIN_TS, max_timestamp=MAX_TS)


@pytest.fixture(scope="module")
def clean_run(suites: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[QualityReport, Path]:
    report_dir = tmp_path_factory.mktemp("quality_report")
    t = _clean()
    frames = prepare_raw_frames(t["users"], t["events"], t["billing"])
    return validate_frames(frames, suites, report_dir=report_dir), report_dir


@pytest.fixture(scope="module")
def corrupted_run(suites: dict) -> QualityReport:
    frames, case_suites = {}, {}
    for case, (corrupt, *_rest) in CASES.items():
        t = _clean()
        corrupt(t)
        for table, frame in prepare_raw_frames(t["users"], t["events"], t["billing"]).items():
            frames[f"{case}/{table}"] = frame
            case_suites[f"{case}/{table}"] = suites[table]
    return validate_frames(frames, case_suites)


def test_clean_data_passes(clean_run: tuple[QualityReport, Path]) -> None:
    report, _ = clean_run
    assert report.success, report.message()
    assert report.failures == []
    report.raise_for_failures()  # no exception
    assert report.message().startswith("Data quality OK")


def test_suites_cover_every_table_and_non_nullable_column(suites: dict) -> None:
    assert set(suites) == set(RAW_TABLES)
    for name, schema in RAW_TABLES.items():
        not_null = {e.column for e in suites[name].expectations
                    if type(e).__name__ == "ExpectColumnValuesToNotBeNull"}
        assert not_null == {c.name for c in schema.columns if not c.nullable}
        assert all(e.notes and e.meta.get("rule") for e in suites[name].expectations)


def test_report_frame_has_one_row_per_expectation(
    clean_run: tuple[QualityReport, Path], suites: dict
) -> None:
    frame = clean_run[0].to_frame()
    assert len(frame) == sum(len(s.expectations) for s in suites.values())
    assert {"table", "expectation", "column", "success", "unexpected_count", "examples"} <= set(
        frame.columns
    )
    assert frame["success"].all()


def test_report_dir_gets_json_and_data_docs(clean_run: tuple[QualityReport, Path]) -> None:
    _, report_dir = clean_run
    payload = json.loads((report_dir / "validation_result.json").read_text())
    assert payload["success"] is True
    assert set(payload["tables"]) == {"users", "events", "billing"}
    assert (report_dir / "data_docs" / "index.html").is_file()


@pytest.mark.parametrize("case", list(CASES))
def test_corruption_is_named_with_examples(corrupted_run: QualityReport, case: str) -> None:
    _, table, column, expectation, example = CASES[case]
    failures = [f for f in corrupted_run.failures if f.table == f"{case}/{table}"]
    match = [f for f in failures if f.column == column and f.expectation_type == expectation]
    assert match, f"{case}: expected a {expectation} failure on {column}, got {failures}"
    assert match[0].examples
    line = match[0].describe()
    assert example in line and expectation in line
    assert (f"{case}/{table}.{column}" if column else f"{case}/{table}:") in line
    assert line in corrupted_run.message()


def test_corruptions_fail_only_where_expected(corrupted_run: QualityReport) -> None:
    failed_tables = {f.table for f in corrupted_run.failures}
    expected = {f"{case}/{table}" for case, (_c, table, *_r) in CASES.items()}
    assert failed_tables == expected


def test_raise_for_failures_carries_message(corrupted_run: QualityReport) -> None:
    assert not corrupted_run.success
    with pytest.raises(DataQualityError, match="teleport") as info:
        corrupted_run.raise_for_failures()
    assert str(info.value) == corrupted_run.message()


def test_report_dir_gets_an_offline_quality_page_with_every_expectation(
    clean_run: tuple[QualityReport, Path],
) -> None:
    """Our own page from the same results: one row per expectation, no script, nothing remote."""
    report, report_dir = clean_run
    page = (report_dir / "index.html").read_text()
    assert f"all {len(report.results)} expectations passed" in page
    assert page.count('<tr class="ok"><td>passed</td>') == len(report.results)
    assert "<script" not in page and "://" not in page


def test_offline_quality_page_puts_failures_first_with_their_examples(corrupted_run: QualityReport, tmp_path) -> None:
    from churn.reports.quality import write_quality_report

    page = write_quality_report(corrupted_run, tmp_path).read_text()
    assert f"{len(corrupted_run.failures)} of {len(corrupted_run.results)} expectations FAILED" in page
    section = page.split('<h2 id="negative_amount/billing">')[1].split("</table>")[0]
    first = section.split("</tr>")[1]  # the first row after the header
    assert "FAILED" in first and "amount" in first and "-" in first
