# %% [markdown]
# # Decide retraining
# Three triggers, each with its evidence: feature drift, performance degradation on matured
# labels, and new labelled volume since the model's training data. When one fires, a candidate
# is trained on the most recent snapshots with the same training code and registered as
# **staging** (an older staging candidate is archived); the A/B test decides its fate. The decision goes to
# `monitoring.retraining_decisions`.

# %% tags=["parameters"]
upstream = ["monitor"]
product = None
warehouse = None
models_dir = None
model_name = None
horizon_days = None
n_valid_snapshots = None
retrain_min_drifted = None
retrain_max_auc_drop = None
retrain_min_new_labels = None

# %%
import pandas as pd

from churn.modeling.lifecycle import dataset_params, register_result, training_options
from churn.modeling.train import train_model
from churn.monitoring.retraining import retraining_triggers
from churn.pipeline import code_version, write_receipt
from churn.registry import ModelRegistry
from churn.store import monitoring, offline, raw
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
registry = ModelRegistry(wh, models_dir)
production = registry.get_production(model_name)
frame = offline.read_features(wh)
summary = monitoring.latest_run(wh, monitoring.DRIFT)
alarming = summary.assign(drifted=summary.drifted & ~summary.expected_drift)
drift_summary = alarming.groupby("feature", as_index=False).drifted.any()
timeline = monitoring.latest_run(wh, monitoring.TIMELINE)
trained_until = pd.to_datetime(production.params["valid_snapshots"]).max()
new_labelled = int((frame.label_mature & (frame.snapshot_at > trained_until)).sum())

# %% [markdown]
# ## Triggers

# %%
triggers = retraining_triggers(
    drift_summary, timeline, reference_auc=production.metrics["auc"], new_labelled=new_labelled,
    min_drifted_features=int(retrain_min_drifted), max_auc_drop=float(retrain_max_auc_drop),
    min_new_labelled=int(retrain_min_new_labels))
triggers

# %% [markdown]
# ## Candidate
# Trained on the same spec with the same code, on the recent window: its training snapshots run
# one snapshot later than production's (validation on the latest matured snapshot only), so it
# has learnt from the most recent behaviour.

# %%
candidate = None
if triggers.fired.any():
    feature_set, features = offline.feature_set(wh)
    result = train_model(frame, features, horizon_days=int(horizon_days), n_valid=max(1, int(n_valid_snapshots) - 1),
                         **training_options(production))  # the same model kind and transforms
    fired = ", ".join(triggers[triggers.fired].trigger)
    candidate = register_result(
        registry, result, frame, model_name=model_name, feature_set=feature_set, horizon_days=int(horizon_days),
        fingerprint=offline.features_fingerprint(wh), code_version=code_version(),
        reason=f"candidate: retraining triggered by {fired}", stage="staging",
        extra_params={"trigger": fired, **dataset_params(raw.dataset_info(wh))})
    for older in registry.list_models(model_name, stage="staging"):
        if older.version != candidate.version:  # one candidate at a time: the newest one
            registry.archive_model(model_name, older.version, f"superseded by candidate v{candidate.version}")
    print(f"registered candidate v{candidate.version} as staging; validation AUC {result.validation.auc:.3f} "
          f"(production v{production.version}: {production.metrics['auc']:.3f})")
else:
    print("no trigger fired: production stays, no candidate")

# %%
action = "candidate_registered" if candidate is not None else "no_action"
monitoring.write_retraining_decision(wh, model_name, production.version, triggers, action,
                                     candidate.version if candidate is not None else None)
receipt = write_receipt(product["receipt"], action=action, fired=list(triggers[triggers.fired].trigger),
                        candidate_version=candidate.version if candidate is not None else None)
