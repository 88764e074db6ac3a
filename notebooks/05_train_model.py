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
as_of = None  # the run's date; '' = a full build up to the end of the data
warehouse = None
models_dir = None
model_name = None
horizon_days = None
n_valid_snapshots = None
dataset = None

# %%
import pandas as pd
from IPython.display import display

from churn.dataset import load_dataset
from churn.features.auto import log1p_features, recency_feature
from churn.modeling import plots
from churn.modeling.evaluate import bootstrap_auc_ci, decile_table
from churn.modeling.lifecycle import archive_other_datasets, dataset_params, production_stage_for, register_result
from churn.modeling.train import shuffled_label_auc, train_model
from churn.pipeline import code_version, write_receipt
from churn.registry import ModelRegistry
from churn.reports.model_card import card_path
from churn.runs import as_of_date
from churn.store import offline, raw
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
ds = load_dataset(dataset)
feature_set, features = offline.feature_set(wh)
spec = offline.load_feature_spec(wh)
# a daily cycle (as_of set) keeps the production model: retraining is decide-retraining's call, on
# evidence; a first build (no production model yet) trains one
production = ModelRegistry(wh, models_dir).get_production(model_name)
train = as_of_date(as_of) is None or production is None
if not train:
    print(f"daily cycle: no retraining here; {model_name} v{production.version} stays in production "
          "(decide-retraining trains a candidate when its triggers fire)")
else:
    frame = offline.read_features(wh)
    baseline_feature = recency_feature(spec)
    result = train_model(frame, features, horizon_days=int(horizon_days), n_valid=int(n_valid_snapshots),
                         baseline_feature=baseline_feature, log_features=log1p_features(spec), kind=ds.model.kind)
    print(f"model: {ds.model.kind}; log1p on {len(result.log_features)} of {len(features)} features (counts, "
          f"amounts, day measures); baseline: {baseline_feature or 'skipped (the spec has no recency feature)'}")
    print("train snapshots:", [str(s.date()) for s in result.train_snapshots])
    print("validation snapshots:", [str(s.date()) for s in result.valid_snapshots])

# %% [markdown]
# ## Regularisation by time-ordered cross-validation
# Each fold trains on the snapshots before the test snapshot (purged by the horizon).

# %%
if train:
    display(result.cv_scores.pivot_table(index="C", columns="test_snapshot", values="auc").round(3).assign(
        mean=lambda t: t.mean(axis=1).round(3)))

# %% [markdown]
# ## Validation: model vs naive baseline
# The threshold is the max-F1 point of the out-of-fold training predictions (the validation
# snapshots take no part in any choice). The baseline ranks users by days since their last
# event. AUC has a bootstrap 95% interval: with a 30-day horizon only about 1% of vectors are
# churners, so the validation set holds few positives and every metric is noisy.

# %%
if train:
    has_baseline = result.baseline is not None
    arms = {"model": "model", **({"baseline (recency)": "baseline"} if has_baseline else {})}
    comparison = pd.DataFrame({"model": result.validation.as_dict(), **(
        {"baseline (recency)": result.baseline.as_dict()} if has_baseline else {})}).astype(object)
    auc_low, auc_high = bootstrap_auc_ci(result.predictions["label"], result.predictions["model"])
    comparison.loc["auc_95ci"] = [f"[{low:.3f}, {high:.3f}]" for low, high in (
        bootstrap_auc_ci(result.predictions["label"], result.predictions[column]) for column in arms.values())]
    display(comparison)

# %%
if train:
    fig = plots.evaluation_figure(result.predictions, arms)

# %% [markdown]
# ## Lift and gains
# The view a retention team plans with: rank users by score, contact the riskiest first. The
# gains curve says what share of churners a campaign reaching the top x% would catch; the
# decile table gives each tenth's churn rate (with its 95% Wilson interval) and lift over the
# base rate.

# %%
if train:
    fig = plots.lift_gains_figure(result.predictions, arms)

# %%
if train:
    display(decile_table(result.predictions["label"], result.predictions["model"]).round(4))

# %%
if train and "scale" in result.pipeline.named_steps:  # coefficients exist for the logistic regression
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
if train:
    canary = shuffled_label_auc(frame, features, horizon_days=int(horizon_days), n_valid=int(n_valid_snapshots),
                                log_features=result.log_features)
    verdict = "ok" if abs(canary - 0.5) <= 0.05 else "SUSPICIOUS"
    print(f"shuffled-label canary AUC {canary:.2f} (expected 0.50 +/- 0.05): {verdict}")
    print("model AUC beats the recency baseline:",
          result.validation.auc > result.baseline.auc if has_baseline else "n/a (no recency feature)")

# %% [markdown]
# ## Register
# The artifact is the predictor the API and batch scoring share (pipeline + feature order +
# risk bands: medium = training churn rate, high = the decision threshold). Its model card
# (data, features, metrics with intervals, baseline, canary, limits) is written next to it.

# %%
if train:
    registry = ModelRegistry(wh, models_dir)
    info = raw.dataset_info(wh)
    # a production model of another data set (or another seed/size) never stays in production here
    stage, reason = production_stage_for(registry.get_production(model_name), info)
    version = register_result(
        registry, result, frame, model_name=model_name, feature_set=feature_set, horizon_days=int(horizon_days),
        fingerprint=offline.features_fingerprint(wh), code_version=code_version(), reason=f"train-model: {reason}",
        extra_metrics={"auc_ci_low": auc_low, "auc_ci_high": auc_high, "canary_auc": canary},
        extra_params=dataset_params(info), stage=stage)
    print(f"v{version.version} -> {version.stage}: {reason}")
    archived = archive_other_datasets(registry, model_name, info)
    print(f"archived staging candidates of other data sets: {archived}" if archived else "")
    print(f"model card: {card_path(version)}")
    display(pd.DataFrame([m.to_dict() for m in registry.list_models(model_name)])[["version", "stage", "created_at"]])

# %%
if train:
    receipt = write_receipt(product["receipt"], model_name=model_name, version=version.version, stage=version.stage,
                            auc=result.validation.auc, baseline_auc=result.baseline.auc if has_baseline else None,
                            canary_auc=canary, dataset=info["name"] if info else None)
else:
    receipt = write_receipt(product["receipt"], model_name=model_name, version=production.version,
                            stage=production.stage, retrained=False, dataset=ds.name)
