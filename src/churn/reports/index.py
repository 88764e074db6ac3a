"""``reports/index.html``: every phase with its status, when it ran, how long it took and its
headline figures, linking to each report, the data-quality reports and the model cards.

Status and time come from the executed notebooks themselves (Papermill records start, end,
duration and any exception in their metadata); headline figures come from each phase's JSON
receipt. The page is plain HTML with inline CSS: it opens offline.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from churn.reports import failed_path
from churn.reports.runinfo import last_run

SKIP_KEYS = {"written_at", "checked_at", "tables", "features", "fingerprint", "run_id"}
MAX_ITEMS = 6  # longer lists are shown as their length


@dataclass(frozen=True)
class Phase:
    """A pipeline task as the index sees it."""

    name: str
    notebook: Path
    html: Path
    receipt: Path | None = None


@dataclass(frozen=True)
class PhaseStatus:
    phase: Phase
    status: str  # "ok" | "failed" | "not run"
    finished_at: str | None
    seconds: float | None
    headline: list[tuple[str, str]]
    detail: str = ""


def phase_status(phase: Phase) -> PhaseStatus:
    """Status of one phase from its reports and receipt."""
    run = last_run(phase.notebook)
    finished = _when(run.finished_at)
    if run.status == "failed" and failed_path(phase.notebook).is_file():
        detail = "last run failed" + (f": {run.error}" if run.error else "")
        if run.good_kept:
            detail += "; the report shown is the last good run"
        return PhaseStatus(phase, "failed", finished, run.seconds, [], detail)
    if run.status != "ok":
        return PhaseStatus(phase, run.status, finished, run.seconds, [])
    receipt = _read_json(phase.receipt) if phase.receipt else {}
    return PhaseStatus(phase, "ok", finished, run.seconds, headline(receipt))


def headline(receipt: dict[str, Any]) -> list[tuple[str, str]]:
    """The receipt's figures worth a glance, as (label, text) pairs: scalars, flattened small
    dicts, short lists joined; fingerprints, timestamps and long lists left out."""
    items: list[tuple[str, str]] = []
    for key, value in receipt.items():
        if key in SKIP_KEYS:
            continue
        if isinstance(value, dict):
            items += [(f"{key} {sub}", _fmt(v)) for sub, v in value.items() if _is_scalar(v)]
        elif isinstance(value, list):
            shown = ", ".join(_fmt(v) for v in value) if len(value) <= MAX_ITEMS else f"{len(value)}"
            items.append((key, shown or "none"))
        elif _is_scalar(value):
            items.append((key, _fmt(value)))
    return items


def write_index(reports_dir: Path, phases: Iterable[Phase], extra_links: Iterable[tuple[str, Path]] = ()) -> Path:
    """Write ``reports_dir/index.html`` (atomically) and return its path."""
    rows = [phase_status(p) for p in phases]
    links = [(label, path) for label, path in extra_links if path.exists()]
    page = _page(reports_dir, rows, links)
    index = reports_dir / "index.html"
    tmp = reports_dir / ".index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, index)
    return index


def _page(reports_dir: Path, rows: list[PhaseStatus], links: list[tuple[str, Path]]) -> str:
    body = []
    for n, row in enumerate(rows, 1):
        name = html.escape(row.phase.name)
        if row.phase.html.is_file():
            name = f'<a href="{_rel(row.phase.html, reports_dir)}">{name}</a>'
        if row.phase.notebook.is_file():
            name += f' <a class="nb" href="{_rel(row.phase.notebook, reports_dir)}">.ipynb</a>'
        figures = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in row.headline)
        detail = f'<div class="detail">{html.escape(row.detail)}</div>' if row.detail else ""
        seconds = f"{row.seconds:.1f} s" if row.seconds is not None else ""
        body.append(
            f'<tr class="{row.status.replace(" ", "-")}"><td>{n}</td><td>{name}</td>'
            f'<td class="status">{html.escape(row.status)}{detail}</td><td>{html.escape(row.finished_at or "")}</td>'
            f'<td class="num">{seconds}</td><td><ul>{figures}</ul></td></tr>'
        )
    total = sum(r.seconds or 0 for r in rows)
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "failed", "not run")}
    summary = ", ".join(f"{c} {s}" for s, c in counts.items() if c)
    more = "".join(f'<li><a href="{_rel(p, reports_dir)}">{html.escape(label)}</a></li>' for label, p in links)
    return _HTML.format(
        summary=html.escape(summary),
        total=f"{total:.0f}",
        rows="\n".join(body),
        more=f"<h2>More</h2><ul>{more}</ul>" if more else "",
    )


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Churn pipeline reports</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .4em .6em; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
td.num {{ text-align: right; white-space: nowrap; }}
tr.ok td.status {{ color: #17692b; }} tr.failed td.status {{ color: #b00020; font-weight: bold; }}
tr.not-run td.status {{ color: #777; }}
ul {{ margin: 0; padding-left: 1.1em; }} a.nb {{ font-size: .8em; color: #777; }}
.detail {{ font-weight: normal; font-size: .85em; }}
</style></head>
<body>
<h1>Churn pipeline reports</h1>
<p>{summary}; {total} s of notebook execution in total. Each report shows outputs only; its
<code>.ipynb</code> keeps the code and parameters.</p>
<table>
<thead><tr><th>#</th><th>phase</th><th>status</th><th>finished (UTC)</th><th>time</th><th>headline figures</th></tr></thead>
<tbody>
{rows}
</tbody></table>
{more}
</body></html>
"""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _when(stamp: str | None) -> str | None:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M:%S")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()
