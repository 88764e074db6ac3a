# %% [markdown]
# # Check raw data
# The Great Expectations gate on the raw tables: if any expectation fails, this task fails and
# nothing downstream runs. The validation result and Data Docs land in `reports/data_quality/`.

# %% tags=["parameters"]
upstream = ["generate-data"]
product = None
warehouse = None
churn_rate_min = None
churn_rate_max = None

# %%
from datetime import UTC, datetime

from churn.pipeline import write_receipt
from churn.quality import runner, suites
from churn.store import raw
from churn.store.warehouse import Warehouse

tables = raw.read_raw_tables(Warehouse(warehouse))
{name: len(frame) for name, frame in tables.items()}

# %% [markdown]
# ## Validate
# Schema, nulls, unique ids, timestamps not in the future, every event's and billing record's
# user exists, amounts >= 0, known event/billing types and plans, churn share within bounds.

# %%
checked_at = datetime.now(UTC).replace(tzinfo=None)
report = runner.validate_frames(
    suites.prepare_raw_frames(tables["users"], tables["events"], tables["billing"]),
    suites.raw_data_suites(
        min_timestamp=datetime(2000, 1, 1), max_timestamp=checked_at,
        churn_rate_bounds=(float(churn_rate_min), float(churn_rate_max)),
    ),
    report_dir=product["data_docs"],
)
report.to_frame()

# %% [markdown]
# ## Verdict
# A failure names every failed expectation with example values and stops the build here.

# %%
print(report.message())
report.raise_for_failures()

# %%
receipt = write_receipt(
    product["receipt"], success=report.success, checked_at=checked_at,
    expectations=len(report.results),
)
