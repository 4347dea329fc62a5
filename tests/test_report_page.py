"""The report page as a person sees it: a screenshot in headless Chromium.

Chromium and a CJK font are Debian packages that ``.ci/run`` installs; in CI a
missing browser fails this test (elsewhere it is skipped, saying what to install).
The report is made with every warning recorded: matplotlib's "Glyph ... missing
from current font" (Chinese names drawn as boxes) or the report's own font
fallback would show up here.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import warnings

import numpy as np
import pytest

from conftest import FIXTURES, RULES
from txcore.audit.charts import COLOURS
from txcore.cli import main

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        message = "no headless browser: apt-get install chromium (as .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def colour_mask(image: np.ndarray, hex_colour: str, tolerance: int = 12) -> np.ndarray:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return np.all(np.abs(image[:, :, :3].astype(int) - rgb) <= tolerance, axis=2)


def test_report_page_renders_in_a_browser(tmp_path):
    chromium = browser()
    out = tmp_path / "out"
    day = sorted(FIXTURES.glob("txns-*.parquet"))[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(["replay", "--rules", str(RULES), "--cards", str(FIXTURES / "cards.csv"),
                   "--merchants", str(FIXTURES / "merchants.csv"), "-o", str(out),
                   "--no-progress", "--report", str(day)])
    assert rc == 0
    assert [str(w.message) for w in caught] == []  # no missing glyphs, no font fallback
    page = out / "report.html"
    assert "Charts set in" in page.read_text(encoding="utf-8")

    shot = tmp_path / "page.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400",
                    f"--screenshot={shot}", page.as_uri()],
                   check=True, capture_output=True, timeout=180)
    from matplotlib import image as mpimg
    image = (mpimg.imread(shot) * 255).round().astype(np.uint8)
    assert image.shape[:2] == (2400, 1280)

    # the district chart: its cumulative line, and the milestone lines, are on screen
    line = colour_mask(image, COLOURS["issued"])
    assert line.sum() > 1000, "the district rollout chart did not render"
    assert colour_mask(image, COLOURS["milestone"]).sum() > 500
    rows, cols = np.nonzero(line)
    chart = image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    non_white = np.any(chart[:, :, :3] < 235, axis=2).mean()
    assert non_white > 0.03, f"chart area nearly blank ({non_white:.1%} drawn)"
    shutil.copy(shot, out / "page.png")  # kept beside the report for a person to look at
    # the banks' charts: U01's and U05's colour (tab20's first), in the legends and areas
    assert colour_mask(image, "#1f77b4", tolerance=6).sum() > 200
