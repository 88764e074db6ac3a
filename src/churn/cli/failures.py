"""The one-line cause of a failed phase, read from its failed notebook or the build's output.

A failed task's notebook is kept as ``reports/NN_<phase>.failed.ipynb`` (``churn.reports``); its
error output carries the exception's name and message. The whole traceback stays there and in
the build log: the terminal gets the cause, last.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Exit|Interrupt)): ?(.*)$")


@dataclass(frozen=True)
class Cause:
    """Why a phase failed: the exception and where the details are."""

    phase: str | None
    exception: str
    message: str
    notebook: Path | None = None

    def line(self) -> str:
        """``error: <phase> failed: <Exception>: <first line of the message>``."""
        first = next((ln.strip() for ln in self.message.splitlines() if ln.strip()), "")
        where = f"{self.phase} failed: " if self.phase else "build failed: "
        return f"error: {where}{self.exception}" + (f": {first}" if first else "")

    def details(self) -> list[str]:
        """The message's further lines (a quality gate lists every failed expectation there)."""
        lines = [ln.rstrip() for ln in self.message.splitlines() if ln.strip()]
        return lines[1:]


def notebook_error(path: Path) -> tuple[str, str] | None:
    """(exception name, message) of the first error output in an executed notebook."""
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error":
                return ANSI.sub("", str(out.get("ename", "Error"))), ANSI.sub("", str(out.get("evalue", "")))
    return None


def phase_of(notebook: Path) -> str:
    """``04_check_features.failed.ipynb`` -> ``check-features``."""
    stem = notebook.name.split(".")[0]
    return re.sub(r"^\d+_", "", stem).replace("_", "-")


def failed_notebooks(reports_dir: Path, since: float) -> list[Path]:
    """Failed notebooks written at or after ``since`` (epoch seconds), newest last."""
    if not reports_dir.is_dir():
        return []
    found = [p for p in reports_dir.glob("*.failed.ipynb") if p.stat().st_mtime >= since - 1]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def from_output(text: str) -> Cause | None:
    """The last ``SomeError: message`` line of a command's output (no notebook ran)."""
    for raw in reversed(ANSI.sub("", text).splitlines()):
        match = EXCEPTION_LINE.match(raw.strip())
        if match:
            return Cause(None, match.group(1), match.group(2))
    return None


def find_cause(reports_dir: Path, since: float, output: str, phase: str | None = None) -> Cause:
    """The cause of a failed build or task: the newest failed notebook's error, else the output's."""
    for notebook in reversed(failed_notebooks(reports_dir, since)):
        error = notebook_error(notebook)
        if error is not None:
            return Cause(phase_of(notebook), error[0], error[1], notebook)
    cause = from_output(output)
    if cause is not None:
        return Cause(phase, cause.exception, cause.message)
    last = next((ln.strip() for ln in reversed(ANSI.sub("", output).splitlines()) if ln.strip()), "")
    return Cause(phase, "Error", last or "the command failed without a message")
