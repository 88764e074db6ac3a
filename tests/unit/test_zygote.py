"""The kernel zygote: a phase kernel forked from the run's fork server is the kernel a fresh
process would have been (same display defaults, paths, environment, working directory; its own
random state; our package imported afresh), and the kernel manager controls it as it controls a
started one (interrupt, exit code, kill); whatever cannot be forked faithfully starts the usual way.

The reference each time is a kernel started the usual way, by the same manager, in the same test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from churn.reports import kernel
from churn.reports.zygote import SHARED_ENV, ForkedProcess, Zygote, serve_shared, shared_zygote

pytestmark = pytest.mark.slow  # real kernels and a real zygote importing the scientific stack

IMPORTS = [("pandas", ()), ("numpy", ()), ("matplotlib", ())]

FACTS = """
import json, os, sys
import numpy as np, pandas as pd, matplotlib
print(json.dumps({
    "pid": os.getpid(), "cwd": os.getcwd(), "path": sys.path, "argv0": os.path.basename(sys.argv[0]),
    "env": {k: v for k, v in os.environ.items() if k != "JPY_PARENT_PID"},
    "pandas": {k: str(pd.get_option(k)) for k in ("display.max_columns", "display.width", "display.max_rows")},
    "backend": matplotlib.get_backend(), "random": np.random.random(), "main": type(sys.modules["__main__"]).__name__,
    "churn": __import__("churn").__file__, "preloaded": "sklearn" in sys.modules,
}))
"""


@pytest.fixture(autouse=True)
def _no_shared_zygote(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests choose the zygote themselves, whatever this process was given."""
    monkeypatch.delenv("CHURN_KERNEL_ZYGOTE", raising=False)


@pytest.fixture()
def zygote() -> Iterator[Zygote]:
    started = Zygote([*IMPORTS, ("sklearn.linear_model", ())])
    deadline = time.monotonic() + 60
    while started.ready() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.ready() is True
    kernel._STATE["zygote"] = started
    try:
        yield started
    finally:
        kernel._STATE["zygote"] = None
        started.close()


async def _execute(km: kernel.IPCKernelManager, code: str, timeout: float = 60) -> tuple[list[str], dict[str, Any]]:
    client = km.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=timeout)
        texts: list[str] = []

        def keep(message: dict[str, Any]) -> None:
            if message["msg_type"] == "stream":
                texts.append(message["content"]["text"])

        reply = await client.execute_interactive(code, output_hook=keep, timeout=timeout)
        return texts, reply["content"]
    finally:
        client.stop_channels()


def _facts(**start: Any) -> tuple[dict[str, Any], Any]:
    async def run() -> tuple[dict[str, Any], Any]:
        km = kernel.IPCKernelManager(kernel_name="python3")
        await km.start_kernel(**start)
        try:
            texts, _ = await _execute(km, FACTS)
            return json.loads("".join(texts)), km.provisioner.process  # type: ignore[union-attr]
        finally:
            await km.shutdown_kernel(now=True)

    return asyncio.run(run())


def test_a_forked_kernel_is_the_kernel_a_fresh_process_would_be(zygote: Zygote, tmp_path: Path) -> None:
    kernel._STATE["zygote"] = None
    started, started_process = _facts(cwd=str(tmp_path))
    kernel._STATE["zygote"] = zygote
    forked, forked_process = _facts(cwd=str(tmp_path))
    again, _ = _facts(cwd=str(tmp_path))

    assert not isinstance(started_process, ForkedProcess) and isinstance(forked_process, ForkedProcess)
    for key in ("cwd", "path", "argv0", "env", "pandas", "backend", "main", "churn"):
        assert forked[key] == started[key], key
    assert forked["preloaded"] and not started["preloaded"]  # what the zygote imported is there, shared
    assert len({started["random"], forked["random"], again["random"]}) == 3  # each its own seed
    assert forked["pid"] != again["pid"]


