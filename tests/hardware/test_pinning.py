"""Pinning: the child environment per device kind, CUDA-initialised guard, applying in a child."""

from __future__ import annotations

import json
import os
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware._device import Device
from hwaware_plugins.hardware._pinning import (
    THREAD_COUNT_VARIABLES,
    PinningError,
    apply_pinning_in_child,
    cuda_initialized,
    pinning_env,
)

A100 = Device(id="gpu:1", kind="gpu", name="A100", uuid="GPU-1111", index=1)
MIG = Device(id="gpu:0/mig:0", kind="mig", name="3g.20gb", uuid="MIG-2222", parent_uuid="GPU-0")
CPU = Device(id="cpu", kind="cpu", name="Xeon", cores=6)


def test_gpu_is_pinned_by_uuid() -> None:
    assert pinning_env(A100, base={}) == {
        "CUDA_VISIBLE_DEVICES": "GPU-1111",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "HWAWARE_DEVICE_ID": "gpu:1",
        "HWAWARE_DEVICE_CLASS": "A100",
        "HWAWARE_DEVICE_KIND": "gpu",
    }


def test_gpu_without_uuid_falls_back_to_its_index() -> None:
    device = Device(id="gpu:3", kind="gpu", name="V100", index=3)
    assert pinning_env(device, base={})["CUDA_VISIBLE_DEVICES"] == "3"
    with pytest.raises(ConfigError, match="neither uuid nor index"):
        pinning_env(Device(id="gpu:x", kind="gpu", name="V100"), base={})


def test_another_hosts_simulated_gpu_sees_no_gpu_of_this_host() -> None:
    # Its index named one of this machine's GPUs: two simulated GPUs shared local GPU 0.
    remote = Device(id="node-a/gpu:0", kind="gpu", name="A100", index=0, host="node-a")
    env = pinning_env(remote, base={})
    assert env["CUDA_VISIBLE_DEVICES"] == "" and env["HWAWARE_DEVICE_ID"] == "node-a/gpu:0"


def test_mig_is_pinned_by_its_own_uuid() -> None:
    env = pinning_env(MIG, base={})
    assert (env["CUDA_VISIBLE_DEVICES"], env["HWAWARE_DEVICE_KIND"]) == ("MIG-2222", "mig")


def test_cpu_hides_gpus_and_sizes_thread_pools() -> None:
    env = pinning_env(CPU, cores=[4, 5], base={"CUDA_VISIBLE_DEVICES": "0", "PATH": "/bin"})
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2"
    assert env["PATH"] == "/bin" and env["HWAWARE_DEVICE_ID"] == "cpu"
    assert pinning_env(CPU, base={})["OMP_NUM_THREADS"] == "6"  # the device's cores
    with pytest.raises(ConfigError, match="empty core list"):
        pinning_env(CPU, cores=[], base={})


def test_a_thread_count_the_user_exported_is_never_raised() -> None:
    # On old main OMP_NUM_THREADS=1 exported by the user became the slot's 6 cores.
    user = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "16", "OPENBLAS_NUM_THREADS": "x"}
    env = pinning_env(CPU, base=user)
    assert [env[name] for name in THREAD_COUNT_VARIABLES] == ["1", "6", "6"]
    assert pinning_env(CPU, cores=[0, 1, 2], threads=1, base={})["OMP_NUM_THREADS"] == "1"
    with pytest.raises(ConfigError, match="threads must be at least 1"):
        pinning_env(CPU, threads=0, base={})


def test_base_defaults_to_the_environment_and_is_not_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HWAWARE_TEST_MARK", "1")
    assert pinning_env(A100)["HWAWARE_TEST_MARK"] == "1"
    base = {"A": "b"}
    pinning_env(A100, base=base)
    assert base == {"A": "b"}


def _fake_torch(initialized: Callable[[], bool]) -> types.ModuleType:
    torch = types.ModuleType("torch")
    torch.cuda = types.SimpleNamespace(is_initialized=initialized)  # type: ignore[attr-defined]
    return torch


def _raise() -> bool:
    raise RuntimeError("half-imported")


def test_cuda_initialized_reads_torch_only_when_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert not cuda_initialized()
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(lambda: True))
    assert cuda_initialized()
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(_raise))
    assert not cuda_initialized()


def test_pinning_after_cuda_init_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(lambda: True))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-0")
    with pytest.raises(PinningError, match=r"already initialised.*before it imports"):
        apply_pinning_in_child({"CUDA_VISIBLE_DEVICES": "GPU-1111"})
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-0"
    with pytest.raises(ConfigError, match="empty cpu_affinity"):
        apply_pinning_in_child({}, [])


def _in_child(action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``action`` in a forked child (pinning changes the whole process) and return its dict."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        try:
            result = action()
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return dict(json.loads(data))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_apply_pinning_in_child_sets_environment_and_affinity() -> None:
    core = min(os.sched_getaffinity(0))
    env = pinning_env(CPU, cores=[core], base={})

    def pin() -> dict[str, Any]:
        apply_pinning_in_child(env, [core])
        return {"omp": os.environ["OMP_NUM_THREADS"], "cores": sorted(os.sched_getaffinity(0))}

    assert _in_child(pin) == {"omp": "1", "cores": [core]}

    def pin_missing_core() -> dict[str, Any]:
        apply_pinning_in_child({}, [10**6])
        return {}

    assert _in_child(pin_missing_core)["error"].startswith("PinningError: cannot pin process")


def test_apply_pinning_sizes_an_imported_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = _fake_torch(lambda: False)
    sized: list[int] = []
    torch.set_num_threads = sized.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    env = pinning_env(CPU, cores=[0, 1], base={"OMP_NUM_THREADS": "1"})

    def pin() -> dict[str, Any]:  # in a forked child: pinning changes the whole process
        apply_pinning_in_child(env)
        return {"sized": sized, "mkl": os.environ["MKL_NUM_THREADS"]}

    assert _in_child(pin) == {"sized": [1], "mkl": "2"}
