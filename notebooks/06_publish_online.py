# %% [markdown]
# # Publish online
# The latest feature vector of every current user into the Redis online store, in pipelined
# batches, keyed by feature-set version. Then every user is read back: the hit rate must be
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
from churn.runs import as_of_date
from churn.store import offline
from churn.store.online import OnlineStore
from churn.store.redis_server import resolve_redis_url
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
feature_set, features = offline.feature_set(wh)
latest = offline.latest_vectors(wh)
url = resolve_redis_url(redis_url or None, data_dir)
store = OnlineStore.from_url(url, feature_set, features, ttl_seconds=int(online_ttl_seconds) or None)
print(f"{len(latest):,} current users, features as of {latest.snapshot_at.max()}, Redis at {url}")

# %% [markdown]
# ## Write

# %%
# a daily cycle writes only the users whose vector changed and removes those no longer current;
# a full build rewrites the store (users who churned since the last publish must not linger)
if as_of_date(as_of) is not None:
    sync = store.online_sync(latest)
    stats = None
    print(f"daily cycle: wrote {sync['written']:,} changed vectors, kept {sync['unchanged']:,} unchanged, "
          f"removed {sync['removed']:,} users no longer current")
else:
    removed = store.clear()
    stats = store.online_write_batch(latest)
    sync = {"written": stats.users, "unchanged": 0, "removed": removed}
    print(f"removed {removed:,} old vectors; wrote {stats.users:,} vectors in {stats.batches} batch(es), "
          f"{stats.seconds * 1000:.0f} ms ({stats.users / stats.seconds:,.0f} vectors/s)")

# %% [markdown]
# ## Read back: hit rate and parity with the offline store

# %%
# NBVAL_CHECK_OUTPUT
read = store.online_read(latest["user_id"], count=False)
identical = read.values.tobytes() == np.ascontiguousarray(latest[features].to_numpy(np.float64)).tobytes()
print(f"hit rate {read.found.mean():.1%}; vectors identical to the offline store: {identical}")

# %%
receipt = write_receipt(product["receipt"], users=len(latest), seconds=stats.seconds if stats else None, **sync,
                        hit_rate=float(read.found.mean()), identical=identical, feature_set=feature_set)
assert read.found.all() and identical, "online store does not match the offline store"
