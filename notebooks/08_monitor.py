# %% [markdown]
# # Monitor
# Is the production model going stale? Feature drift between the reference window (the last
# snapshot the production model was trained on, from its registry record) and the newest
# snapshot (the run's `as_of`), the model's performance on every snapshot whose labels have
# matured by then, and alerts. Each run appends its rows under its `as_of`, so a daily cycle
# builds a history; the live view is the `notebooks/dashboards/monitoring.ipynb` Voila dashboard.
#
# Drift tests per feature: two-sample Kolmogorov-Smirnov and Welch's t-test (the original
# platform's two), plus PSI. p-values are Holm-adjusted together over every (feature, test) pair
# (one family, so the whole decision keeps its 5% false-alarm rate), and a feature counts as
# drifted only when an adjusted p-value is below alpha **and** the effect size reaches a minimum
# (KS D >= 0.1, |Cohen's d| >= 0.2, PSI >= 0.2), so a large sample does not flag trivial shifts.
# The reference is one cross-section (one vector per user), so the tests' independence
# assumption holds. Features listed in `drift_expected` (tenure grows with calendar time), and
# the spec's lifetime totals (they grow for everyone), are
# tested and shown but never raise an alarm or trigger retraining.

# %% tags=["parameters"]
upstream = ["score-batch"]
product = None
as_of = None  # the run's date; '' = a full build up to the end of the data
warehouse = None
models_dir = None
model_name = None
drift_alpha = None
drift_expected = None
alert_auc_min = None
alert_churn_rate_max = None
scenario = None
start = None
end = None
data_dir = None
redis_url = None

# %%
import pandas as pd

from churn.features.auto import growing_features
from churn.monitoring import plots
from churn.monitoring.monitor import drift_over_time, record_api_metrics, run_monitor
from churn.monitoring.onset import detection_sentence, drift_detection, drift_onset
from churn.pipeline import write_receipt
from churn.registry import ModelRegistry
from churn.store import offline
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
# lifetime totals and tenure grow with calendar time for everyone: drift by construction
expected = sorted({*drift_expected, *growing_features(offline.load_feature_spec(wh))})
monitor = run_monitor(wh, ModelRegistry(wh, models_dir), model_name, alpha=float(drift_alpha),
                      expected_drift=expected, alert_auc_min=float(alert_auc_min),
                      alert_churn_rate_max=float(alert_churn_rate_max), as_of=as_of,
                      onset=drift_onset(wh, scenario, start, end))
print(f"run of {monitor.as_of}: production model v{monitor.model.version}; reference "
      f"{monitor.reference.snapshot_at.max().date()} ({len(monitor.reference)} users), current "
      f"{monitor.current_at.date()} ({len(monitor.current)} users)")

# %% [markdown]
# ## Feature drift

# %%
monitor.summary

# %%
# NBVAL_CHECK_OUTPUT
print("drifted features:", ", ".join(monitor.drifted) or "none")
print("drift alarms:", ", ".join(monitor.alarms) or "none")

# %%
fig = plots.distribution_figure(monitor.reference, monitor.current, monitor.predictor.features,
                                dict(zip(monitor.summary.feature, monitor.summary.drifted, strict=True)))

# %%
monitor.report.pivot_table(index="feature", columns="test", values=["effect_size", "p_adjusted"]).round(4)

# %% [markdown]
# ## Drift over time
# Each later snapshot against the same reference: when did each feature start to move? And, on
# the simulator's data, when did the monitor first alarm after the drift's known onset?

# %%
drift_over_time(monitor, alpha=float(drift_alpha))

# %%
detection = drift_detection(wh)
print(detection_sentence(detection))

# %% [markdown]
# ## Performance over time
# The production model on each snapshot with matured labels (grey: snapshots it was trained on,
# in-sample). With about 1% monthly churn a snapshot holds only a handful of churners, so each
# point is noisy.

# %%
timeline = monitor.timeline
timeline.round(dict.fromkeys(timeline.select_dtypes("number").columns, 4))

# %%
fig = plots.timeline_figure(timeline)

# %% [markdown]
# ## Alerts
# Raised once: a condition (metric and subject) judged on its latest evidence opens one alert,
# which stays open on later runs while the condition holds and is resolved, with the run's
# date, when it clears. Rules: a drift alarm (warning), an out-of-training AUC below
# `alert_auc_min` (critical), the newest matured snapshot's churn rate above
# `alert_churn_rate_max` (warning).

# %%
print(f"{len(monitor.alerts)} condition(s) breached, {monitor.new_alerts} new alert(s), "
      f"{monitor.resolved_alerts} resolved")
monitor.alerts

# %% [markdown]
# ## The serving API
# Requests, server errors and latency the API's workers recorded in Redis (nothing until
# `make serve` has answered requests), with the online store's cache hit rate.

# %%
pd.Series(record_api_metrics(wh, monitor.run_id, redis_url, data_dir), name="API so far")

# %%
receipt = write_receipt(product["receipt"], run_id=monitor.run_id, drifted=monitor.drifted, alarms=monitor.alarms,
                        alerts=len(monitor.alerts), new_alerts=monitor.new_alerts,
                        resolved_alerts=monitor.resolved_alerts, as_of=str(monitor.as_of),
                        drift_detected_on=str((detection or {}).get("detected_on") or ""))
