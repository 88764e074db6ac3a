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
from churn.store import raw
from churn.store.warehouse import Warehouse

wh = Warehouse(warehouse)
ds = load_dataset(dataset)
own = ds.source == "files"
# a daily cycle checks the slice it appended (with the whole users table) and the whole history
# only where that is cheap (one SQL pass: unique ids, nothing at/after as_of, known users)
window = None if own or as_of_date(as_of) is None else raw.latest_slice(wh)
if window is not None:
    print(f"daily cycle: checking the slice [{window[0].date()}, {window[1].date()}) and the whole history in SQL")
{name: facts["rows"] for name, facts in raw.raw_table_summary(wh).items()}

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

# %%
checked_at = datetime.now(UTC).replace(tzinfo=None)
if own:
    # after a daily append only its slice of events is judged row by row (None: the whole log)
    report = own_suite.validate_own_data(wh, ds, max_timestamp=checked_at, report_dir=product["data_docs"],
                                         min_event_id=append.latest_event_slice(wh))
    print("churn share bounds:", ds.quality.churn_share or f"derived {own_suite.DERIVED_CHURN_SHARE} (not in the dataset file)")
else:
    report = suites.validate_raw(
        wh,
        max_timestamp=checked_at if window is None else (window[1] - pd.Timedelta(microseconds=1)).to_pydatetime(),
        churn_rate_bounds=(float(churn_rate_min), float(churn_rate_max)),
        since=None if window is None else window[0].to_pydatetime(),
        report_dir=product["data_docs"])
print(f"Great Expectations sample: up to {gate.SAMPLE_ROWS:,} rows per table (seed {gate.SAMPLE_SEED})")
report.to_frame()

# %% [markdown]
# ## Verdict
# A failure names every failed expectation with example values and stops the build here.

# %%
print(report.message())
report.raise_for_failures()
if window is not None:
    whole = raw.whole_table_problems(wh, window[1])
    print("whole history: " + ("; ".join(whole) if whole else "ids unique, nothing at/after as_of, every user known"))
    assert not whole, f"raw tables fail whole-history checks: {whole}"

# %%
receipt = write_receipt(
    product["receipt"], success=report.success, checked_at=checked_at,
    expectations=len(report.results),
)
