"""The Apache Airflow DAG of the daily cycle, generated from the pipeline's phase graph.

One Airflow task per phase (a ``BashOperator``), wired as the phases depend on each other. A task
runs its phase for the run's logical date as one partial build of the project::

    <venv>/bin/python -m churn.cli --project ROOT cycle --as-of {{ ds }} --partially generate-data
    <venv>/bin/python -m churn.cli --project ROOT build --partially PHASE --env--as_of {{ ds }}

The first phase goes through ``churn cycle`` (a date before the last run is refused, one that
already ran is a no-op; the first run needs a full ``make build`` before it). Every task takes
the run lock of the data dir and is recorded in the run ledger like any other build (one ledger
row per task; ``churn runs`` lists them with their ``as_of``). A phase that is already up to
date for that date is skipped by Ploomber, so an Airflow retry or a re-run of a finished date
does no work twice; an upstream phase that is not up to date for that date (a build with
another ``as_of`` ran in between) runs again first, so a phase never reads the outputs of
another date.

The DAG file is generated (``churn airflow-dag``, ``make airflow-dag``), never edited: it holds the
phase graph as Ploomber read it and the sha256 of ``pipeline.yaml``, and refuses to load (an
import error Airflow shows) once ``pipeline.yaml`` has changed, naming the command that
regenerates it. It imports nothing from this project, so it loads in Airflow's own environment.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from string import Template

DEFAULT_DAG_ID = "churn_daily"
DEFAULT_SCHEDULE = "0 6 * * *"  # the same default as `make schedule`'s cron line
AS_OF = "{{ ds }}"  # Airflow's logical date, YYYY-MM-DD: the run's date
_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")  # Airflow's rule for DAG and task ids
_CRON_PRESETS = {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"}


class SchedulingError(ValueError):
    """A DAG that cannot be generated; the message names the option and why."""


@dataclass(frozen=True)
class DagOptions:
    """The Airflow side of the DAG: its id, when it runs and how a failed phase is retried.

    Args:
        dag_id: the DAG's id in Airflow (also the generated file's name).
        schedule: a 5-field cron expression or an Airflow preset (``@daily``).
        start_date: the first logical date Airflow may run; the data's start is a sensible one.
        retries: how often a failed phase is retried (a held run lock, a transient error).
        retry_delay_minutes: the wait before each retry.
    """

    dag_id: str = DEFAULT_DAG_ID
    schedule: str = DEFAULT_SCHEDULE
    start_date: date = date(2025, 1, 1)
    retries: int = 2
    retry_delay_minutes: int = 10

    def check(self) -> None:
        """Raise :class:`SchedulingError` naming the first unusable option."""
        if not _DAG_ID.match(self.dag_id):
            raise SchedulingError(
                f"dag id {self.dag_id!r} is not an Airflow id (letters, digits, '_', '.', '-'; at most 250)"
            )
        fields = self.schedule.split()
        if not (len(fields) == 5 or self.schedule in _CRON_PRESETS):
            raise SchedulingError(
                f"schedule {self.schedule!r} is neither a 5-field cron expression ('0 6 * * *') "
                f"nor one of {', '.join(sorted(_CRON_PRESETS))}"
            )
        if self.retries < 0:
            raise SchedulingError(f"retries must be 0 or more, not {self.retries}")
        if self.retry_delay_minutes < 1:
            raise SchedulingError(f"the retry delay must be at least 1 minute, not {self.retry_delay_minutes}")


def pipeline_sha256(pipeline: Path) -> str:
    """The fingerprint the generated DAG checks ``pipeline.yaml`` against when Airflow loads it."""
    return hashlib.sha256(pipeline.read_bytes()).hexdigest()


def check_graph(graph: Mapping[str, Sequence[str]]) -> None:
    """Every phase is a valid Airflow task id, every upstream phase is one of the phases, and one
    phase comes first."""
    if not graph:
        raise SchedulingError("the pipeline has no phases")
    for phase, upstream in graph.items():
        if not _DAG_ID.match(phase):
            raise SchedulingError(f"phase {phase!r} is not a valid Airflow task id")
        missing = [name for name in upstream if name not in graph]
        if missing:
            raise SchedulingError(f"phase {phase!r} depends on {missing}, which are not phases")
    first = [phase for phase, upstream in graph.items() if not upstream]
    if len(first) != 1:  # the first phase is the cycle's gate: every other phase must follow it
        raise SchedulingError(f"the pipeline must start with one phase (the cycle's checks run there), not {first}")


def phase_command(python: str, root: Path, sets: Mapping[str, str], phase: str, first: bool = False) -> str:
    """The shell command an Airflow task runs: ``phase`` as one partial build for ``{{ ds }}``.

    The first phase goes through ``churn cycle``, the daily cycle's checks: a date before the last
    run is refused, a date that already ran is a no-op that says so (the later phases are then
    up to date, and Ploomber skips them)."""
    argv = [python, "-m", "churn.cli", "--project", str(root)]
    for key, value in sets.items():
        argv += ["--set", f"{key}={value}"]
    if first:
        argv += ["cycle", "--as-of", AS_OF, "--partially", phase]
    else:
        argv += ["build", "--partially", phase, "--env--as_of", AS_OF]
    return shlex.join(argv)


def render_dag(
    graph: Mapping[str, Sequence[str]],
    *,
    root: Path,
    python: str,
    options: DagOptions,
    sets: Mapping[str, str] | None = None,
) -> str:
    """The source of the DAG file.

    Args:
        graph: phase -> its upstream phases, in the pipeline's (topological) order.
        root: the project folder (holds ``pipeline.yaml``).
        python: the interpreter of the project's virtualenv (runs ``churn``).
        options: the DAG's id, schedule, start and retries.
        sets: parameter overrides every phase runs with (``churn --set KEY=VALUE``), e.g. a data
            set's workspace; ``as_of`` is the DAG's to set.

    Raises:
        SchedulingError: an unusable option, graph or override.
    """
    options.check()
    check_graph(graph)
    sets = dict(sets or {})
    if "as_of" in sets:
        raise SchedulingError("as_of comes from each run's logical date ({{ ds }}); it cannot be fixed")
    root = Path(root).resolve()
    pipeline = root / "pipeline.yaml"
    for text in (str(root), python, *sets.values()):
        if "{{" in text or "{%" in text:  # Airflow renders the command as a Jinja template
            raise SchedulingError(f"{text!r} contains a Jinja delimiter ('{{{{' or '{{%')")
    phases = "\n".join(f"    {phase!r}: {list(upstream)!r}," for phase, upstream in graph.items())
    commands = "\n".join(
        f"    {phase!r}: {phase_command(python, root, sets, phase, first=not upstream)!r},"
        for phase, upstream in graph.items()
    )
    return _TEMPLATE.substitute(
        pipeline=repr(str(pipeline)),
        sha=repr(pipeline_sha256(pipeline)),
        dag_id=repr(options.dag_id),
        schedule=repr(options.schedule),
        start=f"{options.start_date.year}, {options.start_date.month}, {options.start_date.day}",
        retries=options.retries,
        delay=options.retry_delay_minutes,
        phases=phases,
        commands=commands,
    )


def write_dag(text: str, target: Path) -> Path:
    """Write the DAG file atomically: Airflow's parser never sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, target)
    return target


