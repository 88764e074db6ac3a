"""Write the example social-app log to data/ next to this file: members.csv (attributes),
activity.csv (nine event types of its own) and plans.csv (subscription periods; lapsed members
sometimes come back). `make build DATASET=examples/product_log/dataset.yaml` runs this first.
"""

from pathlib import Path

from churn.data.examples import product_log

folder = Path(__file__).resolve().parent / "data"
if not (folder / "plans.csv").exists():
    folder.mkdir(exist_ok=True)
    for name, frame in product_log().items():
        frame.to_csv(folder / f"{name}.tmp", index=False)
    for name in ("members", "activity", "plans"):  # plans last: it marks a complete set
        (folder / f"{name}.tmp").rename(folder / f"{name}.csv")
print(f"{folder} ready")
