# %% [markdown]
# # Score batch
# Churn probability and risk band for every current user with the production model, into
# `ml_pipeline.predictions`. Uses the same predictor object the API serves.

# %% tags=["parameters"]
upstream = ["train-model", "publish-online"]
product = None
as_of = None  # the run's date; '' = a full build up to the end of the data
warehouse = None
models_dir = None
model_name = None

# %%
import pandas as pd

from churn.modeling.lifecycle import check_dataset, load_predictor
from churn.pipeline import write_receipt
from churn.registry import ModelRegistry
from churn.store import offline, raw
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
predictor, model = load_predictor(ModelRegistry(wh, models_dir), model_name)
check_dataset(model, raw.dataset_info(wh))  # a model only scores the data set it was trained on
latest = offline.latest_vectors(wh)
scored = predictor.predict_frame(latest).assign(
    model_name=model_name, model_version=model.version, features_as_of=latest["snapshot_at"].to_numpy(),
    scored_at=pd.Timestamp.now(tz="UTC").tz_localize(None))
rows = offline.write_predictions(wh, scored)
print(f"scored {rows:,} users with {model_name} v{model.version} (sha256 {model.artifact_sha256[:12]}...)")

# %% [markdown]
# ## Risk bands and the distribution of scores

# %%
scored.groupby("risk_band")["probability"].agg(["count", "mean", "max"])

# %%
ax = scored["probability"].plot.hist(bins=40, figsize=(8, 3), logy=True, title="predicted churn probability (horizon)")

# %% [markdown]
# ## The 10 riskiest users, with the features behind their score

# %%
top = scored.nlargest(10, "probability").merge(latest, on="user_id")
top[["user_id", "probability", "risk_band", *predictor.features]]

# %%
receipt = write_receipt(product["receipt"], rows=rows, model_version=model.version,
                        bands=scored["risk_band"].value_counts().to_dict())
