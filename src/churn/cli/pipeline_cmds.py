"""``churn build``, ``churn phase`` and ``churn params``: Ploomber runs with checked parameters."""

from __future__ import annotations

import shutil
import sys

import click

from churn import params as params_mod
from churn.cli import Context, pass_context
from churn.cli.project import Project, check_task, load_defaults
from churn.cli.runner import new_log, run_ploomber

SCRATCH = "scratch"


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def build(ctx: Context, args: tuple[str, ...]) -> None:
    """Run the pipeline (ploomber build ARGS) after checking every parameter.

    --env--KEY VALUE overrides are checked before anything runs: unknown or abbreviated names
    are refused, naming the closest parameter, and values (types, ranges, and combinations such
    as too few users for the snapshots and horizon) are refused with the reason. Other ARGS
    (--force, --partially TASK, ...) go to ploomber unchanged. The whole output is kept in
    <data_dir>/logs/; a failed phase ends with its one-line cause.
    """
    overrides, rest = params_mod.parse_env_args(args, list(load_defaults(ctx.root)))
    project = ctx.project(**overrides)
    env = params_mod.env_args({**ctx.sets, **overrides})
    result = run_ploomber(project.root, ["build", *rest, *env], log=new_log(project.logs_dir, "build"),
                          reports_dir=project.reports_dir)
    sys.exit(result.returncode)


def scratch_copy(project: Project, name: str) -> dict[str, str]:
    """Copy the warehouse, model artifacts and receipts into ``<data_dir>/scratch/<name>/`` (replacing
    an earlier copy) and return the overrides that point a run at it, with Redis of its own."""
    folder = project.data_dir / SCRATCH / name
    if folder.exists():
        from churn.store.redis_server import EmbeddedRedis

        EmbeddedRedis(folder).stop()
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    warehouse = project.warehouse
    if not warehouse.path.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse.path}: run `churn build` (make build) first")
    if warehouse.snapshot_path.exists():  # the last published state: copying it blocks no writer
        shutil.copy2(warehouse.snapshot_path, folder / "churn.duckdb")
    else:
        with warehouse.lock():  # no writer while we copy: the copy is one consistent state
            shutil.copy2(warehouse.path, folder / "churn.duckdb")
    for source, target in ((project.models_dir, "models"), (project.receipts_dir, "products")):
        if source.is_dir():
            shutil.copytree(source, folder / target)
    return {"data_dir": str(folder), "warehouse": str(folder / "churn.duckdb"),
            "models_dir": str(folder / "models"), "reports_dir": str(folder / "reports"), "redis_url": ""}


@click.command()
@click.argument("name")
@click.option("--in-place", is_flag=True, help="Run on the real warehouse, models and Redis (default: a scratch copy).")
@pass_context
def phase(ctx: Context, name: str, in_place: bool) -> None:
    """Run one phase NAME (e.g. check-features) on the current build.

    By default against a fresh scratch copy of the warehouse, models and receipts under
    <data_dir>/scratch/NAME/ with an embedded Redis of its own, so the real build is untouched;
    its report lands in <data_dir>/scratch/NAME/reports/. --in-place runs it for real.
    """
    name = check_task(name, ctx.root)
    project = ctx.project()
    overrides = {} if in_place else scratch_copy(project, name)
    run = ctx.project(**overrides) if overrides else project
    where = f"IN PLACE on {run.warehouse.path}" if in_place else f"on a scratch copy: {run.data_dir}"
    click.echo(f"running {name} {where}")
    try:
        result = run_ploomber(run.root, ["task", name, "--force", *params_mod.env_args({**ctx.sets, **overrides})],
                              log=new_log(project.logs_dir, f"phase-{name}"), reports_dir=run.reports_dir)
    finally:
        if not in_place:
            from churn.store.redis_server import EmbeddedRedis

            EmbeddedRedis(run.data_dir).stop()
    if result.returncode == 0:
        click.echo(f"{name} done; report in {run.reports_dir}")
    sys.exit(result.returncode)


@click.command("params", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def params_cmd(ctx: Context, args: tuple[str, ...]) -> None:
    """Check --env--KEY VALUE ARGS without running anything; print the effective parameters."""
    overrides, rest = params_mod.parse_env_args(args, list(load_defaults(ctx.root)))
    if rest:
        raise click.UsageError(f"only --env--KEY VALUE arguments are checked here, not {' '.join(rest)}")
    project = ctx.project(**overrides)
    for key, value in project.params.items():
        mark = " *" if key in overrides or key in ctx.sets else ""
        click.echo(f"{key:24} {value}{mark}")


COMMANDS = (build, phase, params_cmd)