def test_the_manager_interrupts_and_kills_a_forked_kernel_and_reads_its_exit(zygote: Zygote) -> None:
    async def run() -> None:
        km = kernel.IPCKernelManager(kernel_name="python3")
        await km.start_kernel()
        process = km.provisioner.process  # type: ignore[union-attr]
        assert isinstance(process, ForkedProcess) and process.poll() is None
        assert os.getpgid(process.pid) == process.pid  # its own process group, signals go there
        client = km.client()
        client.start_channels()
        await client.wait_for_ready(timeout=60)
        pending = asyncio.ensure_future(client.execute_interactive("import time; time.sleep(60)", timeout=90))
        await asyncio.sleep(1.0)
        await km.interrupt_kernel()
        reply = await asyncio.wait_for(pending, 30)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        client.stop_channels()
        await km.shutdown_kernel(now=True)  # kills it: the exit code comes from the zygote
        assert process.wait(timeout=5) == -signal.SIGKILL

    asyncio.run(run())


def test_a_clean_exit_reports_its_code(zygote: Zygote) -> None:
    async def run() -> int:
        km = kernel.IPCKernelManager(kernel_name="python3")
        await km.start_kernel()
        process = km.provisioner.process  # type: ignore[union-attr]
        await _execute(km, "pass")
        await km.shutdown_kernel()  # polite: the kernel exits by itself
        return process.wait(timeout=10)

    assert asyncio.run(run()) == 0


def test_a_kernel_whose_imports_would_differ_starts_the_usual_way(zygote: Zygote, tmp_path: Path) -> None:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1" if os.environ.get("OPENBLAS_NUM_THREADS") != "1" else "2"}
    facts, process = _facts(env=env)
    assert not isinstance(process, ForkedProcess) and not facts["preloaded"]


def test_the_zygote_going_away_takes_its_kernels_and_answers_their_managers(tmp_path: Path) -> None:
    zygote = Zygote(IMPORTS)
    deadline = time.monotonic() + 60
    while zygote.ready() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process = zygote.spawn(
        [sys.executable, "-m", "ipykernel_launcher", "-f", str(tmp_path / "k.json")], dict(os.environ), None
    )
    assert process.poll() is None
    zygote.close()
    assert process.wait(timeout=10) == -signal.SIGKILL
    assert not psutil.pid_exists(process.pid) or psutil.Process(process.pid).status() == psutil.STATUS_ZOMBIE


def test_a_run_forks_its_phase_kernels_from_one_zygote_and_stops_it_at_its_end() -> None:
    kernel.enable_warm_kernels([[("pandas", ())], [("pandas", ())]])
    zygote = kernel._STATE["zygote"]
    try:
        assert isinstance(zygote, Zygote)
        deadline = time.monotonic() + 60
        while zygote.ready() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        facts, process = _facts()
        assert isinstance(process, ForkedProcess) and facts["cwd"] == os.getcwd()
    finally:
        kernel.discard_warm_kernels()
    assert kernel._STATE["zygote"] is None
    assert zygote._process.poll() is not None  # the zygote exited with the run


def test_a_shared_zygote_forks_every_kernel_of_one_phase_runs_and_outlives_them(tmp_path: Path) -> None:
    """A worker that runs one phase per task (Airflow) keeps one zygote: each run connects to it,
    its first (and only) kernel is forked too, and the zygote serves the next run."""
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "01_phase.py").write_text("# %%\nimport pandas\nimport sklearn.linear_model\n")
    socket_path = tmp_path / "zygote.sock"
    with serve_shared(socket_path, tmp_path / "nb") as path:
        assert os.environ[SHARED_ENV] == path
        pids = []
        for _ in range(2):  # two runs, one after the other
            kernel.enable_warm_kernels([[("pandas", ())]])
            try:
                facts, process = _facts()
            finally:
                kernel.discard_warm_kernels()
            assert isinstance(process, ForkedProcess) and facts["preloaded"]
            pids.append(facts["pid"])
        assert pids[0] != pids[1]
        # a run process that goes away without shutting its kernel down takes it along
        connection = Zygote.connect(path)
        assert connection is not None
        orphan = connection.spawn(
            [sys.executable, "-m", "ipykernel_launcher", "-f", str(tmp_path / "k.json")], dict(os.environ), None
        )
        connection.close()
        assert orphan.wait(timeout=10) == -signal.SIGKILL
    assert SHARED_ENV not in os.environ and not socket_path.exists()


