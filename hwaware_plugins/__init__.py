"""hwaware-plugins: hardware-aware hyperparameter optimisation for Optuna and Hyperopt.

The core is framework-neutral: it never imports optuna or hyperopt. The
adapters (``hwaware_optuna``, ``hwaware_hyperopt``) are plugins found through
the ``hwaware_plugins`` entry-point group, exactly as third-party plugins are.

Public entry points:

- :func:`load` builds a registered component by kind and name;
- :func:`components` lists what is registered;
- :data:`hookimpl` marks hook implementations in a plugin module;
- :mod:`hwaware_plugins.hardware` holds devices, probes and the device pool.
"""

from hwaware_plugins._components import Component
from hwaware_plugins._manager import (
    components,
    get_component,
    get_plugin_manager,
    load,
    register_plugin,
    unregister_plugin,
)
from hwaware_plugins.errors import (
    ConfigError,
    DeviceConfigError,
    HwawareError,
    PluginError,
    SearchSpaceError,
    UnknownComponentError,
)
from hwaware_plugins.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "Component",
    "ConfigError",
    "DeviceConfigError",
    "HwawareError",
    "PluginError",
    "SearchSpaceError",
    "UnknownComponentError",
    "__version__",
    "components",
    "get_component",
    "get_plugin_manager",
    "hookimpl",
    "load",
    "register_plugin",
    "unregister_plugin",
]
