"""``churn airflow-dag``: write the Airflow DAG of the daily cycle (see ``churn.scheduling.airflow``)."""

from __future__ import annotations

import os
import sys
from datetime import date, datetime
from pathlib import Path

import click

from churn.cli import Context, pass_context
from churn.scheduling.airflow import (
    DEFAULT_DAG_ID,
    DEFAULT_SCHEDULE,
    DagOptions,
    SchedulingError,
    render_dag,
    write_dag,
)


@click.command("airflow-dag")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The DAG file to write [default: <data_dir>/airflow/dags/<dag id>.py].",
)
@click.option("--dag-id", default=DEFAULT_DAG_ID, show_default=True, help="The DAG's id in Airflow.")
@click.option("--schedule", default=DEFAULT_SCHEDULE, show_default=True, help="Cron expression or preset (@daily).")
@click.option(
    "--start-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="First logical date Airflow may run [default: the data's start parameter].",
)
@click.option("--retries", type=int, default=2, show_default=True, help="Retries of a failed phase.")
@click.option("--retry-delay", type=int, default=10, show_default=True, help="Minutes before a retry.")
@pass_context
def airflow_dag(
    ctx: Context,
    out: Path | None,
    dag_id: str,
    schedule: str,
    start_date: datetime | None,
    retries: int,
    retry_delay: int,
) -> None:
    """Write the Apache Airflow DAG of the daily cycle, generated from pipeline.yaml.

    One Airflow task per phase with the phases' dependencies; each runs
    `churn build --partially PHASE --env--as_of {{ ds }}` with this virtualenv's
    Python in this project (and the --set overrides given to churn, e.g. a data set's
    workspace). Point Airflow's dags_folder at the file's folder, or copy the file there.
    Regenerate it whenever pipeline.yaml changes: the DAG refuses to load until then.
    """
    from churn.cli.dagstate import phase_graph

    project = ctx.project()  # checks the --set overrides the DAG will run with
    first = start_date.date() if start_date else date.fromisoformat(str(project.params["start"]))
    options = DagOptions(dag_id, schedule, first, retries, retry_delay)
    try:
        text = render_dag(
            phase_graph(project),
            root=project.root,
            python=os.path.abspath(sys.executable),  # the venv's python, its symlink kept
            options=options,
            sets=ctx.sets,
        )
    except SchedulingError as exc:
        raise click.ClickException(str(exc)) from None
    target = write_dag(text, out if out is not None else project.data_dir / "airflow" / "dags" / f"{dag_id}.py")
    click.echo(f"wrote {target} (DAG {dag_id}, {schedule}): point Airflow's dags_folder at {target.parent}")


COMMANDS = (airflow_dag,)
