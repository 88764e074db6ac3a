"""What the monitoring dashboard shows, read once from the warehouse's read-only snapshot.

The dashboard notebook only wires controls (run, model version, feature, test) to these
tables and to :mod:`churn.monitoring.plots`; everything it needs is read in one go here, so the
first render does a handful of small queries and no recomputation.
"""

# IPython's display functions are untyped.
# mypy: disable-error-code="no-untyped-call"
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from churn.monitoring import plots
from churn.monitoring.wording import (
    STATISTIC_MEANING,
    STATISTIC_NAMES,
    alert_sentence,
    drift_evidence,
    drift_summary,
    feature_axis_labels,
)
from churn.registry import ModelRegistry
from churn.reports.model_card import card_path
from churn.store import monitoring, offline
from churn.store.warehouse import Warehouse, WarehouseError

if TYPE_CHECKING:
    from churn.serving.settings import Settings


def open_workspace(settings: Settings, cwd: Path | None = None) -> tuple[Warehouse, ModelRegistry]:
    """The warehouse and registry the API's ``Settings`` name (``CHURN_DATA_DIR``, ``CHURN_WAREHOUSE``,
    ``CHURN_MODELS_DIR``): the dashboards read the configuration the API reads, nothing else.

    A relative path counts from the project folder (the nearest folder up from ``cwd`` with a
    pipeline.yaml), as it does for ``make serve`` run there: Voila runs a dashboard's kernel in
    notebooks/dashboards/. ``make dashboards`` passes the workspace as an absolute path.
    """
    from churn.cli.project import ProjectError, find_root

    here = (cwd or Path.cwd()).resolve()
    try:
        root = find_root(here)
    except ProjectError:
        root = here

    def resolve(path: Path) -> Path:
        return path if path.is_absolute() else root / path

    warehouse = Warehouse(resolve(settings.warehouse_path))
    return warehouse, ModelRegistry(warehouse, resolve(settings.models_path))


@dataclass
class MonitoringData:
    models: pd.DataFrame  # registry: one row per version, with its model card path
    drift: pd.DataFrame  # every monitoring run's drift rows
    timeline: pd.DataFrame  # every run's performance timeline
    alerts: pd.DataFrame
    decisions: pd.DataFrame
    api: pd.DataFrame
    spec: dict[str, Any] | None  # the feature spec (plain data) of the offline store

    @property
    def runs(self) -> list[str]:
        """Monitoring runs, newest first."""
        if self.drift.empty:
            return []
        return list(self.drift.groupby("run_id").run_at.max().sort_values(ascending=False).index)


def live_output(draw: Callable[..., None], controls: Mapping[str, Any]) -> Any:
    """An ``ipywidgets.Output`` showing ``draw(**{name: control.value})``, drawn again whenever a
    control's value changes: ``ipywidgets.interactive_output`` with another first drawing.

    The first drawing is captured in the kernel (IPython's ``capture_output``) and set as the
    widget's ``outputs`` instead of being displayed inside ``with out:``. Voila executes a dashboard
    with nbclient, whose stand-in for an Output widget answers each output displayed inside ``with
    out:`` with a comm message on the kernel's shell channel while the cell is still running; on a
    busy machine that send now and then swallowed the wake-up of the ``execute_reply`` nbclient
    awaits on the same socket, and the page stayed at "Executing 9 of 14" for good (a 20-widget
    notebook under load: 14 stalls in 21 renders drawn through ``with out:``, ipykernel 6.31 and
    7.4 alike; 0 in 14 drawn this way). Later drawings, when a person changes a control, go through
    ``with out:``: the browser is the front end then, not nbclient. An error in the first drawing
    fails the cell (Voila shows it), as an error in any other cell does.
    """
    import ipywidgets
    from IPython.display import clear_output
    from IPython.utils.capture import capture_output

    out = ipywidgets.Output()

    def values() -> dict[str, Any]:
        return {name: control.value for name, control in controls.items()}

    with capture_output() as captured:
        draw(**values())
    outputs: list[dict[str, Any]] = [
        {"output_type": "stream", "name": name, "text": text}
        for name, text in (("stdout", captured.stdout), ("stderr", captured.stderr))
        if text
    ]
    outputs += [{"output_type": "display_data", "data": o.data, "metadata": o.metadata} for o in captured.outputs]
    out.outputs = tuple(outputs)

    def redraw(_change: object) -> None:
        with out:
            clear_output(wait=True)
            draw(**values())

    for control in controls.values():
        control.observe(redraw, "value")
    return out