def test_kernels_of_other_tools_fork_through_the_provisioner_entry_point(tmp_path: Path, monkeypatch) -> None:
    """nbval and Voila start kernels with jupyter_client's own KernelManager: with
    JUPYTER_DEFAULT_PROVISIONER_NAME=churn-zygote and a shared zygote they fork too; a kernel
    the zygote cannot give (another PYTHONPATH) still starts, the usual way."""
    from jupyter_client.manager import KernelManager
    from jupyter_client.provisioning.factory import KernelProvisionerFactory

    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "01_phase.py").write_text("# %%\nimport pandas\n")
    # what the variable sets when a process's first kernel starts (the factory is a singleton)
    monkeypatch.setattr(KernelProvisionerFactory.instance(), "default_provisioner_name", "churn-zygote")
    with serve_shared(tmp_path / "zygote.sock", tmp_path / "nb"):
        for env, forked in ((None, True), ({**os.environ, "PYTHONPATH": str(tmp_path)}, False)):
            km = KernelManager(kernel_name="python3")
            km.start_kernel(**({"env": env} if env else {}))
            try:
                assert type(km.provisioner).__name__ == "ZygoteProvisioner"
                assert isinstance(km.provisioner.process, ForkedProcess) is forked  # type: ignore[union-attr]
                client = km.client()
                client.start_channels()
                client.wait_for_ready(timeout=60)
                reply = client.execute_interactive("import pandas; print(pandas.__name__)", timeout=60)
                assert reply["content"]["status"] == "ok"
                client.stop_channels()
            finally:
                km.shutdown_kernel(now=True)


def test_a_worker_runs_a_shared_zygote_from_the_command_line_and_stops_it_with_sigterm(tmp_path: Path) -> None:
    """`python -m churn.reports.zygote --listen SOCKET --notebooks FOLDER`, what a scheduler's
    worker runs: it serves once the socket answers; SIGTERM stops it, its kernels and the socket."""
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "01_phase.py").write_text("# %%\nimport pandas\n")
    socket_path = tmp_path / "z.sock"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "churn.reports.zygote",
            "--listen",
            str(socket_path),
            "--notebooks",
            str(tmp_path / "nb"),
        ]
    )
    try:
        deadline = time.monotonic() + 60
        while (zygote := Zygote.connect(str(socket_path), timeout=1.0)) is None:
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        kernel_process = zygote.spawn(
            [sys.executable, "-m", "ipykernel_launcher", "-f", str(tmp_path / "k.json")], dict(os.environ), None
        )
        assert kernel_process.poll() is None
        server.terminate()
        assert server.wait(timeout=20) == 0
        assert kernel_process.wait(timeout=10) == -signal.SIGKILL and not socket_path.exists()
    finally:
        if server.poll() is None:
            server.kill()


def test_the_connection_kept_for_other_tools_is_renewed_when_its_zygote_has_gone(tmp_path: Path) -> None:
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "01_phase.py").write_text("# %%\nimport json\n")
    socket_path = tmp_path / "zygote.sock"
    with serve_shared(socket_path, tmp_path / "nb"):
        first = shared_zygote(reuse=True)
        assert first is not None and first is shared_zygote(reuse=True) and first.alive()
    assert not first.alive() and shared_zygote(reuse=True) is None  # gone (and no longer given)
    with serve_shared(socket_path, tmp_path / "nb"):
        second = shared_zygote(reuse=True)
        assert second is not None and second is not first and second.alive()
