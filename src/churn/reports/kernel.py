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
one and importing what the phase needs (pandas, DuckDB, Great Expectations, scikit-learn,
Matplotlib) costs seconds, a fixed cost that dominates a small daily cycle. While a run of more
than one phase is open (:func:`enable_warm_kernels`, called by the run hooks in
:mod:`churn.runs` with the imports of the notebooks the run will execute, in order):

- a *zygote* (:mod:`churn.reports.zygote`) imports, once for the run, what the phases after the
  first import, and each phase kernel is forked from it (a new process that shares the imported
  modules' pages): a phase kernel costs its cells' work, not a Python start and its imports
  (300 users: 2.8 -> 0.9 CPU-s per kernel, a build 30 -> 21 CPU-s). A kernel the zygote cannot
  give faithfully (another interpreter, other import-time settings) starts the usual way;
- each phase's kernel manager starts one more kernel in the background for the next phase: it
  boots and runs the next phase's imports (:func:`churn.reports.preload.phase_imports`, outside
  the notebook's namespace; no-ops for what the zygote imported) on the other core while the phase
  runs; the next phase's manager adopts it instead of starting its own. It was started with the
  same arguments, environment and working directory as the phase kernels before it.

A kernel left unused at the run's end is killed and the zygote stopped
(:func:`discard_warm_kernels`); a warm kernel also exits by itself when the process that started
it dies (ipykernel's parent poller; the zygote exits with the run process and takes its kernels).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import default

from churn.reports.preload import Import
from churn.reports.zygote import Zygote, shared_zygote

# a warm kernel's start-up line: the next phase's imports (churn.reports.preload.warm_up)
_PRELOAD_LINE = "from churn.reports.preload import warm_up as _warm_up; _warm_up({imports!r}); del _warm_up"

_STATE: dict[str, Any] = {
    "enabled": False,
    "start": None,
    "warm": None,
    "ready": False,
    "phases": [],
    "next": 0,
    "zygote": None,
}
# start: (class, kernel name, config, start arguments) of the last kernel a phase started itself;
# warm: the manager of the kernel started for the next phase; ready: its start has completed;
# phases: each planned phase's imports, in run order; next: index of the next phase to start;
# zygote: the run's kernel fork server (churn.reports.zygote), None if the run has one phase.
_ZYGOTE_WAIT_S = 60.0  # a phase kernel waits this long for the zygote's imports before starting cold


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

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        """Fork the kernel from the run's zygote when it can give one, else start it as usual."""
        zygote: Zygote | None = _STATE["zygote"]
        if zygote is not None and (getattr(self, "_warming", False) or _STATE["start"] is not None):
            # every phase's kernel but the first (which starts while the zygote imports) waits
            # for the zygote: its imports take no longer than a kernel of its own would
            waited = 0.0
            while zygote.ready() is None and waited < _ZYGOTE_WAIT_S:
                await asyncio.sleep(0.05)
                waited += 0.05
        if zygote is not None and self.provisioner is not None and fork_into(self.provisioner, zygote, kernel_cmd, kw):
            self._reconcile_connection_info(self.provisioner.connection_info)
            return
        await super()._async_launch_kernel(kernel_cmd, **kw)

    async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
        await super().start_kernel(**kw)
        if _STATE["enabled"] and not getattr(self, "_warming", False):
            _STATE["start"] = (type(self), self.kernel_name, self.config, dict(kw))

    def client(self, **kwargs: Any) -> Any:
        """The phase's client; also starts the next phase's kernel in the background, if the run
        has a next phase (a one-phase run, e.g. an Airflow task, or the last phase starts none)."""
        if _STATE["enabled"] and not getattr(self, "_counted", False):
            self._counted = True
            _STATE["next"] += 1
        phases, following = _STATE["phases"], _STATE["next"]  # the next phase: phases[following]
        if _STATE["enabled"] and following < len(phases) and _STATE["start"] is not None and _STATE["warm"] is None:
            cls, kernel_name, config, kw = _STATE["start"]
            asyncio.ensure_future(_start_warm(cls, kernel_name, config, kw, phases[following]))
        return super().client(**kwargs)


def fork_into(provisioner: Any, zygote: Zygote, cmd: list[str], kw: dict[str, Any]) -> bool:
    """Fork the kernel ``cmd`` (started with ``kw``: env, cwd) from ``zygote`` as the process of
    ``provisioner`` (a :class:`LocalProvisioner`); False (nothing done) if the zygote cannot."""
    process = zygote.fork(cmd, dict(kw.get("env") or os.environ), kw.get("cwd"))
    if process is None:
        provisioner.log.debug("kernel started without the zygote")
        return False
    provisioner.process, provisioner.pid, provisioner.pgid = process, process.pid, process.pid
    provisioner.cwd = kw.get("cwd") or os.getcwd()
    return True


class ZygoteProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, forking each kernel from the zygote this process was
    given (``CHURN_KERNEL_ZYGOTE``, :func:`churn.reports.zygote.serve_shared`) when it can, for
    kernels that tools other than the pipeline start (nbval, Voila): chosen with
    ``JUPYTER_DEFAULT_PROVISIONER_NAME=churn-zygote`` (an entry point of this package)."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        zygote = shared_zygote(reuse=True)
        if zygote is not None and fork_into(self, zygote, cmd, kwargs):
            return self.connection_info
        return await super().launch_kernel(cmd, **kwargs)


async def _start_warm(
    cls: type[IPCKernelManager], kernel_name: str, config: Any, kw: dict[str, Any], imports: Sequence[Import]
) -> None:
    km = cls(kernel_name=kernel_name, config=config)
    km._warming = True
    _STATE.update(warm=km, ready=False)
    preload = _PRELOAD_LINE.format(imports=tuple(imports))
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


def enable_warm_kernels(phases: Sequence[Sequence[Import]]) -> None:
    """From now on (a pipeline run in this process of one notebook per item of ``phases``, in
    that order), each phase but the first gets a kernel started ahead of time that has done the
    phase's imports (``phases[i]``, see :func:`churn.reports.preload.phase_imports`)."""
    _STATE.update(enabled=True, phases=[tuple(imports) for imports in phases], next=0)
    if _STATE["zygote"] is None:  # the zygote this process was given, else one of the run's own
        _STATE["zygote"] = shared_zygote()
    if _STATE["zygote"] is None and len(phases) > 1:
        _STATE["zygote"] = Zygote(list(dict.fromkeys(item for imports in phases[1:] for item in imports)))


def discard_warm_kernels() -> None:
    """Stop starting kernels ahead of time and kill the one waiting, if any (the run's end)."""
    km, zygote = _STATE["warm"], _STATE["zygote"]
    _STATE.update(enabled=False, start=None, warm=None, ready=False, phases=[], next=0, zygote=None)
    if km is not None:
        _kill(km)
    if zygote is not None:
        zygote.close()


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
