"""The kernel manager phase notebooks run with: IPC transport instead of TCP.

A kernel on TCP without CurveZMQ keys logs "Kernel is running over TCP without encryption" into
every build, once per phase. Over IPC the kernel and Papermill talk through unix sockets next to
the kernel's connection file (readable only by this user), so nothing is exposed on a port and
there is nothing to warn about. The sockets live in Jupyter's runtime directory under a name unique
to the kernel (jupyter_client's default, ``kernel-ipc-N`` in the working directory, left sockets in
the checkout whenever a kernel was killed). ``pipeline.yaml`` sets it per task through
``executor_params: {kernel_manager_class: churn.reports.kernel.IPCKernelManager}``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import default


class IPCKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` (Papermill's default) whose transport defaults to ``ipc``."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        runtime = Path(jupyter_runtime_dir())
        runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
        return str(runtime / f"churn-{os.getpid()}-{secrets.token_hex(4)}-ipc")
