# %% [markdown]
# # Check features
# The Great Expectations gate on the offline store: columns in spec order, one vector per user
# and snapshot, no NULLs, counts and day measures in range, labels 0/1 with a plausible rate.

# %% tags=["parameters"]
upstream = ["build-features"]
product = None
as_of = None  # the run's date; '' = a full build up to the end of the data
warehouse = None
label_rate_min = None
label_rate_max = None
dataset = None

# %% [markdown]
# The label-rate bounds come from the dataset file; without them they are derived (some labels
# are 1 and some 0) and reported as such, never the simulator's defaults.

# %%
import json
from pathlib import Path

from churn.dataset import load_dataset
from churn.pipeline import write_receipt
from churn.quality import runner
from churn.quality.feature_suite import DERIVED_LABEL_RATE, feature_suites, prepare_feature_frames
from churn.store import offline
from churn.store.warehouse import Warehouse

ds = load_dataset(dataset)
wh = Warehouse(warehouse)
frame = offline.read_features(wh)
if ds.source == "synthetic":
    bounds = (float(label_rate_min), float(label_rate_max))
else:
    bounds = tuple(ds.quality.label_rate) if ds.quality.label_rate else DERIVED_LABEL_RATE
origin = "dataset file" if ds.quality.label_rate else "derived" if ds.source != "synthetic" else "env.yaml"
print(f"label rate bounds {bounds} ({origin}); observed {frame[frame.label_mature].label.astype(float).mean():.4f}")
# a daily cycle checks the new snapshot's vectors (and the labels, matured ones included, in whole)
incremental = json.loads(Path(upstream["build-features"]["receipt"]).read_text()).get("incremental", False)
frames = prepare_feature_frames(frame)
if incremental:
    frames["features"] = frame[frame.snapshot_at == frame.snapshot_at.max()]
    print(f"daily cycle: checking the {len(frames['features']):,} vectors of {frame.snapshot_at.max().date()}")
report = runner.validate_frames(
    frames,
    feature_suites(offline.load_feature_spec(wh), bounds),
    report_dir=product["data_docs"],
)
report.to_frame()

# %%
print(report.message())
report.raise_for_failures()

# %%
receipt = write_receipt(
    product["receipt"], success=report.success, expectations=len(report.results), incremental=incremental
)
