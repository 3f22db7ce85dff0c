"""The demo's ``results/report.html`` in headless Chromium.

A two-hour demo (the local exchange, the dispatcher and two Celery workers on the test Redis)
writes the report; opened from disk, it must render its tables and its embedded plot without
fetching anything. Screenshots of the page and of the plot image are saved to
``tests/browser/artifacts/report.png`` and ``plot.png``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.chromium import chromium_setup, open_browser

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def report(tmp_path_factory, redis_url) -> Path:
    tmp = tmp_path_factory.mktemp("demo-report")
    results = tmp / "results"
    run = subprocess.run(
        [sys.executable, "-m", "gsy_e_sdk", "demo", "--duration", "2h", "--results", str(results)],
        env={**os.environ, "REDIS_URL": redis_url},
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return results / "report.html"


def test_report_renders_its_tables_and_plot_in_chromium(report):
    from selenium.webdriver.common.by import By

    browser, driver_path = chromium_setup()
    driver = open_browser(browser, driver_path)
    try:
        driver.get(report.as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        assert driver.title.startswith("Fleet run: Grid, ")
        plot = driver.find_element(By.ID, "plot")
        # Loaded and decoded from the embedded PNG: a broken image has natural width 0.
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", plot) > 500
        assert plot.size["width"] > 500 and plot.size["height"] > 300
        markets = driver.find_elements(By.CSS_SELECTOR, "#markets tbody tr")
        names = [row.find_element(By.TAG_NAME, "td").text for row in markets]
        assert {"Grid", "Community", "all trades (buyer prices)"} <= set(names)
        grid = next(row for row in markets if row.find_element(By.TAG_NAME, "td").text == "Grid")
        assert grid.find_elements(By.TAG_NAME, "td")[-1].text == "-"
        assert len(driver.find_elements(By.CSS_SELECTOR, "#shards tbody tr")) == 2
        # Every slot of the run, the first one included, is in the (collapsed) slot table.
        slots = driver.execute_script(
            "return Array.from(document.querySelectorAll('#slots tbody tr'), row => row.cells[0].textContent)"
        )
        assert slots == [f"{hour:02d}:{minute:02d}" for hour in (0, 1) for minute in (0, 15, 30, 45)]
        files = driver.find_element(By.ID, "files").text.split("\n")
        assert {"report.html", "exchange/orders.csv", "logs/"} <= set(files)
        # Self-contained: nothing the page refers to lives on a network.
        sources = driver.execute_script(
            "return Array.from(document.querySelectorAll('[src], [href]'), e => e.src || e.href)"
        )
        assert sources and all(source.startswith("data:image/png;base64,") for source in sources), sources
        ARTIFACTS.mkdir(exist_ok=True)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1400, min(height + 150, 4000))
        assert driver.save_screenshot(str(ARTIFACTS / "report.png"))
        assert plot.screenshot(str(ARTIFACTS / "plot.png"))
        assert (ARTIFACTS / "report.png").stat().st_size > 20_000
        assert (ARTIFACTS / "plot.png").stat().st_size > 20_000
    finally:
        driver.quit()
