"""Reporting: self-contained HTML study reports and dependency-free SVG charts.

- :func:`render_report` turns an Optuna study run with the plugin into one HTML
  file (placement timeline per device, loss over time, usage per subspace and
  device class, failures by kind); :func:`build_report` does the same from
  :class:`TrialRecord` rows (:func:`records_from_trials`);
- :func:`line_chart`, :func:`best_loss_chart`, :func:`gantt_chart`,
  :func:`loss_chart`, :func:`stacked_bars`: the SVG charts on their own.

Nothing here imports optuna or a plotting library.
"""

from hwaware_plugins.reporting._bars import stacked_bars
from hwaware_plugins.reporting._gantt import gantt_chart
from hwaware_plugins.reporting._loss import loss_chart
from hwaware_plugins.reporting._records import FAIL_REASON, TrialRecord, records_from_trials
from hwaware_plugins.reporting._report import build_report, render_report
from hwaware_plugins.reporting._svg import best_loss_chart, line_chart, nice_ticks

__all__ = [
    "FAIL_REASON",
    "TrialRecord",
    "best_loss_chart",
    "build_report",
    "gantt_chart",
    "line_chart",
    "loss_chart",
    "nice_ticks",
    "records_from_trials",
    "render_report",
    "stacked_bars",
]
