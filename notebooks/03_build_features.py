# %% [markdown]
# # Build features
# Point-in-time feature vectors at the snapshot dates into the offline store
# (`ml_pipeline.features`), with the churn label `horizon_days` ahead.
#
# Features come from the data set's spec file, the built-in spec for synthetic data
# (`churn.features.defaults`) or a spec derived from the data (name, source, aggregation, window,
# filter), compiled to one DuckDB query. Only rows **strictly before** a snapshot count. The
# data set's churn rule (`cancellation`, `inactivity`, `subscription`) decides who is in the
# population at a snapshot and who churns within the horizon; only matured labels train.
# Besides the labelled snapshots there is one *current* snapshot at the end of the data: its
# vectors are what the online store serves and batch scoring scores; it has no label yet.

# %% tags=["parameters"]
upstream = ["check-raw-data"]
product = None
as_of = None  # the run's date; '' = a full build up to the end of the data
warehouse = None
n_snapshots = None
horizon_days = None
dataset = None

# %%
import pandas as pd

from churn.dataset import load_dataset
from churn.features import LabelRule, snapshot_schedule
from churn.features.auto import dataset_spec, longest_window, recency_feature
from churn.pipeline import write_receipt
from churn.store import offline, raw
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
ds = load_dataset(dataset)
with wh.reader() as con:
    spec = dataset_spec(con, ds)
print(f"spec {spec.key} ({'file ' + ds.features if ds.features else 'built-in' if ds.source == 'synthetic' else 'automatic'}); "
      f"recency baseline: {recency_feature(spec) or 'none (no recency feature: the baseline is skipped)'}")
pd.DataFrame([{"feature": f.name, "source": f.source, "aggregation": f.aggregation,
               "window_days": f.window_days, "filter": f.filter, "description": f.description}
              for f in spec.features])

# %% [markdown]
# ## Snapshots
# Every `cadence_days` of the dataset file. The first one waits until the longest feature
# window is fully observed; the last labelled one is the last whose label has matured by the
# end of the data.

# %%
first_activity, last_activity = raw.data_range(wh)
data_end = last_activity.ceil("D")
window = longest_window(spec)
rule = LabelRule(ds.churn.rule, lookback_days=ds.churn.lookback_days or window or int(horizon_days),
                 event_types=tuple(ds.churn.event_types) if ds.churn.event_types else None,
                 grace_days=ds.churn.grace_days)
labelled = snapshot_schedule(first_activity, data_end, cadence_days=ds.snapshots.cadence_days,
                             horizon_days=int(horizon_days), longest_window_days=window,
                             maturity_days=rule.maturity_days(int(horizon_days)), n_valid=ds.snapshots.n_valid,
                             count=int(n_snapshots) if ds.is_default else ds.snapshots.count)
snapshots = [*labelled, data_end.to_pydatetime()]
print(f"data from {first_activity} to {last_activity}; data_end = {data_end}; longest window {window} days")
print(f"rule {rule.rule}" + (f" (lookback {rule.lookback_days} days)" if rule.rule == "inactivity" else "")
      + (f" (grace {rule.grace_days} days)" if rule.rule == "subscription" else ""))
print("snapshots:", [str(s.date()) for s in snapshots])

# %%
frame = offline.compute_features(wh, spec, snapshots, int(horizon_days), data_end, rule=rule)
feature_set = ds.feature_set(spec.name, spec.version)  # also the data set's Redis namespace
rows = offline.write_features(wh, frame, feature_set=feature_set, features=spec.feature_names, spec=spec.to_dict())
counts = offline.snapshot_counts(wh)
counts

# %% [markdown]
# ## How many vectors, and why
# Users join over the year (signups are staggered) and leave when they churn, so early snapshots
# hold fewer users than late ones: the total is below n_users x n_snapshots.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{rows:,} vectors: {int(counts.labelled.sum()):,} labelled in {len(labelled)} snapshots "
      f"+ {rows - int(counts.labelled.sum()):,} current; "
      f"{int(frame.label.sum()):,} churn labels (rate {frame.label.mean():.4f})")

# %%
ax = counts.set_index(counts.snapshot_at.dt.date)[["vectors"]].plot.bar(
    figsize=(9, 3), title="vectors per snapshot", legend=False)

# %% [markdown]
# ## Churners vs stayers
# Median of each feature among labelled vectors, by label: the behaviour a model can learn from.

# %%
frame[frame.label_mature].groupby("label")[spec.feature_names].median().T

# %%
shown = spec.feature_names[:4]
axes = frame[frame.label_mature].boxplot(column=shown, by="label", layout=(1, len(shown)),
                                         figsize=(14, 3.5), showfliers=False)

# %%
receipt = write_receipt(product["receipt"], rows=rows, feature_set=feature_set, dataset=ds.name, rule=rule.rule,
                        features=spec.feature_names, snapshots=[str(s) for s in snapshots])
