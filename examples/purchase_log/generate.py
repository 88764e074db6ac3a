"""Write the example purchase log (customer, date, amount) to data/purchases.csv next to this file.

A Pareto/NBD process (churn.data.examples.purchase_log): customers buy at their own Poisson rate
until they silently drop out. There are no churn dates in the file: the dataset file labels
churn by inactivity. `make build DATASET=examples/purchase_log/dataset.yaml` runs this first.
"""

from pathlib import Path

from churn.data.examples import purchase_log

out = Path(__file__).resolve().parent / "data" / "purchases.csv"
if not out.exists():
    out.parent.mkdir(exist_ok=True)
    purchases, _ = purchase_log()
    purchases.to_csv(out.with_suffix(".tmp"), index=False)
    out.with_suffix(".tmp").rename(out)
print(f"{out} ready")
