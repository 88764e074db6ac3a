"""Run Great Expectations suites against in-memory DataFrames and summarise the outcome.

Generic on purpose: raw tables, feature tables, anything that is a ``pd.DataFrame``.
Great Expectations is imported lazily (it takes seconds), so importing this module is cheap.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.expectations import Expectation

    SuiteLike = ExpectationSuite | Sequence[Expectation]
else:
    SuiteLike = Any

MAX_EXAMPLES = 5
"""Example values kept per failed expectation (deduplicated)."""

# GE samples this many unexpected values; we deduplicate them down to MAX_EXAMPLES, so a
# duplicated key (listed once per occurrence) does not crowd out the other offenders.
_PARTIAL_UNEXPECTED = 20
# BASIC gives counts plus a sample of unexpected values without computing index lists,
# which COMPLETE/SUMMARY would do over every failing row of a 1M-row table.
_RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": _PARTIAL_UNEXPECTED}
_DATA_SOURCE = "frames"
_DOCS_SITE = "local_site"
RESULT_FILE = "validation_result.json"
DOCS_DIR = "data_docs"


class DataQualityError(Exception):
    """Raised when validated data fails one or more expectations."""


@dataclass
class FailedExpectation:
    """One failed expectation: where, what was seen and a few offending values."""

    table: str
    expectation_type: str
    column: str | None
    observed: str
    examples: list
    notes: str | None = None

    def describe(self) -> str:
        """One line naming table, column, expectation, observation and examples."""
        where = f"{self.table}.{self.column}" if self.column else self.table
        why = f" [{self.notes}]" if self.notes else ""
        examples = f"; examples: {self.examples}" if self.examples else ""
        return f"- {where}: {self.expectation_type}{why} - {self.observed}{examples}"


@dataclass
class ExpectationOutcome:
    """The result of one expectation on one table."""

    table: str
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None
    examples: list
    observed: str
    notes: str | None = None


@dataclass
class QualityReport:
    """Outcome of validating several tables: per-expectation results plus GE's raw JSON."""

    success: bool
    results: list[ExpectationOutcome]
    raw: dict[str, dict] = field(default_factory=dict, repr=False)

    @property
    def failures(self) -> list[FailedExpectation]:
        """Every failed expectation, in validation order."""
        return [
            FailedExpectation(r.table, r.expectation, r.column, r.observed, r.examples, r.notes)
            for r in self.results
            if not r.success
        ]

    def to_frame(self) -> pd.DataFrame:
        """One row per expectation, failures first (for notebooks)."""
        frame = pd.DataFrame(
            [vars(r) for r in self.results],
            columns=[
                "table", "expectation", "column", "success",
                "unexpected_count", "examples", "observed", "notes",
            ],
        )
        return frame.sort_values("success", kind="stable").reset_index(drop=True)

    def message(self) -> str:
        """Human-readable summary naming every failed expectation with examples."""
        tables = ", ".join(dict.fromkeys(r.table for r in self.results))
        if self.success:
            return f"Data quality OK: all {len(self.results)} expectations passed ({tables})."
        failures = self.failures
        lines = [
            f"Data quality FAILED: {len(failures)} of {len(self.results)} expectations "
            f"failed ({tables}):"
        ]
        lines += [f.describe() for f in failures]
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        """Raise ``DataQualityError(self.message())`` if anything failed."""
        if not self.success:
            raise DataQualityError(self.message())


def validate_frames(
    frames: Mapping[str, pd.DataFrame],
    suites: Mapping[str, SuiteLike],
    report_dir: Path | str | None = None,
) -> QualityReport:
    """Validate each frame with the suite of the same name.

    With ``report_dir``, also write ``validation_result.json`` and Data Docs
    (``data_docs/index.html``) there.
    """
    if set(frames) != set(suites):
        raise ValueError(
            f"frames and suites must name the same tables: frames={sorted(frames)}, "
            f"suites={sorted(suites)}"
        )
    gx = import_gx()
    docs_dir = Path(report_dir) / DOCS_DIR if report_dir is not None else None
    if docs_dir is not None and docs_dir.exists():
        shutil.rmtree(docs_dir)  # the index would otherwise list every earlier run's pages
    context = _make_context(gx, docs_dir)
    source = context.data_sources.add_pandas(_DATA_SOURCE)
    results = {
        table: _validate_one(gx, context, source, table, frames[table], suites[table])
        for table in suites
    }
    report = _build_report(results)
    if report_dir is not None:
        _write_reports(context, report, Path(report_dir))
    return report