def load(warehouse: Warehouse, registry: ModelRegistry, model_name: str) -> MonitoringData:
    """Everything the dashboard shows (empty frames for what a build has not written yet)."""
    records = registry.list_models(model_name)
    models = pd.DataFrame(
        [{**r.to_dict(), "auc": r.metrics.get("auc"), "model card": str(card_path(r))} for r in records]
    )
    tables = {
        name: monitoring.read_table(warehouse, table)
        for name, table in (
            ("drift", monitoring.DRIFT),
            ("timeline", monitoring.TIMELINE),
            ("alerts", monitoring.ALERTS),
            ("decisions", monitoring.DECISIONS),
            ("api", monitoring.API_METRICS),
        )
    }
    try:
        spec: dict[str, Any] | None = offline.feature_spec(warehouse)
    except WarehouseError:  # no feature set recorded yet: features named without descriptions
        spec = None
    return MonitoringData(models=models, spec=spec, **tables)


def run_windows(
    warehouse: Warehouse, registry: ModelRegistry, model_name: str, run_id: str, features: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, str, str]:
    """The reference (the run's model's last training snapshot) and current (the run's date)
    feature windows of a monitoring run, with their dates: two snapshots, not the whole store."""
    version, day = _parse_run(run_id, model_name)
    record = registry.get_model(model_name, version)
    reference_at = pd.to_datetime(record.params["train_snapshots"]).max()
    frame = offline.snapshot_pair(warehouse, features, reference_at, day)
    current_at = frame.snapshot_at.max()
    return (
        frame[frame.snapshot_at == reference_at],
        frame[frame.snapshot_at == current_at],
        str(reference_at.date()),
        str(pd.Timestamp(current_at).date()),
    )


def _parse_run(run_id: str, model_name: str) -> tuple[int, str]:
    """``churn_model-v3-2026-01-01`` -> ``(3, "2026-01-01")``."""
    rest = run_id.removeprefix(f"{model_name}-v")
    version, _, day = rest.partition("-")
    return int(version), day


# Views: each displays one panel for the current values of the dashboard's controls.


def show_registry(data: MonitoringData) -> None:
    if data.models.empty:
        display(Markdown("No model registered yet: run `make build`."))
        return
    display(
        data.models[["version", "stage", "auc", "created_at", "code_version", "model card"]]
        .sort_values("version", ascending=False)
        .round(3)
        .set_index("version")
    )


def show_drift(
    data: MonitoringData,
    warehouse: Warehouse,
    registry: ModelRegistry,
    model_name: str,
    run_id: str,
    test: str,
    feature: str,
) -> None:
    """The run's drift summary (one named column per statistic), the chosen statistic for every
    feature, and the chosen feature's reference vs current distribution."""
    drift = data.drift[data.drift.run_id == run_id]
    summary = drift_summary(drift)
    drifted = summary[summary.drifted].index.tolist()
    display(
        Markdown(
            f"**Run `{run_id}`**: {len(drifted)} of {len(summary)} features drifted"
            + (f" ({', '.join(drifted)})" if drifted else "")
            + ". Expected drift (reported, never alarmed): "
            + (", ".join(summary[summary.expected].index) or "none")
            + "."
        )
    )
    display(summary.round(4))
    rows = drift[drift.test == test].set_index("feature")
    if not rows.empty:
        plots.statistic_figure(
            rows.effect_size,
            STATISTIC_NAMES[test],
            STATISTIC_MEANING[test],
            float(rows.threshold.iloc[0]),
            rows.drifted.astype(bool),
        )
        plt.show()
    labels = feature_axis_labels(data.spec, [feature])
    reference, current, ref_day, cur_day = run_windows(warehouse, registry, model_name, run_id, [feature])
    evidence = drift_evidence(drift, feature)
    title = (
        f"{feature}: "
        + (f"drifted ({evidence})" if evidence else "no drift")
        + f"; reference {ref_day}, current {cur_day}"
    )
    plots.feature_figure(reference[feature], current[feature], labels[feature], title)
    plt.show()


