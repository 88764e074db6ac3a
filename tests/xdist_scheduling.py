"""How `make test` hands tests to its pytest-xdist workers (``--dist loadgroup``): the order, the
groups, and where a busy worker's next tests come from. A module of its own, imported by
tests/conftest.py, so that tests/unit/test_xdist_groups.py can run real sessions with these hooks
without the suite's fixtures and their imports."""

from __future__ import annotations

import pytest
from xdist.scheduler import LoadGroupScheduling

# The order in which `make test` hands tests to its xdist workers (node-id prefixes; the rest
# follows in collection order): the longest chains first, longest first, so that none starts last
# (CHURN_TEST_TIMELINE, tests/conftest.py, records what each test takes). The first test
# builds the session's small build on one worker while the other starts the own-data cycles,
# which need no small build; then the tests that wait for the build, longest first; then the
# data and model tests (default-size simulations, seconds each), which fill both workers' tails
# with the many short unit and serving tests. A worker busy with a long test takes its next
# tests from the END of the queue (``FillerScheduling``), so no long test queues behind another.
SCHEDULE = (
    "tests/pipeline/test_build.py::test_build_writes_raw_tables_and_reports",  # builds; the others wait for it
    "tests/pipeline/test_own_data_cycle.py",  # its own build + 2 cycles: no small build needed
    "tests/pipeline/test_airflow.py",
    "tests/pipeline/test_dashboards.py",
    "tests/pipeline/test_cycle.py::test_backfill",
    "tests/pipeline/test_build.py::test_executed_notebooks_rerun_identically_under_nbval",
    "tests/pipeline/test_own_data_build.py",
    "tests/pipeline/test_runs.py",
    "tests/pipeline/test_offline_pages.py",
    "tests/pipeline/test_build.py",
    "tests/pipeline/",
    "tests/data/",
    "tests/model/",
)
# Tests long enough that a worker running one should not queue another long one behind it:
# every pipeline test (a build, a cycle, a browser, a CLI process) and every xdist group.
LONG = ("tests/pipeline/",)


def schedule_rank(nodeid: str) -> int:
    """The position of a test in ``SCHEDULE`` (after all of it when it is not listed)."""
    return next((i for i, prefix in enumerate(SCHEDULE) if nodeid.startswith(prefix)), len(SCHEDULE))


class XdistGroupIds:
    """pytest-xdist 3.8 sends a test's ``xdist_group`` to the scheduler as an ``@group`` suffix of
    its node id, written to ``item._nodeid``, which pytest 9.2 no longer reads (node ids are
    structured objects: pytest-xdist issue 1386). The groups were silently ignored: the small
    build was made on every worker. This writes the suffix where pytest 9.2 keeps the id, after
    xdist's own hook (a no-op when xdist's suffix took effect)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if not getattr(config.option, "loadgroup", False):
            return
        from _pytest.nodeid import NodeId

        for item in items:
            names = {
                str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")
            }
            suffix = "@" + "_".join(sorted(names))
            if names and not item.nodeid.endswith(suffix):
                item._id = NodeId.parse(item.nodeid + suffix)  # type: ignore[attr-defined]


def is_long(scope: str) -> bool:
    """Whether an xdist work unit (a node id, or a group's name) is one of the ``LONG`` tests."""
    return "::" not in scope or scope.startswith(LONG)


class FillerScheduling(LoadGroupScheduling):
    """pytest-xdist's ``loadgroup``, except where a worker's next tests come from.

    A worker runs a test only once it holds the next one (the next item decides the teardown),
    and xdist tops a worker up to three pending tests: the two taken after a long test wait for
    it, however long they are themselves (the Airflow test held the backfill and kill-and-repair
    tests for minutes while the other worker ran out of work). Here a worker whose pending tests
    include a long one (``is_long``) takes from the END of the queue (short unit tests, by
    ``SCHEDULE``); otherwise the first unit, as xdist does. From the end it takes the last
    module's tests at once (up to ``FILLER_TESTS``): one at a time, a module's tests ran between
    other modules' and its module fixtures were set up again for each (the truth guard's source
    scan: 1.7 CPU-s in one go, 12.7 interleaved)."""

    FILLER_TESTS = 30

    def _assign_work_unit(self, node) -> None:
        pending = self.assigned_work.get(node, {})
        busy = any(is_long(scope) and not all(done.values()) for scope, done in pending.items())
        if not busy or len(self.workqueue) < 2:
            super()._assign_work_unit(node)
            return
        module = _module(next(reversed(self.workqueue)))
        for _ in range(self.FILLER_TESTS):
            last = next(reversed(self.workqueue))
            if _module(last) != module or len(self.workqueue) < 2:
                break
            self.workqueue.move_to_end(last, last=False)
            super()._assign_work_unit(node)


def _module(scope: str) -> str:
    """The test file of an xdist work unit (a group's name stands for itself)."""
    return scope.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log) -> FillerScheduling | None:
    """``--dist loadgroup`` scheduled by :class:`FillerScheduling` (other modes: xdist's own)."""
    return FillerScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker
        config.pluginmanager.register(XdistGroupIds(), "churn-xdist-group-ids")
    elif hasattr(config.option, "loadscopereorder"):
        # xdist would hand out the groups first, biggest first; SCHEDULE's order instead
        config.option.loadscopereorder = False
