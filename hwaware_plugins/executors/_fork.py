"""Starting a persistent worker by forking the coordinator instead of a fresh interpreter.

The coordinator has already imported the objective's module and its framework, so
a forked worker is ready in milliseconds where a spawned one (``python -m
hwaware_plugins.executors._child``) pays an interpreter start plus those imports.
The forked child is made to behave as a spawned worker does (see
:func:`_become_worker`): its own process group, only its own pipe ends, the slot's
environment and CPU affinity, thread pools no larger than the slot's thread
count, no inherited exit hooks or signal handlers, fresh standard streams, and
an exit by ``os._exit`` after its own exit hooks (inherited objects are never
finalised, so a database connection of the coordinator is never closed by a worker).

:func:`choose_start_method` says when forking is safe (``"auto"``).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import logging
import os
import signal
import stat
import sys
import threading
import traceback
import warnings
from collections.abc import Mapping, Sequence
from typing import IO, Any

from hwaware_plugins import _forksafe as _fds
from hwaware_plugins.errors import ConfigError

START_METHODS = ("auto", "fork", "spawn")
"""Accepted ``start_method`` values of :class:`~hwaware_plugins.executors.LocalExecutor`."""

START_METHOD_ENV = "HWAWARE_START_METHOD"
"""Environment variable giving the start method when the executor is not told one."""

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# Objects replaced in the child, kept alive so that they are never finalised there.
_INHERITED: list[object] = []


def check_start_method(value: object, *, python: str, source: str = "start_method") -> str:
    """Return the start method ``value`` names; raise :class:`ConfigError` when unusable.

    ``None`` means :data:`START_METHOD_ENV`, else ``"auto"``. ``"fork"`` needs
    ``os.fork`` and ``python`` to be this interpreter (a forked worker runs this one).
    """
    if value is None:
        env = os.environ.get(START_METHOD_ENV, "").strip()
        return check_start_method(env, python=python, source=START_METHOD_ENV) if env \
            else "auto"
    if value not in START_METHODS:
        raise ConfigError(
            f"{source} must be 'auto', 'fork' or 'spawn', got {value!r}"
        )
    if value == "fork":
        if not hasattr(os, "fork") or sys.platform != "linux":
            raise ConfigError(f"{source}='fork' needs Linux; use 'spawn' or 'auto' here")
        if os.path.realpath(python) != os.path.realpath(sys.executable):
            raise ConfigError(
                f"{source}='fork' runs workers in this interpreter ({sys.executable}), "
                f"not python={python!r}; use 'spawn' to run another interpreter"
            )
    return str(value)


def cuda_initialised() -> bool:
    """True when torch is imported here and has initialised CUDA (a fork would break it)."""
    torch: Any = sys.modules.get("torch")
    if torch is None:
        return False
    try:
        return bool(torch.cuda.is_initialized())
    except Exception:  # a half-imported or broken torch: do not fork
        return True


_SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


def _sqlite_descriptors() -> dict[str, int]:
    """The SQLite database files this process has open (e.g. an Optuna ``sqlite:///``
    storage's), as real paths, side files (``-journal``, ``-wal``, ``-shm``) named by
    their database, each with the descriptors open on the database itself (one per
    SQLite connection; 0 when only a side file is open). SQLite's locking state lives
    in process memory, so a forked child that opens one of them breaks the parent's
    locks, unless a :class:`~hwaware_plugins._forksafe.DatabaseGate` vouches that no
    thread is inside SQLite on it when the fork is made.

    Cost: one ``fstat`` per open descriptor and a 16-byte read per regular file.
    """
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return {}
    found: dict[str, int] = {}
    for fd in fds:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            target = os.readlink(f"/proc/self/fd/{fd}")
            side = next((s for s in _SQLITE_SIDE_FILES if target.endswith(s)), None)
            if side is not None:
                found.setdefault(target[: -len(side)], 0)
            elif os.pread(fd, len(_SQLITE_HEADER), 0) == _SQLITE_HEADER:
                found[target] = found.get(target, 0) + 1
        except OSError:
            continue
    return found


def sqlite_open() -> bool:
    """True when this process has an SQLite database file open that no
    :class:`~hwaware_plugins._forksafe.DatabaseGate` vouches for, or more connections
    to one than its gates vouch for (another client of the same file here); the
    cost of :func:`_sqlite_descriptors`.
    """
    vouched = _fds.vouched_connections()
    return any(count > vouched.get(path, -1) for path, count in _sqlite_descriptors().items())


def choose_start_method(
    method: str, *, python: str, executable: str, platform: str, can_fork: bool,
    cuda_ready: bool, sqlite_in_use: bool = False,
) -> str:
    """``"fork"`` or ``"spawn"`` for a new worker. Pure.

    ``"auto"`` forks on Linux when the workers' ``python`` is this interpreter
    (``executable``), CUDA is not initialised here and no SQLite database is
    open here but those a gate vouches for; otherwise it spawns.
    """
    if method != "auto":
        return method
    same = os.path.realpath(python) == os.path.realpath(executable)
    if platform == "linux" and can_fork and same and not cuda_ready and not sqlite_in_use:
        return "fork"
    return "spawn"


def resolve_start_method(method: str, *, python: str) -> str:
    """:func:`choose_start_method` for this process now.

    Cost for ``"auto"``: a ``sys.modules`` lookup and :func:`sqlite_open` (well under 1 ms).
    """
    if method != "auto":
        return method
    return choose_start_method(
        method, python=python, executable=sys.executable, platform=sys.platform,
        can_fork=hasattr(os, "fork"), cuda_ready=cuda_initialised(),
        sqlite_in_use=sys.platform == "linux" and sqlite_open(),
    )


class ForkedProcess:
    """The coordinator's handle on a forked worker: ``pid``, ``stdin`` and :meth:`wait`,
    the part of ``subprocess.Popen`` that
    :class:`~hwaware_plugins.executors._worker.PooledWorker` uses."""

    def __init__(self, pid: int, stdin: IO[bytes]) -> None:
        self.pid = pid
        self.stdin: IO[bytes] | None = stdin
        self.returncode: int | None = None

    def wait(self) -> int:
        """Block until the worker exits, reap it, return its status (``-N``: signal N)."""
        if self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): unknown
                self.returncode = 0
            else:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def fork_worker(
    *, env: Mapping[str, str], cpu_affinity: Sequence[int] | None,
) -> tuple[ForkedProcess, int]:
    """Fork a worker bound to ``env`` and ``cpu_affinity``; return it and its result fd.

    The child never returns from here: it serves tasks (as
    :func:`~hwaware_plugins.executors._child.serve`) and leaves by ``os._exit``.
    Cost in the coordinator: two pipes and one ``fork`` (copy-on-write page
    tables: a few ms for a coordinator of a few hundred MiB).
    """
    with _fds.FD_LOCK:
        command_read, command_write = os.pipe()
        result_read, result_write = os.pipe()
        ready_read, ready_write = os.pipe()
        _fds.track(command_write, result_read, ready_read)
        for stream in (sys.stdout, sys.stderr):  # nothing buffered is written twice
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.flush()
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns when a multi-threaded process forks; this fork
                # is made safe by _become_worker, and only this call is silenced.
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except BaseException:
            for fd in (command_read, result_write, ready_write):
                os.close(fd)
            for fd in (command_write, result_read, ready_read):
                _fds.close_tracked(fd)
            raise
        if pid == 0:  # pragma: no cover - runs in the child, which ends by os._exit
            _become_worker(command_read, result_write, ready_write, env=env,
                           cpu_affinity=cpu_affinity)
        os.close(command_read)
        os.close(result_write)
        os.close(ready_write)
    # Until the child leads its own group, killing "its group" would miss it: wait
    # for it to close its end (after setpgid), or to die.
    try:
        while os.read(ready_read, 1):
            pass
    finally:
        _fds.close_tracked(ready_read)
    return ForkedProcess(pid, os.fdopen(command_write, "wb")), result_read


def _become_worker(  # pragma: no cover - runs in a forked child
    command_fd: int, result_fd: int, ready_fd: int, *, env: Mapping[str, str],
    cpu_affinity: Sequence[int] | None,
) -> None:
    """Turn this forked child into a worker, serve tasks, and leave by ``os._exit``."""
    code = 1
    try:
        # Inherited garbage is never collected here: its finalisers (a database
        # connection's goodbye) would act on the coordinator's resources.
        gc.freeze()
        os.setpgid(0, 0)  # not setsid: see "Starting a worker" in docs/executors.md
        os.close(ready_fd)  # the coordinator may now signal our group
        atexit._clear()
        _reset_signals()
        _fds.blank_out(fd for fd in _fds.owned() if fd not in (command_fd, result_fd))
        _fds.forget_gates()
        _fresh_streams()
        if cpu_affinity and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(cpu_affinity))
        os.environ.clear()
        os.environ.update(env)
        _reset_faulthandler(env)
        limit_thread_pools(env)
        _forget_reusable_pools()
        from hwaware_plugins.executors._child import serve

        code = serve(result_fd=result_fd, command_fd=command_fd,
                     after_exit_guard=_reset_multiprocessing)
        _shutdown_threads()
        atexit._run_exitfuncs()
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.flush()
        os._exit(code)


def _reset_signals() -> None:  # pragma: no cover - runs in a forked child
    """Handlers as ``exec`` leaves them for a fresh interpreter: caught signals back to
    their default (SIGINT to KeyboardInterrupt), ignored ones stay ignored."""
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)
    for signum in signal.valid_signals():
        try:
            current = signal.getsignal(signum)
        except (ValueError, OSError):
            continue
        if current in (signal.SIG_IGN, signal.SIG_DFL, None):
            continue
        target: Any = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, target)


def _fresh_streams() -> None:  # pragma: no cover - runs in a forked child
    """``/dev/null`` on fd 0 and new ``sys`` stream objects over fds 0/1/2.

    Another coordinator thread may have held the old objects' locks at the fork;
    the old objects are kept alive (never flushed or closed here), and logging
    handlers that wrote to them write to the new ones.
    """
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    old = (sys.stdin, sys.stdout, sys.stderr)
    _INHERITED.extend(old)
    raw_in = io.FileIO(0, "r", closefd=False)
    sys.stdin = io.TextIOWrapper(io.BufferedReader(raw_in))
    # `python -u` / PYTHONUNBUFFERED: every write goes straight to the fd, as it did here.
    unbuffered = bool(getattr(old[1], "write_through", False))

    def writer(fd: int) -> Any:
        raw = io.FileIO(fd, "w", closefd=False)
        return raw if unbuffered else io.BufferedWriter(raw)

    out = io.TextIOWrapper(writer(1), encoding=getattr(old[1], "encoding", None) or "utf-8",
                           errors=getattr(old[1], "errors", None) or "strict",
                           line_buffering=bool(getattr(old[1], "line_buffering", False)),
                           write_through=unbuffered)
    err = io.TextIOWrapper(writer(2), encoding=getattr(old[2], "encoding", None) or "utf-8",
                           errors="backslashreplace", line_buffering=True,
                           write_through=unbuffered)
    sys.stdout, sys.stderr = out, err
    for name, stream in (("__stdin__", sys.stdin), ("__stdout__", out), ("__stderr__", err)):
        setattr(sys, name, stream)
    loggers: list[Any] = [logging.getLogger()]
    loggers += [lg for lg in logging.Logger.manager.loggerDict.values()
                if isinstance(lg, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler):
                if handler.stream is old[1]:
                    handler.stream = out
                elif handler.stream is old[2]:
                    handler.stream = err


def _reset_faulthandler(env: Mapping[str, str]) -> None:  # pragma: no cover - forked child
    """faulthandler as a fresh interpreter has it: on only with ``PYTHONFAULTHANDLER``."""
    import faulthandler

    faulthandler.disable()
    if env.get("PYTHONFAULTHANDLER"):
        faulthandler.enable()


def limit_thread_pools(env: Mapping[str, str]) -> None:
    """Cap thread pools initialised before the fork at the slot's thread count.

    A pool initialised in the coordinator does not read ``OMP_NUM_THREADS`` again:
    torch's intra-op pool is capped with ``torch.set_num_threads``, BLAS/OpenMP
    pools with threadpoolctl where it is installed. Counts are only ever lowered.
    Cost: nothing without a thread count in ``env``; else a scan of loaded libraries.
    """
    limit = thread_limit(env)
    if limit is None:
        return
    torch: Any = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            if torch.get_num_threads() > limit:
                torch.set_num_threads(limit)
    if "numpy" not in sys.modules and "scipy" not in sys.modules and torch is None:
        return  # nothing has loaded a BLAS or OpenMP runtime yet
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return
    with contextlib.suppress(Exception):
        over = {info["prefix"]: limit for info in threadpool_info()
                if int(info.get("num_threads") or 0) > limit}
        if over:
            threadpool_limits(limits=over)


def thread_limit(env: Mapping[str, str]) -> int | None:
    """The smallest positive thread count among the slot's thread variables, else None. Pure."""
    counts = []
    for name in _THREAD_VARIABLES:
        with contextlib.suppress(ValueError):
            value = int(env.get(name, ""))
            if value > 0:
                counts.append(value)
    return min(counts) if counts else None


def _reset_multiprocessing() -> None:  # pragma: no cover - runs in a forked child
    """Forget the coordinator's multiprocessing children and finalizers (as a child
    started by multiprocessing does) and restore multiprocessing's exit hook."""
    process: Any = sys.modules.get("multiprocessing.process")
    if process is not None:
        process._children = set()
    util: Any = sys.modules.get("multiprocessing.util")
    if util is not None:
        util._finalizer_registry.clear()
        util._run_after_forkers()
        atexit.register(util._exit_function)


def _forget_reusable_pools() -> None:  # pragma: no cover - runs in a forked child
    """Forget the coordinator's reusable loky pool (``joblib.Parallel``, scikit-learn's
    ``n_jobs``), as a fresh interpreter would not have it.

    Its manager thread and worker processes do not exist in the fork: a task
    handed to the copied pool would wait for ever. The next ``joblib.Parallel``
    here starts this worker's own pool. (loky's resource tracker resets itself
    at fork.)
    """
    for name in ("joblib.externals.loky.reusable_executor", "loky.reusable_executor"):
        module: Any = sys.modules.get(name)
        if module is not None and hasattr(module, "_executor"):
            module._executor = None
            module._executor_kwargs = None
            if hasattr(module, "_executor_lock"):
                module._executor_lock = threading.RLock()  # another thread may have held it


def _shutdown_threads() -> None:  # pragma: no cover - runs in a forked child
    """What interpreter exit does first: threading's exit hooks (loky, concurrent.futures
    shut their executors down), then joining non-daemon threads."""
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        with contextlib.suppress(Exception):
            shutdown()


__all__ = [
    "START_METHODS", "START_METHOD_ENV", "ForkedProcess", "check_start_method",
    "choose_start_method", "cuda_initialised", "fork_worker", "limit_thread_pools",
    "resolve_start_method", "sqlite_open", "thread_limit",
]
