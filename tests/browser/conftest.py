"""What every browser test shares: Debian's Chromium driven by Playwright, and JupyterLab started on a free
loopback port without a token (and stopped by its process group, kernels included)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from peeklens._chromium import chromium_path, launch

sys.path.insert(0, str(Path(__file__).parent))  # the tests import _notebook_js (shared page scripts)

CHROMIUM = chromium_path()
#: JupyterLab settings for every test server: no news or update pop-ups over the page.
QUIET_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False}
}


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for this module (skips where Debian's chromium is not installed)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}; run PEEKLENS_BROWSER=1 bash scripts/setup.sh or set PEEKLENS_CHROMIUM")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _running_lab(root: Path, home: Path, env: dict, args: list[str]):
    port = _free_port()
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.port_retries=0", "--ServerApp.token=",
        "--ServerApp.password=", "--ServerApp.ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True", *args,
    ]  # fmt: skip
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        **env,
    )
    log_path = home / "lab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
            yield {"url": url, "root": root, "log": log_path}
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # the server (started here) and its kernels
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@pytest.fixture(scope="module")
def start_lab(tmp_path_factory):
    """``start_lab(root, settings={...}, env={...}, args=[...])`` starts JupyterLab serving ``root`` for this
    module and returns ``{"url", "root", "log"}``; ``settings`` are JupyterLab settings by file (added to
    :data:`QUIET_SETTINGS`)."""
    with contextlib.ExitStack() as stack:

        def start(root: Path, *, settings: dict | None = None, env: dict | None = None, args=()) -> dict:
            home = tmp_path_factory.mktemp("lab-home")
            for rel, value in {**QUIET_SETTINGS, **(settings or {})}.items():
                p = home / "settings" / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(json.dumps(value))
            return stack.enter_context(_running_lab(Path(root), home, dict(env or {}), list(args)))

        yield start
