"""Hook specifications: the contracts a hwaware plugin can implement.

A plugin is a plain module (or any object) with functions named after the hooks
below and decorated with :data:`hookimpl`. Packages expose plugins through the
``hwaware_plugins`` entry-point group::

    [project.entry-points.hwaware_plugins]
    my_plugin = "my_package.hwaware_plugin"

Every hook is called with keyword arguments; an implementation may accept any
subset of the arguments named in the specification (pluggy's rule). Hooks that
collect results (all except the ``firstresult`` ones,
``hwaware_distribution_complexity`` and ``hwaware_demo_study``) ignore
implementations that return ``None``.

The command line is extended the same way: :func:`hwaware_add_commands` adds
sub-commands to ``hwaware`` (as pytest's ``pytest_addoption`` adds options), and
:func:`hwaware_demo_study` runs the framework part of ``hwaware demo``. The core
never imports a framework or an adapter; everything framework-specific reaches
it through these hooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from hwaware_plugins._components import Component
    from hwaware_plugins.events import LeaseReleased, TrialFinished, TrialPlaced
    from hwaware_plugins.hardware import Device

PROJECT_NAME = "hwaware_plugins"
"""The pluggy project name, and the name of the entry-point group plugins use."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marker for hook specifications (used by this module only)."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations: decorate your plugin's functions with it."""

CHAOS_DRIVER_KIND = "chaos-driver"
"""Component kind of a chaos benchmark driver (see :func:`hwaware_register_components`).

The component's ``factory`` is the driver itself, a callable
``(hwaware_plugins.chaos.RunContext) -> list[hwaware_plugins.chaos.TrialResult]``;
its ``framework`` is the ``--framework`` value of ``hwaware bench chaos`` and
its ``name`` the ``--driver`` value (a framework with one driver may name it
freely: it is used whatever ``--driver`` says)."""


@hookspec
def hwaware_discover_devices(config: Mapping[str, Any]) -> Sequence[Device] | None:
    """Return the devices this plugin can see on this host.

    Called once per inventory build (``discover_devices(None)``); the results of
    every plugin are concatenated in registration order. Each device id must be
    unique across plugins: the inventory raises
    :class:`~hwaware_plugins.errors.DeviceConfigError` on a clash.

    :param config: read-only options of the caller, e.g. ``{"skip_nvml": True}``;
        plugins ignore keys they do not know.
    :return: a sequence of :class:`~hwaware_plugins.hardware.Device`, or ``None``
        when the plugin has nothing to add (no library, no hardware).

    An implementation must not raise for missing hardware or drivers: log at
    debug level and return ``None``.
    """


@hookspec(firstresult=True)
def hwaware_distribution_complexity(distribution: Any, rule: str) -> float | None:
    """Return the complexity of a distribution the core does not know.

    ``firstresult``: the first non-``None`` value wins, in LIFO registration
    order (plugins registered later are asked first). When every
    implementation returns ``None`` the complexity rule raises
    :class:`~hwaware_plugins.errors.SearchSpaceError` naming the distribution.

    :param distribution: the distribution object, of any type.
    :param rule: the complexity rule asking (``"hwaware"`` or ``"shadho"``), so a
        plugin can answer in that rule's units: for ``"shadho"`` a value >= 1,
        for ``"hwaware"`` a log-volume in normalised units (>= 0).
    :return: a finite float, or ``None`` when this plugin does not know the
        distribution.
    """