def show_performance(data: MonitoringData, version: int) -> None:
    """The chosen model version's performance per matured snapshot (its latest monitoring run)."""
    rows = data.timeline[data.timeline.model_version == version] if not data.timeline.empty else data.timeline
    if rows.empty:
        display(Markdown(f"No performance timeline for v{version} yet: only the production model is monitored."))
        return
    rows = rows[rows.run_id == rows.sort_values("run_at").run_id.iloc[-1]].reset_index(drop=True)
    plots.timeline_figure(rows)
    plt.show()
    shown = rows[
        ["snapshot_at", "vectors", "churners", "churn_rate", "auc", "precision", "recall", "brier", "in_training"]
    ]
    display(shown.round(dict.fromkeys(("churn_rate", "auc", "precision", "recall", "brier"), 4)))


def show_alerts(data: MonitoringData) -> None:
    """Open alerts in words, newest first; then the retraining decisions."""
    if data.alerts.empty:
        display(Markdown("No alerts."))
    else:
        lines = []
        for alert in data.alerts.sort_values("raised_at", ascending=False).itertuples():
            run_rows = data.drift[data.drift.run_id.str.endswith(str(alert.period))] if not data.drift.empty else None
            lines.append(f"- **{alert.severity}** ({alert.status}): {alert_sentence(alert, run_rows)}")
        display(Markdown("\n".join(lines)))
    if not data.decisions.empty:
        display(
            data.decisions.sort_values("decided_at", ascending=False)[
                ["decided_at", "model_version", "retrain", "action", "candidate_version"]
            ]
        )


def show_cycles(data: MonitoringData) -> None:
    """The daily runs over time: drift alarms per feature, performance, alerts opened/resolved,
    the drift's detection delay (simulated data), every alert's life and each retraining decision."""
    from churn.monitoring.onset import detection_sentence, drift_detection_in

    if data.drift.empty or "as_of" not in data.drift or data.drift.as_of.isna().all():
        display(Markdown("No dated monitoring run yet: run `make build` or `make cycle`."))
        return
    newest = data.drift.sort_values("run_at").groupby("as_of").run_id.transform("last").reindex(data.drift.index)
    drift = data.drift[data.drift.run_id == newest]
    timeline = data.timeline
    if len(timeline) and "as_of" in timeline:
        timeline = timeline[timeline.run_id.isin(set(drift.run_id))]
    days = drift.as_of.nunique()
    display(Markdown(f"**{days} monitoring run(s)**, {pd.Timestamp(drift.as_of.min()).date()} to "
                     f"{pd.Timestamp(drift.as_of.max()).date()}. " + detection_sentence(drift_detection_in(drift)) + "."))
    plots.cycles_figure(drift, timeline, data.alerts)
    plt.show()
    if len(data.alerts) and "raised_on" in data.alerts:
        columns = ["severity", "metric", "subject", "status", "raised_on", "last_seen_on", "resolved_on", "value"]
        display(rounded(data.alerts.sort_values("raised_on", ascending=False)[columns], 4).reset_index(drop=True))
    if len(data.decisions) and "as_of" in data.decisions:
        shown = data.decisions.sort_values("decided_at", ascending=False)[["as_of", "model_version", "action",
                                                                            "candidate_version", "reasons"]]
        display(shown.assign(reasons=shown.reasons.map(lambda r: " | ".join(json.loads(r)) if isinstance(r, str) else "")))


def rounded(frame: pd.DataFrame, digits: int) -> pd.DataFrame:
    """``frame`` with its numeric columns rounded (``DataFrame.round`` warns on date columns)."""
    return frame.round(dict.fromkeys(frame.select_dtypes("number").columns, digits))


def show_api(data: MonitoringData) -> None:
    """The serving API's figures as each monitoring run recorded them, newest first."""
    if data.api.empty:
        display(Markdown("No API figures recorded yet."))
        return
    display(rounded(data.api.sort_values("run_at", ascending=False).drop(columns=["run_id"]), 3))
