"""Exceptions raised by hwaware-plugins.

Every error message is one line that names the problem and, where there is
one, what to do about it. The CLI prints that line and exits with code 2 for
any :class:`HwawareError` caused by user input.
"""

from __future__ import annotations


class HwawareError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(HwawareError, ValueError):
    """Invalid user input: an argument, option or configuration file."""


class DeviceConfigError(ConfigError):
    """A declared-device file (or device list) is missing, malformed or inconsistent."""


class SearchSpaceError(ConfigError):
    """A search space is empty, contradictory or uses an unknown distribution."""


class PluginError(HwawareError):
    """A plugin failed to load, or two plugins registered the same component."""


class BrokenPluginWarning(UserWarning):
    """A plugin's module failed to import; it was skipped and everything else works.

    The message names the entry point and the distribution to fix or uninstall.
    """


class UnknownComponentError(PluginError, ConfigError, LookupError):
    """No component of that kind and name is registered; the message lists the known ones.

    It is a :class:`ConfigError` too: the name came from the user, so the CLI exits with code 2.
    """


class LeaseTimeoutError(HwawareError, TimeoutError):
    """No device slot became free within the requested time."""


class NoSuitableDeviceError(HwawareError):
    """No device in the pool can ever satisfy a request (e.g. memory need above every device)."""
