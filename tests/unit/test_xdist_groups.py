"""`make test`'s scheduling: tests of one ``xdist_group`` run on one pytest-xdist worker, and a
worker busy with a long test takes short ones after it (``FillerScheduling``).

pytest 9.2 stopped reading the node-id suffix pytest-xdist 3.8 uses to pass a test's group to
the scheduler (pytest-xdist issue 1386): every group was silently split across workers. This
runs a real two-worker session with the hooks of tests/xdist_scheduling.py (which tests/conftest.py
uses) and checks the groups hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest

from tests.xdist_scheduling import FillerScheduling

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = """
from tests.xdist_scheduling import XdistGroupIds, pytest_configure, pytest_xdist_make_scheduler  # the suite's own hooks
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
         "-o", "addopts=", "-p", "no:nbval", "-p", "no:schemathesis",
         "--rootdir", str(tmp_path), str(tmp_path / "test_groups.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    grouped = [(nodeid, worker) for nodeid, worker in rows if "test_grouped" in nodeid]
    assert len(grouped) == 6 and len(rows) == 12
    assert all(nodeid.endswith("@together") for nodeid, _ in grouped), grouped
    assert len({worker for _, worker in grouped}) == 1, grouped


class _Node:
    """The part of an xdist worker controller the scheduler talks to."""

    shutting_down = False

    def __init__(self) -> None:
        self.sent: list[list[int]] = []

    def send_runtest_some(self, indexes: list[int]) -> None:
        self.sent.append(indexes)


def test_a_worker_busy_with_a_long_test_takes_short_ones_from_the_end_of_the_queue() -> None:
    """The two long tests go to different workers although they are next to each other at the
    front of the queue: the worker that took the first one is topped up from the end (short unit
    tests), where xdist's own ``loadgroup`` would queue the second long test behind the first.
    From the end it takes the last module's tests together (their module fixtures are set up
    once)."""
    collection = [
        "tests/pipeline/test_a.py::test_long_one",
        "tests/pipeline/test_a.py::test_long_two",
        "tests/unit/test_b.py::test_short",
        *(f"tests/unit/test_c.py::test_short[{i}]" for i in range(3)),
    ]
    scheduler = FillerScheduling.__new__(FillerScheduling)  # no xdist config: only the queue matters
    scheduler.workqueue = OrderedDict((nodeid, {nodeid: False}) for nodeid in collection)
    scheduler.assigned_work, a, b = {}, _Node(), _Node()
    scheduler.registered_collections = {a: collection, b: collection}

    scheduler._assign_work_unit(a)  # idle: the front
    scheduler._assign_work_unit(a)  # busy with a long test: the last module's tests, from the end
    scheduler._assign_work_unit(b)  # idle: the front, i.e. the second long test
    assert [collection[i] for [i] in a.sent] == [collection[0], collection[5], collection[4], collection[3]]
    assert [collection[i] for [i] in b.sent] == [collection[1]]

    scheduler.assigned_work[a][collection[0]][collection[0]] = True  # the long test finished
    scheduler._assign_work_unit(a)  # no long test pending: the front again
    assert collection[a.sent[-1][0]] == collection[2] and not scheduler.workqueue
    grouped = FillerScheduling.__new__(FillerScheduling)  # a group's name is a long unit too
    grouped.workqueue = OrderedDict([("x", {}), ("y", {})])
    grouped.assigned_work = {a: {"dashboards": {"tests/pipeline/test_d.py::test_page@dashboards": False}}}
    grouped.registered_collections = {a: collection}
    grouped._assign_work_unit(a)
    assert list(grouped.workqueue) == ["x"] and "y" in grouped.assigned_work[a]
