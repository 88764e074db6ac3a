"""The pipeline DAG as a picture (SVG + PNG), drawn with matplotlib: no browser, no CDN.

``ploomber plot`` crashes under networkx >= 3.6 and its d3/mermaid backends load scripts from
CDNs, so the platform draws its own: one box per task in dependency layers, coloured by the
task's last status, with its duration and whether Ploomber would re-run it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from churn.cli.dagstate import TaskState

COLOURS = {"ok": "#a6dba0", "failed": "#f4a582", "not run": "#e0e0e0"}
OUTDATED_EDGE = "#d6a800"


def layers(states: Sequence[TaskState]) -> dict[str, int]:
    """Each task's layer: the length of the longest upstream path to it."""
    by_name = {s.name: s for s in states}
    depth: dict[str, int] = {}

    def visit(name: str) -> int:
        if name not in depth:
            ups = [u for u in by_name[name].upstream if u in by_name]
            depth[name] = 1 + max((visit(u) for u in ups), default=-1)
        return depth[name]

    for s in states:
        visit(s.name)
    return depth


def positions(states: Sequence[TaskState]) -> dict[str, tuple[float, float]]:
    """(x, y) per task: layers left to right, tasks of a layer stacked and centred."""
    depth = layers(states)
    columns: dict[int, list[str]] = {}
    for s in states:
        columns.setdefault(depth[s.name], []).append(s.name)
    pos = {}
    for col, names in columns.items():
        for row, name in enumerate(names):
            pos[name] = (col * 2.2, (len(names) - 1) / 2 - row)
    return pos


def draw_dag(states: Sequence[TaskState], target: Path) -> list[Path]:
    """Write ``target`` (SVG) and a PNG next to it, atomically; returns both paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch, Patch

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, selectable
    pos = positions(states)
    width = max(x for x, _ in pos.values()) + 2.2
    height = max(abs(y) for _, y in pos.values()) * 2 + 2.4
    fig, ax = plt.subplots(figsize=(max(8.0, width * 1.15), max(3.0, height * 1.1)))
    for s in states:
        x, y = pos[s.name]
        for up in s.upstream:
            if up in pos:
                ux, uy = pos[up]
                ax.annotate(
                    "",
                    xy=(x - 0.95, y),
                    xytext=(ux + 0.95, uy),
                    arrowprops={"arrowstyle": "-|>", "color": "#555555", "lw": 1.2},
                )
    for s in states:
        x, y = pos[s.name]
        edge = OUTDATED_EDGE if s.outdated and s.status != "not run" else "#333333"
        ax.add_patch(
            FancyBboxPatch(
                (x - 0.95, y - 0.32),
                1.9,
                0.64,
                boxstyle="round,pad=0.02",
                facecolor=COLOURS.get(s.status, "#ffffff"),
                edgecolor=edge,
                linewidth=2.4 if edge == OUTDATED_EDGE else 1.0,
            )
        )
        ax.text(x, y + 0.1, s.name, ha="center", va="center", fontsize=9, fontweight="bold")
        ax.text(x, y - 0.15, s.label(), ha="center", va="center", fontsize=7.5)
    legend = [Patch(facecolor=c, edgecolor="#333333", label=k) for k, c in COLOURS.items()]
    legend.append(
        Patch(facecolor="white", edgecolor=OUTDATED_EDGE, linewidth=2.4, label="outdated (re-runs next build)")
    )
    ax.legend(handles=legend, loc="upper left", fontsize=8, frameon=False, ncol=len(legend), bbox_to_anchor=(0, 1.02))
    ax.set_xlim(-1.1, width - 1.1)
    ax.set_ylim(-height / 2, height / 2)
    ax.set_axis_off()
    ax.set_title("Pipeline: each task's last run", loc="left", fontsize=11, pad=18)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for path in (target, target.with_suffix(".png")):
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format=path.suffix.lstrip("."), bbox_inches="tight", dpi=120)
        os.replace(tmp, path)
        written.append(path)
    plt.close(fig)
    return written
