"""`make test`'s scheduling: tests of one ``xdist_group`` run on one pytest-xdist worker.

pytest 9.2 stopped reading the node-id suffix pytest-xdist 3.8 uses to pass a test's group to
the scheduler (pytest-xdist issue 1386): every group was silently split across workers. This
runs a real two-worker session with the hooks of tests/conftest.py and checks the groups hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = """
from tests.conftest import XdistGroupIds, pytest_configure  # the suite's own hooks
"""

TESTS = """
import json, os
import pytest

def record(request):
    with open(os.environ["RECORD"], "a") as out:
        out.write(json.dumps([request.node.nodeid, os.environ["PYTEST_XDIST_WORKER"]]) + "\\n")

@pytest.mark.xdist_group("together")
@pytest.mark.parametrize("i", range(6))
def test_grouped(i, request):
    record(request)

@pytest.mark.parametrize("i", range(6))
def test_free(i, request):
    record(request)
"""


@pytest.mark.slow
def test_a_group_runs_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_groups.py").write_text(TESTS)
    record = tmp_path / "record.jsonl"
    env = {**os.environ, "RECORD": str(record), "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider", "-q",
         "-o", "addopts=", "--rootdir", str(tmp_path), str(tmp_path / "test_groups.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    grouped = [(nodeid, worker) for nodeid, worker in rows if "test_grouped" in nodeid]
    assert len(grouped) == 6 and len(rows) == 12
    assert all(nodeid.endswith("@together") for nodeid, _ in grouped), grouped
    assert len({worker for _, worker in grouped}) == 1, grouped