def validate_chunks(
    tables: Mapping[str, Iterable[pd.DataFrame]],
    suites: Mapping[str, SuiteLike],
    report_dir: Path | str | None = None,
) -> QualityReport:
    """:func:`validate_frames` for tables that arrive as chunks (iterables of frames), so a table
    of any size is checked in the memory of one chunk.

    Every chunk is validated with its table's suite (Data Docs list one run per chunk); the
    outcomes are merged: per-row expectations add their counts and pool their examples, the
    table's row count is the sum of the chunks', its columns are every chunk's. Exact only for expectations a chunk can judge
    alone: a uniqueness expectation needs chunks that partition the table by its key, and an
    aggregate one (unique-value count, proportions) a table delivered as one chunk.
    """
    if set(tables) != set(suites):
        raise ValueError(
            f"tables and suites must name the same tables: tables={sorted(tables)}, suites={sorted(suites)}"
        )
    gx = import_gx()
    docs_dir = Path(report_dir) / DOCS_DIR if report_dir is not None else None
    if docs_dir is not None and docs_dir.exists():
        shutil.rmtree(docs_dir)
    context = _make_context(gx, docs_dir)
    source = context.data_sources.add_pandas(_DATA_SOURCE)
    outcomes: list[ExpectationOutcome] = []
    raw: dict[str, dict] = {}
    success = True
    for table in suites:
        definition = _definition(gx, context, source, table, suites[table])
        runs = [
            definition.run(batch_parameters={"dataframe": chunk}, result_format=_RESULT_FORMAT)
            for chunk in tables[table]
        ]
        if not runs:
            raise ValueError(f"{table}: no chunk to validate (give at least one, possibly empty, frame)")
        merged = [_merged_outcome(table, [run.results[i] for run in runs]) for i in range(len(runs[0].results))]
        outcomes += merged
        success = success and all(o.success for o in merged)
        raw[table] = {"chunks": len(runs), "results": [run.to_json_dict() for run in runs]}
    report = QualityReport(success=success, results=outcomes, raw=raw)
    if report_dir is not None:
        _write_reports(context, report, Path(report_dir))
    return report


def _definition(gx: Any, context: AbstractDataContext, source: Any, table: str, suite: SuiteLike) -> Any:
    """A validation definition of ``suite`` over a whole-dataframe batch named ``table``."""
    batch_definition = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("whole")
    registered = context.suites.add(_fresh_suite(gx, table, suite))
    return context.validation_definitions.add(
        gx.ValidationDefinition(name=table, data=batch_definition, suite=registered)
    )


_ROW_COUNT = "expect_table_row_count_to_be_between"
_SAME_IN_EVERY_CHUNK = {"expect_table_columns_to_match_ordered_list", "expect_table_columns_to_match_set",
                        "expect_column_to_exist"}


