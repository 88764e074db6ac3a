"""``churn``: the platform's command line (click). ``churn --help`` lists the commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from churn.cli.project import Project, ProjectError, find_root
from churn.params import ParameterError


class ChurnGroup(click.Group):
    """Expected failures (bad parameters, a missing build, a registry refusal) end in one line,
    ``Error: <cause>``, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if isinstance(exc, expected_errors()):
                raise click.ClickException(str(exc)) from None
            raise


# The expected failures of modules the CLI imports only when a command needs them (the registry
# imports pandas and DuckDB): (module, class name).
LAZY_ERRORS = (("churn.registry", "RegistryError"), ("churn.store.warehouse", "WarehouseError"))


def expected_errors() -> tuple[type[Exception], ...]:
    """The exception classes that end a command in one line. Those of :data:`LAZY_ERRORS` count
    once their module is imported: an error whose module never ran cannot have been raised, so
    ``churn build`` (which hands over to Ploomber) does not import the registry to catch its
    errors."""
    lazy = [getattr(sys.modules[module], name) for module, name in LAZY_ERRORS if module in sys.modules]
    return (ParameterError, ProjectError, FileNotFoundError, *lazy)


def parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    """``KEY=VALUE`` pairs from ``--set``."""
    out = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        out[key] = value
    return out


class Context:
    """What every command gets: the project folder and the ``--set`` overrides."""

    def __init__(self, folder: Path | None, sets: dict[str, str]) -> None:
        self.folder, self.sets = folder, sets

    @property
    def root(self) -> Path:
        """Found on first use, so ``--help`` works anywhere."""
        return find_root() if self.folder is None else self.folder.resolve()

    def project(self, **more: str) -> Project:
        return Project(self.root, {**self.sets, **more})

    def built_project(self, **more: str) -> Project:
        """The project with the parameters of its last ``churn build`` (then ``--set``, ``more``),
        so status, plot and a single phase see the build as it was run."""
        from churn.cli.project import read_build_params

        last = read_build_params(self.project().logs_dir)
        return Project(self.root, {**last, **self.sets, **more})


pass_context = click.make_pass_decorator(Context)


@click.group(cls=ChurnGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Project folder (default: the nearest folder with a pipeline.yaml).",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override an env.yaml parameter for this command, e.g. --set data_dir=/tmp/x.",
)
@click.version_option(package_name="churn", prog_name="churn")
@click.pass_context
def main(ctx: click.Context, project: Path | None, sets: tuple[str, ...]) -> None:
    """Churn prediction platform: build, predict, explain, manage models, inspect runs."""
    ctx.obj = Context(project, parse_sets(sets))


def _register() -> None:
    from churn.cli import models, pipeline_cmds, predict, schedule_cmds, status, tools

    for command in (
        *pipeline_cmds.COMMANDS,
        models.models,
        predict.predict,
        predict.explain,
        *status.COMMANDS,
        *tools.COMMANDS,
        *schedule_cmds.COMMANDS,
    ):
        main.add_command(command)


_register()
