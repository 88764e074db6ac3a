"""A fork server for phase kernels: the run's imports done once, each phase's kernel forked from it.

Every phase runs in a fresh kernel (no state crosses phases), and a fresh Python process that
imports pandas, DuckDB, scikit-learn and Great Expectations pays one to three CPU-seconds before
the phase's first cell does any work, in every phase of every run: most of a small daily cycle.
A *zygote* is a process started once per pipeline run that imports the modules the run's phases
import (:func:`churn.reports.preload.phase_imports`) and then only forks: each fork becomes one
phase's kernel (``ipykernel``'s launcher, with the arguments, environment and working directory
the kernel manager asked for), a new process with nothing in its namespace that shares the
imported modules' memory with the zygote until it writes to it.

What a forked kernel could inherit from the zygote, and how each is handled:

- the environment and ``sys.path``: replaced by the requested ones; a request whose
  import-relevant variables (``PYTHONPATH``, thread counts, Matplotlib's and GX's settings...)
  differ from the zygote's is refused and that kernel starts the usual way;
- random state: ``random`` reseeds itself at fork, NumPy's legacy global generator is reseeded
  from the OS (a fresh process would have got a fresh seed too);
- our own package: the zygote imports no ``churn`` module for its kernels (it drops the few the
  preloading needs), so a kernel imports ``churn`` as a fresh process does;
- threads: a process is forked only while the zygote runs none besides its main thread
  (BLAS pools stop themselves at fork); the zygote refuses requests otherwise;
- Matplotlib: ``MPLBACKEND`` is set to the inline backend before the imports, exactly as ipykernel
  sets it at a kernel's start, so Matplotlib reads the same backend; ``pyplot`` itself (which
  binds to the running IPython shell) is not imported in the zygote.

The kernel manager sees a process like the one :class:`subprocess.Popen` gives (``pid``, ``poll``,
``wait``, ``send_signal``, ``kill``): :class:`ForkedKernel`. Each kernel has a socket pair of its
own with the zygote, which reports the kernel's pid (sent by the kernel itself once it leads its
own session: signals go to its process group, as for a kernel started by ``jupyter_client``) and,
when the zygote reaps it, its exit code. The zygote exits when the process that started it
closes its end of the control socket (dies, or the run ends), killing its kernels first.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import importlib.util
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from churn.reports.preload import PLOTTING, Import

_KERNEL_MODULE = "ipykernel_launcher"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
# variables read at import time by what the zygote preloads: a kernel asking for other values
# than the zygote started with is started the usual way
IMPORT_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSAFEPATH",
    "MPLBACKEND",
    "MPLCONFIGDIR",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "GX_ANALYTICS_ENABLED",
    "GX_HOME",
    "TZ",
)
_MESSAGE = 1 << 20  # largest request: a kernel's argv and environment


class ForkedKernel:
    """The kernel manager's handle on a kernel forked by the zygote (``subprocess.Popen``'s
    process interface: ``pid``, ``returncode``, ``poll``, ``wait``, signals)."""

    stdin = stdout = stderr = None
    args: list[str]

    def __init__(self, args: list[str], pid: int, lifeline: socket.socket) -> None:
        self.args, self.pid = args, pid
        self.returncode: int | None = None
        self._lifeline: socket.socket | None = lifeline

    def poll(self) -> int | None:
        if self.returncode is None:
            self._receive(block=False)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self._receive(block=True, timeout=left)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:  # never signal a pid the zygote has reaped (it may be reused)
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _receive(self, block: bool, timeout: float | None = None) -> None:
        lifeline = self._lifeline
        if lifeline is None:
            return
        lifeline.settimeout(timeout if block else 0.0)
        try:
            data = lifeline.recv(256)
        except (BlockingIOError, TimeoutError):
            return
        except OSError:
            data = b""
        if data:
            self.returncode = int(json.loads(data)["exit"])
        else:  # the zygote is gone: so is the kernel (it exits with its parent)
            self.returncode = -signal.SIGKILL
        lifeline.close()
        self._lifeline = None


class Zygote:
    """The run process's end of a zygote: started with the imports to do, then asked for kernels."""

    def __init__(self, imports: Sequence[Import]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**os.environ, "MPLBACKEND": os.environ.get("MPLBACKEND") or INLINE_BACKEND}
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        self._control = ours
        self._ready: bool | None = None
        self._env = _import_env(env)
        ours.send(json.dumps([list(item) for item in imports if item != PLOTTING]).encode())

    def ready(self) -> bool | None:
        """True once the zygote has done its imports, None while it imports, False if it failed."""
        if self._ready is None:
            self._control.settimeout(0.0)
            try:
                answer = self._control.recv(256)
            except (BlockingIOError, TimeoutError):
                return None
            except OSError:
                answer = b""
            finally:
                self._control.settimeout(None)
            self._ready = bool(answer) and bool(json.loads(answer).get("ready", False))
        return self._ready

    def accepts(self, cmd: Sequence[str], env: dict[str, str]) -> bool:
        """Whether a kernel started as ``cmd`` with ``env`` can be forked from this zygote."""
        return (
            len(cmd) >= 3
            and cmd[0] == sys.executable
            and list(cmd[1:3]) == ["-m", _KERNEL_MODULE]
            and _import_env(env) == self._env
            and self.ready() is True
        )

    def spawn(self, cmd: Sequence[str], env: dict[str, str], cwd: str | None) -> ForkedKernel:
        """A kernel forked from the zygote (raises ``OSError`` if the zygote cannot give one)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            request = {"argv": list(cmd), "env": env, "cwd": cwd or os.getcwd()}
            socket.send_fds(self._control, [json.dumps(request).encode()], [theirs.fileno()])
        finally:
            theirs.close()
        ours.settimeout(30)
        try:
            answer = ours.recv(256)
        except TimeoutError:
            answer = b""
        if not answer or "pid" not in json.loads(answer):
            ours.close()
            raise OSError(f"the kernel zygote refused to fork: {answer.decode() or 'no answer'}")
        return ForkedKernel(list(cmd), int(json.loads(answer)["pid"]), ours)

    def close(self) -> None:
        """Stop the zygote (it kills the kernels it forked that are still running)."""
        self._control.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


# ---------------------------------------------------------------------------- the zygote process


def _serve(control: socket.socket) -> None:
    """Do the imports the first message names, say ready, then fork a kernel per request."""
    from churn.reports.preload import warm_up

    gc.disable()  # Python's advice for a process that forks without exec: no holes in the pages
    own_env = _import_env(os.environ)  # as started: the preloading sets GX_ANALYTICS_ENABLED
    # pandas picks its display defaults at import by asking IPython whether it runs in a kernel
    # (``get_ipython().kernel``): the zygote answers as the kernels it forks will
    builtins.get_ipython = _InKernel  # type: ignore[attr-defined]
    try:
        warm_up([(module, tuple(names)) for module, names in json.loads(control.recv(_MESSAGE))])
    finally:
        del builtins.get_ipython  # type: ignore[attr-defined]
    import ipykernel.kernelapp  # noqa: F401  (what every kernel imports first)

    launcher = importlib.util.find_spec(_KERNEL_MODULE)
    own = {"env": own_env, "cwd": os.getcwd(), "launcher": launcher.origin if launcher else _KERNEL_MODULE}
    for name in [name for name in sys.modules if name == "churn" or name.startswith("churn.")]:
        del sys.modules[name]  # kernels import our package afresh, from their own sys.path
    gc.freeze()  # the kernels' collections leave the preloaded objects (and their pages) alone
    control.send(json.dumps({"ready": True}).encode())

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    kernels: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    try:
        while True:
            for key, _ in selector.select():
                if key.fileobj is wake_r:
                    os.read(wake_r, 4096)
                    _reap(kernels)
                    continue
                try:
                    message, fds, _, _ = socket.recv_fds(control, _MESSAGE, 1)
                except OSError:
                    message, fds = b"", []
                if not message:  # the run process closed its end: the run is over
                    return
                lifeline = socket.socket(fileno=fds[0])
                request = json.loads(message)
                refusal = _refusal(request, own)
                if refusal:
                    lifeline.send(json.dumps({"refused": refusal}).encode())
                    lifeline.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    selector.close()
                    os.close(wake_r)
                    os.close(wake_w)
                    control.close()
                    for other in kernels.values():
                        other.close()
                    _become_kernel(request, lifeline, own)  # never returns
                kernels[pid] = lifeline
    finally:
        for pid in kernels:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


class _InKernel:
    """What ``get_ipython()`` is to a module imported inside a Jupyter kernel, as far as the
    preloaded modules ask (pandas: ``hasattr(get_ipython(), "kernel")``)."""

    kernel = True


def _import_env(env: Any) -> dict[str, str | None]:
    """The variables of ``env`` that imports read, as a kernel will see them (ipykernel sets
    ``MPLBACKEND`` to the inline backend when it is unset, before any import of Matplotlib)."""
    values = {name: env.get(name) for name in IMPORT_ENV}
    values["MPLBACKEND"] = values["MPLBACKEND"] or INLINE_BACKEND
    return values


def _refusal(request: dict[str, Any], own: dict[str, Any]) -> str:
    """Why a kernel cannot be forked from this zygote ("" if it can)."""
    if threading.active_count() > 1:
        return "the zygote runs threads"
    env = _import_env(request["env"])
    differing = [name for name in IMPORT_ENV if env[name] != own["env"][name]]
    if differing:
        return f"the kernel's environment differs in {', '.join(differing)}"
    relative = [p for p in (env["PYTHONPATH"] or "").split(os.pathsep) if p and not os.path.isabs(p)]
    if relative and os.path.realpath(request["cwd"]) != os.path.realpath(own["cwd"]):
        return "PYTHONPATH has relative folders and the kernel runs in another folder"
    return ""


def _reap(kernels: dict[int, socket.socket]) -> None:
    while kernels:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        lifeline = kernels.pop(pid, None)
        if lifeline is not None:
            with contextlib.suppress(OSError):
                lifeline.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
            lifeline.close()


def _become_kernel(request: dict[str, Any], lifeline: socket.socket, own: dict[str, Any]) -> None:
    """In the forked child: turn into the requested ``python -m ipykernel_launcher ...`` process."""
    code = 1
    try:
        os.setsid()  # its own session and process group, as jupyter_client starts kernels
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a fresh process's
        gc.enable()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        lifeline.send(json.dumps({"pid": os.getpid()}).encode())
        lifeline.close()
        cwd = request["cwd"]
        os.chdir(cwd)
        zygote = os.getppid()
        os.environ.clear()
        os.environ.update({**request["env"], "JPY_PARENT_PID": str(zygote)})
        if sys.path and os.path.realpath(sys.path[0]) == os.path.realpath(own["cwd"]):
            del sys.path[0]  # the folder ``python -m`` put first, as ipykernel's launcher does
        # ipykernel read JPY_PARENT_PID when the zygote imported it: the kernel exits with the zygote
        sys.argv = [own["launcher"], *request["argv"][3:], f"--IPKernelApp.parent_handle={zygote}"]
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()  # a fresh process would not share the zygote's seed
        from ipykernel.kernelapp import launch_new_instance

        launch_new_instance()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # shown where a kernel's crash is shown: its stderr
        import traceback

        traceback.print_exc()
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main(fd: int) -> None:
    """The zygote process: serve until the run process closes its end (or goes away).

    Ctrl-C in a terminal reaches the whole foreground process group: the run process handles it
    and its end of the socket closes, so the zygote ignores it; a run that ends (fails) while the
    zygote still imports finds it gone quietly too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, ValueError):
        _serve(socket.socket(fileno=fd))


if __name__ == "__main__":
    main(int(sys.argv[1]))
