"""``DaskExecutor``: the executor contract on a Dask distributed cluster.

Each Dask worker holds a :class:`HwawareWorkerPlugin`: it resolves that
worker's devices (a declared-device file or list given for that worker, else
``HWAWARE_DEVICES`` in the worker's environment, else a probe of its host),
advertises their slots as the Dask resource :data:`SLOT_RESOURCE`, and keeps
a :class:`~hwaware_plugins.executors.LocalExecutor` over them. A task submitted
here becomes one Dask task (restricted to workers with a fitting device, one
slot of resource) that hands the callable to that worker's ``LocalExecutor``:
so the Dask worker hosts the same pool of persistent worker processes as one
node does: each evaluation runs in a process pinned to one of its devices
(``CUDA_VISIBLE_DEVICES`` by UUID, CPU affinity), reused for the next
evaluation on that pinning and replaced after a crash, OOM or timeout.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from distributed import WorkerPlugin

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.executors._config import check_device_filters
from hwaware_plugins.executors._future import TaskFuture
from hwaware_plugins.executors._outcome import Attempt, TaskOutcome
from hwaware_plugins.hardware import Device, resolve_devices

_log = logging.getLogger("hwaware_plugins.executors")

SLOT_RESOURCE = "hwaware-slot"
"""The Dask resource a worker advertises: how many of its device slots tasks may use."""

PLUGIN_NAME = "hwaware"
"""The name the worker plugin is registered under."""


class HwawareWorkerPlugin(WorkerPlugin):
    """A Dask worker plugin: this worker's devices, slots resource and local executor.

    :param devices: for every worker: ``None`` (``HWAWARE_DEVICES`` or a probe),
        a declared-device file path or a list of ``Device``; or a mapping from
        worker name (as ``str``) to one of those, for workers with different
        hardware. Workers missing from the mapping use ``None``.
    :param state_dir: folder of the device-pool state files (default: the pool's).
    :param timeout: default per-task time limit in seconds on this worker.
    :param start_method: how the local executor starts its workers (default
        ``"spawn"``: a Dask worker runs an event loop and many threads, the
        kind of process a fork is least safe from, and its workers live long
        enough that their start-up is paid once; ``None``: ``HWAWARE_START_METHOD``,
        else ``"auto"``).

    Cost: the device resolution once per worker start.
    """

    name = PLUGIN_NAME

    def __init__(
        self, devices: Any = None, *, state_dir: str | None = None, timeout: float | None = None,
        start_method: str | None = "spawn",
    ) -> None:
        self.devices = devices
        self.start_method = start_method
        self.state_dir = state_dir
        self.timeout = timeout
        self.worker_devices: list[Device] = []
        self.executor: Any = None

    def _resolve(self, worker_name: str) -> list[Device]:
        spec = self.devices
        if isinstance(spec, Mapping):
            spec = spec.get(worker_name)
        return resolve_devices(spec)

    async def setup(self, worker: Any) -> None:
        """Resolve the devices, start the local executor, advertise the slots."""
        from hwaware_plugins.executors._local import LocalExecutor
        from hwaware_plugins.hardware._pool import DevicePool

        devices = self._resolve(str(worker.name))
        # Dask workers of one host with the same devices share one pool, CPU slots
        # included (cpu_courtesy): each takes a different slot, so they never pin the
        # same cores while others sit idle.
        shared = hashlib.sha1(",".join(sorted(d.id for d in devices)).encode()).hexdigest()
        pool = DevicePool(devices, name=f"dask-{shared[:12]}", state_dir=self.state_dir,
                          skip_foreign_processes=False, cpu_courtesy=True)
        self.worker_devices = devices
        self.executor = LocalExecutor(pool, timeout=self.timeout, framework="dask",
                                      start_method=self.start_method)
        slots = sum(max(1, d.slots) for d in devices)
        threads = getattr(getattr(worker, "state", None), "nthreads", None) or getattr(
            worker, "nthreads", None)
        if isinstance(threads, int) and threads > 0:
            slots = min(slots, threads)  # a task beyond its threads would only wait there
        await worker.set_resources(**{SLOT_RESOURCE: slots})

    def teardown(self, worker: Any) -> None:
        """Stop the local executor, killing what still runs."""
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_running=True)


def _plugin(worker: Any = None) -> HwawareWorkerPlugin:
    if worker is None:
        from distributed import get_worker

        worker = get_worker()
    plugin = worker.plugins.get(PLUGIN_NAME)
    if not isinstance(plugin, HwawareWorkerPlugin) or plugin.executor is None:
        raise RuntimeError("this Dask worker has no hwaware plugin; use DaskExecutor to submit")
    return plugin


# ``client.run`` passes the worker as ``dask_worker``.
def _worker_devices(dask_worker: Any) -> list[Device]:
    return list(_plugin(dask_worker).worker_devices)


def _worker_interrupt(dask_worker: Any) -> int:
    return int(_plugin(dask_worker).executor.interrupt())


def _run_on_worker(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                   options: dict[str, Any]) -> TaskOutcome:
    outcome: TaskOutcome = _plugin().executor.submit(fn, *args, **options, **kwargs).result()
    return outcome


def _failed(label: str, state: str, error: str) -> TaskOutcome:
    return TaskOutcome(state=state, error=error, label=label,
                       attempts=[Attempt(None, state, error)])


class DaskExecutor:
    """Runs tasks on a Dask cluster, each pinned to one device of the worker that runs it.

    Same contract as :class:`~hwaware_plugins.executors.LocalExecutor`:
    :meth:`submit` returns a :class:`TaskFuture` resolving to a
    :class:`TaskOutcome` (never an exception); :meth:`interrupt` kills every
    running task's process group on every worker. Use it with hyperopt as
    ``HardwareAwareTrials(executor=DaskExecutor(client))``.

    :param address_or_client: a ``distributed.Client`` or a scheduler address.
    :param devices: registers :class:`HwawareWorkerPlugin` (devices) on every
        worker, present and future (see the plugin for the forms); ``None``
        registers ``HwawareWorkerPlugin()`` only on workers lacking one.
    :param timeout: default per-task time limit in seconds.
    :param state_dir: device-pool state folder on the workers.

    Arguments are stored as given; the client and the plugin are set up on
    first use. Cost per task: one Dask task round trip plus the local
    executor's (a warm worker process: a few ms). Thread-safety: every
    method may be called from any thread.
    """

    def __init__(
        self, address_or_client: Any, *, devices: Any = None, timeout: float | None = None,
        state_dir: str | None = None,
    ) -> None:
        self.address_or_client = address_or_client
        self.devices_spec = devices
        self.timeout = timeout
        self.state_dir = state_dir
        self._lock = threading.RLock()
        self._client: Any = None
        self._owns_client = False
        self._devices: dict[str, list[Device]] = {}
        self._futures: set[Any] = set()
        self._ids = itertools.count(1)

    def client(self) -> Any:
        """The ``distributed.Client`` (connected and the workers set up on first call)."""
        with self._lock:
            if self._client is not None:
                return self._client
            from distributed import Client

            if isinstance(self.address_or_client, Client):
                client = self.address_or_client
            elif isinstance(self.address_or_client, str):
                client = Client(self.address_or_client)  # type: ignore[no-untyped-call]
                self._owns_client = True
            else:
                raise ConfigError(
                    "DaskExecutor needs a distributed.Client or a scheduler address, got "
                    f"{type(self.address_or_client).__name__}"
                )
            plugin = HwawareWorkerPlugin(self.devices_spec, state_dir=self.state_dir,
                                         timeout=self.timeout)
            present = client.run(_has_plugin)
            if self.devices_spec is not None or not all(present.values()) or not present:
                client.register_plugin(plugin, name=PLUGIN_NAME)
            self._client = client
            return client

    def worker_devices(self, refresh: bool = False) -> dict[str, list[Device]]:
        """Every worker's devices by worker address (cached; one round trip to refresh)."""
        client = self.client()
        with self._lock:
            workers = set(client.scheduler_info()["workers"])
            if refresh or set(self._devices) != workers:
                self._devices = {a: list(d) for a, d in client.run(_worker_devices).items()}
            return dict(self._devices)

    def devices(self) -> list[Device]:
        """All devices of the cluster, worker after worker."""
        return [d for devices in self.worker_devices().values() for d in devices]

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, memory_mb: float | None = None,
        prefer: Sequence[str] | None = None, device_filter: Callable[[Any], bool] | None = None,
        label: str | None = None, timeout: float | None = None,
        oom_device_filter: Callable[[Any], bool] | None = None, **kwargs: Any,
    ) -> TaskFuture:
        """Run ``fn(*args, **kwargs)`` on a worker with a device passing ``device_filter``.

        Options as :meth:`LocalExecutor.submit`; ``device_filter`` and
        ``oom_device_filter`` must be picklable (they run on the worker too; an
        out-of-memory re-placement stays on that worker). A task no worker can
        take resolves to a ``fail`` outcome naming why.
        """
        check_device_filters(device_filter=device_filter, oom_device_filter=oom_device_filter)
        name = label if label is not None else f"task-{next(self._ids)}"
        future = TaskFuture(name, self.interrupt)
        future.set_running_or_notify_cancel()
        client = self.client()
        workers = [a for a, devices in self.worker_devices().items()
                   if any(device_filter is None or device_filter(d) for d in devices)]
        if not workers:
            future.set_result(_failed(name, "fail", "NoSuitableDeviceError: no Dask worker "
                                      "has a device passing the filter; check its devices"))
            return future
        options = {"memory_mb": memory_mb, "prefer": prefer, "device_filter": device_filter,
                   "label": name, "timeout": timeout if timeout is not None else self.timeout,
                   "oom_device_filter": oom_device_filter}
        task = client.submit(_run_on_worker, fn, args, kwargs, options, workers=workers,
                             resources={SLOT_RESOURCE: 1}, pure=False,
                             key=f"hwaware-{name}-{next(self._ids)}")
        with self._lock:
            self._futures.add(task)
        task.add_done_callback(lambda done: self._resolve(done, future, name))
        return future

    def _resolve(self, task: Any, future: TaskFuture, name: str) -> None:
        with self._lock:
            self._futures.discard(task)
        try:
            if task.cancelled():
                outcome = _failed(name, "cancelled", "interrupted before the task started")
            else:
                outcome = task.result()
        except BaseException as exc:  # the worker died or Dask failed: never raise to the waiter
            outcome = _failed(name, "crash", f"Dask task failed: {type(exc).__name__}: {exc}")
        future.set_result(outcome)

    def interrupt(self) -> int:
        """Cancel queued tasks and kill running ones on every worker; return how many."""
        with self._lock:
            if self._client is None:
                return 0
            queued = list(self._futures)
        killed = sum(self._client.run(_worker_interrupt).values())
        if queued:
            self._client.cancel(queued)
        return int(killed) + len(queued)

    def shutdown(self, wait: bool = True, cancel_running: bool = False) -> None:
        """Optionally interrupt, then close the client if this executor opened it."""
        if cancel_running:
            self.interrupt()
        with self._lock:
            if self._client is not None and self._owns_client:
                self._client.close()
            self._client = None

    def __repr__(self) -> str:
        return f"DaskExecutor({self.address_or_client!r})"


def _has_plugin(dask_worker: Any) -> bool:
    return isinstance(dask_worker.plugins.get(PLUGIN_NAME), HwawareWorkerPlugin)
