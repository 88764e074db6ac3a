"""A model card per registered model: what it was trained on, what it uses, how good it is (with
intervals), against what baseline, the leakage canary, and its limits.

Written next to the model artifact (``<artifact>.card.html``, one self-contained offline page)
when a training result is registered (:func:`churn.modeling.lifecycle.register_result`), and
linked from ``reports/index.html`` and the dashboards' registry table.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn.registry import ModelVersion

CARD_SUFFIX = ".card.html"


def card_path(record: ModelVersion) -> Path:
    """``data/models/churn_model/v3.joblib`` -> ``data/models/churn_model/v3.card.html``."""
    artifact = Path(record.artifact_path)
    return artifact.with_name(artifact.name.split(".")[0] + CARD_SUFFIX)


def write_model_card(record: ModelVersion, result: Any | None = None) -> Path:
    """Write the card of ``record`` (atomically) and return its path.

    Args:
        record: the registered version (metrics, parameters, features, provenance).
        result: its :class:`~churn.modeling.train.TrainingResult`, when at hand: adds the
            bootstrap AUC intervals, the decile table and the coefficients.
    """
    path = card_path(record)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(model_card_html(record, result), encoding="utf-8")
    os.replace(tmp, path)
    return path


def metric_intervals(metrics: dict[str, Any]) -> pd.DataFrame:
    """Validation metrics with 95% intervals where they can be had from the registry alone:
    AUC (bootstrap, when recorded), precision and recall (Wilson, from the counts they imply)."""
    from churn.modeling.evaluate import wilson_interval  # here: card_path alone must not import scikit-learn

    positives = int(metrics.get("positives", 0))
    recall, precision = float(metrics.get("recall", np.nan)), float(metrics.get("precision", np.nan))
    rows = [("AUC", metrics.get("auc"), metrics.get("auc_ci_low"), metrics.get("auc_ci_high"), "bootstrap")]
    if positives > 0 and np.isfinite(recall):
        true_pos = round(recall * positives)
        low, high = wilson_interval(np.array([true_pos]), np.array([positives]))
        rows.append(("recall", recall, low[0], high[0], f"Wilson, {true_pos} of {positives} churners found"))
        if precision > 0:
            flagged = round(true_pos / precision)
            low, high = wilson_interval(np.array([true_pos]), np.array([flagged]))
            rows.append(
                ("precision", precision, low[0], high[0], f"Wilson, {true_pos} of {flagged} flagged users churned")
            )
    for name in ("pr_auc", "f1", "brier", "top_decile_lift"):
        if name in metrics:
            rows.append((name, metrics[name], None, None, ""))
    return pd.DataFrame(rows, columns=["metric", "value", "low", "high", "interval"])


def model_card_html(record: ModelVersion, result: Any | None = None) -> str:
    from churn.modeling.evaluate import bootstrap_auc_ci, decile_table

    m, p = record.metrics, record.params
    title = f"{record.model_name} v{record.version}"
    metrics = metric_intervals(m)
    if result is not None and metrics["low"].isna().iloc[0]:
        low, high = bootstrap_auc_ci(result.predictions["label"], result.predictions["model"])
        metrics.loc[0, ["low", "high"]] = [low, high]
    sections = [
        (
            "Data",
            _table(
                [
                    ("training snapshots", _span(p.get("train_snapshots", []))),
                    ("validation snapshots", _span(p.get("valid_snapshots", []))),
                    ("label", f"churned within {p.get('horizon_days', '?')} days after the snapshot"),
                    ("validation rows", f"{int(m.get('n', 0)):,} ({int(m.get('positives', 0)):,} churners)"),
                    ("feature set", p.get("feature_set", "?")),
                    ("training-data fingerprint", record.training_data_fingerprint or "?"),
                    ("code version", record.code_version or "?"),
                    ("artifact", f"{Path(record.artifact_path).name} (sha256 {record.artifact_sha256[:16]}...)"),
                    ("registered", record.created_at.strftime("%Y-%m-%d %H:%M UTC")),
                ]
            ),
        ),
        ("Features", _features(record, result)),
        ("Validation metrics (95% intervals)", _metrics(metrics, m)),
        ("Against the baseline and the canary", _baseline(m)),
    ]
    if result is not None:
        table = decile_table(result.predictions["label"], result.predictions["model"])
        sections.append(("Lift by score decile (validation)", _deciles(table)))
    sections.append(("Limits", _limits(record)))
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    return _PAGE.format(
        title=html.escape(title),
        body=body,
        intro=html.escape(
            f"Scaling + logistic regression (C = {p.get('C', '?')}), decision threshold "
            f"{_num(p.get('threshold'))}, risk bands cut at {_bands(p.get('bands'))}."
        ),
    )


def _features(record: ModelVersion, result: Any | None) -> str:
    if result is None or "scale" not in result.pipeline.named_steps:  # gradient boosting has no coefficients
        return "<p>" + html.escape(", ".join(record.features)) + "</p>"
    coef = result.pipeline.named_steps["model"].coef_[0]
    logged = set(getattr(result, "log_features", ()))
    rows = sorted(zip(record.features, coef, strict=True), key=lambda fc: -abs(fc[1]))
    return _table(
        [(f, f"{c:+.3f} log-odds per standard deviation{' of log1p' if f in logged else ''} "
             f"({'raises' if c > 0 else 'lowers'} risk)") for f, c in rows],
        header=("feature", "coefficient"),
    )


def _metrics(table: pd.DataFrame, m: dict[str, Any]) -> str:
    rows = []
    for metric, value, low, high, how in table.itertuples(index=False):
        interval = f"[{_num(low)}, {_num(high)}]" if low is not None and low == low else ""  # NaN != NaN
        rows.append((str(metric), _num(value), interval, str(how)))
    threshold = f"<p>Precision, recall and F1 at the threshold {_num(m.get('threshold'))}.</p>"
    return _table(rows, header=("metric", "value", "95% interval", "how")) + threshold


def _baseline(m: dict[str, Any]) -> str:
    rows = [("model AUC", _num(m.get("auc"))), ("baseline AUC (recency alone)", _num(m.get("baseline_auc")))]
    canary = m.get("canary_auc")
    verdict = (
        "not run for this version"
        if canary is None
        else f"{_num(canary)}: {'ok (about 0.5)' if abs(float(canary) - 0.5) <= 0.05 else 'SUSPICIOUS (far from 0.5)'}"
    )
    rows.append(("shuffled-label canary AUC", verdict))
    return _table(rows)


def _deciles(table: pd.DataFrame) -> str:
    rows = [
        (
            str(r.Index),
            f"{r.users:,}",
            f"{r.churners:,}",
            f"{r.churn_rate:.1%} [{r.rate_low:.1%}, {r.rate_high:.1%}]",
            f"{r.lift:.2f}",
            f"{r.gain:.0%}",
        )
        for r in table.itertuples()
    ]
    return _table(
        rows, header=("decile", "users", "churners", "churn rate [95%]", "lift", "cumulative churners caught")
    )


def _limits(record: ModelVersion) -> str:
    m, p = record.metrics, record.params
    items = [
        f"Validation holds only {int(m.get('positives', 0))} churners: every metric above is noisy; read the intervals.",
        f"Trained on snapshots {_span(p.get('train_snapshots', []))}: behaviour outside that period (price changes, "
        "new segments) is not covered; the monitor phase tests the features for drift.",
        f"Probabilities are calibrated to the {p.get('horizon_days', '?')}-day churn rate of the training period; "
        "use them to rank users, and re-check calibration when the churn rate moves.",
        "Coefficients describe association, not cause: a retention offer aimed at a feature is an experiment "
        "(see the A/B phase), not a certainty.",
        "Features come only from events strictly before each snapshot; the simulator's hidden truth is never read.",
    ]
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def _table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _span(snapshots: list[str]) -> str:
    if not snapshots:
        return "?"
    days = [str(s)[:10] for s in snapshots]
    return f"{days[0]} to {days[-1]} ({len(days)})"


def _bands(bands: Any) -> str:
    return " and ".join(_num(b) for b in bands) if bands else "?"


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{float(value):.3f}" if isinstance(value, (int, float, np.floating)) else str(value)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Model card: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .3em .7em; text-align: left; }}
th {{ background: #f3f3f3; }}
</style></head>
<body><h1>Model card: {title}</h1><p>{intro}</p>{body}</body></html>
"""
