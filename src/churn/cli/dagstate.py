"""Each pipeline task's last run: status, duration, and whether Ploomber would re-run it.

Status and duration come from the executed notebooks Papermill writes (``metadata.papermill``);
a ``NN_<phase>.failed.ipynb`` next to a report means the last run of that phase failed (the hooks
in ``churn.reports`` delete it on the next success). "Outdated" is Ploomber's own verdict (code,
parameters or upstream changed since the product was made).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churn.cli.project import PIPELINE, Project
from churn.reports import NB_KEY
from churn.reports.runinfo import last_run


@dataclass(frozen=True)
class TaskState:
    name: str
    upstream: tuple[str, ...]
    report: Path
    status: str  # ok | failed | not run
    outdated: bool
    duration_s: float | None
    finished_at: str | None

    def label(self) -> str:
        took = f" in {format_seconds(self.duration_s)}" if self.duration_s is not None else ""
        stale = ", outdated" if self.outdated and self.status != "not run" else ""
        return f"{self.status}{took}{stale}"


def format_seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _run_of(report: Path) -> tuple[str, float | None, str | None]:
    run = last_run(report)
    return run.status, run.seconds, run.finished_at


def load_dag(project: Project) -> Any:
    """Ploomber's DAG of this project with the project's effective parameters, rendered."""
    from ploomber.spec import DAGSpec

    with contextlib.chdir(project.root):
        dag = DAGSpec(str(project.root / PIPELINE), env=dict(project.params)).to_dag()
        for task in dag.values():
            task._on_render = None  # the report hooks copy files: looking must not write
        dag.render(show_progress=False)
    return dag


def task_states(project: Project) -> list[TaskState]:
    """Every task in pipeline order, with its last run and Ploomber's outdated verdict."""
    dag = load_dag(project)
    states = []
    for name in dag._iter():  # topological order
        task = dag[name]
        try:
            report = project.root / str(task.product[NB_KEY])
        except (KeyError, TypeError):
            report = project.root / str(task.product)
        status, duration, finished = _run_of(report)
        outdated = bool(task.product._is_outdated()) if status != "not run" else True
        states.append(TaskState(name, tuple(task.upstream), report, status, outdated, duration, finished))
    return states
