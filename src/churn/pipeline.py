"""Small helpers the phase notebooks share (products, parameter coercion)."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

RECEIPT_KEY = "receipt"  # the product key of a notebook task's receipt (pipeline.yaml)


def write_receipt(path: str | os.PathLike, **facts: Any) -> dict[str, Any]:
    """Write a task's JSON receipt (what it wrote, with counts) atomically; returns it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    receipt = {"written_at": datetime.now(UTC).isoformat(timespec="seconds"), **facts}
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(receipt, indent=2, default=str))
    os.replace(tmp, target)
    return receipt


def as_date(value: str | date) -> date:
    """Parse an ISO date parameter, naming the value when it is not one."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None


def code_version(root: str | os.PathLike = ".") -> str:
    """Git commit of the working tree (``+dirty`` when modified), else the package version."""
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import version

        return f"churn-{version('churn')}"
