"""How peeklens's own tools start a headless Chromium: the browser tests, the tutorials' pictures
(``scripts/execute_notebooks.py``), the docs' screenshots and the front-end benchmarks.

Debian's ``chromium`` at ``/usr/bin/chromium`` unless ``$PEEKLENS_CHROMIUM`` names another; Playwright's
own browser download is not used.  The flags keep the browser headless and quiet: no sandbox (CI runs
as root), no GPU, and no background network traffic of its own (QUIC, first-run pages, component
updates, sync), so that a test that refuses every non-local request sees only the page's.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CHROMIUM_FLAGS", "chromium_path", "launch"]

#: Command-line flags of every headless Chromium peeklens starts.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> Path:
    """The Chromium executable: ``$PEEKLENS_CHROMIUM``, else ``/usr/bin/chromium`` (it may not exist).

    >>> chromium_path().name in {"chromium", os.path.basename(os.environ.get("PEEKLENS_CHROMIUM", "chromium"))}
    True
    """
    return Path(os.environ.get("PEEKLENS_CHROMIUM", "/usr/bin/chromium"))


def launch(playwright, **kwargs):
    """A headless Chromium from a started Playwright (``sync_playwright()``), with :data:`CHROMIUM_FLAGS`.

    Raises ``FileNotFoundError`` saying how to install one when the executable is missing.
    """
    path = chromium_path()
    if not path.exists():
        raise FileNotFoundError(
            f"no Chromium at {path}: install it (apt-get install -y chromium, or "
            "PEEKLENS_BROWSER=1 bash scripts/setup.sh) or set PEEKLENS_CHROMIUM to its path"
        )
    return playwright.chromium.launch(executable_path=str(path), args=list(CHROMIUM_FLAGS), headless=True, **kwargs)
