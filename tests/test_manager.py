"""The plugin registry: lookup by name, providers, clashes and observer isolation."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

import hwaware_plugins
from hwaware_plugins import Component, hookimpl
from hwaware_plugins.errors import PluginError, UnknownComponentError
from hwaware_plugins.events import LeaseReleased, emit


class _Widget:
    def __init__(self, *, size: int = 1) -> None:
        self.size = size


def _plugin(*components: Component) -> SimpleNamespace:
    @hookimpl
    def hwaware_register_components() -> list[Component]:
        return list(components)

    return SimpleNamespace(hwaware_register_components=hwaware_register_components)


@pytest.fixture
def registered() -> Iterator[list[object]]:
    plugins: list[object] = []
    yield plugins
    for plugin in plugins:
        hwaware_plugins.unregister_plugin(plugin)


def test_load_builds_a_registered_component_with_keyword_arguments(
    registered: list[object],
) -> None:
    plugin = _plugin(Component(kind="widget", name="big", factory=_Widget))
    hwaware_plugins.register_plugin(plugin, name="widgets")
    registered.append(plugin)

    widget = hwaware_plugins.load("widget", "big", size=3)

    assert isinstance(widget, _Widget)
    assert widget.size == 3
    [component] = hwaware_plugins.components(kind="widget")
    assert component.provider == "widgets"


def test_unknown_name_lists_the_known_names(registered: list[object]) -> None:
    plugin = _plugin(
        Component(kind="widget", name="big", factory=_Widget),
        Component(kind="widget", name="small", factory=_Widget),
    )
    hwaware_plugins.register_plugin(plugin, name="widgets")
    registered.append(plugin)

    with pytest.raises(UnknownComponentError, match=r"unknown widget 'huge'; known: big, small"):
        hwaware_plugins.load("widget", "huge")


def test_unknown_kind_says_nothing_is_registered() -> None:
    with pytest.raises(UnknownComponentError, match="no gizmo is registered"):
        hwaware_plugins.load("gizmo", "any")


def test_framework_specific_component_wins_over_neutral_one(registered: list[object]) -> None:
    plugin = _plugin(
        Component(kind="widget", name="w", factory=lambda: "neutral"),
        Component(kind="widget", name="w", factory=lambda: "optuna", framework="optuna"),
    )
    hwaware_plugins.register_plugin(plugin, name="widgets")
    registered.append(plugin)

    assert hwaware_plugins.load("widget", "w", framework="optuna") == "optuna"
    assert hwaware_plugins.load("widget", "w") == "neutral"
    assert hwaware_plugins.load("widget", "w", framework="hyperopt") == "neutral"


def test_two_plugins_registering_the_same_component_is_an_error(
    registered: list[object],
) -> None:
    first = _plugin(Component(kind="widget", name="w", factory=_Widget))
    second = _plugin(Component(kind="widget", name="w", factory=_Widget))
    hwaware_plugins.register_plugin(first, name="first")
    registered.append(first)
    hwaware_plugins.register_plugin(second, name="second")
    registered.append(second)

    with pytest.raises(PluginError, match="registered by both"):
        hwaware_plugins.components()


def test_a_plugin_returning_garbage_is_named_in_the_error(registered: list[object]) -> None:
    @hookimpl
    def hwaware_register_components() -> list[object]:
        return ["not a component"]

    plugin = SimpleNamespace(hwaware_register_components=hwaware_register_components)
    hwaware_plugins.register_plugin(plugin, name="broken")
    registered.append(plugin)

    with pytest.raises(PluginError, match=r"'broken'.*must return hwaware_plugins\.Component"):
        hwaware_plugins.components()


def test_core_components_are_provided_by_the_core_distribution() -> None:
    core = [c for c in hwaware_plugins.components() if c.provider == "hwaware-plugins"]
    assert core, "the core registers its own components"
    assert all(c.framework is None for c in core)


def test_a_failing_observer_neither_raises_nor_hides_the_event_from_others(
    registered: list[object], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[object] = []

    @hookimpl
    def hwaware_lease_released(event: LeaseReleased) -> None:
        raise RuntimeError("observer bug")

    @hookimpl(specname="hwaware_lease_released")
    def record(event: LeaseReleased) -> None:
        seen.append(event)

    bad = SimpleNamespace(hwaware_lease_released=hwaware_lease_released)
    good = SimpleNamespace(hwaware_lease_released=record)
    for name, plugin in (("bad", bad), ("good", good)):
        hwaware_plugins.register_plugin(plugin, name=name)
        registered.append(plugin)

    event = LeaseReleased(pool="p", slot_id="gpu:0#0", device_id="gpu:0", holder_pid=1)
    with caplog.at_level(logging.WARNING):
        emit("hwaware_lease_released", event)

    assert seen == [event]
    assert "observer bad" in caplog.text


@pytest.mark.parametrize("returned", ["one", "dict"])
def test_a_plugin_returning_one_component_not_a_list_is_named(
    registered: list[object], returned: str
) -> None:
    single = Component(kind="widget", name="single", factory=_Widget)

    @hookimpl
    def hwaware_register_components() -> object:
        return single if returned == "one" else {"widget": single}

    plugin = SimpleNamespace(hwaware_register_components=hwaware_register_components)
    hwaware_plugins.register_plugin(plugin, name="careless")
    registered.append(plugin)
    with pytest.raises(PluginError, match=r"'careless'.*must return a list of hwaware_plugins"):
        hwaware_plugins.components()


def test_a_plugin_taking_a_built_in_name_is_told_the_name_is_reserved(
    registered: list[object],
) -> None:
    plugin = _plugin(Component(kind="scheduler", name="random", factory=_Widget))
    hwaware_plugins.register_plugin(plugin, name="greedy")
    registered.append(plugin)
    with pytest.raises(PluginError, match="built-in names are reserved: rename the plugin's"):
        hwaware_plugins.components()


def test_a_plugin_that_fails_to_import_is_skipped_with_a_warning_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from importlib import metadata

    from hwaware_plugins import _manager
    from hwaware_plugins.errors import BrokenPluginWarning

    broken = metadata.EntryPoint(name="acme", value="acme_missing_xyz.plugin",
                                 group="hwaware_plugins")
    real = metadata.entry_points

    def with_broken(**selection: str) -> object:
        found = list(real(**selection))
        return [*found, broken] if selection.get("group") == "hwaware_plugins" else found

    monkeypatch.setattr(_manager.metadata, "entry_points", with_broken)
    with pytest.warns(BrokenPluginWarning, match=r"'acme' = acme_missing_xyz.plugin .* skipped: "
                      r"ModuleNotFoundError.*pip uninstall"):
        manager = _manager._new_manager(load_entry_points=True)
    assert manager.is_blocked("acme")
    assert {c.name for c in _manager._build_registry(manager).values()} >= {"random", "hwaware"}


def test_a_component_of_one_framework_is_found_there_and_named_elsewhere(
    registered: list[object],
) -> None:
    plugin = _plugin(Component(kind="widget", name="hy", factory=_Widget, framework="hyperopt"))
    hwaware_plugins.register_plugin(plugin, name="hy-plugin")
    registered.append(plugin)
    assert isinstance(hwaware_plugins.load("widget", "hy", framework="hyperopt"), _Widget)
    with pytest.raises(UnknownComponentError, match=r"'hy' is registered for hyperopt only"):
        hwaware_plugins.load("widget", "hy")
    with pytest.raises(UnknownComponentError, match=r"for hyperopt only, not here for framework "
                       r"'optuna'; known here: none"):
        hwaware_plugins.load("widget", "hy", framework="optuna")


def test_the_adapters_load_schedulers_of_their_own_framework(registered: list[object]) -> None:
    from hwaware_hyperopt._suggest import _build_scheduler
    from hwaware_optuna._runtime import load_scheduler

    from hwaware_plugins.scheduling import HwawareScheduler

    for framework in ("hyperopt", "optuna"):
        plugin = _plugin(Component(kind="scheduler", name=f"only-{framework}",
                                   factory=HwawareScheduler, framework=framework))
        hwaware_plugins.register_plugin(plugin, name=f"{framework}-plugin")
        registered.append(plugin)
    assert isinstance(_build_scheduler("only-hyperopt", 0), HwawareScheduler)
    assert isinstance(load_scheduler("only-optuna", 0)[0], HwawareScheduler)
