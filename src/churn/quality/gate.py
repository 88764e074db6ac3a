"""The raw-data quality gate at any size: every row checked in DuckDB, Great Expectations on a sample.

The suites stay Great Expectations suites (:mod:`churn.quality.suites` for the simulator's
tables, :mod:`churn.quality.own_suite` for a data set's own): one declaration, one name per
expectation. :func:`validate_warehouse` splits each suite in two:

- every expectation with an exact SQL meaning (unique ids, non-null, ranges and timestamps not
  in the future, allowed values and vocabulary size, every row's user known, nothing after
  churn, row count, churn share, the column list) is translated into a
  :class:`churn.store.raw_checks.Check` and judged in DuckDB over the WHOLE table, in a few
  scans, whatever its size; its outcome carries the same expectation name, column, counts,
  examples and note as Great Expectations would report;
- the rest, plus the column types of the documented schema (``type_rules``), is validated by
  Great Expectations on a bounded sample of each table: the :data:`SAMPLE_ROWS` rows with the
  smallest ``hash(key, SAMPLE_SEED)`` (:func:`churn.store.raw_checks.sample_rows`), the same on
  every run. Great Expectations' Data Docs show the sample's validation and the whole-table
  outcomes (rendered from the same result records); our offline page shows both with their scope.

A 140M-event log costs a few DuckDB scans and a 50,000-row pandas frame, instead of the whole
log in pandas (the build's memory peak at 100,000 users was this gate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from churn.quality import runner
from churn.store import raw_checks
from churn.store.raw_checks import Check, CheckResult
from churn.store.warehouse import Warehouse

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

SAMPLE_ROWS = 50_000
"""Rows per table Great Expectations validates (the type checks)."""
SAMPLE_SEED = 20_261_205
"""Fixes which rows the sample holds."""
WHOLE_TABLE = "whole table (DuckDB)"


def sample_scope(rows: int, total: int, new_only: bool = False) -> str:
    """How much of a table Great Expectations saw (``new_only``: of a daily run's new rows)."""
    if new_only:
        return f"{'all' if rows >= total else f'a sample of {rows:,} of'} the {total:,} new rows (Great Expectations)"
    return (
        "whole table (Great Expectations)"
        if rows >= total
        else f"sample of {rows:,} of {total:,} rows (Great Expectations)"
    )


def _kwargs(expectation: Expectation) -> dict[str, Any]:
    return dict(expectation.configuration.kwargs)


def _flag(kwargs: Mapping[str, Any]) -> tuple[str, bool] | None | bool:
    """The derived-flag row condition ``Column(flag) == value``; False when the condition is of
    another form (not translatable)."""
    condition = kwargs.get("row_condition")
    if condition is None:
        return None
    if isinstance(condition, Mapping) and condition.get("operator") == "==":
        column = condition.get("column")
        name = column.get("name") if isinstance(column, Mapping) else column
        if name in (raw_checks.USER_KNOWN, raw_checks.AFTER_CHURN) and isinstance(condition.get("parameter"), bool):
            return (str(name), bool(condition["parameter"]))
    return False


def to_check(expectation: Expectation) -> Check | None:
    """The SQL check with the same meaning as ``expectation``, or None (Great Expectations judges it)."""
    kind = expectation.expectation_type
    kwargs = _kwargs(expectation)
    flag = _flag(kwargs)
    if flag is False or kwargs.get("mostly", 1) != 1 or kwargs.get("strict_min") or kwargs.get("strict_max"):
        return None
    row_flag = flag if isinstance(flag, tuple) else None
    column = kwargs.get("column")
    if kind == "expect_column_values_to_be_unique" and row_flag is None:
        return Check("unique", column)
    if kind == "expect_column_values_to_not_be_null":
        return Check("not_null", column, flag=row_flag)
    if kind == "expect_column_values_to_be_between":
        return Check("between", column, low=kwargs.get("min_value"), high=kwargs.get("max_value"), flag=row_flag)
    if kind == "expect_column_values_to_be_in_set":
        return Check("in_set", column, values=tuple(kwargs.get("value_set") or ()), flag=row_flag)
    if row_flag is not None:
        return None
    if kind == "expect_table_row_count_to_be_between":
        return Check("row_count", low=kwargs.get("min_value"), high=kwargs.get("max_value"))
    if kind == "expect_column_proportion_of_non_null_values_to_be_between":
        return Check("non_null_share", column, low=kwargs.get("min_value"), high=kwargs.get("max_value"))
    if kind == "expect_column_unique_value_count_to_be_between":
        return Check("distinct_count", column, low=kwargs.get("min_value"), high=kwargs.get("max_value"))
    if kind == "expect_table_columns_to_match_ordered_list":
        return Check("columns", values=tuple(kwargs.get("column_list") or ()))
    return None


def _within(value: Any, low: Any, high: Any) -> bool:
    return value is not None and (low is None or value >= low) and (high is None or value <= high)


def _plain(value: Any) -> Any:
    return str(pd.Timestamp(value)) if isinstance(value, datetime) else value


def outcome(
    table: str, expectation: Expectation, check: Check, found: CheckResult, scope: str = WHOLE_TABLE
) -> runner.ExpectationOutcome:
    """The outcome of ``expectation`` judged by ``check``, worded as Great Expectations words it.
    ``scope``: the rows it saw (also added to the notes Data Docs show)."""
    kwargs = _kwargs(expectation)
    details: dict[str, Any]
    if found.unexpected_count is not None:
        judged = found.element_count - found.missing_count
        details = {
            "element_count": found.element_count,
            "missing_count": found.missing_count,
            "unexpected_count": found.unexpected_count,
            "unexpected_percent": 100.0 * found.unexpected_count / judged if judged else None,
            "partial_unexpected_list": [_plain(v) for v in found.examples],
        }
        success = found.unexpected_count == 0
    elif check.kind == "columns":
        details = {"observed_value": found.observed}
        success = list(found.observed) == list(check.values)
    else:
        value = found.observed
        details = {"observed_value": float(value) if check.kind == "non_null_share" and value is not None else value}
        success = _within(value, check.low, check.high)
    return runner.ExpectationOutcome(
        table=table,
        expectation=expectation.expectation_type,
        column=kwargs.get("column"),
        success=bool(success),
        unexpected_count=details.get("unexpected_count"),
        examples=runner._examples(details, kwargs),
        observed=runner._observed(details, kwargs),
        notes=runner._notes_text(expectation.notes),
        scope=scope,
        details=details,
        config=_with_scope(expectation.configuration, scope),
    )


def _with_scope(config: Any, scope: str) -> Any:
    """A copy of an expectation's configuration whose notes say which rows judged it (Data Docs
    render the notes next to the result)."""
    if scope == WHOLE_TABLE:
        return config
    notes = runner._notes_text(config.notes)
    copy = config.__class__(type=config.type, kwargs=dict(config.kwargs), meta=dict(config.meta or {}),
                            notes=f"{notes + ' ' if notes else ''}Checked on: {scope}.")  # fmt: skip
    return copy


ROW_LEVEL = ("not_null", "between", "in_set")


def check_scope(increment: raw_checks.Increment | None, table: str, check: Check) -> str:
    """Which rows a DuckDB check saw: every row, or in a daily run the new ones (row-level
    checks), the new ids against all rows (uniqueness), the whole table (aggregates)."""
    if increment is None:
        return WHOLE_TABLE
    if check.kind in ROW_LEVEL:
        return increment.scope(table)
    if check.kind == "unique":
        return increment.unique_scope(table)
    return WHOLE_TABLE


def _expectations(suite: runner.SuiteLike) -> list[Expectation]:
    expectations = suite.expectations if hasattr(suite, "expectations") else suite
    return list(cast("Sequence[Expectation]", expectations))


def validate_warehouse(
    warehouse: Warehouse,
    suites: Mapping[str, runner.SuiteLike],
    *,
    keys: Mapping[str, str],
    type_rules: Mapping[str, Sequence[Expectation]] | None = None,
    where: Mapping[str, str] | None = None,
    sample_rows: int = SAMPLE_ROWS,
    seed: int = SAMPLE_SEED,
    report_dir: Path | str | None = None,
    increment: raw_checks.Increment | None = None,
) -> runner.QualityReport:
    """Validate the raw tables of ``warehouse`` with ``suites`` (table name -> suite, tables as
    :data:`churn.store.raw_checks.SOURCES` names them, plus ``event_types``): the SQL-translatable
    expectations over every row, the others and ``type_rules`` on a sample of ``sample_rows``
    rows per table drawn by ``keys[table]``. ``where``: per table, the rows a daily run judges
    row by row (its slice); uniqueness and aggregates judge the whole table. ``increment``: a
    daily run's gate (:func:`churn.store.raw_checks.increment`): the appended tables' rows loaded
    since the last passing gate are judged row by row (with the older rows of users whose record
    changed), their ids against every row, and Great Expectations samples them; it replaces
    ``where``. Each outcome's scope says which rows it saw. With
    ``report_dir``: the JSON results, Data Docs and the offline page, as
    :func:`churn.quality.runner.validate_frames` writes them."""
    whole: list[runner.ExpectationOutcome] = []
    sample_suites: dict[str, list[Expectation]] = {}
    samples: dict[str, pd.DataFrame] = {}
    scopes: dict[str, str] = {}
    for table, suite in suites.items():
        translated: list[tuple[Expectation, Check]] = []
        rest: list[Expectation] = []
        for expectation in _expectations(suite):
            check = to_check(expectation)
            if check is None:
                rest.append(expectation)
            else:
                translated.append((expectation, check))
        rows = (where or {}).get(table) if increment is None else increment.where(table)
        new = None if increment is None else increment.new(table)
        found = raw_checks.run_checks(warehouse, table, [c for _, c in translated], where=rows, new=new)
        whole += [
            outcome(table, e, c, f, check_scope(increment, table, c))
            for (e, c), f in zip(translated, found, strict=True)
        ]
        rest_rules = rest + list((type_rules or {}).get(table, ()))
        if rest_rules:
            if table not in keys:
                raise ValueError(f"{table}: no key to sample it by for {[e.expectation_type for e in rest_rules]}")
            samples[table], total = raw_checks.sample_rows(warehouse, table, keys[table], sample_rows, seed, where=new)
            scopes[table] = sample_scope(len(samples[table]), total, new_only=new is not None)
            sample_suites[table] = rest_rules
    return runner.validate_frames(samples, sample_suites, report_dir=report_dir, whole_table=whole, scopes=scopes)
