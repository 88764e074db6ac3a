# %% [markdown]
# # Check raw data
# The quality gate on the raw tables: if any expectation fails, this task fails and nothing
# downstream runs. The validation result, Data Docs and an offline page land in `reports/data_quality/`.

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

import pandas as pd

from churn.data import append
from churn.dataset import load_dataset
from churn.pipeline import write_receipt
from churn.quality import gate, own_suite, suites
from churn.runs import as_of_date
from churn.store import raw, raw_checks
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
ds = load_dataset(dataset)
own = ds.source == "files"
watermark = raw.last_load(wh)  # every row was loaded from before it
# a daily cycle judges row by row only what was loaded since the last gate that passed (see below)
increment = None if own or as_of_date(as_of) is None else raw_checks.increment(wh)
if increment is not None:
    print(f"daily cycle: judging the rows loaded since the check of {increment.through.date()}: "
          + ", ".join(f"{t} {increment.scope(t)}" for t in raw_checks.INCREMENTAL))
raw.row_counts(wh)

# %% [markdown]
# ## Validate
# The simulator's tables: schema, nulls, unique ids, timestamps not in the future, every event's
# and billing record's user exists, amounts >= 0, plausible vocabularies, churn share within
# bounds. Your own data: the same ideas on its tables, with the vocabularies taken from the
# data (checked for sanity, never against a fixed list) and any past date accepted.
#
# Every expectation with an SQL meaning (unique ids, non-null, ranges, timestamps not in the
# future, vocabularies, known users, nothing after churn, row count, churn share, column list)
# is judged in DuckDB over EVERY row; Great Expectations checks the column types on a seeded
# sample of each table (the rows with the smallest `hash(key, seed)`, at most
# `churn.quality.gate.SAMPLE_ROWS` per table). The report's "scope" says which judged what.
#
# A daily cycle judges what is new: the events and billing rows loaded since the last gate that
# passed, row by row (plus the older rows of any user who vanished or whose churn date moved
# before then), their ids against every row (new duplicates among themselves and against the
# older rows), the users table (replaced by every load) and the aggregates whole; Great
# Expectations samples the new rows. It first verifies that the older rows are still the ones the
# last gate judged (their count); if not, that table is judged whole again.

# %%
checked_at = datetime.now(UTC).replace(tzinfo=None)
if own:
    # after a daily append only its slice of events is judged row by row (None: the whole log)
    report = own_suite.validate_own_data(wh, ds, max_timestamp=checked_at, report_dir=product["data_docs"],
                                         min_event_id=append.latest_event_slice(wh))
    print("churn share bounds:", ds.quality.churn_share or f"derived {own_suite.DERIVED_CHURN_SHARE} (not in the dataset file)")
else:
    cycle = as_of_date(as_of) is not None and watermark is not None  # nothing at or after the run's date
    report = suites.validate_raw(
        wh,
        max_timestamp=(watermark - pd.Timedelta(microseconds=1)).to_pydatetime() if cycle else checked_at,
        churn_rate_bounds=(float(churn_rate_min), float(churn_rate_max)),
        increment=increment,
        report_dir=product["data_docs"])
print(f"Great Expectations sample: up to {gate.SAMPLE_ROWS:,} rows per table (seed {gate.SAMPLE_SEED})")
report.to_frame()

# %% [markdown]
# ## Verdict
# A failure names every failed expectation with example values and stops the build here.

# %%
print(report.message())
report.raise_for_failures()
if not own and watermark is not None:  # the next daily gate judges what comes after this one
    raw_checks.record_check(wh, through=watermark)

# %%
receipt = write_receipt(
    product["receipt"], success=report.success, checked_at=checked_at,
    expectations=len(report.results),
)
