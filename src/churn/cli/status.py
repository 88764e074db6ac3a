"""``churn status`` (what is built, what is stale, Redis, API) and ``churn runs``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from churn.cli import Context, pass_context
from churn.cli.dagstate import task_states
from churn.cli.project import Project

API = click.option(
    "--api",
    "api_url",
    default="http://127.0.0.1:8000",
    show_default=True,
    envvar="CHURN_API_URL",
    help="Where `make serve` listens (make status passes PORT).",
)


def _mtime(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")


def warehouse_line(project: Project) -> str:
    wh = project.warehouse
    if not wh.path.exists():
        return f"warehouse  {wh.path}: not built yet (make build)"
    size = wh.path.stat().st_size / 2**20
    snap = f"snapshot published {_mtime(wh.snapshot_path)}" if wh.snapshot_path.exists() else "no reader snapshot"
    return f"warehouse  {wh.path} ({size:.1f} MB), {snap}"


def model_line(project: Project) -> str:
    try:
        production = project.registry.get_production(project.model_name)
    except Exception as exc:  # a broken warehouse must not hide the rest of the status
        return f"model      cannot read the registry: {exc}"
    if production is None:
        return f"model      {project.model_name}: no production version"
    auc = production.metrics.get("auc")
    return f"model      {project.model_name} v{production.version} in production" + (f" (AUC {auc:.3f})" if auc else "")


def redis_line(project: Project) -> str:
    import redis

    from churn.store.online import client_from_url
    from churn.store.redis_server import EmbeddedRedis

    url = str(project.params.get("redis_url") or "")
    if not url and not EmbeddedRedis(project.data_dir).is_running():
        return "redis      embedded server not running (make redis-start; make build starts it)"
    url = url or EmbeddedRedis(project.data_dir).url
    try:
        client = client_from_url(url, socket_timeout=1, socket_connect_timeout=1)  # one Redis or a cluster
        keys = client.dbsize()
        client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        return f"redis      {url}: not reachable ({exc})"
    return f"redis      {url}: up, {keys} keys"


def api_line(api_url: str, api_key: str | None) -> str:
    request = urllib.request.Request(api_url.rstrip("/") + "/health", headers={"X-API-Key": api_key} if api_key else {})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return f"api        {api_url}: answered {exc.code}"
    except (urllib.error.URLError, OSError, ValueError):
        return f"api        {api_url}: not running (make serve)"
    model = body.get("model", {})
    return f"api        {api_url}: {body.get('status')} (serving v{model.get('version')})"


@click.command()
@API
@click.option("--api-key", envvar="CHURN_API_KEY", default=None, help="X-API-Key, when the API needs one.")
@pass_context
def status(ctx: Context, api_url: str, api_key: str | None) -> None:
    """What is built and when, what is stale, the warehouse, the production model, Redis, the API.

    Outdated is judged with the parameters of the last `churn build` (plus any --set).
    """
    project = ctx.built_project()
    click.echo(f"project    {project.root}")
    changed = {k: v for k, v in project.params.items() if project.defaults.get(k) != v}
    if changed:
        click.echo("parameters " + ", ".join(f"{k}={v}" for k, v in changed.items()) + " (last build, --set)")
    click.echo("pipeline   (outdated: Ploomber would re-run it on the next build)")
    for state in task_states(project):
        when = f"  {state.finished_at[:19]}" if state.finished_at else ""
        click.echo(f"  {state.name:20} {state.label():36}{when}")
    for line in (warehouse_line(project), model_line(project), redis_line(project), api_line(api_url, api_key)):
        click.echo(line)


def read_receipts(folder: Path) -> dict[str, dict[str, Any]]:
    """Each task's JSON receipt by file stem (``generate_data``), unreadable ones skipped."""
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return out


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def phases(ctx: Context, as_json: bool) -> None:
    """The last run of every phase: status, duration, and what its receipt says it wrote."""
    project = ctx.built_project()
    receipts = read_receipts(project.receipts_dir)
    rows: list[dict[str, Any]] = []
    for state in task_states(project):
        receipt = receipts.get(state.name.replace("-", "_"), {})
        rows.append(
            {
                "task": state.name,
                "status": state.status,
                "outdated": state.outdated,
                "seconds": state.duration_s,
                "finished_at": state.finished_at,
                "receipt": receipt,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        facts = {k: v for k, v in row["receipt"].items() if k != "written_at" and not isinstance(v, (dict, list))}
        summary = ", ".join(f"{k}={v}" for k, v in list(facts.items())[:4])
        took = f"{row['seconds']:.1f} s" if row["seconds"] is not None else "-"
        click.echo(f"{row['task']:20} {row['status']:8} {took:>9}  {(row['finished_at'] or '-')[:19]:19}  {summary}")


def _records(frame: Any) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records", date_format="iso")) if len(frame) else []


@click.command()
@click.option("--last", default=20, show_default=True, help="How many of the newest runs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (each run with its tasks).")
@pass_context
def runs(ctx: Context, last: int, as_json: bool) -> None:
    """The run ledger (<data_dir>/runs.duckdb): every build, newest last, with its status, time and
    error, then the newest run's tasks. `churn phases` shows each phase's last run instead."""
    from churn.store.runs import RunLedger

    ledger = RunLedger(ctx.built_project().data_dir)
    rows = _records(ledger.runs().tail(last))
    if as_json:
        click.echo(json.dumps([{**r, "tasks": _records(ledger.tasks(r["run_id"]))} for r in rows], indent=2))
        return
    if not rows:
        click.echo(f"no runs recorded in {ledger.path} yet (every `churn build` / `make build` records one)")
        return
    for r in rows:
        error = (r.get("error") or "").strip().splitlines()
        click.echo(f"{r['run_id']:24} {r['status']:9} started {str(r['started_at'])[:19]}  finished "
                   f"{str(r.get('finished_at') or '-')[:19]:19}" + (f"  {error[-1][:120]}" if error else ""))
    newest = rows[-1]["run_id"]
    click.echo(f"tasks of {newest}:")
    for t in _records(ledger.tasks(newest)):
        took = f"{t['elapsed_s']:.1f} s" if t.get("elapsed_s") is not None else "-"
        click.echo(f"  {t['task']:20} {t['status']:10} {took:>9}")


COMMANDS = (status, phases, runs)
