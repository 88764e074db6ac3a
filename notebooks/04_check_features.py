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
if ds.source == "synthetic":
    bounds = (float(label_rate_min), float(label_rate_max))
else:
    bounds = tuple(ds.quality.label_rate) if ds.quality.label_rate else DERIVED_LABEL_RATE
origin = "dataset file" if ds.quality.label_rate else "derived" if ds.source != "synthetic" else "env.yaml"
# A daily cycle checks what it wrote: the new snapshot's vectors and, when labels matured in it,
# every matured label (the rate is a property of all of them); unchanged rows were checked before.
built = json.loads(Path(upstream["build-features"]["receipt"]).read_text())
incremental = built.get("incremental", False)
suites = feature_suites(offline.load_feature_spec(wh), bounds)
if incremental:
    changed = built["changed_snapshots"]
    frames = {"features": offline.read_features(wh, snapshots=changed[:1])}
    if len(changed) > 1:
        frames["labels"] = prepare_feature_frames(offline.matured_labels(wh))["labels"]
    suites = {name: suite for name, suite in suites.items() if name in frames}
    labels = "checking every matured label" if "labels" in frames else "the labels are as checked before"
    print(
        f"daily cycle: the {len(frames['features']):,} vectors of {changed[0][:10]}; labels matured: "
        f"{len(changed) - 1} snapshot(s), {labels}"
    )
else:
    frames = prepare_feature_frames(offline.read_features(wh))
if "labels" in frames:
    print(f"label rate bounds {bounds} ({origin}); observed {frames['labels'].label.mean():.4f}")
report = runner.validate_frames(frames, suites, report_dir=product["data_docs"])
report.to_frame()

# %%
print(report.message())
report.raise_for_failures()

# %%
receipt = write_receipt(
    product["receipt"], success=report.success, expectations=len(report.results), incremental=incremental
)
