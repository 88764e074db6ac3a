# %% [markdown]
# # Check raw data
# The Great Expectations gate on the raw tables: if any expectation fails, this task fails and
# nothing downstream runs. The validation result and Data Docs land in `reports/data_quality/`.

# %% tags=["parameters"]
upstream = ["generate-data"]
product = None
as_of = None  # the run's date; '' = a full build up to the end of the data
warehouse = None
churn_rate_min = None
churn_rate_max = None
dataset = None

# %%
from datetime import UTC, datetime

from churn.data import append
from churn.dataset import load_dataset
from churn.pipeline import write_receipt
from churn.quality import own_suite, runner, suites
from churn.store import raw
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
ds = load_dataset(dataset)
own = ds.source == "files"
{name: facts["rows"] for name, facts in raw.raw_table_summary(wh).items()}

# %% [markdown]
# ## Validate
# The simulator's tables: schema, nulls, unique ids, timestamps not in the future, every event's
# and billing record's user exists, amounts >= 0, plausible vocabularies, churn share within
# bounds. Your own data: the same ideas on its tables, with the vocabularies taken from the
# data (checked for sanity, never against a fixed list) and any past date accepted. Events (and
# billing) are validated in chunks of ids, the outcomes merged, so a log of any size is checked
# in bounded memory.

# %%
checked_at = datetime.now(UTC).replace(tzinfo=None)
if own:
    # after a daily append only its slice of events is judged row by row (None: the whole log)
    report = own_suite.validate_own_data(wh, ds, max_timestamp=checked_at, report_dir=product["data_docs"],
                                         min_event_id=append.latest_event_slice(wh))
    print("churn share bounds:", ds.quality.churn_share or f"derived {own_suite.DERIVED_CHURN_SHARE} (not in the dataset file)")
else:
    rules = suites.raw_data_suites(max_timestamp=checked_at,
                                   churn_rate_bounds=(float(churn_rate_min), float(churn_rate_max)))
    report = runner.validate_chunks(suites.raw_chunks(wh), rules, report_dir=product["data_docs"])
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
