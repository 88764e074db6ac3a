"""A phase's last run, read from its executed notebook: status, end time, duration, error.

Papermill records start, end, duration and any exception in ``metadata.papermill`` of the
notebook it writes; a ``NN_<phase>.failed.ipynb`` next to the report means the last run failed
(the hooks in :mod:`churn.reports` keep the last good report at its own name). Both the
``reports/index.html`` page (refreshed after every phase) and ``churn status`` read runs through
:func:`last_run`. A notebook is parsed once per version of the file (cached on its path, size
and modification time): the index is rewritten after each of the ten phases, and re-parsing every
report (plots included, megabytes each) every time was most of the hook's cost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from churn.reports import failed_path


@dataclass(frozen=True)
class LastRun:
    status: str  # "ok" | "failed" | "not run"
    finished_at: str | None  # Papermill's end_time (ISO), None if unknown
    seconds: float | None
    error: str = ""  # "ExceptionName: message" of a failed run, when the notebook shows it
    good_kept: bool = False  # the last run failed and the report at its own name is the last good one


def last_run(notebook: Path) -> LastRun:
    """The last run of the phase whose executed notebook is ``notebook``."""
    failed = failed_path(notebook)
    if failed.is_file():
        meta, error = notebook_meta(failed)
        return LastRun("failed", meta.get("end_time"), _seconds(meta), error, notebook.is_file())
    if not notebook.is_file():
        return LastRun("not run", None, None)
    meta, error = notebook_meta(notebook)
    status = "failed" if meta.get("exception") else "ok"
    return LastRun(status, meta.get("end_time"), _seconds(meta), error)


def notebook_meta(path: Path) -> tuple[dict[str, Any], str]:
    """``(metadata.papermill, error text)`` of an executed notebook; a notebook cut short by a
    crash (unreadable JSON) reads as failed."""
    try:
        stat = path.stat()
    except OSError:
        return {"exception": True}, ""
    return _read(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=64)
def _read(path: str, mtime_ns: int, size: int) -> tuple[dict[str, Any], str]:
    try:
        nb = json.loads(Path(path).read_text())
        meta = dict(nb.get("metadata", {}).get("papermill", {}))
    except (OSError, ValueError, AttributeError):
        return {"exception": True}, ""
    return meta, _error_text(nb) if meta.get("exception") else ""


def _error_text(nb: dict[str, Any]) -> str:
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"{output.get('ename', '')}: {output.get('evalue', '')}"[:300]
    return ""


def _seconds(meta: dict[str, Any]) -> float | None:
    duration = meta.get("duration")
    return float(duration) if duration is not None else None
