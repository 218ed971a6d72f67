"""The headless Chromium the browser tests drive, or a skip that says what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from universeg_plus.demo.browser import find_chromium


def chromium_or_skip() -> Path:
    """The Chromium to drive, or a skip that says what is missing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip('playwright is not installed (pip install -e ".[dev]")')
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium found: apt-get install chromium-headless-shell (or chromium; .ci/run does when "
                    "it may), or set UNIVERSEG_PLUS_CHROMIUM")
    return path
