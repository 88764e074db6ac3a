"""``churn predict`` and ``churn explain``: the API's own code path, without a server.

They open the same ``ServingState`` the API uses (production model from the registry with its
sha256 checked, features from Redis with the offline store as fallback), so a CLI answer and an
API answer for the same user agree.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from churn.cli import Context, pass_context
from churn.cli.project import Project

if TYPE_CHECKING:
    from churn.serving.service import ServingState
    from churn.serving.settings import Settings

JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (the API's response body).")


def settings_for(project: Project) -> Settings:
    """API settings pointing at this project's data (REDIS_URL / CHURN_* variables still apply)."""
    from churn.serving.settings import Settings

    given: dict[str, Any] = {
        "data_dir": project.data_dir,
        "warehouse": project.path("warehouse"),
        "models_dir": project.models_dir,
        "model_name": project.model_name,
    }
    if project.params.get("redis_url"):
        given["redis_url"] = project.params["redis_url"]
    return Settings(**given)


@contextmanager
def serving_state(project: Project) -> Iterator[ServingState]:
    from churn.serving.errors import ServiceUnavailable
    from churn.serving.service import ServingState

    logging.getLogger("churn.serving").setLevel(logging.ERROR)  # the CLI reports what matters itself
    state = ServingState.open(settings_for(project))
    try:
        yield state
    except ServiceUnavailable as exc:
        raise click.ClickException(exc.detail) from None
    finally:
        state.close()


@click.command()
@click.argument("user_ids", nargs=-1, required=True, type=int)
@click.option("--no-cache", is_flag=True, help="Read features from the offline store only.")
@JSON
@pass_context
def predict(ctx: Context, user_ids: tuple[int, ...], no_cache: bool, as_json: bool) -> None:
    """Churn probability and risk band for each USER_ID (production model)."""
    with serving_state(ctx.project()) as state:
        out = asyncio.run(state.predict(list(user_ids), use_cache=not no_cache))
        missing = [state.not_found_detail(int(u)) for u in out["not_found"]]
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
    else:
        cut = out.get("band_cutoffs") or {}
        bands = f" (risk bands: medium from p={cut['medium']:.4f}, high from p={cut['high']:.4f})" if cut else ""
        click.echo(f"model version {out['model_version']}{bands}")
        for p in out["predictions"]:
            click.echo(
                f"user {p['user_id']:>8}  p={p['probability']:.4f}  {p['risk_band']:6}  "
                f"features as of {p['features_as_of']}{'  (cached)' if p['cached'] else ''}"
            )
    if missing:
        raise click.ClickException("; ".join(missing))


@click.command()
@click.argument("user_id", type=int)
@JSON
@pass_context
def explain(ctx: Context, user_id: int, as_json: bool) -> None:
    """Each feature's exact contribution to USER_ID's logit, largest first."""
    with serving_state(ctx.project()) as state:
        out = asyncio.run(state.explain(user_id))
        if out is None:
            raise click.ClickException(state.not_found_detail(user_id))
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    click.echo(
        f"user {out['user_id']}  p={out['probability']:.4f} ({out['risk_band']})  model v{out['model_version']}  "
        f"logit {out['logit']:+.3f} = intercept {out['intercept']:+.3f} + contributions:"
    )
    for row in out["contributions"]:
        value = row.get("value")
        click.echo(
            f"  {row['feature']:28} {row['contribution']:+.4f}" + (f"   (value {value:g})" if value is not None else "")
        )
