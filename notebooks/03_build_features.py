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
from churn.features.auto import dataset_spec, recency_feature
from churn.features.planning import plan_snapshots
from churn.pipeline import write_receipt
from churn.runs import as_of_date
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
# end of the data (`as_of`, or the midnight after the last activity).
#
# A daily cycle (`as_of` set, an offline store already built) computes only the snapshot at
# `as_of` and fills in the labels of older snapshots whose horizon has matured by then; every
# other stored value stays as it was.

# %%
run_date = as_of_date(as_of)
plan = plan_snapshots(ds, spec, raw.data_range(wh), int(horizon_days), int(n_snapshots), as_of=run_date)
rule = plan.rule
feature_set = ds.feature_set(spec.name, spec.version)  # also the data set's Redis namespace
stored = offline.stored_snapshots(wh)
# synthetic or own data: the raw tables were appended to since the offline store was built, not reloaded
extends = offline.extends_loaded_history(wh)
incremental = run_date is not None and extends and bool((stored.snapshot_at < plan.data_end).any())
print(plan.describe())
print("daily cycle: the snapshot at as_of only" if incremental else
      "snapshots: " + str([str(s.date()) for s in plan.snapshots]))

# %%
if incremental:
    update = offline.update_features(wh, spec, plan.data_end, int(horizon_days), rule, feature_set)
    print(f"snapshot {plan.data_end.date()}: {update['vectors']:,} vectors; labels matured in "
          f"{update['matured_snapshots']} older snapshot(s) ({update['matured_rows']:,} rows)")
    changed = [plan.data_end, *update["matured"]]  # what this cycle wrote: the rest is as it was
else:
    computed = offline.compute_features(wh, spec, plan.snapshots, int(horizon_days), plan.data_end, rule=rule)
    offline.write_features(wh, computed, feature_set=feature_set, features=spec.feature_names, spec=spec.to_dict())
    changed = None  # every snapshot
# the vectors shown below: a daily cycle reads only the snapshots it wrote, not the history
frame = offline.read_features(wh, snapshots=changed)
counts = offline.snapshot_counts(wh)
rows = int(counts.vectors.sum())
snapshots = list(counts.snapshot_at)
counts.tail(12)

# %% [markdown]
# ## How many vectors, and why
# Users join over the year (signups are staggered) and leave when they churn, so early snapshots
# hold fewer users than late ones: the total is below n_users x n_snapshots.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{rows:,} vectors: {int(counts.labelled.sum()):,} labelled in {int((counts.labelled > 0).sum())} snapshots "
      f"+ {rows - int(counts.labelled.sum()):,} unlabelled; "
      f"{int(counts.churn_labels.sum()):,} churn labels (rate {counts.churn_labels.sum() / rows:.4f})")

# %%
ax = counts.set_index(counts.snapshot_at.dt.date)[["vectors"]].plot.bar(
    figsize=(9, 3), title="vectors per snapshot", legend=False)

# %% [markdown]
# ## Churners vs stayers
# Median of each feature among labelled vectors, by label: the behaviour a model can learn from.
# A daily cycle shows the labels that matured in it (often none: then there is nothing new to show).

# %%
labelled = frame[frame.label_mature]
labelled.groupby("label")[spec.feature_names].median().T if len(labelled) else "no label matured in this run"

# %%
shown = spec.feature_names[:4]
if len(labelled):
    axes = labelled.boxplot(column=shown, by="label", layout=(1, len(shown)), figsize=(14, 3.5), showfliers=False)

# %%
receipt = write_receipt(product["receipt"], rows=rows, feature_set=feature_set, dataset=ds.name, rule=rule.rule,
                        features=spec.feature_names, snapshots=[str(s) for s in snapshots], incremental=incremental,
                        changed_snapshots=None if changed is None else [str(s) for s in changed])
