"""`make schedule`: the crontab line runs the same data set and Redis the command was given."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_cron_line_keeps_the_data_set_and_the_redis_url():
    """Without DATASET= in the line, cron built the default data set while logging to the
    data set's workspace."""
    dataset, url = "examples/purchase_log/dataset.yaml", "redis://127.0.0.1:6390/0"
    out = subprocess.run(
        ["make", "-s", "schedule", f"DATASET={dataset}", f"REDIS_URL={url}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    command = out.split(" ", 5)[5]
    assert command.startswith(f"cd {ROOT} && /")
    assert f" DATASET='{dataset}' REDIS_URL='{url}' >> {ROOT}/" in command
    assert command.endswith("/cron.log 2>&1")
