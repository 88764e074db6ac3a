"""The kernel manager phase notebooks run with: IPC transport instead of TCP, and, inside a
pipeline run, the next phase's kernel started while the current phase runs.

A kernel on TCP without CurveZMQ keys logs "Kernel is running over TCP without encryption" into
every build, once per phase. Over IPC the kernel and Papermill talk through unix sockets next to
the kernel's connection file (readable only by this user), so nothing is exposed on a port and
there is nothing to warn about. The sockets live in Jupyter's runtime directory under a name unique
to the kernel (jupyter_client's default, ``kernel-ipc-N`` in the working directory, left sockets in
the checkout whenever a kernel was killed). ``pipeline.yaml`` sets it per task through
``executor_params: {kernel_manager_class: churn.reports.kernel.IPCKernelManager}``.

**Warm kernels.** Every phase gets a fresh kernel process (no state crosses phases), but starting
one and importing pandas, NumPy, DuckDB, Matplotlib, SciPy and scikit-learn costs seconds per
phase, a fixed cost that dominates a small daily cycle. While a run is open
(:func:`enable_warm_kernels`, called by the run hooks in :mod:`churn.runs`), each phase's kernel
manager starts one more kernel in the background that boots and imports those modules
(:data:`PRELOAD`, outside the notebook's namespace) on the other core while the phase runs; the
next phase's manager adopts it instead of starting its own. It was started with the same
arguments, environment and working directory as the phase kernels before it. A kernel left
unused at the run's end is killed (:func:`discard_warm_kernels`); a warm kernel also exits by
itself when the process that started it dies (ipykernel's parent poller).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import default

PRELOAD = ("numpy", "pandas", "duckdb", "matplotlib.pyplot", "scipy.stats", "sklearn.linear_model", "sklearn.pipeline")
"""Modules a warm kernel imports while it waits (most phases use them; the notebooks' own imports
then find them loaded). Great Expectations is left out: two phases of ten use it."""
_PRELOAD_LINE = "import importlib as _imp; [_imp.import_module(_m) for _m in {modules!r}]; del _imp, _m"

_STATE: dict[str, Any] = {"enabled": False, "start": None, "warm": None, "ready": False, "left": 0}
# start: (class, kernel name, config, start arguments) of the last kernel a phase started itself;
# warm: the manager of the kernel started for the next phase; ready: its start has completed;
# left: phases of the run still to come after the ones that got a kernel (none: no warm kernel).


class IPCKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` (Papermill's default) whose transport defaults to ``ipc``."""

    _adopted = False  # a warm kernel's manager, taken over by a phase
    _warming = False  # started ahead of time for the next phase

    def __new__(cls, *args: Any, **kwargs: Any) -> IPCKernelManager:
        warm = _take_warm(cls, kwargs.get("kernel_name"))
        return warm if warm is not None else super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if getattr(self, "_adopted", False):
            return  # a warm kernel's manager, already initialised and running
        super().__init__(*args, **kwargs)

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        runtime = Path(jupyter_runtime_dir())
        runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
        return str(runtime / f"churn-{os.getpid()}-{secrets.token_hex(4)}-ipc")

    async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
        await super().start_kernel(**kw)
        if _STATE["enabled"] and not getattr(self, "_warming", False):
            _STATE["start"] = (type(self), self.kernel_name, self.config, dict(kw))

    def client(self, **kwargs: Any) -> Any:
        """The phase's client; also starts the next phase's kernel in the background, if the run
        has a next phase (a one-phase run, e.g. an Airflow task, or the last phase starts none)."""
        if _STATE["enabled"] and not getattr(self, "_counted", False):
            self._counted = True
            _STATE["left"] -= 1
        if _STATE["enabled"] and _STATE["left"] > 0 and _STATE["start"] is not None and _STATE["warm"] is None:
            asyncio.ensure_future(_start_warm(*_STATE["start"]))
        return super().client(**kwargs)


async def _start_warm(cls: type[IPCKernelManager], kernel_name: str, config: Any, kw: dict[str, Any]) -> None:
    km = cls(kernel_name=kernel_name, config=config)
    km._warming = True
    _STATE.update(warm=km, ready=False)
    preload = _PRELOAD_LINE.format(modules=PRELOAD)
    extra = [*kw.get("extra_arguments", []), f"--IPKernelApp.exec_lines={preload}"]
    try:
        await km.start_kernel(**{**kw, "extra_arguments": extra})
    except Exception:  # no warm kernel this time: the next phase starts its own
        if _STATE["warm"] is km:
            _STATE["warm"] = None
        _kill(km)
        return
    _STATE["ready"] = _STATE["warm"] is km


def _take_warm(cls: type[IPCKernelManager], kernel_name: str | None) -> IPCKernelManager | None:
    """The warm kernel's manager, if one is ready for this class and kernel (else None)."""
    km = _STATE["warm"]
    if not _STATE["enabled"] or km is None or not _STATE["ready"] or type(km) is not cls:
        return None
    if kernel_name is not None and km.kernel_name != kernel_name:
        return None
    _STATE.update(warm=None, ready=False)
    process = getattr(km.provisioner, "process", None)
    if process is None or process.poll() is not None:  # it died while waiting
        _kill(km)
        return None
    km._adopted, km._warming = True, False
    return km


def enable_warm_kernels(phases: int) -> None:
    """From now on (a pipeline run of ``phases`` notebooks in this process), each phase but the
    first gets a kernel started ahead of time."""
    _STATE.update(enabled=True, left=phases)


def discard_warm_kernels() -> None:
    """Stop starting kernels ahead of time and kill the one waiting, if any (the run's end)."""
    km = _STATE["warm"]
    _STATE.update(enabled=False, start=None, warm=None, ready=False, left=0)
    if km is not None:
        _kill(km)


def _kill(km: IPCKernelManager) -> None:
    """Kill a warm kernel's process and remove its connection file and sockets (synchronous)."""
    process = getattr(km.provisioner, "process", None)
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    km.cleanup_connection_file()
    km.cleanup_ipc_files()
    km._close_control_socket()


atexit.register(discard_warm_kernels)
