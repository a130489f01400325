"""Screenshots of the three front ends in real JupyterLab / Chromium, saved to docs/img:

- ``dashboard.png``: ``peeklens.widgets.Dashboard`` of a five-rank MNIST sweep in a notebook (kernel),
- ``lab-document.png``: the same sweep's ``.peeklens`` file opened in JupyterLab (no kernel),
- ``report.png``: the offline HTML report (``peeklens.report.write_report``) opened from disk.

    python docs/img/make_demo_data.py /tmp/demo    # or any folder holding mnist-25pct(.peeklens|-spectrum.peeklens)
    python docs/img/harness/lab_screenshots.py /tmp/demo [OUTDIR]

JupyterLab must find this checkout's lab extension (e.g. JUPYTER_PATH=DIR with DIR/labextensions/peeklens
linking to src/peeklens/labextension) and the kernel must import this checkout (PYTHONPATH=src).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from peeklens._chromium import launch

REPO = Path(__file__).resolve().parents[3]
NB = {
    "cells": [
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": [
                "import peeklens as pl\n",
                "from peeklens.widgets import Dashboard\n",
                "sweep = pl.load('mnist-25pct.peeklens')\n",
                "dash = Dashboard(sweep, pl.load('mnist-25pct-spectrum.peeklens'), rank=10,\n",
                "                 class_names=[str(i) for i in range(10)])\n",
                "dash",
            ],
        },
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(data: str, out: str | None = None) -> None:
    import peeklens as pl
    from peeklens.report import write_report

    data_dir, img = Path(data), Path(out) if out else REPO / "docs" / "img"
    root = Path(tempfile.mkdtemp(prefix="pl-shots-"))
    for f in (
        "mnist-25pct.peeklens",
        "mnist-25pct-spectrum.peeklens",
        "mnist-10pct.peeklens",
        "mnist-10pct-spectrum.peeklens",
    ):
        if (data_dir / f).exists():
            shutil.copy(data_dir / f, root / f)
    (root / "dashboard.ipynb").write_text(json.dumps(NB))
    sweeps = {"MNIST, 25% of the training set": pl.load(root / "mnist-25pct.peeklens")}
    spectra = {"MNIST, 25% of the training set": pl.load(root / "mnist-25pct-spectrum.peeklens")}
    if (root / "mnist-10pct.peeklens").exists():
        sweeps["MNIST, 10% of the training set"] = pl.load(root / "mnist-10pct.peeklens")
        spectra["MNIST, 10% of the training set"] = pl.load(root / "mnist-10pct-spectrum.peeklens")
    report = write_report(
        sweeps,
        root / "report.html",
        spectra=spectra,
        title="peeklens report: MNIST",
        class_names=[str(i) for i in range(10)],
    )

    home = Path(tempfile.mkdtemp(prefix="pl-shots-home-"))
    notif = home / "settings" / "@jupyterlab" / "apputils-extension"
    notif.mkdir(parents=True)
    (notif / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
    )
    port = _port()
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.token=",
        "--ServerApp.password=",
        "--ServerApp.ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_root=True",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log = open(home / "lab.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(url + "/api/status", timeout=2)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError((home / "lab.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = launch(p)
            ctx = browser.new_context(viewport={"width": 1400, "height": 1200}, device_scale_factor=1)
            page = ctx.new_page()
            page.set_default_timeout(120_000)

            # 1. the dashboard widget in a notebook
            page.goto(f"{url}/lab/tree/dashboard.ipynb?reset")
            page.wait_for_selector(".jp-NotebookPanel")
            page.wait_for_function(
                """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
              const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
              return !!k && k.status === 'idle'; }""",
                timeout=120_000,
            )
            page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            try:
                page.wait_for_selector(".peeklens-dashboard .pl-latent-gallery .pl-tile", timeout=60_000)
            except Exception:
                page.screenshot(path=str(img / "debug-dashboard.png"))
                raise
            page.wait_for_selector(".peeklens-dashboard .pl-neuron-heatmaps canvas")
            time.sleep(2)
            # the whole dashboard on screen, in JupyterLab: a tall window, the cell's output at the top
            page.set_viewport_size({"width": 1400, "height": 2000})
            page.locator(".peeklens-dashboard").evaluate("e => e.closest('.jp-Cell').scrollIntoView()")
            time.sleep(1)
            page.screenshot(path=str(img / "dashboard.png"))
            page.set_viewport_size({"width": 1400, "height": 1200})

            # 2. the .peeklens file opened as a document
            page.evaluate(
                "window.jupyterapp.commands.execute('docmanager:open', "
                "{path: 'mnist-25pct.peeklens', factory: 'peeklens results'})"
            )
            page.wait_for_selector(".jp-PeeklensPanel .pl-lab-document[data-complete-rank]")
            time.sleep(2)
            page.screenshot(path=str(img / "lab-document.png"))
            page.locator(".jp-PeeklensPanel .pl-lab-document").screenshot(path=str(img / "lab-document-full.png"))

            # (and a spectrum file, for a look at its table and legend; not used in the docs)
            page.evaluate(
                "window.jupyterapp.commands.execute('docmanager:open', "
                "{path: 'mnist-25pct-spectrum.peeklens', factory: 'peeklens results'})"
            )
            page.wait_for_selector(".jp-PeeklensPanel .pl-lab-table")
            time.sleep(1)
            page.locator(".pl-lab-table th", has_text="stable rank").last.hover()
            time.sleep(1.5)
            page.screenshot(path=str(img / "lab-spectrum.png"))

            # 3. the offline report from disk
            rpage = ctx.new_page()
            rpage.set_viewport_size({"width": 1400, "height": 1500})
            rpage.goto(Path(report).as_uri())
            rpage.wait_for_function("document.body.dataset.plReady === '1'", timeout=120_000)
            time.sleep(1)
            rpage.screenshot(path=str(img / "report.png"))
            rpage.screenshot(path=str(img / "report-full.png"), full_page=True)
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
