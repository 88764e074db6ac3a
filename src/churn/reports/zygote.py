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
  binds to the running IPython shell) is not imported in the zygote;
- what modules decide at import by looking at the process: pandas picks its display defaults by
  asking ``get_ipython()`` whether it runs in a kernel (the zygote answers as its kernels will);
  ``tqdm.auto`` (a widget in a kernel, a text bar elsewhere) is dropped after the preloading and
  imported by the kernel that uses it;
- the garbage collector: off while importing and the imported objects frozen before any fork
  (Python's advice for fork without exec), on again in each kernel.

**Shared.** A machine that runs one run after another (a scheduler's worker: each Airflow task
is a one-phase run) keeps one zygote for all of them (:func:`serve_shared`): it listens on a unix
socket named by ``CHURN_KERNEL_ZYGOTE`` in the runs' environment, each run process connects, and
every phase kernel, the first included, and the run's Ploomber process itself
(``python -m churn.cli.ploomber_main``, Ploomber imported in the zygote) are forked from it.
Kernels other tools start (nbval, Voila) use it through the ``churn-zygote`` provisioner
(:class:`churn.reports.kernel.ZygoteProvisioner`). A connection that closes (its run process
ended or died) takes the processes forked for it.

The kernel manager sees a process like the one :class:`subprocess.Popen` gives (``pid``, ``poll``,
``wait``, ``send_signal``, ``kill``): :class:`ForkedProcess`. Each kernel has a socket pair of its
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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from churn.reports.preload import PLOTTING, Import, phase_imports

_KERNEL_MODULE = "ipykernel_launcher"
PLOOMBER_MODULE = "churn.cli.ploomber_main"  # a run's Ploomber process (churn.cli.runner)
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
# modules that decide at import what they are by looking at the process around them (tqdm.auto:
# a notebook's progress widget inside a kernel, a text bar elsewhere): cheap, left to the kernel
_PROBING = ("tqdm.auto", "tqdm.autonotebook")
SHARED_ENV = "CHURN_KERNEL_ZYGOTE"  # the socket of a zygote serving this process's runs
_MESSAGE = 1 << 20  # largest request: a kernel's argv and environment


class ForkedProcess:
    """The handle on a process forked by the zygote (a phase kernel, a run's Ploomber process):
    ``subprocess.Popen``'s process interface (``pid``, ``returncode``, ``poll``, ``wait``,
    signals), which is what jupyter_client's provisioner and :mod:`churn.cli.runner` use."""

    stdin = stderr = None
    stdout: Any = None  # the read end of its output, when the caller gave it a pipe
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
    """A run process's connection to a zygote: its own (started with the imports to do, stopped
    with the run) or a shared one (:func:`connect`), then asked for kernels."""

    def __init__(self, imports: Sequence[Import]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", __name__, "--fd", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=_zygote_env(),
        )
        theirs.close()
        self._control = ours
        self._ready: bool | None = None
        self._hello: dict[str, Any] = {}
        ours.send(json.dumps([list(item) for item in imports if item != PLOTTING]).encode())

    @classmethod
    def connect(cls, path: str, timeout: float = 10.0) -> Zygote | None:
        """A connection to the zygote serving at ``path`` (:func:`serve_shared`), None if none
        answers there."""
        control = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        control.settimeout(timeout)
        try:
            control.connect(path)
            hello = control.recv(_MESSAGE)
        except OSError:
            control.close()
            return None
        control.settimeout(None)
        zygote = cls.__new__(cls)
        zygote._process, zygote._control, zygote._ready, zygote._hello = None, control, None, {}
        zygote._greeted(hello)
        return zygote if zygote._ready else None

    def ready(self) -> bool | None:
        """True once the zygote has done its imports, None while it imports, False if it failed."""
        if self._ready is None:
            self._control.settimeout(0.0)
            try:
                answer = self._control.recv(_MESSAGE)
            except (BlockingIOError, TimeoutError):
                return None
            except OSError:
                answer = b""
            finally:
                self._control.settimeout(None)
            self._greeted(answer)
        return self._ready

    def alive(self) -> bool:
        """Whether the zygote is still at the other end of this connection (it sends nothing after
        its greeting: a readable socket means it closed)."""
        if self._control.fileno() < 0:
            return False
        self._control.settimeout(0.0)
        try:
            return self._control.recv(1, socket.MSG_PEEK) != b""
        except (BlockingIOError, TimeoutError):
            return True
        except OSError:
            return False
        finally:
            if self._control.fileno() >= 0:
                self._control.settimeout(None)

    def _greeted(self, answer: bytes) -> None:
        self._hello = json.loads(answer) if answer else {}
        self._ready = bool(self._hello.get("ready", False))

    def accepts(self, cmd: Sequence[str], env: dict[str, str]) -> bool:
        """Whether a kernel started as ``cmd`` with ``env`` can be forked from this zygote: the
        zygote's interpreter, ipykernel's launcher, the same import-time settings."""
        return (
            self.ready() is True
            and len(cmd) >= 3
            and cmd[0] == self._hello.get("executable")
            and cmd[1] == "-m"
            and cmd[2] in self._hello.get("modules", ())
            and _import_env(env) == self._hello.get("env")
        )

    def spawn(
        self, cmd: Sequence[str], env: dict[str, str], cwd: str | None, stdout: int = 1, stderr: int = 2
    ) -> ForkedProcess:
        """A process (``python -m MODULE ...``) forked from the zygote, writing to ``stdout`` and
        ``stderr`` (this process's by default; raises ``OSError`` if the zygote cannot give one)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            request = {"argv": list(cmd), "env": env, "cwd": cwd or os.getcwd()}
            socket.send_fds(self._control, [json.dumps(request).encode()], [theirs.fileno(), stdout, stderr])
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
        return ForkedProcess(list(cmd), int(json.loads(answer)["pid"]), ours)

    def fork(
        self, cmd: Sequence[str], env: dict[str, str], cwd: str | None, stdout: int = 1, stderr: int = 2
    ) -> ForkedProcess | None:
        """:meth:`spawn` if the zygote :meth:`accepts` the command, None if it does not or cannot
        give one (the caller starts the process the usual way)."""
        if not self.accepts(cmd, env):
            return None
        try:
            return self.spawn(cmd, env, cwd, stdout, stderr)
        except OSError:
            return None

    def close(self) -> None:
        """Close the connection (the zygote kills the kernels forked through it that still run);
        a zygote of the run's own stops."""
        self._control.close()
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def _zygote_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The zygote's environment: ``env`` (this process's by default), with Matplotlib's backend
    as a kernel sets it."""
    env = os.environ if env is None else env
    return {**env, "MPLBACKEND": env.get("MPLBACKEND") or INLINE_BACKEND}


@contextlib.contextmanager
def serve_shared(path: Path, notebooks: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """A zygote with every import of the phase notebooks in the folder ``notebooks`` done, serving every pipeline run started from
    this process or its children (``CHURN_KERNEL_ZYGOTE``) while the block runs; yields its socket.

    For a machine that runs one run after another, each with few phases (a scheduler's worker
    running one phase per task): each phase kernel, the first included, is then forked. ``env``:
    the environment the runs' kernels will have (this process's by default), if other: a kernel
    whose import-time settings (``PYTHONPATH``...) differ from the zygote's starts the usual way."""
    until_r, until_w = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", __name__, "--listen", str(path), "--notebooks", str(notebooks),
         "--until-closed", str(until_r), "--ploomber", "yes"],
        pass_fds=[until_r],
        stdin=subprocess.DEVNULL,
        env=_zygote_env(env),
    )  # fmt: skip
    os.close(until_r)
    previous = os.environ.get(SHARED_ENV)
    try:
        deadline = time.monotonic() + 120
        while (probe := Zygote.connect(str(path), timeout=1.0)) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the kernel zygote did not start serving at {path}")
            time.sleep(0.1)
        probe.close()
        os.environ[SHARED_ENV] = str(path)
        yield str(path)
    finally:
        if previous is None:
            os.environ.pop(SHARED_ENV, None)
        else:
            os.environ[SHARED_ENV] = previous
        os.close(until_w)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_KEPT: dict[str, Zygote] = {}  # this process's lasting connection per shared zygote (reuse=True)


