"""The README's set-up commands are the ones CI runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_test_command_is_the_one_ci_runs() -> None:
    ci_lines = (ROOT / ".ci" / "test-command").read_text().splitlines()
    command = next(line for line in ci_lines if line.startswith("python3 -m venv"))
    assert command in (ROOT / "README.md").read_text()


def test_ci_runs_the_integration_tests_and_refuses_an_empty_run() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "bash .ci/test-command" in script
    assert "-m integration" in script
    assert '"$code" -eq 5' in script
