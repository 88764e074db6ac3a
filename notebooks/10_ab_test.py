# %% [markdown]
# # A/B test
# The production model (control) against the staging candidate (variant) on simulated live
# traffic. Users are assigned by a hash of (user id, test name); each arm's model scores its own
# users and its riskiest share gets a retention offer. Outcomes are drawn from the simulator's
# hidden truth and the offer's known effect, so a model that targets better really lowers churn.
# The variant is promoted only if the result is significant, the sample ratio is as configured,
# the test had the power for the planned effect, and the guardrails (AUC and Brier score on
# matured labels) hold; the registry records the decision and its reasons.
#
# Data without the simulator (your own data) has no live traffic: there the two models are
# compared **offline** on the newest matured snapshots neither was trained on (DeLong's paired
# test of the AUC difference and a paired test of log loss), and the decision goes to the
# registry the same way.

# %% tags=["parameters"]
upstream = ["decide-retraining"]
product = None
warehouse = None
models_dir = None
model_name = None
ab_traffic_split = None
ab_offer_share = None
ab_offer_effect = None
ab_window_days = None
ab_mde_relative = None
ab_seed = None

# %%
import pandas as pd

from churn.abtest import model_guardrails
from churn.abtest.manager import ABTestManager
from churn.abtest.plots import arms_figure
from churn.abtest.simulate import churn_probability, simulate_outcomes
from churn.modeling.lifecycle import champion_challenger, load_predictor
from churn.pipeline import write_receipt
from churn.registry import ModelRegistry
from churn.store import abtests, offline, raw
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
registry = ModelRegistry(wh, models_dir)
manager = ABTestManager(wh, registry, model_name)
production = registry.get_production(model_name)
live = raw.has_simulator_truth(wh)  # simulated traffic needs the simulator's hidden truth
staging = registry.list_models(model_name, stage="staging")
candidate = max(staging, key=lambda m: m.version) if staging else None
test_name = f"{model_name}-v{production.version}-vs-v{candidate.version}" if candidate else None
print(f"control: v{production.version} (production); variant: " + (f"v{candidate.version} (staging)" if candidate else "none"))
models = {"control": load_predictor(registry, model_name, production.version)[0],
          "variant": load_predictor(registry, model_name, candidate.version)[0]} if candidate else {}

# %% [markdown]
# ## Run the experiment

# %%
if candidate is not None and live and abtests.get_test(wh, test_name) is None:
    latest = offline.latest_vectors(wh).merge(raw.truth_hazard(wh), on="user_id")
    # planned baseline: the expected churn rate without offers, known to the simulator
    baseline = float(churn_probability(latest.weekly_hazard.to_numpy(), int(ab_window_days)).mean())
    manager.start_test(test_name=test_name, control_version=production.version, variant_version=candidate.version,
                       traffic_split=float(ab_traffic_split), user_ids=latest.user_id.to_numpy(),
                       mde=float(ab_mde_relative) * baseline, baseline=baseline, window_days=int(ab_window_days),
                       offer_share=float(ab_offer_share), offer_effect=float(ab_offer_effect))
    arms = manager.assignments(test_name).merge(latest, on="user_id")
    arms["score"] = 0.0
    for arm, model in models.items():
        rows = arms.arm == arm
        arms.loc[rows, "score"] = model.predict_proba(arms.loc[rows, model.features].to_numpy(float))
    outcomes = simulate_outcomes(arms, float(ab_offer_share), float(ab_offer_effect), int(ab_window_days), int(ab_seed))
    manager.record_outcomes(test_name, outcomes)
    print(f"{len(outcomes):,} users: {outcomes.groupby('arm').size().to_dict()}")

# %% [markdown]
# ## Results

# %%
analysis = manager.analysis(test_name) if candidate is not None and live else None
results = manager.get_test_results(test_name, analysis) if analysis else None
pd.json_normalize(results).T if results else "no staging candidate: nothing to test"

# %%
if analysis and analysis[1] is not None:
    test, experiment, welch, daily = analysis
    fig = arms_figure(results, daily, experiment.sequential.p_value, float(experiment.fixed.alpha))

# %% [markdown]
# ## Decision
# Guardrails compare the two models on the latest snapshot with matured labels (the same users
# for both).

# %%
decision = None
if results and results["status"] == "running":
    frame = offline.read_features(wh)
    matured = frame[frame.label_mature & (frame.snapshot_at == frame[frame.label_mature].snapshot_at.max())]
    y = matured.label.to_numpy(int)
    control_scores, variant_scores = (m.predict_proba(matured[m.features].to_numpy(float)) for m in models.values())
    decision = manager.conclude(test_name, model_guardrails(y, control_scores, y, variant_scores), analysis)
final = abtests.get_test(wh, test_name) if test_name else None
for reason in (final or {}).get("reasons", []):
    print("-", reason)
print("decision:", final["decision"] if final else "no test")

# %% [markdown]
# ## Offline champion/challenger (data without the simulator)

# %%
offline_result = None
if candidate is not None and not live:
    offline_result = champion_challenger(registry, offline.read_features(wh), model_name)
    if offline_result is None:
        print("no matured snapshot after both models' training data: control stays (recorded)")
    else:
        for reason in offline_result.reasons:
            print("-", reason)
        print("decision:", offline_result.decision)
pd.Series(offline_result.as_dict()).drop("reasons") if offline_result else None

# %%
if final is None and offline_result is not None:
    final = {"decision": offline_result.decision}
receipt = write_receipt(product["receipt"], test_name=test_name, decision=final["decision"] if final else None,
                        production_version=registry.get_production(model_name).version)
