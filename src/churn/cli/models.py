"""``churn models ...``: the model registry from the command line (``churn.registry``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from churn.cli import Context, pass_context

if TYPE_CHECKING:
    from churn.registry import ModelRegistry, ModelVersion

REASON = click.option("--reason", required=True, help="Why (recorded in the registry's history).")
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
MODEL = click.option("--model-name", default=None, help="Model name (default: model_name in env.yaml).")


def _name(ctx: Context, model_name: str | None) -> tuple[ModelRegistry, str]:
    project = ctx.project()
    return project.registry, model_name or project.model_name


def _row(v: ModelVersion) -> str:
    auc = v.metrics.get("auc")
    auc_text = f"{auc:.3f}" if isinstance(auc, (int, float)) else "-"
    return (
        f"{v.model_name:16} v{v.version:<4} {v.stage:10} auc {auc_text:6} "
        f"{v.created_at:%Y-%m-%d %H:%M}  {v.code_version or '-'}"
    )


@click.group()
def models() -> None:
    """List, show, promote, roll back and archive registered models."""


@models.command("list")
@MODEL
@click.option("--stage", type=click.Choice(["none", "staging", "production", "archived"]), default=None)
@JSON
@pass_context
def list_cmd(ctx: Context, model_name: str | None, stage: str | None, as_json: bool) -> None:
    """Every registered version (of one model name), oldest first."""
    registry, name = _name(ctx, model_name)
    versions = registry.list_models(name, stage)
    if as_json:
        click.echo(json.dumps([v.to_dict() for v in versions], indent=2))
    elif not versions:
        click.echo(f"no versions of {name!r} registered{f' in stage {stage}' if stage else ''}")
    for v in versions if not as_json else []:
        click.echo(_row(v))


@models.command()
@click.argument("version", type=int)
@MODEL
@JSON
@pass_context
def show(ctx: Context, version: int, model_name: str | None, as_json: bool) -> None:
    """One version: stage, metrics, parameters, features, provenance and its history."""
    registry, name = _name(ctx, model_name)
    record = registry.get_model(name, version)
    events = registry.list_events(name)
    events = events[events["version"] == version]
    if as_json:
        history = json.loads(events.to_json(orient="records", date_format="iso"))
        click.echo(json.dumps({**record.to_dict(), "events": history}, indent=2, default=str))
        return
    click.echo(_row(record))
    for label, value in (("metrics", record.metrics), ("params", record.params)):
        click.echo(f"{label}:")
        for key, item in value.items():
            click.echo(f"  {key:24} {item}")
    click.echo(f"features: {', '.join(record.features)}")
    click.echo(f"training data: {record.training_data_fingerprint}   artifact sha256: {record.artifact_sha256}")
    click.echo("history:")
    for event in events.itertuples(index=False):
        click.echo(
            f"  {event.at:%Y-%m-%d %H:%M:%S}  {event.event:10} {event.from_stage} -> {event.to_stage}: {event.reason}"
        )


@models.command()
@click.argument("version", type=int)
@click.option("--stage", type=click.Choice(["staging", "production"]), default="production", show_default=True)
@REASON
@MODEL
@pass_context
def promote(ctx: Context, version: int, stage: str, reason: str, model_name: str | None) -> None:
    """Move VERSION to production (archiving the current one) or to staging."""
    registry, name = _name(ctx, model_name)
    record = registry.promote_model(name, version, stage, reason)
    click.echo(f"{name} v{record.version} is now {record.stage}")


@models.command()
@REASON
@MODEL
@pass_context
def rollback(ctx: Context, reason: str, model_name: str | None) -> None:
    """Restore the previous production version and archive the current one."""
    registry, name = _name(ctx, model_name)
    record = registry.rollback(name, reason)
    click.echo(f"{name} v{record.version} is production again")


@models.command()
@click.argument("version", type=int)
@REASON
@MODEL
@pass_context
def archive(ctx: Context, version: int, reason: str, model_name: str | None) -> None:
    """Archive VERSION (not the production one: promote another or roll back instead)."""
    registry, name = _name(ctx, model_name)
    record = registry.archive_model(name, version, reason)
    click.echo(f"{name} v{record.version} is now {record.stage}")
