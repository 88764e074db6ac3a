# %% [markdown]
# # Build features
# Point-in-time feature vectors at the snapshot dates into the offline store
# (`ml_pipeline.features`), with the churn label `horizon_days` ahead.
#
# Features come from the declarative spec in `churn.features.defaults` (name, source,
# aggregation, window, filter), compiled to one DuckDB query. Only rows **strictly before** a
# snapshot count. A user appears at a snapshot if they signed up before it and had not churned
# before it. Besides the `n_snapshots` labelled snapshots there is one *current* snapshot at the
# end of the data: its vectors are what the online store serves and batch scoring scores; it has
# no label yet.

# %% tags=["parameters"]
upstream = ["check-raw-data"]
product = None
warehouse = None
n_snapshots = None
horizon_days = None

# %%
import pandas as pd

from churn.features import default_feature_spec, snapshot_dates
from churn.pipeline import write_receipt
from churn.store import offline, raw
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
spec = default_feature_spec()
pd.DataFrame([{"feature": f.name, "source": f.source, "aggregation": f.aggregation,
               "window_days": f.window_days, "filter": f.filter, "description": f.description}
              for f in spec.features])

# %% [markdown]
# ## Snapshots
# Spaced one horizon apart so consecutive labels do not overlap; the last labelled one is the
# last whose horizon ends by the end of the data.

# %%
first_activity, last_activity = raw.data_range(wh)
data_end = last_activity.ceil("D")
labelled = snapshot_dates(first_activity, data_end, n_snapshots=int(n_snapshots), horizon_days=int(horizon_days))
snapshots = [*labelled, data_end.to_pydatetime()]
print(f"data from {first_activity} to {last_activity}; data_end = {data_end}")
print("snapshots:", [str(s.date()) for s in snapshots])

# %%
frame = offline.compute_features(wh, spec, snapshots, int(horizon_days), data_end)
rows = offline.write_features(wh, frame, feature_set=spec.version, features=spec.feature_names, spec=spec.to_dict())
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
axes = frame[frame.label_mature].boxplot(
    column=["events_30d", "active_days_30d", "days_since_last_event", "activity_trend"],
    by="label", layout=(1, 4), figsize=(14, 3.5), showfliers=False)

# %%
receipt = write_receipt(product["receipt"], rows=rows, feature_set=spec.version,
                        features=spec.feature_names, snapshots=[str(s) for s in snapshots])
