"""The core never imports a framework or an adapter; the CLI works without them.

The AST walk is the CI check behind the claim in the README: every module under
``hwaware_plugins/`` is parsed and every import form is inspected (``import``,
``from ... import``, ``importlib.import_module``/``__import__`` with a literal
name), wherever it sits (module top, function body, ``TYPE_CHECKING`` block).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import hwaware_plugins

CORE = Path(hwaware_plugins.__file__).resolve().parent
FORBIDDEN = ("optuna", "hyperopt", "hwaware_optuna", "hwaware_hyperopt")
_KEY_LITERAL = re.compile(r"hwaware:[a-z_]+")


def _forbidden(name: str | None) -> bool:
    return name is not None and name.split(".", 1)[0] in FORBIDDEN


def _dynamic_import_name(node: ast.Call) -> str | None:
    """The literal module name of ``importlib.import_module("x")``, ``import_module("x")``
    or ``__import__("x")``; ``None`` for any other call."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None


def forbidden_imports(source: str, filename: str) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import of a framework or an adapter in ``source``."""
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names: list[str | None] = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [None if node.level else node.module]
        elif isinstance(node, ast.Call):
            names = [_dynamic_import_name(node)]
        else:
            continue
        for name in names:
            if _forbidden(name):
                yield node.lineno, str(name)


def _core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_the_walker_sees_every_import_form() -> None:
    source = "\n".join([
        "import optuna",
        "import numpy, hyperopt.tpe as tpe",
        "from hwaware_optuna._sampler import HardwareAwareSampler",
        "def f():",
        "    from hyperopt import fmin",
        "    import importlib",
        "    importlib.import_module('hwaware_hyperopt')",
        "    __import__('optuna.storages')",
        "from . import optuna_like",
        "import optunax",
    ])  # fmt: skip
    found = list(forbidden_imports(source, "<test>"))
    assert found == [
        (1, "optuna"), (2, "hyperopt.tpe"), (3, "hwaware_optuna._sampler"),
        (5, "hyperopt"), (7, "hwaware_hyperopt"), (8, "optuna.storages"),
    ]  # fmt: skip


def test_the_core_imports_no_framework_and_no_adapter() -> None:
    modules = _core_modules()
    assert len(modules) > 50, "the walk must cover the whole package"
    offenders = [
        f"{path.relative_to(CORE.parent)}:{line}: imports {name}"
        for path in modules
        for line, name in sorted(forbidden_imports(path.read_text(encoding="utf-8"), str(path)))
    ]
    assert not offenders, "the core must not import a framework:\n" + "\n".join(offenders)


def test_attribute_keys_are_spelled_only_in_the_key_table() -> None:
    offenders = []
    for path in _core_modules():
        if path == CORE / "attrs.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and _KEY_LITERAL.fullmatch(text):
                offenders.append(f"{path.relative_to(CORE.parent)}:{node.lineno}")
    assert not offenders, "use hwaware_plugins.attrs instead of: " + ", ".join(offenders)


_LIST_COMMANDS = """
import sys
for name in ("optuna", "hyperopt"):
    sys.modules[name] = None  # any import of them raises ImportError
import hwaware_plugins, hwaware_plugins.cli
from hwaware_plugins.cli import build_parser
parser = build_parser()
action = next(a for a in parser._actions if a.dest == "command")
print(" ".join(sorted(action.choices)))
"""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
        check=False,
    )  # fmt: skip


def test_commands_are_listed_with_optuna_and_hyperopt_blocked() -> None:
    done = _python(_LIST_COMMANDS)
    assert done.returncode == 0, done.stderr
    commands = set(done.stdout.split())
    assert {"devices", "plugins", "bench", "demo", "leases"} <= commands
    assert {"worker", "report"} <= commands, "the optuna adapter adds them without optuna"


def test_listing_commands_and_plugins_imports_no_framework() -> None:
    code = (
        "import sys\n"
        "from hwaware_plugins.cli import main\n"
        "assert main(['plugins', '--json']) == 0\n"
        "loaded = sorted(m for m in ('optuna', 'hyperopt') if m in sys.modules)\n"
        "print('LOADED', loaded)\n"
    )
    done = _python(code)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout


@pytest.mark.parametrize("blocked", ["optuna", "hyperopt"])
def test_a_framework_command_without_its_framework_says_what_to_install(blocked: str) -> None:
    command = (
        "['report', '--storage', 'x.db', '--study', 's', '--out', 'r.html']"
        if blocked == "optuna"
        else "['bench', 'chaos', '--framework', 'hyperopt', '--trials', '1']"
    )
    code = (
        f"import sys\nsys.modules[{blocked!r}] = None\n"
        "from hwaware_plugins.cli import main\n"
        f"sys.exit(main({command}))\n"
    )
    done = _python(code)
    assert done.returncode in (1, 2), done.stderr
    assert "Traceback" not in done.stderr
    assert "pip install" in done.stderr or blocked in done.stderr
