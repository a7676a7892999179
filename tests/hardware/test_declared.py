"""Declared-device files: the examples, id numbering, and every error a user can make."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwaware_plugins.errors import DeviceConfigError
from hwaware_plugins.hardware import load_declared_devices, parse_declared_devices, this_host
from hwaware_plugins.hardware._declared import parse_declared_file
from hwaware_plugins.hardware._pinning import pinning_env

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "devices"


def test_a100_example_gives_four_declared_gpus() -> None:
    devices = load_declared_devices(EXAMPLES / "a100x4.toml")

    host = this_host()
    assert [d.id for d in devices] == [f"{host}/gpu:{i}" for i in range(4)]
    for device in devices:
        assert device.kind == "gpu"
        assert device.device_class == "A100-40GB"
        assert device.memory_total_mb == device.memory_free_mb == 40960
        assert device.speed == 4.0 and device.speed_source == "declared"
        assert dict(device.speedup) == {"mlp": 20.0, "svm": 1.0}
        assert device.speed_for("mlp") == 20.0 and device.speed_for("xgb") == 4.0
        assert device.host == host and device.uuid is None and device.slots == 1
    # No uuids: each GPU gets its index in declaration order, so a process can be pinned
    # (on old main pinning_env raised "neither uuid nor index" for every one of them).
    assert [d.index for d in devices] == [0, 1, 2, 3]
    assert [pinning_env(d, base={})["CUDA_VISIBLE_DEVICES"] for d in devices] == [
        "0", "1", "2", "3"
    ]


def test_mixed_example_numbers_ids_per_host_and_kind() -> None:
    devices = {d.id: d for d in load_declared_devices(EXAMPLES / "mixed-node.toml")}

    assert sorted(devices) == [
        "node-a/cpu:0",
        "node-a/gpu:0",
        "node-a/gpu:1",
        "node-a/gpu:2",
        "node-b/mig:0",
        "node-b/mig:1",
    ]
    cpu = devices["node-a/cpu:0"]
    assert (cpu.cores, cpu.slots, cpu.memory_total_mb) == (32, 32, 256 * 1024)
    assert devices["node-a/gpu:1"].device_class == "V100-16GB"
    assert devices["node-a/gpu:2"].device_class == "Tesla T4"
    assert devices["node-a/gpu:0"].compute_capability == (7, 0)
    assert devices["node-b/mig:0"].kind == "mig"
    assert devices["node-b/mig:0"].memory_total_mb == 20096


def test_optional_keys_are_applied() -> None:
    text = """
    [[device]]
    kind = "gpu"
    name = "L4"
    count = 2
    memory_gb = 24
    uuids = ["GPU-a", "GPU-b"]
    slots = 3
    device_class = "ada"

    [[device]]
    kind = "cpu"
    """
    gpu_a, gpu_b, cpu = parse_declared_devices(text)

    assert (gpu_a.uuid, gpu_b.uuid) == ("GPU-a", "GPU-b")
    assert gpu_a.slots == 3 and gpu_a.device_class == "ada"
    assert cpu.name == "cpu" and cpu.memory_total_mb is None and cpu.slots == 1


GPU = 'kind = "gpu"\nname = "A100"\nmemory_gb = 40\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[device]\nkind = 'gpu'", "malformed TOML"),
        ("[[device]]\nkind = 'gpu'\nname = \n", "line 3"),
        ("", "no [[device]] entries"),
        ("title = 'x'", "unknown top-level key 'title'"),
        ("[device]\nkind = 'gpu'", "array of tables"),
        (f"[[device]]\n{GPU}colour = 'red'", "unknown key 'colour'; allowed keys: kind, name"),
        (f"[[device]]\n{GPU}count = '4'", "'count' must be an integer"),
        (f"[[device]]\n{GPU}count = true", "'count' must be an integer"),
        (f"[[device]]\n{GPU}count = 0", "'count' must be at least 1"),
        (f"[[device]]\n{GPU}count = -2", "'count' must be at least 1"),
        (f"[[device]]\n{GPU}count = 1000000000", "'count' must be at most 100000"),
        ("[[device]]\nkind = 'gpu'\nname = 'A'\nmemory_gb = -1", "must not be negative"),
        ("[[device]]\nkind = 'gpu'\nname = 'A'\nmemory_gb = '40'", "'memory_gb' must be a finite"),
        ("[[device]]\nkind = 'gpu'\nname = 'A'\nmemory_gb = nan", "'memory_gb' must be a finite"),
        ("[[device]]\nkind = 'gpu'\nname = 'A'\nmemory_gb = inf", "'memory_gb' must be a finite"),
        (f"[[device]]\n{GPU}speed = nan", "'speed' must be a finite positive number"),
        (f"[[device]]\n{GPU}speed = inf", "'speed' must be a finite positive number"),
        (f"[[device]]\n{GPU}[device.speedup]\nmlp = nan", "speedup 'mlp' must be a finite"),
        ("[[device]]\nkind = 'gpu'\nname = 'A'", "missing 'memory_gb'"),
        (f"[[device]]\n{GPU}speed = 0", "'speed' must be a finite positive number"),
        (f"[[device]]\n{GPU}speed = -1.5", "'speed' must be a finite positive number"),
        (f"[[device]]\n{GPU}speed = 'fast'", "'speed' must be a finite positive number"),
        ("[[device]]\nkind = 'tpu'\nname = 'v4'", "unknown kind 'tpu'; use one of cpu, gpu, mig"),
        ("[[device]]\nname = 'v4'", "missing 'kind'"),
        ("[[device]]\nkind = 'gpu'\nmemory_gb = 40", "missing 'name' for a gpu"),
        ("[[device]]\nkind = 'gpu'\nname = 7\nmemory_gb = 40", "'name' must be a non-empty string"),
        (f"[[device]]\n{GPU}[device.speedup]\nmlp = 0", "speedup 'mlp' must be a finite"),
        (f"[[device]]\n{GPU}[device.speedup]\nmlp = 'x'", "speedup 'mlp' must be a finite"),
        (f"[[device]]\n{GPU}speedup = 3", "'speedup' must be a table"),
        (f"[[device]]\n{GPU}uuids = ['GPU-a', 'GPU-b']", "'uuids' has 2 entries but count is 1"),
        (f"[[device]]\n{GPU}compute_capability = [8]", "'compute_capability' must be [major"),
        (f"[[device]]\n{GPU}host = ''", "'host' must be a non-empty string"),
        (f"[[device]]\n{GPU}slots = 0", "'slots' must be at least 1"),
        (f"[[device]]\n{GPU}count = 2\nindex = 1", "'index' names 1 GPU but count is 2"),
        (f"[[device]]\n{GPU}indices = [0, 1]", "'indices' names 2 GPUs but count is 1"),
        (f"[[device]]\n{GPU}index = -1", "'index' must be an integer >= 0"),
        (f"[[device]]\n{GPU}indices = 3", "'indices' must be a list of integers >= 0"),
        (f"[[device]]\n{GPU}index = 0\nindices = [0]", "either 'index' (one GPU) or 'indices'"),
        ("[[device]]\nkind = 'cpu'\nindex = 0", "'index' applies to kind \"gpu\" only"),
        (f"[[device]]\n{GPU}count = 2\nindices = [3, 3]", "both have index 3 on host"),
        (f"[[device]]\n{GPU}\n[[device]]\n{GPU}index = 0", "entry 2: GPUs"),
        (f"[[device]]\n{GPU}count = 2\nuuids = ['GPU-a', 'GPU-a']", "both have uuid 'GPU-a'"),
        ("[[device]]\nkind = 'mig'\nname = 'm'\nmemory_gb = 10\nuuids = ['MIG-a']\n"
         "[[device]]\nkind = 'mig'\nname = 'm'\nmemory_gb = 10\nuuids = ['MIG-a']",
         "entry 2: devices"),
        (f"remote_devices = 'yes'\n[[device]]\n{GPU}", "remote_devices must be one of"),
    ],
)
def test_bad_files_raise_one_line_naming_file_and_problem(text: str, expected: str) -> None:
    with pytest.raises(DeviceConfigError) as caught:
        parse_declared_devices(text, source="cluster.toml")

    message = str(caught.value)
    assert expected in message
    assert message.startswith("cluster.toml: ")
    assert "\n" not in message


def test_errors_name_the_entry_number() -> None:
    text = f"[[device]]\n{GPU}\n[[device]]\n{GPU}count = 0\n"

    with pytest.raises(DeviceConfigError, match=r"cluster.toml: \[\[device\]\] entry 2: 'count'"):
        parse_declared_devices(text, source="cluster.toml")


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"

    with pytest.raises(DeviceConfigError, match=r"nope\.toml: declared-device file not found"):
        load_declared_devices(missing)


_entries = st.lists(
    st.tuples(
        st.sampled_from(["gpu", "cpu", "mig"]),
        st.sampled_from(["node-a", "node-b", "node-c"]),
        st.integers(min_value=1, max_value=5),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_entries)
def test_ids_are_unique_and_numbered_from_zero_per_host_and_kind(
    entries: list[tuple[str, str, int]],
) -> None:
    text = "".join(
        f'[[device]]\nkind = "{kind}"\nname = "X"\nmemory_gb = 1\nhost = "{host}"\ncount = {n}\n'
        for kind, host, n in entries
    )
    devices = parse_declared_devices(text)

    assert len(devices) == sum(n for _, _, n in entries)
    assert len({d.id for d in devices}) == len(devices)
    for host in {h for _, h, _ in entries}:
        for kind in {k for k, _, _ in entries}:
            numbers = sorted(
                int(d.id.rsplit(":", 1)[1]) for d in devices if d.host == host and d.kind == kind
            )
            assert numbers == list(range(len(numbers)))


def test_explicit_indices_are_used_and_checked_per_host() -> None:
    text = f"""
    [[device]]
    {GPU}count = 2
    indices = [3, 1]

    [[device]]
    {GPU}host = "node-b"
    index = 3

    [[device]]
    {GPU}
    """
    devices = parse_declared_devices(text)

    assert [(d.id.split("/")[-1], d.host == this_host(), d.index) for d in devices] == [
        ("gpu:0", True, 3), ("gpu:1", True, 1), ("gpu:0", False, 3), ("gpu:2", True, 2)
    ]
    # node-b's GPU is simulated here: its index 3 would name this host's GPU 3.
    assert [pinning_env(d, base={})["CUDA_VISIBLE_DEVICES"] for d in devices] == [
        "3", "1", "", "2"
    ]


def test_declared_mig_and_cpu_have_no_index_and_remote_devices_defaults_to_skip() -> None:
    declared = parse_declared_file(
        '[[device]]\nkind = "mig"\nname = "3g"\nmemory_gb = 20\n[[device]]\nkind = "cpu"\n'
    )
    assert [d.index for d in declared.devices] == [None, None]
    assert declared.remote_devices == "skip"
    simulated = parse_declared_file(f'remote_devices = "simulate"\n[[device]]\n{GPU}')
    assert simulated.remote_devices == "simulate"
