"""Example third-party plugin for hwaware-plugins."""

from hwaware_acme.plugin import PowerOfTwo, RoundRobinScheduler

__all__ = ["PowerOfTwo", "RoundRobinScheduler"]
