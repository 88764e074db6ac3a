# %% [markdown]
# # Decide retraining
# Three triggers, each with its evidence: feature drift, performance degradation on matured
# labels, and new labelled volume since the model's training data. When one fires, a candidate
# is trained on the most recent snapshots with the same training code and registered as
# **staging** (an older staging candidate is archived); the A/B test decides its fate. A fired
# trigger is held back when the candidate would learn too little (fewer than
# `retrain_min_fresh_labels` matured labels production never trained on), while an A/B test
# runs, or within `retrain_cooldown_days` of the last candidate for the same drift (the same
# production model), so a daily cycle does not train a candidate every day. The decision and its
# reasons go to `monitoring.retraining_decisions` under the run's `as_of`.

# %% tags=["parameters"]
upstream = ["monitor"]
product = None
as_of = None  # the run's date; '' = a full build up to the end of the data
warehouse = None
models_dir = None
model_name = None
horizon_days = None
n_valid_snapshots = None
retrain_min_drifted = None
retrain_max_auc_drop = None
retrain_min_new_labels = None
retrain_min_fresh_labels = None
retrain_cooldown_days = None

# %%
from churn.monitoring.decision import decide_retraining
from churn.pipeline import code_version, write_receipt
from churn.registry import ModelRegistry
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
decision = decide_retraining(
    wh, ModelRegistry(wh, models_dir), model_name, horizon_days=int(horizon_days),
    n_valid_snapshots=int(n_valid_snapshots), min_drifted=int(retrain_min_drifted),
    max_auc_drop=float(retrain_max_auc_drop), min_new_labels=int(retrain_min_new_labels), code_version=code_version(),
    as_of=as_of, cooldown_days=int(retrain_cooldown_days), min_fresh_labels=int(retrain_min_fresh_labels))

# %% [markdown]
# ## Triggers
# Drift counts the drifted features of the latest monitoring run (features drifting by
# construction excluded); degradation compares the latest out-of-training AUC with the
# production model's validation AUC; volume counts labelled vectors newer than its training data.

# %%
decision.triggers

# %%
print("action:", decision.action)

# %%
for reason in decision.reasons:
    print("-", reason)

# %% [markdown]
# ## Candidate
# Trained on the same spec with the same code, on the recent window: its training snapshots run
# one snapshot later than production's (validation on the latest matured snapshot only), so it
# has learnt from the most recent behaviour. Re-running on the same data reuses the same
# registry version.

# %%
production, candidate = decision.production, decision.candidate
if candidate is not None:
    print(f"candidate v{candidate.version} is staging; validation AUC {candidate.metrics['auc']:.3f} "
          f"(production v{production.version}: {production.metrics['auc']:.3f})")
else:
    print(f"no candidate ({decision.action}): production stays")

# %%
receipt = write_receipt(product["receipt"], action=decision.action, fired=decision.fired,
                        candidate_version=candidate.version if candidate is not None else None)
