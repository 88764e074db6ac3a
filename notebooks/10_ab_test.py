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
# In a daily cycle (`as_of` a date) a test spans cycles: its users arrive over `ab_max_days`
# days, each cycle takes one look (stored in `ml_pipeline.ab_looks`) with the always-valid
# mSPRT, and the test stops at the look where the mSPRT decides or at day `ab_max_days`
# (futility). Each cycle also re-checks a promoted variant's guardrails on the newest matured
# labels and rolls production back when one fails. A full build analyses the test at once.
#
# Data without the simulator (your own data) has no live traffic: there the two models are
# compared **offline** on the newest matured snapshots neither was trained on (DeLong's paired
# test of the AUC difference and a paired test of log loss), and the decision goes to the
# registry the same way.

# %% tags=["parameters"]
upstream = ["decide-retraining"]
product = None
as_of = None  # the run's date; '' = a full build up to the end of the data
warehouse = None
models_dir = None
model_name = None
ab_traffic_split = None
ab_offer_share = None
ab_offer_effect = None
ab_window_days = None
ab_max_days = None
ab_mde_relative = None
ab_seed = None

# %%
import pandas as pd

from churn.abtest.phase import TrafficPlan, run_ab_test
from churn.abtest.plots import arms_figure
from churn.modeling.lifecycle import champion_challenger
from churn.pipeline import write_receipt
from churn.registry import ModelRegistry
from churn.store import abtests, offline, raw
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
registry = ModelRegistry(wh, models_dir)
plan = TrafficPlan(traffic_split=float(ab_traffic_split), offer_share=float(ab_offer_share),
                   offer_effect=float(ab_offer_effect), window_days=int(ab_window_days),
                   mde_relative=float(ab_mde_relative), seed=int(ab_seed), max_days=int(ab_max_days))

# %% [markdown]
# ## Run the experiment
# Started once per (control, variant) pair; a test whose outcomes were never recorded (its run
# died in between) gets them now, and a test that is still running is concluded.

# %%
live = raw.is_simulated(wh)  # simulated traffic needs the simulator (the data set's record says so)
ab = run_ab_test(wh, registry, model_name, plan, as_of=as_of) if live else None
if ab is not None:
    print(f"control: v{ab.production.version} (production); variant: "
          + (f"v{ab.candidate.version} (staging)" if ab.candidate else "none"))
    if ab.rollback:
        print("ROLLBACK:", ab.rollback)
    if ab.look is not None:
        print(f"look {ab.look.number} (test day {ab.look.day} of {ab.look.max_days}): always-valid p-value "
              f"{ab.look.p_value:.4g}; {'stops' if ab.look.stops else 'continues'}")
else:
    print("no simulator truth (your own data): the offline champion/challenger below decides")

# %% [markdown]
# ## Results

# %%
pd.json_normalize(ab.results).T if ab and ab.results else "no simulated test"

# %%
abtests.read_looks(wh, ab.test_name) if ab and ab.test_name else None

# %%
if ab and ab.analysis and ab.analysis[1] is not None:
    test, experiment, welch, daily = ab.analysis
    fig = arms_figure(ab.results, daily, experiment.sequential.p_value, float(experiment.fixed.alpha))

# %% [markdown]
# ## Decision
# Guardrails compare the two models on the latest snapshot with matured labels (the same users
# for both). The decision and the registry change it makes (promotion, or an `ab_*` event)
# commit together.

# %%
for reason in ((ab.final if ab else None) or {}).get("reasons", []):
    print("-", reason)
running = ab is not None and ab.final is not None and ab.final["status"] == "running"
print("decision:", f"none yet, the test runs on (look {ab.look.number if ab.look else '-'})" if running
      else (ab.outcome if ab else None) or "no simulated test")

# %% [markdown]
# ## Offline champion/challenger (data without the simulator)

# %%
offline_result = None
if not live and registry.list_models(model_name, stage="staging"):
    offline_result = champion_challenger(registry, offline.read_features(wh), model_name)
    if offline_result is None:
        print("no matured snapshot after both models' training data: control stays (recorded)")
    else:
        for reason in offline_result.reasons:
            print("-", reason)
        print("decision:", offline_result.decision)
pd.Series(offline_result.as_dict()).drop("reasons") if offline_result else None

# %%
outcome = ab.outcome if ab else (offline_result.decision if offline_result else None)
receipt = write_receipt(product["receipt"], test_name=ab.test_name if ab else None, decision=outcome,
                        look=ab.look.number if ab and ab.look else None, rollback=ab.rollback if ab else None,
                        production_version=registry.get_production(model_name).version)
