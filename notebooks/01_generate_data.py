# %% [markdown]
# # Generate data
# Raw users, product events and billing into the warehouse: synthetic, or your own files.
#
# The synthetic simulator gives each user a latent engagement that decays in the weeks before a
# churn (not always), a weekly rhythm, several event types and monthly billing with payment
# failures, plan changes and refunds. Its hidden truth (latent weekly churn hazard) goes to
# `simulator.user_truth`, which **no feature or training code may read**.

# %% tags=["parameters"]
upstream = None
product = None
warehouse = None
source = None
raw_dir = None
n_users = None
seed = None
start = None
end = None
churn_rate = None
scenario = None

# %%
from churn.data import files, synthetic
from churn.pipeline import as_date, write_receipt
from churn.store import raw
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)

# %% [markdown]
# ## Load
# Everything is written in one transaction: a failure leaves the previous tables untouched.

# %%
if source == "synthetic":
    params = synthetic.SimulationParams(
        n_users=int(n_users), start=as_date(start), end=as_date(end), seed=int(seed),
        target_churn_rate=float(churn_rate), scenario=scenario,
    )
    params.validate()
    counts = raw.write_raw_tables(wh, synthetic.iter_chunks(params))
elif source == "files":
    counts = raw.write_raw_tables(wh, [files.read_raw_files(raw_dir)])
else:
    raise ValueError(f"unknown source {source!r}: use 'synthetic' or 'files'")
counts

# %% [markdown]
# ## What was written

# %%
overview = raw.describe_raw(wh)
overview["plans"]

# %%
overview["event_types"]

# %%
overview["billing_types"]

# %% [markdown]
# ## Activity over time and across the week
# Active users and events per week (the simulation's first and last partial weeks are shorter),
# and the weekday/weekend rhythm.

# %%
ax = overview["weekly_activity"].set_index("week")[["events"]].plot(
    figsize=(10, 3), title="events per week", legend=False
)

# %%
ax = overview["weekday_activity"].set_index("weekday")["events"].plot.bar(
    figsize=(6, 3), title="events by weekday"
)

# %%
ax = overview["monthly_churn"].set_index("month")["churned"].plot.bar(
    figsize=(10, 3), title="churned users per month"
)

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
receipt = write_receipt(product["receipt"], source=source, counts=counts, tables=summary)
