"""device_for / torch_device_for: the running trial's leased device."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, cast

import optuna
import pytest
from hwaware_optuna import device_for, torch_device_for
from hwaware_optuna._devices import cuda_ordinal

from hwaware_plugins.errors import ConfigError
from hwaware_plugins.hardware import Device, this_host

from ._helpers import gpu


def test_device_for_returns_the_leased_device_while_running(make_sampler: Any) -> None:
    seen: dict[int, Device] = {}

    def objective(trial: optuna.trial.Trial) -> float:
        seen[trial.number] = device_for(trial)
        return 0.0

    study = optuna.create_study(sampler=make_sampler())
    study.optimize(objective, n_trials=3)
    for trial in study.trials:
        assert seen[trial.number].id == trial.user_attrs["hwaware:device_id"]
        assert seen[trial.number].kind == "gpu"

    finished = study.trials[0]
    with pytest.raises(ConfigError, match="holds no device lease"):
        device_for(cast(Any, finished))


def test_device_for_needs_the_hardware_aware_sampler() -> None:
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(ConfigError, match="HardwareAwareSampler"):
        device_for(trial)


def test_torch_device_for_gpu_and_cpu(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from hwaware_optuna import HardwareAwareSampler

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    cpu = Device(id="cpu", kind="cpu", name="cpu", host="test-host")
    local_gpu = dataclasses.replace(gpu(2), host=this_host())
    for devices, expected in (([local_gpu], "cuda:2"), ([cpu], "cpu")):
        sampler = HardwareAwareSampler(devices=devices, state_dir=tmp_path / expected, seed=0)
        study = optuna.create_study(sampler=sampler)
        trial = study.ask()
        assert str(torch_device_for(trial)) == expected
        study.tell(trial, 0.0)


def test_cuda_ordinal_rules() -> None:
    device = gpu(3)
    assert cuda_ordinal(device, None) == 3  # in-process: the physical index
    assert cuda_ordinal(device, "GPU-3") == 0  # a process pinned to it
    assert cuda_ordinal(device, "1,3") == 1
    declared = Device(id="node/gpu:5", kind="gpu", name="A100", host="node")
    assert cuda_ordinal(declared, None) == 5  # declared GPUs: the number of their id
    with pytest.raises(ConfigError, match="not visible"):
        cuda_ordinal(device, "GPU-0")
    mig = Device(id="mig:0.1", kind="mig", name="A100 MIG", uuid="MIG-x", host="node")
    with pytest.raises(ConfigError, match="MIG instance"):
        cuda_ordinal(mig, None)
    with pytest.raises(ConfigError, match="MIG instance"):
        cuda_ordinal(mig, "MIG-other")
    assert cuda_ordinal(mig, "MIG-x") == 0  # a worker pinned to the instance


def test_torch_device_for_never_maps_another_hosts_gpu_to_a_local_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On old main a simulated node-a GPU came back as cuda:1 of this host.
    from hwaware_optuna import HardwareAwareSampler

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    path = tmp_path / "remote.toml"
    path.write_text(
        'remote_devices = "simulate"\n[[device]]\nkind = "gpu"\nname = "V100"\n'
        'host = "node-a.invalid"\ncount = 2\nmemory_gb = 16\n'
    )
    sampler = HardwareAwareSampler(devices=path, state_dir=tmp_path / "state", seed=0)
    study = optuna.create_study(sampler=sampler)
    trials = [study.ask(), study.ask()]
    for trial in trials:
        assert device_for(trial).host == "node-a.invalid"
        with pytest.raises(ConfigError, match="not this host"):
            torch_device_for(trial)
    for trial in trials:
        study.tell(trial, 0.0)
