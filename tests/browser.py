"""Headless Debian Chromium under Playwright's sync API, shared by every browser test (e2e, sandbox, app).

Playwright's sync API allows one driver per thread, so a test process starts it once
(``playwright_driver`` in tests/conftest.py) and launches browsers from it: the shared
``headless_browser``, or one with extra flags (fake media devices) via :func:`launch`.
Tests skip with a clear reason where Chromium or Playwright is absent on a developer's machine,
and fail under ``CI=true`` (see :func:`tests.conftest.unavailable`).
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tests.conftest import unavailable

CHROMIUM = os.environ.get("TELEHUB_E2E_CHROMIUM", "/usr/bin/chromium")
# No outside network here: keep Chromium from calling home (refused connections, DNS look-ups).
QUIET_ARGS = ("--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")


@contextmanager
def playwright_session() -> Iterator[Any]:
    """The Playwright driver (sync API), after checking Chromium and the package are there."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"{CHROMIUM} not found: install Debian's chromium (bash infra/services/ensure-chromium.sh)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the Python playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        yield pw


@contextmanager
def launch(driver: Any, extra_args: Sequence[str] = ()) -> Iterator[Any]:
    """A headless ``Browser`` on /usr/bin/chromium (never a downloaded browser), closed afterwards."""
    browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*QUIET_ARGS, *extra_args])
    try:
        yield browser
    finally:
        browser.close()
