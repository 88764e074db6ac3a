# %% [markdown]
# # Publish online
# The latest feature vector of every current user into the Redis online store, in pipelined
# batches, keyed by the feature spec's key (name:version). Then every user is read back: the hit rate must be
# 100% and each vector identical, bit for bit, to the offline store's.

# %% tags=["parameters"]
upstream = ["check-features"]
product = None
as_of = None  # the run's date; '' = a full build up to the end of the data
warehouse = None
data_dir = None
redis_url = None
online_ttl_seconds = None

# %%
import numpy as np

from churn.pipeline import write_receipt
from churn.store import materialize
from churn.store.online import client_from_url
from churn.store.redis_server import resolve_redis_url
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
url = resolve_redis_url(redis_url or None, data_dir)
store = materialize.online_store(wh, client_from_url(url, socket_timeout=5), ttl_seconds=int(online_ttl_seconds) or None)
features = store.features
print(f"online store {store.prefix} at {url}")

# %% [markdown]
# ## Write

# %%
done = materialize.materialize(wh, store)  # users who churned since the last publish do not linger
latest, stats = done.latest, done.written
print(f"{len(latest):,} current users, features as of {latest.snapshot_at.max()}")
print(f"removed {done.removed:,} old vectors; wrote {stats.users:,} vectors in {stats.batches} batch(es), "
      f"{stats.seconds * 1000:.0f} ms ({stats.users / stats.seconds:,.0f} vectors/s)")

# %% [markdown]
# ## Read back: hit rate and parity with the offline store

# %%
# NBVAL_CHECK_OUTPUT
read = store.online_read(latest["user_id"], count=False)
identical = read.values.tobytes() == latest[features].to_numpy(np.float64).tobytes()
print(f"hit rate {read.found.mean():.1%}; vectors identical to the offline store: {identical}")

# %%
receipt = write_receipt(product["receipt"], users=stats.users, seconds=stats.seconds,
                        hit_rate=float(read.found.mean()), identical=identical, feature_set=store.namespace)
assert read.found.all() and identical, "online store does not match the offline store"