@hookspec
def hwaware_register_components() -> Sequence[Component] | None:
    """Return the named components this plugin provides.

    Called once when the plugin manager is first built. A component is a
    :class:`~hwaware_plugins.Component`: its ``kind`` (``"sampler"``,
    ``"pruner"``, ``"executor"``, ``"scheduler"``, ``"algo"``...), its ``name``, the
    ``framework`` it serves (``"optuna"``, ``"hyperopt"`` or ``None`` for
    framework-neutral components) and a ``factory`` that builds it.

    Two plugins that register the same ``(kind, name, framework)`` make the
    registry raise :class:`~hwaware_plugins.errors.PluginError` at load time;
    the built-in names are reserved. A component of one framework is found
    only by that framework's adapter (``load(..., framework="hyperopt")``).

    How factories are called: a ``"scheduler"`` factory as ``factory(seed=...)``
    (an int, or ``None``), so it must take a ``seed`` keyword; other kinds with
    the keyword arguments their user passes. A plugin whose module fails to
    import is skipped with a ``BrokenPluginWarning`` naming it; the rest of
    hwaware keeps working.

    :return: a sequence (a list) of components, or ``None``.
    """


@hookspec
def hwaware_trial_placed(event: TrialPlaced) -> None:
    """Observe a trial being given a device and a subspace.

    Called by executors and samplers right after the lease is taken and before
    the objective runs. Observers must be fast and must not raise: an exception
    is logged and swallowed, it never fails the trial.
    """


@hookspec
def hwaware_trial_finished(event: TrialFinished) -> None:
    """Observe a trial ending (complete, failed, pruned or timed out).

    Called after the trial's result is recorded and before its lease is
    released. Same rules as :func:`hwaware_trial_placed`.
    """


@hookspec
def hwaware_lease_released(event: LeaseReleased) -> None:
    """Observe a device lease being released or reclaimed from a dead holder.

    Same rules as :func:`hwaware_trial_placed`.
    """


@hookspec
def hwaware_add_commands(subparsers: Any) -> None:
    """Add sub-commands to the ``hwaware`` command line.

    Called once per parser build, after the core's own commands, for every
    registered plugin (in LIFO registration order). ``subparsers`` is the
    object ``argparse.ArgumentParser.add_subparsers`` returned: call its
    ``add_parser(name, help=...)`` and set ``handler`` on the new parser with
    ``parser.set_defaults(handler=run)``, where ``run(args) -> int`` returns the
    exit code (``None`` counts as 0). ``args.quiet`` (``-q``) asks for no progress bars.

    Conventions the core relies on: import the framework only inside ``run``
    (listing commands must stay cheap and work without it); raise
    :class:`~hwaware_plugins.errors.ConfigError` for bad user input (one line,
    exit code 2). A command name already taken makes argparse raise
    ``argparse.ArgumentError`` at parser build: pick a unique name.

    Example (an adapter's ``_plugin`` module)::

        @hookimpl
        def hwaware_add_commands(subparsers):
            parser = subparsers.add_parser("worker", help="run trials on this node")
            parser.add_argument("--study", required=True)
            parser.set_defaults(handler=run_worker)
    """


@dataclass(frozen=True)
class DemoStudy:
    """What the framework part of ``hwaware demo`` hands back to the core.

    :param study: the finished study, read duck-typed by
        :func:`hwaware_plugins.reporting.render_report` (``study_name``,
        ``directions`` with ``.name``, ``get_trials(deepcopy=False)`` returning
        trials with ``number``, ``state.name``, ``values``, ``user_attrs``,
        ``datetime_start``, ``datetime_complete``).
    :param report_command: the ``hwaware report ...`` command line that renders
        the stored study again, printed for the user.
    """

    study: Any
    report_command: str


@hookspec(firstresult=True)
def hwaware_demo_study(out: Path, trials: int, quiet: bool) -> DemoStudy | None:
    """Run the study of ``hwaware demo``: ``trials`` trials of the demo problem.

    ``firstresult``: the first implementation returning a :class:`DemoStudy`
    runs the demo (plugins registered later are asked first); the core reports
    it and then runs its framework-neutral simulation. Store the study under
    ``out`` (an existing folder), replacing an earlier demo study, and draw
    progress on stderr unless ``quiet``. Return ``None`` to let another plugin
    run it; raise :class:`~hwaware_plugins.errors.ConfigError` when a needed
    package is missing (say what to install).
    """
