"""A static data-quality report from a validation run: one offline HTML page.

Great Expectations' Data Docs build their index table with JavaScript and style their pages
with CSS, both from CDNs; without internet the index is empty and the pages unstyled. This page
shows the same validation results (every expectation of every table: passed or failed, what was
observed, how many rows broke it and a few examples) with inline CSS and no script, so it reads
the same anywhere. The Data Docs stay next to it for those who are online.
"""

from __future__ import annotations

import html
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from churn.quality.runner import QualityReport

QUALITY_PAGE = "index.html"


def quality_report_html(report: QualityReport, title: str) -> str:
    """The page for ``report`` (tables in validation order, failures first within each)."""
    tables = list(dict.fromkeys(r.table for r in report.results))
    failed = sum(not r.success for r in report.results)
    verdict = (
        f"all {len(report.results)} expectations passed"
        if report.success
        else f"{failed} of {len(report.results)} expectations FAILED"
    )
    summary = "".join(
        f'<tr class="{"ok" if ok == n else "failed"}"><td><a href="#{html.escape(t)}">{html.escape(t)}</a></td>'
        f"<td>{n}</td><td>{ok}</td><td>{n - ok}</td></tr>"
        for t in tables
        for n, ok in [
            (sum(r.table == t for r in report.results), sum(r.table == t and r.success for r in report.results))
        ]
    )
    sections = []
    for table in tables:
        rows = sorted((r for r in report.results if r.table == table), key=lambda r: r.success)
        body = "".join(
            f'<tr class="{"ok" if r.success else "failed"}"><td>{"passed" if r.success else "FAILED"}</td>'
            f"<td>{html.escape(r.expectation)}</td><td>{html.escape(r.column or '')}</td>"
            f"<td>{html.escape(r.observed)}</td>"
            f"<td>{'' if r.unexpected_count is None else f'{r.unexpected_count:,}'}</td>"
            f"<td>{html.escape(', '.join(map(str, r.examples[:5])))}</td><td>{html.escape(r.notes or '')}</td>"
            f"<td>{html.escape(r.scope or '')}</td></tr>"
            for r in rows
        )
        sections.append(
            f'<h2 id="{html.escape(table)}">{html.escape(table)}</h2><table><tr><th>result</th>'
            "<th>expectation</th><th>column</th><th>observed</th><th>unexpected rows</th>"
            f"<th>examples</th><th>why</th><th>checked on</th></tr>{body}</table>"
        )
    return _PAGE.format(
        title=html.escape(title),
        verdict=html.escape(verdict),
        state="ok" if report.success else "failed",
        summary=summary,
        sections="".join(sections),
        when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_quality_report(report: QualityReport, report_dir: Path, title: str | None = None) -> Path:
    """Write ``report_dir/index.html`` (atomically) and return its path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / QUALITY_PAGE
    tmp = report_dir / f".{QUALITY_PAGE}.tmp"
    tmp.write_text(quality_report_html(report, title or f"Data quality: {report_dir.name}"), encoding="utf-8")
    os.replace(tmp, path)
    return path


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1.5em; max-width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .3em .6em; text-align: left; vertical-align: top; }}
td:nth-child(2), td:nth-child(4) {{ overflow-wrap: anywhere; }}
td:last-child {{ min-width: 18em; }}
th {{ background: #f3f3f3; }}
tr.failed td:first-child, p.failed {{ color: #b00020; font-weight: bold; }}
tr.ok td:first-child, p.ok {{ color: #17692b; }}
</style></head>
<body><h1>{title}</h1>
<p class="{state}">{verdict}.</p>
<p>Validated with Great Expectations on {when}; the raw results are in
<code>validation_result.json</code>, Great Expectations' own Data Docs in <a href="data_docs/index.html">data_docs/</a>
(their index and styles need internet).</p>
<table><tr><th>table</th><th>expectations</th><th>passed</th><th>failed</th></tr>{summary}</table>
{sections}
</body></html>
"""
