"""Run Ploomber with checked parameters; keep its whole output in a log, end with the cause.

Output is streamed as it comes (progress bars included) and copied to
``<data_dir>/logs/<what>-<UTC time>.log``. When the command fails, the last lines printed are the
log's path, the failed notebook's path and, last of all, the one-line cause.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from churn.cli import failures


def ploomber_command() -> list[str]:
    """``ploomber`` as this interpreter runs it (the project's venv), without the optional
    imports that cost seconds at its start (:mod:`churn.cli.ploomber_main`)."""
    return [sys.executable, "-m", "churn.cli.ploomber_main"]


def new_log(logs_dir: Path, what: str) -> Path:
    logs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return logs_dir / f"{what}-{stamp}.log"


def latest_log(logs_dir: Path) -> Path | None:
    logs = sorted(logs_dir.glob("*.log"), key=lambda p: p.stat().st_mtime) if logs_dir.is_dir() else []
    return logs[-1] if logs else None


@dataclass(frozen=True)
class RunResult:
    returncode: int
    log: Path
    cause: failures.Cause | None


# Ploomber's failure report (every failed task's traceback, 40-80 lines) starts with this banner;
# from there on the output goes to the log only, and the terminal gets the short footer instead.
FAILURE_BANNERS = (b"DAG build failed", b"DAG render failed")


def _banner_at(chunk: bytes) -> int:
    """Start of the line holding a failure banner in ``chunk``, or -1."""
    hits = [chunk.find(b) for b in FAILURE_BANNERS if b in chunk]
    return -1 if not hits else chunk.rfind(b"\n", 0, min(hits)) + 1


def _start(cmd: list[str], root: Path, env: dict[str, str]) -> tuple[Any, Any]:
    """Ploomber's process, its output on ``.stdout``: forked from the kernel zygote this process
    was given (a scheduler's worker: :func:`churn.reports.zygote.serve_shared`), which has
    Ploomber imported already, when it can; else started. Also the zygote connection to keep
    open while it runs (closing it ends the process)."""
    from churn.reports.zygote import shared_zygote

    zygote = shared_zygote()
    if zygote is not None:
        read, write = os.pipe()
        proc = zygote.fork(cmd, env, str(root), stdout=write, stderr=write)
        os.close(write)
        if proc is not None:
            proc.stdout = os.fdopen(read, "rb")
            return proc, zygote
        os.close(read)
        zygote.close()
    return subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env), None


def _pump(proc: Any, echo: BinaryIO, log: BinaryIO) -> bytes:
    """Copy the output to the log, and to ``echo`` up to Ploomber's failure report."""
    assert proc.stdout is not None
    chunks, echoing = [], True
    try:
        while chunk := os.read(proc.stdout.fileno(), 65536):
            chunks.append(chunk)
            log.write(chunk)
            if echoing:
                cut = _banner_at(chunk)
                echo.write(chunk if cut < 0 else chunk[:cut])
                echo.flush()
                echoing = cut < 0
    except KeyboardInterrupt:  # a forked Ploomber leads its own session: Ctrl-C is passed on
        if not isinstance(proc, subprocess.Popen) and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=60)  # its failure hooks record the run before it ends
        raise
    finally:
        log.flush()
        proc.stdout.close()
    proc.wait()
    return b"".join(chunks)


def run_ploomber(
    root: Path,
    args: Sequence[str],
    *,
    log: Path,
    reports_dir: Path,
    echo: BinaryIO | None = None,
    env: dict[str, str] | None = None,
    phase: str | None = None,
) -> RunResult:
    """``ploomber ARGS`` in ``root``; on failure the cause is printed as the last line."""
    echo = echo if echo is not None else sys.stdout.buffer
    cmd = [*ploomber_command(), *args]
    started = time.time()
    with open(log, "wb") as sink:
        sink.write(("$ " + " ".join(cmd) + "\n").encode())
        proc, zygote = _start(cmd, root, {**os.environ, "GX_ANALYTICS_ENABLED": "False", **(env or {})})
        try:
            output = _pump(proc, echo, sink)
        finally:
            if zygote is not None:
                zygote.close()
    if proc.returncode == 0:
        return RunResult(0, log, None)
    cause = failures.find_cause(reports_dir, started, output.decode(errors="replace"), phase)
    footer = [
        "(Ploomber's report with the traceback is in the log and the failed notebook)",
        *cause.details(),
        f"full output: {log}",
    ]
    if cause.notebook is not None:
        footer.append(f"failed notebook (traceback): {cause.notebook}")
    footer.append(cause.line())
    text = "\n" + "\n".join(footer) + "\n"
    echo.write(text.encode())
    echo.flush()
    with open(log, "ab") as sink:
        sink.write(text.encode())
    return RunResult(proc.returncode, log, cause)