def _merged_outcome(table: str, results: list[ExpectationValidationResult]) -> ExpectationOutcome:
    """One outcome for an expectation validated on several chunks (see :func:`validate_chunks`)."""
    if len(results) == 1:
        return _outcome(table, results[0])
    config = results[0].expectation_config
    if config is None:
        raise ValueError(f"{table}: a validation result without its expectation")
    details = [r.result or {} for r in results]
    merged: dict[str, Any]
    success = all(bool(r.success) for r in results)
    if all("unexpected_count" in d for d in details):
        merged = {k: sum(int(d.get(k) or 0) for d in details) for k in ("unexpected_count", "element_count", "missing_count")}
        judged = merged["element_count"] - merged["missing_count"]
        merged["unexpected_percent"] = 100.0 * merged["unexpected_count"] / judged if judged else None
        merged["partial_unexpected_list"] = [v for d in details for v in d.get("partial_unexpected_list", [])]
    elif config.type in _SAME_IN_EVERY_CHUNK:  # the table's columns: every chunk has the same
        failed = [d for r, d in zip(results, details, strict=True) if not r.success]
        merged = (failed or details)[0]
    elif config.type == _ROW_COUNT:
        rows = sum(int(d.get("observed_value") or 0) for d in details)
        low, high = config.kwargs.get("min_value"), config.kwargs.get("max_value")
        merged = {"observed_value": rows}
        success = (low is None or rows >= low) and (high is None or rows <= high)
    else:
        raise ValueError(
            f"{table}: {config.type} judges the whole table and cannot be merged over "
            f"{len(results)} chunks: deliver that table as one chunk"
        )
    errors = [_exception_message(r.exception_info) for r in results]
    error = "; ".join(dict.fromkeys(e for e in errors if e))
    return ExpectationOutcome(
        table=table,
        expectation=config.type,
        column=config.kwargs.get("column"),
        success=success and not error,
        unexpected_count=merged.get("unexpected_count"),
        examples=_examples(merged, config.kwargs),
        observed=f"error: {error}" if error else _observed(merged, config.kwargs),
        notes=_notes_text(config.notes),
    )


