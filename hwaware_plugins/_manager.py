"""The plugin manager: entry-point loading, the component registry, lookup by name.

Thread-safety: building the manager and the registry is guarded by a lock, so
concurrent first calls from several threads load entry points once. Lookups
afterwards read immutable data.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import warnings
from collections.abc import Iterable
from importlib import metadata
from types import ModuleType
from typing import Any, cast

import pluggy

from hwaware_plugins import hookspecs
from hwaware_plugins._components import Component
from hwaware_plugins._forksafe import fork_safe
from hwaware_plugins.errors import BrokenPluginWarning, PluginError, UnknownComponentError

_log = logging.getLogger(__name__)

CORE_PROVIDER = "hwaware-plugins"
"""The provider name of the components the core registers itself."""

_lock = fork_safe(threading.RLock())
_manager: pluggy.PluginManager | None = None
_registry: dict[tuple[str, str, str | None], Component] | None = None


def _new_manager(load_entry_points: bool) -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    if load_entry_points:
        _load_entry_points(manager)
    from hwaware_plugins import _builtin

    if not manager.is_registered(_builtin):
        # Running from a source tree that was not pip-installed: no entry points.
        manager.register(_builtin, name="core")
    return manager


_distributions: dict[int, str] = {}
"""The distribution that provides each plugin loaded from an entry point, by ``id``."""


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    """Register every plugin of the entry-point group, as pluggy's own loader does, but
    skip (with a warning) a plugin whose module fails to import.

    One broken plugin must not take the command line and every other plugin
    down with it. Cost: one scan of the installed distributions, one import
    per plugin.
    """
    for entry_point in metadata.entry_points(group=hookspecs.PROJECT_NAME):
        if manager.get_plugin(entry_point.name) or manager.is_blocked(entry_point.name):
            continue
        dist = getattr(getattr(entry_point, "dist", None), "name", None) or "?"
        try:
            plugin = entry_point.load()
        except Exception as exc:
            manager.set_blocked(entry_point.name)
            warnings.warn(
                f"plugin {entry_point.name!r} = {entry_point.value} (distribution {dist}) "
                f"failed to import and is skipped: {type(exc).__name__}: {exc}; fix it or "
                f"pip uninstall {dist}",
                BrokenPluginWarning,
                stacklevel=4,
            )
            continue
        try:
            manager.register(plugin, name=entry_point.name)
        except Exception as exc:
            raise PluginError(
                f"plugin {entry_point.name!r} (distribution {dist}) failed to register: {exc}"
            ) from exc
        _distributions[id(plugin)] = dist


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading entry points on first use.

    Cost: the first call imports every plugin of the ``hwaware_plugins``
    entry-point group; later calls return the cached manager.
    """
    global _manager
    with _lock:
        if _manager is None:
            _manager = _new_manager(load_entry_points=True)
        return _manager


def register_plugin(plugin: ModuleType | object, name: str | None = None) -> None:
    """Register a plugin object at run time (as ``pytest`` does with ``-p``).

    Components it provides become visible to :func:`load` immediately; their
    provider is ``name`` (or the plugin's module name).
    """
    global _registry
    with _lock:
        get_plugin_manager().register(plugin, name=name)
        _registry = None


def unregister_plugin(plugin: ModuleType | object) -> None:
    """Remove a plugin registered with :func:`register_plugin`."""
    global _registry
    with _lock:
        get_plugin_manager().unregister(plugin)
        _registry = None


def reset() -> None:
    """Forget the manager and registry; the next call reloads entry points (for tests)."""
    global _manager, _registry
    with _lock:
        _manager = None
        _registry = None


def _provider_of(manager: pluggy.PluginManager, plugin: object) -> str:
    if id(plugin) in _distributions:
        return _distributions[id(plugin)]
    from hwaware_plugins import _builtin

    if plugin is _builtin:
        return CORE_PROVIDER
    name = manager.get_name(plugin)
    return str(name or getattr(plugin, "__name__", type(plugin).__name__))


