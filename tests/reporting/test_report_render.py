"""Render a real study's report in headless Chromium and look at the screenshot's pixels.

The timeline's row background (``ROW_FILL``), the subspace colours and the
best-loss line's navy (``BEST_COLOUR``) are used nowhere else on the page, so
counting them in the PNG tells whether the plots were drawn.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hwaware_plugins.reporting import render_report
from hwaware_plugins.reporting._axes import BEST_COLOUR, ROW_FILL, SUBSPACE_COLOURS
from tests.reporting._png import Image, read_png
from tests.reporting._study import make_study

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Chromium (apt-get install -y chromium)"
)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _near(a: tuple[int, ...], b: tuple[int, int, int], tol: int = 3) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=False))


def _bbox(image: Image, colour: tuple[int, int, int]) -> tuple[int, int, int, int] | None:
    xs, ys = [], []
    for y in range(image.height):
        row = image.rows[y]
        for x in range(0, image.width, 2):
            i = x * image.channels
            if (row[i], row[i + 1], row[i + 2]) == colour:
                xs.append(x)
                ys.append(y)
    if not xs:
        return None
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1


def _screenshot(html: Path, png: Path, profile: Path) -> None:
    subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={png}",
            "--window-size=1400,1300", html.as_uri(),
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def screenshot(tmp_path_factory: pytest.TempPathFactory) -> Image:
    tmp = tmp_path_factory.mktemp("render")
    study = make_study(tmp, n_trials=24)
    html = tmp / "report.html"
    html.write_text(render_report(study), encoding="utf-8")
    png = tmp / "report.png"
    _screenshot(html, png, tmp / "profile")
    return read_png(png)


def test_screenshot_is_not_blank(screenshot: Image) -> None:
    sample = list(screenshot.pixels((0, 0, screenshot.width, screenshot.height)))[::37]
    white = sum(p == (255, 255, 255) for p in sample)
    assert len(set(sample)) > 20
    assert white < 0.97 * len(sample)


def test_timeline_rows_hold_coloured_bars(screenshot: Image) -> None:
    box = _bbox(screenshot, _rgb(ROW_FILL))
    assert box is not None, "no timeline row background in the screenshot"
    x0, y0, x1, y1 = box
    assert x1 - x0 > 400 and y1 - y0 > 40  # a wide band: the rows of three devices
    palette = [_rgb(c) for c in SUBSPACE_COLOURS]
    inside = [p for p in screenshot.pixels(box) if any(_near(p, c) for c in palette)]
    assert len(inside) > 2000  # bars, not a legend swatch
    colours_seen = {c for p in inside for c in palette if _near(p, c)}
    assert len(colours_seen) >= 2  # bars of at least two subspaces


def test_loss_curve_is_drawn(screenshot: Image) -> None:
    navy = _rgb(BEST_COLOUR)
    count = sum(_near(p, navy, 12) for p in screenshot.pixels())
    assert count > 300  # a 3 px line across much of the plot, not just the legend sample