def import_gx() -> Any:
    """Import Great Expectations quietly (analytics off before the import reads it)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    return gx


def _make_context(gx: Any, docs_dir: Path | None) -> AbstractDataContext:
    """A throw-away in-memory context; Data Docs (if wanted) go to ``docs_dir``."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # tqdm bars per metric batch would flood notebook and pipeline logs.
    context.variables.progress_bars = ProgressBarsConfig(
        globally=False, metric_calculations=False
    )
    if docs_dir is not None:
        context.update_data_docs_site(
            _DOCS_SITE,
            {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir.resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def _validate_one(
    gx: Any,
    context: AbstractDataContext,
    source: Any,
    table: str,
    frame: pd.DataFrame,
    suite: SuiteLike,
) -> ExpectationSuiteValidationResult:
    """Validate one DataFrame; results land in the context's store (for Data Docs)."""
    definition = _definition(gx, context, source, table, suite)
    return definition.run(batch_parameters={"dataframe": frame}, result_format=_RESULT_FORMAT)


def _fresh_suite(gx: Any, table: str, suite: SuiteLike) -> ExpectationSuite:
    """Copy the caller's expectations into a new suite named after the table.

    Adding a suite to a context stamps ids onto it; copying keeps the caller's objects
    reusable across calls and lets one suite serve several tables.
    """
    if isinstance(suite, gx.ExpectationSuite):
        expectations, meta = list(suite.expectations), dict(suite.meta)
    else:
        expectations, meta = list(cast("Sequence[Expectation]", suite)), {}
    copies = [e.copy(deep=True, update={"id": None}) for e in expectations]
    return gx.ExpectationSuite(name=table, expectations=copies, meta=meta)


def _build_report(results: Mapping[str, ExpectationSuiteValidationResult]) -> QualityReport:
    """Flatten GE suite results into a QualityReport."""
    outcomes = [
        _outcome(table, result)
        for table, suite_result in results.items()
        for result in suite_result.results
    ]
    raw = {table: r.to_json_dict() for table, r in results.items()}
    return QualityReport(
        success=all(r.success for r in results.values()), results=outcomes, raw=raw
    )


def _outcome(table: str, result: ExpectationValidationResult) -> ExpectationOutcome:
    """Summarise one expectation result."""
    config = result.expectation_config
    if config is None:
        raise ValueError(f"{table}: a validation result without its expectation")
    details = result.result or {}
    error = _exception_message(result.exception_info)
    return ExpectationOutcome(
        table=table,
        expectation=config.type,
        column=config.kwargs.get("column"),
        success=bool(result.success),
        unexpected_count=details.get("unexpected_count"),
        examples=_examples(details, config.kwargs),
        observed=f"error: {error}" if error else _observed(details, config.kwargs),
        notes=_notes_text(config.notes),
    )


def _observed(details: Mapping[str, Any], kwargs: Mapping[str, Any]) -> str:
    """What GE saw: a row count for per-row checks, the observed value for aggregates."""
    if "unexpected_count" in details:
        count, total = details["unexpected_count"], details.get("element_count")
        pct = details.get("unexpected_percent")
        share = f" ({pct:.3g}%)" if pct is not None else ""
        # with a row_condition GE counts only the matching rows; say so
        condition = kwargs.get("row_condition")
        where = f" where {_condition_text(condition)}" if condition else ""
        return f"{count} of {total} rows{where} unexpected{share}"
    if "observed_value" in details:
        return f"observed {_plain(details['observed_value'])!r}"
    return "no details"


def _condition_text(condition: Any) -> str:
    """A row_condition as text (GE Condition objects have a readable repr)."""
    if isinstance(condition, str):
        return condition
    if isinstance(condition, Mapping) and {"column", "operator"} <= set(condition):
        column = condition["column"]
        name = column.get("name") if isinstance(column, Mapping) else column
        return f"{name} {condition['operator']} {condition.get('parameter')!r}"
    return repr(condition)


def _examples(details: Mapping[str, Any], kwargs: Mapping[str, Any]) -> list:
    """Up to MAX_EXAMPLES distinct offending values (or column-list differences)."""
    values = details.get("partial_unexpected_list")
    if values is None and "column_list" in kwargs:
        values = _column_differences(kwargs["column_list"], details.get("observed_value"))
    if values is None:
        values = [_mismatch(m) for m in details.get("details", {}).get("mismatched", [])]
    distinct: dict[str, Any] = {}
    for value in map(_plain, values):
        # keyed by repr: values may be unhashable (lists) or mix 1 and True
        distinct.setdefault(repr(value), value)
    return list(distinct.values())[:MAX_EXAMPLES]


def _column_differences(expected: Sequence[str], observed: Any) -> list[str] | None:
    """Missing and unexpected columns; ``None`` when only the order differs."""
    if not isinstance(observed, (list, tuple)):
        return None
    missing = [f"missing column {c!r}" for c in expected if c not in observed]
    extra = [f"unexpected column {c!r}" for c in observed if c not in expected]
    return (missing + extra) or None


def _mismatch(entry: Mapping[str, Any]) -> str:
    """Readable form of a column-list mismatch entry."""
    return (
        f"position {entry.get('Expected Column Position')}: expected "
        f"{entry.get('Expected')!r}, found {entry.get('Found')!r}"
    )


def _plain(value: Any) -> Any:
    """Printable plain-Python value: numpy scalars unwrapped, timestamps as strings."""
    if isinstance(value, (pd.Timestamp, pd.Timedelta)):
        return str(value)
    if isinstance(value, np.datetime64):
        # .item() would turn a nanosecond datetime64 into a bare int
        return str(pd.Timestamp(value))
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (ValueError, TypeError):
            return str(value)
    return value


def _exception_message(info: Mapping[str, Any] | None) -> str | None:
    """GE's exception text; ``info`` is flat or keyed by metric id depending on where it failed."""
    if not info:
        return None
    if "raised_exception" in info:
        messages = [info.get("exception_message")] if info.get("raised_exception") else []
    else:
        messages = [v.get("exception_message") for v in info.values() if isinstance(v, Mapping)]
    # GE prefixes its messages with "Error: ", which reads badly after our "error: "
    cleaned = (m.removeprefix("Error: ") for m in messages if m)
    return "; ".join(dict.fromkeys(cleaned)) or None


def _notes_text(notes: str | list[str] | None) -> str | None:
    """Expectation notes as one string."""
    if isinstance(notes, list):
        return " ".join(notes)
    return notes


def _write_reports(context: AbstractDataContext, report: QualityReport, report_dir: Path) -> None:
    """Write the raw validation results as JSON, build Data Docs, and our offline page
    (``index.html``: Data Docs need a CDN for their index and styles)."""
    from churn.reports.quality import write_quality_report

    report_dir.mkdir(parents=True, exist_ok=True)
    payload = {"success": report.success, "tables": report.raw}
    (report_dir / RESULT_FILE).write_text(json.dumps(payload, indent=2, default=str))
    context.build_data_docs(site_names=[_DOCS_SITE])
    write_quality_report(report, report_dir)