def _build_registry(manager: pluggy.PluginManager) -> dict[tuple[str, str, str | None], Component]:
    registry: dict[tuple[str, str, str | None], Component] = {}
    hook = manager.hook.hwaware_register_components
    for impl in reversed(hook.get_hookimpls()):
        provider = _provider_of(manager, impl.plugin)
        try:
            provided = cast("Iterable[object] | None", impl.function())
        except Exception as exc:
            raise PluginError(
                f"plugin {impl.plugin_name!r} ({provider}) failed to register components: {exc}"
            ) from exc
        if isinstance(provided, Component | dict | str) or not isinstance(
            provided, Iterable | None
        ):
            raise PluginError(
                f"plugin {impl.plugin_name!r} ({provider}) returned {provided!r}; "
                "hwaware_register_components must return a list of hwaware_plugins.Component"
            )
        for component in provided or ():
            if not isinstance(component, Component):
                raise PluginError(
                    f"plugin {impl.plugin_name!r} ({provider}) returned {component!r}; "
                    "hwaware_register_components must return hwaware_plugins.Component objects"
                )
            component = dataclasses.replace(component, provider=provider)
            previous = registry.get(component.key)
            if previous is not None:
                builtin = CORE_PROVIDER in (previous.provider, provider)
                raise PluginError(
                    f"{component.kind} {component.name!r} (framework {component.framework}) is "
                    f"registered by both {previous.provider} and {provider}; "
                    + (f"the built-in names are reserved: rename the plugin's {component.kind}"
                       if builtin else "uninstall one of them")
                )
            registry[component.key] = component
    return registry


def components(kind: str | None = None, framework: str | None = None) -> list[Component]:
    """List registered components, sorted by kind, framework and name.

    :param kind: keep only this kind.
    :param framework: keep only components of this framework (framework-neutral
        ones are always kept).
    """
    global _registry
    with _lock:
        if _registry is None:
            _registry = _build_registry(get_plugin_manager())
        registry = _registry
    found = [
        c
        for c in registry.values()
        if (kind is None or c.kind == kind)
        and (framework is None or c.framework in (None, framework))
    ]
    return sorted(found, key=lambda c: (c.kind, c.framework or "", c.name))


def get_component(kind: str, name: str, framework: str | None = None) -> Component:
    """Return the registered :class:`Component` of that kind and name.

    A component registered for ``framework`` is preferred to a framework-neutral
    one of the same name.

    :raises UnknownComponentError: no such component; the message lists the
        known names of that kind.
    """
    candidates = components(kind=kind, framework=framework)
    for wanted in (framework, None):
        for component in candidates:
            if component.name == name and component.framework == wanted:
                return component
    known = sorted({c.name for c in candidates if c.framework in (framework, None)})
    scope = f" for framework {framework!r}" if framework else ""
    elsewhere = sorted({c.framework or "" for c in components(kind=kind)
                        if c.name == name and c.framework not in (framework, None)})
    if elsewhere:
        raise UnknownComponentError(
            f"{kind} {name!r} is registered for {', '.join(elsewhere)} only, not here"
            f"{scope or ' (framework-neutral use)'}; known here: {', '.join(known) or 'none'}"
        )
    if not known:
        raise UnknownComponentError(
            f"unknown {kind} {name!r}{scope}: no {kind} is registered"
            " (is the adapter package installed?)"
        )
    raise UnknownComponentError(
        f"unknown {kind} {name!r}{scope}; known: {', '.join(known)}"
    )


def load(kind: str, name: str, framework: str | None = None, **kwargs: Any) -> Any:
    """Build the component of that kind and name, passing ``kwargs`` to its factory.

    Example: ``hwaware_plugins.load("scheduler", "hwaware", seed=0)``.

    :raises UnknownComponentError: no such component; the message lists the known names.
    """
    return get_component(kind, name, framework).factory(**kwargs)