def shared_zygote(reuse: bool = False) -> Zygote | None:
    """A connection to the zygote this process was given (``CHURN_KERNEL_ZYGOTE``), if it answers:
    a new one (a run's: closing it ends what was forked through it), or with ``reuse`` the one this
    process keeps for kernels started outside runs (:class:`churn.reports.kernel.ZygoteProvisioner`),
    renewed if that zygote has gone."""
    path = os.environ.get(SHARED_ENV)  # process plumbing, as JPY_PARENT_PID: not a setting
    if not path:
        return None
    if not reuse:
        return Zygote.connect(path)
    kept = _KEPT.get(path)
    if kept is None or not kept.alive():
        kept = Zygote.connect(path)
        if kept is None:
            _KEPT.pop(path, None)
            return None
        _KEPT[path] = kept
    return kept


# ---------------------------------------------------------------------------- the zygote process


def _preload(imports: list[list[Any]], ploomber: bool = False) -> dict[str, Any]:
    """Do ``imports`` (as a kernel would) and, with ``ploomber``, Ploomber's (as a run's Ploomber
    process does them), freeze them for the forks; what a request is checked against: the
    interpreter, the import-time environment, the folder, the modules it may run."""
    from churn.reports.preload import warm_up

    gc.disable()  # Python's advice for a process that forks without exec: no holes in the pages
    own_env = _import_env(os.environ)  # as started: the preloading sets GX_ANALYTICS_ENABLED
    # pandas picks its display defaults at import by asking IPython whether it runs in a kernel
    # (``get_ipython().kernel``): the zygote answers as the kernels it forks will
    builtins.get_ipython = _InKernel  # type: ignore[attr-defined]
    try:
        warm_up([(module, tuple(names)) for module, names in imports])
    finally:
        del builtins.get_ipython  # type: ignore[attr-defined]
    import ipykernel.kernelapp  # noqa: F401  (what every kernel imports first)

    modules = [_KERNEL_MODULE]
    if ploomber:
        from churn.lean import ploomber_cli

        ploomber_cli()
        modules.append(PLOOMBER_MODULE)

    launcher = importlib.util.find_spec(_KERNEL_MODULE)
    for name in [name for name in sys.modules if name == "churn" or name.startswith("churn.")]:
        if name != __name__:
            del sys.modules[name]  # kernels import our package afresh, from their own sys.path
    for name in _PROBING:  # imported again by the kernel that uses them: they look around there
        sys.modules.pop(name, None)
    gc.freeze()  # the kernels' collections leave the preloaded objects (and their pages) alone
    return {
        "ready": True,
        "executable": sys.executable,
        "env": own_env,
        "cwd": os.getcwd(),
        "launcher": launcher.origin if launcher else _KERNEL_MODULE,
        "modules": modules,
    }


