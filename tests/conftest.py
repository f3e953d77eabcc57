"""Fixtures shared by the tests (the helpers they use are plain functions in helpers.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers import SHARED_DATA, chromium_path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data (real photos) is not present beside the project")
    return SHARED_DATA


@pytest.fixture
def browser():
    """Debian's Chromium driven by Playwright (skips where either is missing)."""
    sync = pytest.importorskip("playwright.sync_api")
    exe = chromium_path()
    if exe is None:
        pytest.skip("no chromium here (apt install chromium; CI installs it)")
    with sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()
