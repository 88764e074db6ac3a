# %% [markdown]
# # Train model
# Logistic regression with honest temporal validation: trained on earlier snapshots, validated
# on the last `n_valid_snapshots`, with the regularisation chosen by time-ordered
# cross-validation inside the training snapshots. Training snapshots whose label window reaches
# into the validation period are purged. The model is compared with a naive baseline (recency
# alone), checked by a shuffled-label canary, and registered: the first model of a name goes to
# production, later ones to staging.

# %% tags=["parameters"]
upstream = ["check-features"]
product = None
warehouse = None
models_dir = None
model_name = None
horizon_days = None
n_valid_snapshots = None

# %%
import pandas as pd

from churn.modeling import plots
from churn.modeling.evaluate import bootstrap_auc_ci, decile_table
from churn.modeling.lifecycle import register_result
from churn.modeling.train import shuffled_label_auc, train_model
from churn.pipeline import code_version, write_receipt
from churn.registry import ModelRegistry
from churn.reports.model_card import card_path
from churn.store import offline
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
feature_set, features = offline.feature_set(wh)
frame = offline.read_features(wh)
result = train_model(frame, features, horizon_days=int(horizon_days), n_valid=int(n_valid_snapshots))
print("train snapshots:", [str(s.date()) for s in result.train_snapshots])
print("validation snapshots:", [str(s.date()) for s in result.valid_snapshots])

# %% [markdown]
# ## Regularisation by time-ordered cross-validation
# Each fold trains on the snapshots before the test snapshot (purged by the horizon).

# %%
result.cv_scores.pivot_table(index="C", columns="test_snapshot", values="auc").round(3).assign(
    mean=lambda t: t.mean(axis=1).round(3))

# %% [markdown]
# ## Validation: model vs naive baseline
# The threshold is the max-F1 point of the out-of-fold training predictions (the validation
# snapshots take no part in any choice). The baseline ranks users by days since their last
# event. AUC has a bootstrap 95% interval: with a 30-day horizon only about 1% of vectors are
# churners, so the validation set holds few positives and every metric is noisy.

# %%
comparison = pd.DataFrame({"model": result.validation.as_dict(), "baseline (recency)": result.baseline.as_dict()}).astype(object)
auc_low, auc_high = bootstrap_auc_ci(result.predictions["label"], result.predictions["model"])
base_low, base_high = bootstrap_auc_ci(result.predictions["label"], result.predictions["baseline"])
comparison.loc["auc_95ci"] = [f"[{auc_low:.3f}, {auc_high:.3f}]", f"[{base_low:.3f}, {base_high:.3f}]"]
comparison

# %%
fig = plots.evaluation_figure(result.predictions, {"model": "model", "baseline (recency)": "baseline"})

# %% [markdown]
# ## Lift and gains
# The view a retention team plans with: rank users by score, contact the riskiest first. The
# gains curve says what share of churners a campaign reaching the top x% would catch; the
# decile table gives each tenth's churn rate (with its 95% Wilson interval) and lift over the
# base rate.

# %%
fig = plots.lift_gains_figure(result.predictions, {"model": "model", "baseline (recency)": "baseline"})

# %%
decile_table(result.predictions["label"], result.predictions["model"]).round(4)

# %%
fig = plots.coefficient_figure(features, result.pipeline.named_steps["model"].coef_[0])

# %% [markdown]
# ## Leakage audit
# * Features count only events strictly before each snapshot (tested in `tests/unit/features`).
# * No feature or training code reads `simulator.user_truth` (tested).
# * Canary: the same pipeline trained on **shuffled** labels must score about 0.5 on validation.
#   A canary far from 0.5 would mean the validation data is predictable without the labels
#   (leakage through the split).

# %%
# NBVAL_CHECK_OUTPUT
canary = shuffled_label_auc(frame, features, horizon_days=int(horizon_days), n_valid=int(n_valid_snapshots))
print(f"shuffled-label canary AUC {canary:.2f} (expected 0.50 +/- 0.05): {'ok' if abs(canary - 0.5) <= 0.05 else 'SUSPICIOUS'}")
print(f"model AUC beats the recency baseline: {result.validation.auc > result.baseline.auc}")

# %% [markdown]
# ## Register
# The artifact is the predictor the API and batch scoring share (pipeline + feature order +
# risk bands: medium = training churn rate, high = the decision threshold). Its model card
# (data, features, metrics with intervals, baseline, canary, limits) is written next to it.

# %%
registry = ModelRegistry(wh, models_dir)
first = registry.get_production(model_name) is None
version = register_result(
    registry, result, frame, model_name=model_name, feature_set=feature_set, horizon_days=int(horizon_days),
    fingerprint=offline.features_fingerprint(wh), code_version=code_version(),
    reason="train-model: first model of its name" if first else "train-model: candidate",
    extra_metrics={"auc_ci_low": auc_low, "auc_ci_high": auc_high, "canary_auc": canary},
    stage="production" if first else "staging")
print(f"model card: {card_path(version)}")
pd.DataFrame([m.to_dict() for m in registry.list_models(model_name)])[["version", "stage", "created_at"]]

# %%
receipt = write_receipt(product["receipt"], model_name=model_name, version=version.version, stage=version.stage,
                        auc=result.validation.auc, baseline_auc=result.baseline.auc, canary_auc=canary)
