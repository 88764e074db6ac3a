"""Names, units and sentences for monitoring results, shared by the report and the dashboards.

Each drift test measures something different: the KS statistic D (largest gap between the two
cumulative distributions, 0-1), Cohen's d behind Welch's t (mean shift in pooled standard
deviations), PSI (population stability index over reference-decile bins), Cramer's V behind the
chi-squared test. They are never mixed in one "effect" column: each is named for what it is.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from churn.features.spec import feature_docs

STATISTIC_NAMES: dict[str, str] = {"ks": "KS D", "welch_t": "Cohen's d (Welch t)", "psi": "PSI",
                                   "chi2": "Cramer's V (chi-squared)"}
P_VALUE_NAMES: dict[str, str] = {"ks": "KS p (Holm)", "welch_t": "Welch t p (Holm)", "psi": "PSI p (Holm)",
                                 "chi2": "chi-squared p (Holm)"}
TEST_NAMES: dict[str, str] = {"ks": "Kolmogorov-Smirnov", "welch_t": "Welch's t", "psi": "population stability index",
                              "chi2": "chi-squared"}
STATISTIC_MEANING: dict[str, str] = {
    "ks": "largest gap between the reference and current cumulative distributions (0 to 1)",
    "welch_t": "difference of means in pooled standard deviations (0.2 small, 0.5 medium)",
    "psi": "population stability index on reference-decile bins (< 0.1 stable, >= 0.2 significant)",
    "chi2": "strength of association between window and category (0 to 1)",
}


def feature_axis_labels(spec: dict[str, Any] | str | None, features: list[str]) -> dict[str, str]:
    """``feature -> "events in the last 30 days (count)"``: the spec's description and the unit
    its aggregation implies (the name alone when the spec does not describe it)."""
    data: dict[str, Any] = json.loads(spec) if isinstance(spec, str) else (spec or {})
    labels = {}
    for name, doc in feature_docs(data, features).items():
        description, unit = doc["description"] or name, doc["unit"]
        labels[name] = f"{description} ({unit})" if unit and "(" not in description else description
    return labels


def drift_summary(drift: pd.DataFrame) -> pd.DataFrame:
    """One row per feature, one named column per statistic (and its Holm-adjusted p-value)."""
    stats = drift.pivot_table(index="feature", columns="test", values="effect_size", aggfunc="first")
    p_adj = drift.pivot_table(index="feature", columns="test", values="p_adjusted", aggfunc="first")
    table = pd.DataFrame(index=stats.index)
    for test in [t for t in STATISTIC_NAMES if t in stats.columns]:
        table[STATISTIC_NAMES[test]] = stats[test]
        table[P_VALUE_NAMES[test]] = p_adj[test]
    flags = drift.groupby("feature").agg(drifted=("drifted", "any"), expected=("expected_drift", "any"))
    table = flags.join(table)
    order = table["PSI"].abs() if "PSI" in table else table.index.to_series()
    return table.loc[order.sort_values(ascending=False).index]


def drift_evidence(drift: pd.DataFrame, feature: str) -> str:
    """``"PSI 0.26 > 0.2, KS D 0.20 > 0.1, Cohen's d -0.31 (|d| > 0.2)"``: the tests on which
    ``feature`` drifted, each with its own statistic and minimum."""
    rows = drift[(drift.feature == feature) & drift.drifted.astype(bool)]
    parts = []
    for test in [t for t in ("psi", "ks", "welch_t", "chi2") if t in set(rows.test)]:
        row = rows[rows.test == test].iloc[0]
        name = STATISTIC_NAMES[test].split(" (")[0]
        if test == "welch_t":
            parts.append(f"{name} {row.effect_size:+.2f} (|d| > {row.threshold:g})")
        else:
            parts.append(f"{name} {row.effect_size:.2f} > {row.threshold:g}")
    return ", ".join(parts)


def alert_sentence(alert: Any, drift: pd.DataFrame | None = None) -> str:
    """An alert in words: ``"events_30d drifted: PSI 0.26 > 0.2, KS D 0.20 > 0.1 (2026-01-01)"``,
    ``"AUC of churn_model v1 fell to 0.61, below 0.65 (snapshot 2025-11-02)"``."""
    period = f" ({alert.period})" if getattr(alert, "period", None) else ""
    if alert.metric == "feature_drift":
        evidence = drift_evidence(drift, alert.subject) if drift is not None and len(drift) else ""
        return f"{alert.subject} drifted" + (f": {evidence}" if evidence else "") + period
    if alert.metric == "auc":
        return f"AUC of {alert.subject} fell to {alert.value:.3f}, below {alert.threshold:g}{period.replace('(', '(snapshot ')}"
    if alert.metric == "churn_rate":
        return (f"30-day churn rate of {alert.subject} rose to {alert.value:.1%}, above {alert.threshold:.1%}"
                f"{period.replace('(', '(snapshot ')}")
    direction = "above" if alert.value > alert.threshold else "below"
    return f"{alert.metric} of {alert.subject} is {alert.value:.4g}, {direction} {alert.threshold:g}{period}"


def dataset_caption(info: dict[str, Any] | None, watermark: pd.Timestamp | None) -> str:
    """The line a dashboard opens with: which data set it shows and how far its data goes, e.g.
    ``Data set **synthetic** (synthetic data, churn rule: cancellation), data before 2026-01-03``.

    ``info`` is :func:`churn.store.raw.dataset_info`, ``watermark`` :func:`churn.store.raw.last_load`.
    """
    if not info:
        return "Data set: unknown (the warehouse was loaded before data sets were recorded)"
    text = f"Data set **{info.get('name')}** ({info.get('source') or 'unknown'} data"
    text += f", churn rule: {info['rule']})" if info.get("rule") else ")"
    if watermark is not None:
        text += f", data before {watermark:%Y-%m-%d}"
    return text