class _Server:
    """The zygote's loop: connections (one per run process) ask for kernels; each kernel's exit
    code goes back on its own socket; a connection that closes takes its running kernels."""

    def __init__(self, hello: dict[str, Any]) -> None:
        self.hello = hello
        self.selector = selectors.DefaultSelector()
        self.kernels: dict[int, tuple[socket.socket, socket.socket]] = {}  # pid -> (lifeline, connection)
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector.register(self.wake_r, selectors.EVENT_READ, "reap")
        self.fds = [self.wake_r, wake_w]  # closed in every kernel

    def add(self, connection: socket.socket) -> None:
        self.selector.register(connection, selectors.EVENT_READ, "connection")
        connection.send(json.dumps(self.hello).encode())

    def run(self, listener: socket.socket | None, until_closed: int | None) -> None:
        if listener is not None:
            self.selector.register(listener, selectors.EVENT_READ, "listener")
        if until_closed is not None:
            self.selector.register(until_closed, selectors.EVENT_READ, "until")
        try:
            while True:
                for key, _ in self.selector.select():
                    if key.data == "reap":
                        os.read(self.wake_r, 4096)
                        self.reap()
                    elif key.data == "until":
                        return  # the process that started a shared zygote closed its pipe
                    elif key.data == "listener":
                        self.add(listener.accept()[0])  # type: ignore[union-attr]
                    elif not self.request(key.fileobj) and listener is None and not self.connections():
                        return  # a run's own zygote: the run is over
        finally:
            for pid in list(self.kernels):
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)

    def connections(self) -> list[Any]:
        return [key.fileobj for key in self.selector.get_map().values() if key.data == "connection"]

    def request(self, connection: Any) -> bool:
        """Fork the kernel one message asks for; False when the connection has closed."""
        try:
            message, fds, _, _ = socket.recv_fds(connection, _MESSAGE, 3)
        except OSError:
            message, fds = b"", []
        if not message:
            self.selector.unregister(connection)
            connection.close()
            for pid, (_, owner) in list(self.kernels.items()):
                if owner is connection:  # its run process went away: so do its kernels
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signal.SIGKILL)
            return False
        lifeline = socket.socket(fileno=fds[0])
        request = json.loads(message)
        refusal = _refusal(request, self.hello)
        if refusal or len(fds) != 3:
            lifeline.send(json.dumps({"refused": refusal or "no output streams"}).encode())
            for fd in fds:
                os.close(fd)
            return True
        pid = os.fork()
        if pid == 0:
            self.close_in_kernel()
            _become(request, lifeline, fds[1], fds[2], self.hello)  # never returns
        os.close(fds[1])
        os.close(fds[2])
        self.kernels[pid] = (lifeline, connection)
        return True

    def close_in_kernel(self) -> None:
        """In a forked kernel: close the zygote's sockets and pipes (the kernel's own lifeline and
        streams stay open)."""
        for key in list(self.selector.get_map().values()):
            with contextlib.suppress(OSError):
                key.fileobj.close() if isinstance(key.fileobj, socket.socket) else os.close(key.fd)
        self.selector.close()
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        for lifeline, _ in self.kernels.values():
            lifeline.close()

    def reap(self) -> None:
        while self.kernels:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            lifeline, _ = self.kernels.pop(pid, (None, None))
            if lifeline is not None:
                with contextlib.suppress(OSError):
                    lifeline.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
                lifeline.close()


