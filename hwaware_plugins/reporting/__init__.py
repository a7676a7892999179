"""Reporting helpers: a dependency-free SVG line chart (:func:`line_chart`)."""

from hwaware_plugins.reporting._svg import best_loss_chart, line_chart, nice_ticks

__all__ = ["best_loss_chart", "line_chart", "nice_ticks"]
