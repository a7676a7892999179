"""Every example under examples/ runs to the end with a tiny budget and says what it should."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import postgres_url  # noqa: F401  (the fixture, not moved)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 180

SMOKE: dict[str, tuple[list[str], str]] = {
    "optuna_cash_digits.py": (["--trials", "3", "--seed", "1"], "best trial #"),
    "optuna_torch_device_for.py": (["--trials", "2", "--epochs", "1"], "trials in threads"),
    "hyperopt_cash_digits.py": (["--max-evals", "3"], "trials per device:"),
    "hyperopt_dask_cluster.py": (["--local", "--max-evals", "4"], "evaluations per node:"),
    "adaptive_sgd_digits.py": (["--epochs", "1"], "adaptive accuracy"),
}
"""Example file -> (arguments, a line fragment its output must contain)."""

COVERED_ELSEWHERE = {"optuna_multinode_postgres.py"}
"""Examples smoke-tested below by a test of their own."""


def run_example(script: str, args: list[str], cwd: Path,
                env: dict[str, str] | None = None) -> str:
    """Run ``examples/<script>`` in ``cwd``; its output, after asserting exit code 0."""
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{script} exited with {done.returncode}:\n{output[-3000:]}"
    return output


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_example_runs(script: str, tmp_path: Path) -> None:
    args, expected = SMOKE[script]
    output = run_example(script, args, tmp_path)
    assert expected in output, output[-3000:]
    assert list(tmp_path.iterdir()) == [], "an example left files in its working folder"


def test_torch_example_in_pinned_worker_processes(tmp_path: Path) -> None:
    output = run_example("optuna_torch_device_for.py",
                         ["--trials", "2", "--epochs", "1", "--processes"], tmp_path)
    assert "2 trials in pinned worker processes" in output, output[-3000:]
    assert "-> cpu:" in output or "-> cuda:0:" in output


def test_the_third_party_plugin_installs_and_is_listed(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(target),
                    str(EXAMPLES / "third_party_plugin")],
                   check=True, capture_output=True, timeout=TIMEOUT_S)
    env = {**os.environ, "PYTHONPATH": str(target), "ACME_ACCELERATORS": "acme-x1:16"}
    done = subprocess.run([sys.executable, "-m", "hwaware_plugins.cli", "plugins", "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert "round-robin" in done.stdout and "hwaware-acme" in done.stdout


def _postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.integration
def test_multinode_postgres_example_runs_three_local_nodes(request: pytest.FixtureRequest,
                                                          tmp_path: Path) -> None:
    if not _postgres_answers():
        pytest.skip("no PostgreSQL server answers on 127.0.0.1:5432")
    url = request.getfixturevalue("postgres_url")
    output = run_example("optuna_multinode_postgres.py",
                         ["--local", "--storage", url, "--n-trials", "6"], tmp_path)
    assert "exit codes [0, 0, 0];" in output and "per node {" in output, output[-3000:]


def test_every_example_has_a_smoke_test() -> None:
    present = {path.name for path in EXAMPLES.glob("*.py")}
    untested = present - set(SMOKE) - COVERED_ELSEWHERE
    assert not untested, f"add a smoke test to tests/examples/test_examples.py for {untested}"
    assert set(SMOKE) | COVERED_ELSEWHERE <= present, "a smoke test names a missing example"


def test_the_api_reference_is_up_to_date() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import gen_api
    finally:
        sys.path.remove(str(ROOT / "docs"))
    current = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert current == gen_api.render(), "docs/api.md is out of date: run python docs/gen_api.py"
