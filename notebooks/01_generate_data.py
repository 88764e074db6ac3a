# %% [markdown]
# # Generate data
# Raw users, product events and billing into the warehouse: synthetic, or your own files
# described by a dataset file (`datasets/synthetic.yaml` is the default; see `examples/`).
#
# The synthetic simulator gives each user a latent engagement that decays in the weeks before a
# churn (not always), a weekly rhythm, several event types and monthly billing with payment
# failures, plan changes and refunds. Its hidden truth (latent weekly churn hazard) goes to
# `simulator.user_truth`, which **no feature or training code may read**.

# %% tags=["parameters"]
upstream = None
product = None
as_of = None  # the run's date; '' = a full build up to the end of the data
warehouse = None
source = None
raw_dir = None
n_users = None
seed = None
start = None
end = None
churn_rate = None
scenario = None
dataset = None
dataset_id = None  # the dataset file's content fingerprint: a changed file or data re-runs the build

# %%
from churn import cycle
from churn.data import append, files, loader, synthetic
from churn.data.world import WORLD_DAYS
from churn.dataset import load_dataset
from churn.pipeline import as_date, write_receipt
from churn.runs import as_of_date
from churn.store import raw
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
ds = load_dataset(dataset)
since = None  # a daily cycle's report describes the rows it appended (synthetic: timed from here)
print(f"data set {ds.name!r} ({ds.source}); churn rule: {ds.churn.rule}")

# %% [markdown]
# ## Load
# Everything is written in one transaction: a failure leaves the previous tables untouched.
# Synthetic data: the simulated world runs past `end` (the "source system", kept under the data
# dir); a full build loads what happened before `end`, a daily cycle (`as_of`) appends what
# happened since the last load, so thirty cycles give the same history as one build at that date.

# %%
if ds.source == "files" and as_of_date(as_of) is not None:  # a daily cycle: only the new files
    appended = append.append_files(wh, ds, as_of_date(as_of))
    print(appended.summary())
    counts = appended.added
elif ds.source == "files":
    counts = loader.load_files(wh, ds)
elif source == "synthetic":
    params = synthetic.SimulationParams(
        n_users=int(n_users), start=as_date(start), end=as_date(end), seed=int(seed),
        target_churn_rate=float(churn_rate), scenario=scenario,
    )
    params.validate()
    # the generation parameters (and the world's horizon) are part of the data set's identity
    identity = ds.fingerprint(n_users=int(n_users), seed=int(seed), start=str(start), end=str(end),
                              churn_rate=float(churn_rate), scenario=scenario, world_days=WORLD_DAYS)
    load = cycle.load_synthetic(wh, params, {"name": ds.name, "fingerprint": identity, "source": "synthetic",
                                             "rule": ds.churn.rule}, as_of=as_of_date(as_of))
    print(load.describe())
    counts, since = load.counts, load.since
elif source == "files":
    counts = raw.write_raw_tables(wh, [files.read_raw_files(raw_dir)], dataset={
        "name": ds.name, "fingerprint": f"{ds.name}:files:{raw_dir}", "source": "files", "rule": ds.churn.rule})
else:
    raise ValueError(f"unknown source {source!r}: use 'synthetic' or 'files'")
info = raw.dataset_info(wh)
print(f"identity {info['fingerprint']}")
counts

# %% [markdown]
# ## What was written
# A full build describes the whole history; a daily cycle the rows it appended (and the users
# table as it is now).

# %%
overview = raw.describe_raw(wh, since=since)
if since is not None:
    print(f"the rows loaded by this run: timed at or after {since.date()}")
overview.get("plans", "no plans in this data set")

# %%
overview["event_types"]

# %%
overview.get("billing_types", "no billing in this data set")

# %% [markdown]
# ## Activity over time and across the week
# Active users and events per week (the simulation's first and last partial weeks are shorter),
# and the weekday/weekend rhythm; a daily cycle: events and active users per day it loaded.

# %%
if since is None:
    ax = overview["weekly_activity"].set_index("week")[["events"]].plot(
        figsize=(10, 3), title="events per week", legend=False
    )
else:
    print(overview["daily_activity"].to_string(index=False))

# %%
if since is None:
    ax = overview["weekday_activity"].set_index("weekday")["events"].plot.bar(
        figsize=(6, 3), title="events by weekday"
    )

# %%
if len(overview["monthly_churn"]):
    ax = overview["monthly_churn"].set_index("month")["churned"].plot.bar(
        figsize=(10, 3), title="churned users per month")
else:
    print("no churn dates in this data set: the churn rule derives labels from activity")

# %% [markdown]
# ## Products

# %% [markdown]
# Row counts and content fingerprints: the same parameters must reproduce them exactly
# (nbval compares this cell's output on a re-run).

# %%
# NBVAL_CHECK_OUTPUT
summary = raw.raw_table_summary(wh)
for table, facts in summary.items():
    print(f"{table:8s} rows={facts['rows']:>9,d} fingerprint={facts['fingerprint']}")

# %%
receipt = write_receipt(product["receipt"], source=ds.source, dataset=ds.name, dataset_id=info["fingerprint"],
                        counts=counts, tables=summary)
