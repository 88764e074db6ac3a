"""The kernel manager phase notebooks run with: IPC transport instead of TCP.

A kernel on TCP without CurveZMQ keys logs "Kernel is running over TCP without encryption" into
every build, once per phase. Over IPC the kernel and Papermill talk through unix sockets next to
the kernel's connection file (readable only by this user), so nothing is exposed on a port and
there is nothing to warn about. ``pipeline.yaml`` sets it per task through
``executor_params: {kernel_manager_class: churn.reports.kernel.IPCKernelManager}``.
"""

from __future__ import annotations

from jupyter_client.manager import AsyncKernelManager
from traitlets import default


class IPCKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` (Papermill's default) whose transport defaults to ``ipc``."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"
