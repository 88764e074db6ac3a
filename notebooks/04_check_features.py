# %% [markdown]
# # Check features
# The Great Expectations gate on the offline store: columns in spec order, one vector per user
# and snapshot, no NULLs, counts and day measures in range, labels 0/1 with a plausible rate.

# %% tags=["parameters"]
upstream = ["build-features"]
product = None
warehouse = None
label_rate_min = None
label_rate_max = None

# %%
from churn.features import default_feature_spec
from churn.pipeline import write_receipt
from churn.quality import runner
from churn.quality.feature_suite import feature_suites, prepare_feature_frames
from churn.store import offline
from churn.store.warehouse import Warehouse

frame = offline.read_features(Warehouse(warehouse))
report = runner.validate_frames(
    prepare_feature_frames(frame),
    feature_suites(default_feature_spec(), (float(label_rate_min), float(label_rate_max))),
    report_dir=product["data_docs"],
)
report.to_frame()

# %%
print(report.message())
report.raise_for_failures()

# %%
receipt = write_receipt(product["receipt"], success=report.success, expectations=len(report.results))
