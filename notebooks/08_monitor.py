# %% [markdown]
# # Monitor
# Is the production model going stale? Feature drift between the reference window (the last
# snapshot the model was trained on) and the current snapshot, the model's performance on every
# snapshot whose labels have matured, and alerts. Results go to `monitoring.*`; the live view is
# the `notebooks/dashboards/monitoring.ipynb` Voila dashboard.
#
# Drift tests per feature: two-sample Kolmogorov-Smirnov and Welch's t-test (the original
# platform's two), plus PSI. p-values are Holm-adjusted across features, and a feature counts as
# drifted only when the adjusted p-value is below alpha **and** the effect size reaches a minimum
# (KS D >= 0.1, |Cohen's d| >= 0.2, PSI >= 0.2), so a large sample does not flag trivial shifts.
# The reference is one cross-section (one vector per user), so the tests' independence
# assumption holds. Features listed in `drift_expected`, and the spec's lifetime counts, sums
# and tenure (they grow with calendar time for everyone), are
# tested and shown but never raise an alarm or trigger retraining.

# %% tags=["parameters"]
upstream = ["score-batch"]
product = None
warehouse = None
models_dir = None
model_name = None
drift_alpha = None
drift_expected = None
alert_auc_min = None
alert_churn_rate_max = None
data_dir = None
redis_url = None

# %%
import pandas as pd

from churn.features.auto import growing_features
from churn.modeling.lifecycle import check_dataset, load_predictor
from churn.monitoring import plots
from churn.monitoring.alerts import AlertRule, evaluate_alerts
from churn.monitoring.drift import drift_report, feature_drift_summary
from churn.monitoring.timeline import performance_timeline
from churn.pipeline import write_receipt
from churn.registry import ModelRegistry
from churn.store import monitoring, offline, raw
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
predictor, model = load_predictor(ModelRegistry(wh, models_dir), model_name)
check_dataset(model, raw.dataset_info(wh))  # monitored only on the data set it was trained on
frame = offline.read_features(wh)
train_snapshots = pd.to_datetime(model.params["train_snapshots"])
reference = frame[frame.snapshot_at == train_snapshots.max()]
current_at = frame.snapshot_at.max()
current = frame[frame.snapshot_at == current_at]
print(f"production model v{model.version}; reference {train_snapshots.max().date()} ({len(reference)} users), "
      f"current {current_at.date()} ({len(current)} users)")

# %% [markdown]
# ## Feature drift

# %%
report = drift_report(reference, current, predictor.features, alpha=float(drift_alpha))
expected = sorted({*drift_expected, *growing_features(offline.load_feature_spec(wh))})
report["expected_drift"] = report.feature.isin(expected)
summary = feature_drift_summary(report)
summary["alarm"] = summary.drifted & ~summary.feature.isin(expected)
summary

# %%
# NBVAL_CHECK_OUTPUT
print("drifted features:", ", ".join(summary[summary.drifted].feature) or "none")
print("drift alarms:", ", ".join(summary[summary.alarm].feature) or "none")

# %%
fig = plots.distribution_figure(reference, current, predictor.features, dict(zip(summary.feature, summary.drifted, strict=True)))

# %%
report.pivot_table(index="feature", columns="test", values=["effect_size", "p_adjusted"]).round(4)

# %% [markdown]
# ## Drift over time
# Each later snapshot against the same reference: when did each feature start to move?

# %%
later = sorted(s for s in frame.snapshot_at.unique() if s > train_snapshots.max())
flags = pd.DataFrame({pd.Timestamp(s).date(): feature_drift_summary(drift_report(
    reference, frame[frame.snapshot_at == s], predictor.features, alpha=float(drift_alpha))).set_index("feature").drifted
    for s in later})
flags.astype(int)

# %% [markdown]
# ## Performance over time
# The production model on each snapshot with matured labels (grey: snapshots it was trained on,
# in-sample). With about 1% monthly churn a snapshot holds only a handful of churners, so each
# point is noisy.

# %%
timeline = performance_timeline(frame, predictor, model.params["threshold"], list(train_snapshots))
timeline.round(dict.fromkeys(timeline.select_dtypes("number").columns, 4))

# %%
fig = plots.timeline_figure(timeline)

# %% [markdown]
# ## Alerts
# Raised once: an alert is keyed by metric, subject and period, and a re-run adds nothing new.

# %%
observations = pd.concat([
    pd.DataFrame({"metric": "feature_drift", "subject": summary.feature, "value": summary.alarm.astype(float),
                  "period": str(current_at.date())}),
    pd.DataFrame({"metric": "auc", "subject": f"{model_name} v{model.version}",
                  "value": timeline.loc[~timeline.in_training, "auc"],
                  "period": timeline.loc[~timeline.in_training, "snapshot_at"].dt.date.astype(str)}),
    pd.DataFrame({"metric": "churn_rate", "subject": "all users", "value": timeline.churn_rate,
                  "period": timeline.snapshot_at.dt.date.astype(str)}),
])
rules = [AlertRule("feature_drift", 0.5, "above", "warning"), AlertRule("auc", float(alert_auc_min), "below", "critical"),
         AlertRule("churn_rate", float(alert_churn_rate_max), "above", "warning")]
alerts = evaluate_alerts(observations, rules)
run_id = f"{model_name}-v{model.version}-{current_at.date()}"
new_alerts = monitoring.write_monitoring_run(wh, run_id, report, timeline.assign(model_version=model.version), alerts)
print(f"{len(alerts)} alert(s) on this evidence, {new_alerts} new")
alerts

# %% [markdown]
# ## The serving API
# Requests, server errors and latency the API's workers recorded in Redis (nothing until
# `make serve` has answered requests), with the online store's cache hit rate.

# %%
import redis

from churn.serving.ops import read_ops
from churn.store.online import OnlineStore
from churn.store.redis_server import resolve_redis_url

client = redis.Redis.from_url(resolve_redis_url(redis_url or None, data_dir))
api = {**read_ops(client), "cache_hit_rate": OnlineStore(client, *offline.feature_set(wh)).stats()["hit_rate"]}
monitoring.write_api_metrics(wh, run_id, api)
pd.Series(api, name="API so far")

# %%
receipt = write_receipt(product["receipt"], run_id=run_id, drifted=list(summary[summary.drifted].feature),
                        alarms=list(summary[summary.alarm].feature),
                        alerts=len(alerts), new_alerts=new_alerts)