class _InKernel:
    """What ``get_ipython()`` is to a module imported inside a Jupyter kernel, as far as the
    preloaded modules ask (pandas: ``hasattr(get_ipython(), "kernel")``)."""

    kernel = True


def _import_env(env: Any) -> dict[str, str | None]:
    """The variables of ``env`` that imports read, as a kernel will see them (ipykernel sets
    ``MPLBACKEND`` to the inline backend when it is unset, before any import of Matplotlib)."""
    values = {name: env.get(name) for name in IMPORT_ENV}
    values["MPLBACKEND"] = values["MPLBACKEND"] or INLINE_BACKEND
    # Great Expectations is imported with analytics off unless set (churn.quality.runner.import_gx)
    values["GX_ANALYTICS_ENABLED"] = values["GX_ANALYTICS_ENABLED"] or "False"
    return values


def _refusal(request: dict[str, Any], own: dict[str, Any]) -> str:
    """Why a kernel cannot be forked from this zygote ("" if it can)."""
    if threading.active_count() > 1:
        return "the zygote runs threads"
    argv = request["argv"]
    if len(argv) < 3 or argv[1] != "-m" or argv[2] not in own["modules"]:
        return f"the zygote does not run {' '.join(argv[1:3])}"
    env = _import_env(request["env"])
    differing = [name for name in IMPORT_ENV if env[name] != own["env"][name]]
    if differing:
        return f"the kernel's environment differs in {', '.join(differing)}"
    relative = [p for p in (env["PYTHONPATH"] or "").split(os.pathsep) if p and not os.path.isabs(p)]
    if relative and os.path.realpath(request["cwd"]) != os.path.realpath(own["cwd"]):
        return "PYTHONPATH has relative folders and the kernel runs in another folder"
    return ""