_TEMPLATE = Template('''\
"""The churn platform's daily cycle as an Apache Airflow DAG.

GENERATED by `churn airflow-dag` (`make airflow-dag`) from $pipeline:
do not edit, regenerate. One task per pipeline phase, with the phases' dependencies; each runs
its phase for the run's logical date (as_of = {{ ds }}) as one locked, recorded partial build of
the project (`churn build --partially PHASE`). See the project's README,
"Scheduling".
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

PIPELINE = Path($pipeline)
PIPELINE_SHA256 = $sha
if not PIPELINE.is_file() or hashlib.sha256(PIPELINE.read_bytes()).hexdigest() != PIPELINE_SHA256:
    raise RuntimeError(
        f"{PIPELINE} changed (or is gone) since this DAG was generated from it: "
        f"run `make airflow-dag` in {PIPELINE.parent} to regenerate the DAG"
    )

from airflow.providers.standard.operators.bash import BashOperator  # noqa: E402
from airflow.sdk import DAG  # noqa: E402

# phase -> the phases it depends on, in pipeline order (as Ploomber reads pipeline.yaml)
PHASES = {
$phases
}
COMMANDS = {
$commands
}

with DAG(
    dag_id=$dag_id,
    description="The churn platform's daily cycle: one task per pipeline phase, as_of = the logical date",
    schedule=$schedule,
    start_date=datetime($start, tzinfo=timezone.utc),
    # a missed day needs no run of its own: the next cycle extends the data to its date
    catchup=False,
    # runs and phases one at a time: every phase takes the data dir's run lock
    max_active_runs=1,
    max_active_tasks=1,
    default_args={"retries": $retries, "retry_delay": timedelta(minutes=$delay)},
    tags=["churn"],
    doc_md=__doc__,
) as dag:
    tasks = {
        phase: BashOperator(task_id=phase, bash_command=command, cwd=str(PIPELINE.parent))
        for phase, command in COMMANDS.items()
    }
    for phase, upstream in PHASES.items():
        for name in upstream:
            tasks[name] >> tasks[phase]
''')
