"""Headless Chromium through selenium, as every browser test drives it."""

from __future__ import annotations

import base64
import shutil

import pytest


def chromium_setup() -> tuple[str, str]:
    """Paths of Chromium and chromedriver, or skip with the reason (a failure under CI, see conftest)."""
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")
    browser = next(
        (path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None
    )
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip(
            "headless Chromium and chromedriver are needed (Debian: apt-get install -y chromium chromium-driver)"
        )
    return browser, driver


def open_browser(browser: str, driver_path: str, user: str | None = None, password: str | None = None):
    """A headless Chromium; with ``user``/``password``, basic auth on every request, XHR included
    (no credentials in the URL)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1600,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    if user is not None and password is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
    return driver