def _become(request: dict[str, Any], lifeline: socket.socket, stdout: int, stderr: int, own: dict[str, Any]) -> None:
    """In the forked child: turn into the requested ``python -m MODULE ...`` process (a kernel,
    or a run's Ploomber process)."""
    code = 1
    try:
        os.setsid()  # its own session and process group, as jupyter_client starts kernels
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a fresh process's
        gc.enable()
        devnull = os.open(os.devnull, os.O_RDONLY)
        for source, target in ((devnull, 0), (stdout, 1), (stderr, 2)):  # the run's streams
            os.dup2(source, target)
        for fd in {devnull, stdout, stderr} - {0, 1, 2}:
            os.close(fd)
        lifeline.send(json.dumps({"pid": os.getpid()}).encode())
        lifeline.close()
        cwd = request["cwd"]
        os.chdir(cwd)
        zygote, module = os.getppid(), request["argv"][2]
        os.environ.clear()
        os.environ.update(request["env"])
        if sys.path and os.path.realpath(sys.path[0]) == os.path.realpath(own["cwd"]):
            del sys.path[0]  # the folder ``python -m`` put first, as ipykernel's launcher does
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()  # a fresh process would not share the zygote's seed
        if module == _KERNEL_MODULE:
            os.environ["JPY_PARENT_PID"] = str(zygote)
            # ipykernel read JPY_PARENT_PID when the zygote imported it: the kernel exits with the zygote
            sys.argv = [own["launcher"], *request["argv"][3:], f"--IPKernelApp.parent_handle={zygote}"]
            from ipykernel.kernelapp import launch_new_instance

            launch_new_instance()
        else:
            import runpy

            sys.path.insert(0, cwd)  # what ``python -m`` puts first
            sys.argv = [module, *request["argv"][3:]]
            runpy.run_module(module, run_name="__main__", alter_sys=True)
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


def main(argv: Sequence[str]) -> None:
    """The zygote process.

    - ``--fd N``: a run's own; the imports come first on that socket, it serves until the run
      closes it. Ctrl-C in a terminal reaches the whole foreground process group: the run process
      handles it and its end closes, so this zygote ignores it (and a run that ends while its
      zygote still imports finds it gone quietly).
    - ``--listen SOCKET --notebooks FOLDER [--ploomber yes] [--until-closed FD]``: a shared one
      (a scheduler's worker: export ``CHURN_KERNEL_ZYGOTE=SOCKET`` to the runs; :func:`serve_shared`)
      with the imports of the phase notebooks in FOLDER (``[0-9]*.py``), and with ``--ploomber yes``
      Ploomber's too. It serves until the ``--until-closed`` pipe closes,
      or SIGTERM / Ctrl-C, and then kills what it forked and removes the socket.
    """
    options = dict(zip(argv[::2], argv[1::2], strict=False))
    if "--fd" in options:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        control = socket.socket(fileno=int(options["--fd"]))
        with contextlib.suppress(OSError, ValueError):
            server = _Server(_preload(json.loads(control.recv(_MESSAGE))))
            server.add(control)
            server.run(None, None)
        return
    if "--listen" not in options or "--notebooks" not in options:
        sys.exit("usage: python -m churn.reports.zygote --listen SOCKET --notebooks FOLDER [--ploomber yes]")
    notebooks = sorted(Path(options["--notebooks"]).glob("[0-9]*.py"))
    imports = [
        list(item) for item in dict.fromkeys(i for nb in notebooks for i in phase_imports(nb)) if item != PLOTTING
    ]
    hello = _preload(imports, ploomber=options.get("--ploomber") == "yes")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    path = Path(options["--listen"])
    path.unlink(missing_ok=True)
    listener.bind(str(path))
    listener.listen(16)
    until = int(options["--until-closed"]) if "--until-closed" in options else None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the finally blocks clean up
    try:
        _Server(hello).run(listener, until)
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main(sys.argv[1:])
