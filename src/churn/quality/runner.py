"""Run Great Expectations suites against in-memory DataFrames and summarise the outcome.

Generic on purpose: raw tables, feature tables, anything that is a ``pd.DataFrame``.
Great Expectations is imported lazily (it takes seconds), so importing this module is cheap.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
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
    scope: str | None = None
    """How much of the table judged it (whole table in DuckDB, or Great Expectations' sample)."""
    details: dict[str, Any] | None = field(default=None, repr=False)
    """The result in Great Expectations' BASIC form (whole-table outcomes: for Data Docs)."""
    config: Any = field(default=None, repr=False)
    """The expectation's configuration (whole-table outcomes: for Data Docs)."""


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
                "unexpected_count", "examples", "observed", "notes", "scope",
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
    whole_table: Sequence[ExpectationOutcome] = (),
    scopes: Mapping[str, str] | None = None,
) -> QualityReport:
    """Validate each frame with the suite of the same name.

    ``whole_table``: outcomes judged elsewhere (in DuckDB over every row:
    :func:`churn.quality.gate.validate_warehouse`), merged in per table before the frames'
    outcomes, which get ``scopes[table]``. With ``report_dir``, also write
    ``validation_result.json`` and Data Docs (``data_docs/index.html``) there.
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
    if whole_table or scopes:
        report = _with_whole_table(gx, context, report, whole_table, scopes or {})
    if report_dir is not None:
        _write_reports(context, report, Path(report_dir))
    return report


def _with_whole_table(
    gx: Any,
    context: AbstractDataContext,
    report: QualityReport,
    whole_table: Sequence[ExpectationOutcome],
    scopes: Mapping[str, str],
) -> QualityReport:
    """``report`` with ``whole_table`` merged in (per table, before its sampled outcomes), and
    the whole-table outcomes stored as validation results so Data Docs render them too."""
    for r in report.results:
        r.scope = scopes.get(r.table, r.scope)
    tables = list(dict.fromkeys([*(o.table for o in whole_table), *(r.table for r in report.results)]))
    results = [o for t in tables for o in [*whole_table, *report.results] if o.table == t]
    raw = dict(report.raw)
    for table in dict.fromkeys(o.table for o in whole_table):
        raw[f"{table} (whole table)"] = _store_whole_table(gx, context, table, [o for o in whole_table if o.table == table])
    success = report.success and all(o.success for o in whole_table)
    return QualityReport(success=success, results=results, raw=raw)


def _store_whole_table(gx: Any, context: AbstractDataContext, table: str, outcomes: Sequence[ExpectationOutcome]) -> dict:
    """Store whole-table outcomes as a Great Expectations suite validation result (so Data Docs
    list them next to the sample's); returns its JSON form."""
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    name = f"{table}_whole_table"
    results = [
        ExpectationValidationResult(success=o.success, expectation_config=o.config, result=o.details or {})
        for o in outcomes
    ]
    passed = sum(o.success for o in outcomes)
    run_id = RunIdentifier(run_name=name)
    suite_result = ExpectationSuiteValidationResult(
        success=passed == len(outcomes),
        results=results,
        suite_name=name,
        statistics={
            "evaluated_expectations": len(outcomes),
            "successful_expectations": passed,
            "unsuccessful_expectations": len(outcomes) - passed,
            "success_percent": 100.0 * passed / len(outcomes) if outcomes else None,
        },
        meta={"run_id": run_id, "active_batch_definition": {"datasource_name": "duckdb", "data_asset_name": table},
              "checked_on": "every row, in DuckDB (churn.quality.gate)"},
    )
    suite_id = ExpectationSuiteIdentifier(name=name)
    context.validation_results_store.store_validation_results(
        suite_validation_result=suite_result,
        suite_validation_result_identifier=ValidationResultIdentifier(
            expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=f"{table}-whole-table"
        ),
        expectation_suite_identifier=suite_id,
    )
    return suite_result.to_json_dict()


def _definition(gx: Any, context: AbstractDataContext, source: Any, table: str, suite: SuiteLike) -> Any:
    """A validation definition of ``suite`` over a whole-dataframe batch named ``table``."""
    batch_definition = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("whole")
    registered = context.suites.add(_fresh_suite(gx, table, suite))
    return context.validation_definitions.add(
        gx.ValidationDefinition(name=table, data=batch_definition, suite=registered)
    )


def import_gx() -> Any:
    """Import Great Expectations quietly (analytics off before the import reads it) and without
    the optional modules it would load for nothing (:mod:`churn.lean`)."""
    from churn.lean import GX_OPTIONAL, absent, skip_unused_optional

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    skip_unused_optional()
    with absent(GX_OPTIONAL):
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
