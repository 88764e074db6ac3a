"""Monitoring results in words: each statistic named for what it is, alerts as sentences, axes
labelled with the feature's description and unit."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from churn.features.defaults import DEFAULT_SPEC
from churn.monitoring.wording import alert_sentence, drift_summary, feature_axis_labels


def _drift() -> pd.DataFrame:
    rows = [
        ("events_30d", "ks", 0.204, 1e-14, 0.1, True),
        ("events_30d", "welch_t", -0.313, 1e-9, 0.2, True),
        ("events_30d", "psi", 0.31, 1e-16, 0.2, True),
        ("tenure_days", "ks", 0.05, 0.4, 0.1, False),
        ("tenure_days", "welch_t", 0.1, 0.3, 0.2, False),
        ("tenure_days", "psi", 0.02, 0.9, 0.2, False),
    ]
    frame = pd.DataFrame(rows, columns=["feature", "test", "effect_size", "p_adjusted", "threshold", "drifted"])
    return frame.assign(expected_drift=frame.feature.eq("tenure_days"))


def test_drift_summary_names_each_statistic_and_never_mixes_them():
    summary = drift_summary(_drift())
    assert list(summary.columns) == [
        "drifted",
        "expected",
        "KS D",
        "KS p (Holm)",
        "Cohen's d (Welch t)",
        "Welch t p (Holm)",
        "PSI",
        "PSI p (Holm)",
    ]
    assert summary.loc["events_30d", "PSI"] == 0.31 and summary.loc["events_30d", "KS D"] == 0.204
    assert summary.loc["events_30d", "Cohen's d (Welch t)"] == -0.313
    assert list(summary.index) == ["events_30d", "tenure_days"]  # largest PSI first


def test_a_drift_alert_reads_as_a_sentence_with_each_statistic_against_its_minimum():
    alert = SimpleNamespace(metric="feature_drift", subject="events_30d", value=1.0, threshold=0.5, period="2026-01-01")
    assert alert_sentence(alert, _drift()) == (
        "events_30d drifted: PSI 0.31 > 0.2, KS D 0.20 > 0.1, Cohen's d -0.31 (|d| > 0.2) (2026-01-01)"
    )


def test_performance_alerts_read_as_sentences():
    auc = SimpleNamespace(metric="auc", subject="churn_model v1", value=0.612, threshold=0.65, period="2025-11-02")
    rate = SimpleNamespace(metric="churn_rate", subject="all users", value=0.035, threshold=0.03, period="2025-12-02")
    assert alert_sentence(auc) == "AUC of churn_model v1 fell to 0.612, below 0.65 (snapshot 2025-11-02)"
    assert alert_sentence(rate) == "30-day churn rate of all users rose to 3.5%, above 3.0% (snapshot 2025-12-02)"


def test_axis_labels_carry_the_description_and_unit_of_every_default_feature():
    names = [f["name"] for f in DEFAULT_SPEC["features"]]
    labels = feature_axis_labels(DEFAULT_SPEC, names)
    assert labels["events_30d"] == "events in the last 30 days (count)"
    assert labels["days_since_last_event"].endswith("(days)")
    assert labels["monthly_price"] == "price of the latest invoice before the snapshot (USD)"
    assert all(label != name for name, label in labels.items())


def test_dataset_caption_names_the_data_set_its_rule_and_how_far_the_data_goes(warehouse) -> None:
    """The dashboards' first line, from what the raw tables record (a real warehouse)."""
    import pandas as pd

    from churn.monitoring.wording import dataset_caption
    from churn.store import raw
    from churn.store.warehouse import Warehouse

    with warehouse.writer():  # an empty warehouse: nothing recorded yet
        pass
    assert dataset_caption(raw.dataset_info(warehouse), raw.last_load(warehouse)).startswith("Data set: unknown")
    info = {"name": "shop", "fingerprint": "f", "source": "files", "rule": "inactivity"}
    with warehouse.writer() as con, Warehouse.transaction(con):
        Warehouse.replace_table(con, raw.DATASET_TABLE, raw.dataset_row(info))
    caption = dataset_caption(raw.dataset_info(warehouse), pd.Timestamp("2026-01-03"))
    assert caption == "Data set **shop** (files data, churn rule: inactivity), data before 2026-01-03"
