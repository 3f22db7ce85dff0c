"""Under CI (``CI=true``) a skipped browser test is a failure.

The browser tests skip where Chromium, chromedriver or selenium are missing, which is right on a
developer's machine but would let CI pass without ever opening a page; ``.ci/run`` installs
them, and this hook makes sure they were actually used.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _fail_skip_in_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"browser test skipped under CI=true (a skip is a failure there): {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport() -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _fail_skip_in_ci(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report() -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A module skipped while collected (e.g. a module-level ``importorskip``) counts too."""
    report = yield
    _fail_skip_in_ci(report)
    return report
