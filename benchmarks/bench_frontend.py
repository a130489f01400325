"""Front-end benchmark (run by hand): what the browser receives and how fast it draws, for a five-rank sweep of
the paper workload (the paper network trained on 25 % of MNIST, its 10,000 test images, ranks 10-50).

Measured for this checkout and, with ``--old DIR`` (a checkout of an earlier commit with its widget bundles
built, e.g. ``git worktree add /tmp/old 658d7d1 && (cd /tmp/old && node js/build.mjs)``), for that one too,
in the same run, and printed as ratios:

- widget payload: bytes a Dashboard (explorer, gallery, heatmaps) sends to the browser (JSON + binary buffers);
- widget first paint: the three widget bundles rendering from that saved state in Chromium (a fake model
  holding the state, as a saved notebook would), until the next frame;
- slider redraw: setting the rank on the three models (as the Dashboard's jslinks do) until the next frame,
  median and worst over moves between every rank;
- report: size of the ``peeklens demo``-style HTML report of the sweep;
- lab document first paint: the results document of the saved ``.peeklens`` file read over HTTP range requests
  (a local server that honours ``Range``), from opening until the first rank is drawn (explorer, latent images,
  heatmaps), and until it is complete (top inputs and class histograms too).

Usage::

    PEEKLENS_DATA=/path/to/data python benchmarks/bench_frontend.py [--old /tmp/old] [--max-iter 60]

Needs Chromium (``PEEKLENS_CHROMIUM``, default /usr/bin/chromium), Playwright, Node.js (esbuild, for the
document bundle) and the trained network (cached by ``peeklens.studies.train`` in ~/.cache/peeklens).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from peeklens._chromium import chromium_path

REPO = Path(__file__).resolve().parents[1]
RANKS = [10, 20, 30, 40, 50]

# Runs under the checkout being measured (PYTHONPATH=<checkout>/src): dumps the Dashboard's widget state
# (JSON + binary buffers) and writes the report and the .peeklens file.
_DUMP = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import peeklens as pl
    from ipywidgets.widgets.widget import _remove_buffers
    from peeklens.widgets import Dashboard
    from peeklens import report
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    sweep = pl.load(src / "sweep.peeklens")
    spectrum = pl.load(src / "spectrum.peeklens")
    d = Dashboard(sweep, class_names=[str(i) for i in range(10)])
    sizes = {}
    for name, w in (("explorer", d.explorer), ("gallery", d.gallery), ("heatmaps", d.heatmaps)):
        state, paths, bufs = _remove_buffers(w.get_state())
        esm = state.pop("_esm", "")
        for i, b in enumerate(bufs):
            (out / f"{name}.{i}.bin").write_bytes(bytes(b))
        (out / f"{name}.json").write_text(json.dumps({"state": state, "paths": paths, "n": len(bufs)}))
        sizes[name] = len(json.dumps(state)) + sum(len(bytes(b)) for b in bufs)
    p = report.write_report({"25% of the data": sweep}, out / "report.html", spectra={"25% of the data": spectrum})
    sizes["report"] = p.stat().st_size
    pl.save(sweep, out / "sweep.peeklens")
    sizes["file"] = (out / "sweep.peeklens").stat().st_size
    (out / "sizes.json").write_text(json.dumps(sizes))
''')

_HARNESS = textwrap.dedent('''
    <!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
    <div id="ex"></div><div id="ga"></div><div id="hm"></div>
    <script type="module">
    class FakeModel {
      constructor(state) { this.state = state; this.h = new Map(); }
      get(n) { return this.state[n]; }
      set(n, v) {
        const o = this.state[n];
        this.state[n] = v;
        if (o !== v) (this.h.get("change:" + n) || []).forEach(f => f(this, v));
      }
      save_changes() {}
      on(e, f) { if (!this.h.has(e)) this.h.set(e, []); this.h.get(e).push(f); }
      off(e, f) { if (this.h.has(e)) this.h.set(e, this.h.get(e).filter(g => g !== f)); }
    }
    async function load(name) {
      const { state, paths, n } = await (await fetch(name + ".json")).json();
      for (let i = 0; i < n; i++) {
        const buf = await (await fetch(`${name}.${i}.bin`)).arrayBuffer();
        let o = state;
        const p = paths[i];
        for (let j = 0; j < p.length - 1; j++) o = o[p[j]];
        o[p[p.length - 1]] = new DataView(buf);
      }
      return new FakeModel(state);
    }
    const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
    window.bench = async () => {
      const [ex, ga, hm] = await Promise.all(["explorer", "gallery", "heatmaps"].map(load));
      const [E, G, H] = await Promise.all(["rank_explorer", "latent_gallery", "neuron_heatmaps"].map(
        n => import(`./static/${n}.js`)));
      const t0 = performance.now();
      await E.default.render({ model: ex, el: document.getElementById("ex") });
      await G.default.render({ model: ga, el: document.getElementById("ga") });
      await H.default.render({ model: hm, el: document.getElementById("hm") });
      await frame();
      const first = performance.now() - t0;
      await new Promise(r => setTimeout(r, 1500));  // let idle prerendering finish, as a user would
      const ranks = ex.get("ranks");
      const moves = [];
      for (const a of ranks) for (const b of ranks) {
        if (a === b) continue;
        for (const m of [ex, ga, hm]) m.set("rank", a);
        await frame(); await frame();
        const t = performance.now();
        for (const m of [ex, ga, hm]) m.set("rank", b);
        const want = String(b);
        while (document.querySelector("#ga .pl-latent-gallery")?.closest(".pl-rank-view")?.dataset.rank !== want
               || document.querySelectorAll("#ga .pl-tile").length !== b) await new Promise(r => setTimeout(r, 0));
        await frame();
        moves.push(performance.now() - t);
      }
      return { first, moves };
    };
    </script></body></html>
''')

_DOC_ENTRY_NEW = textwrap.dedent('''
    import { HttpRangeSource, PeeklensView } from "{core}";
    window.openDoc = async (url) => {
      const t0 = performance.now();
      const view = await PeeklensView.fromBytes(new HttpRangeSource(url), "sweep.peeklens", { compare: false });
      document.body.appendChild(view.node);
      let first = null;
      const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
      const painted = new Promise(res => new MutationObserver((_, obs) => {
        if (view.node.dataset.drawnRank) { obs.disconnect(); frame().then(() => res(performance.now() - t0)); }
      }).observe(view.node, { attributes: true }));
      first = await painted;
      await view.drawn;
      await frame();
      return { first, complete: performance.now() - t0 };
    };
''')

_DOC_ENTRY_OLD = textwrap.dedent('''
    import { PeeklensView } from "{lab}/panel";
    import { HttpRangeSource } from "{lab}/reader";
    window.openDoc = async (url) => {
      const t0 = performance.now();
      const view = await PeeklensView.fromSource(new HttpRangeSource(url), "sweep.peeklens");
      document.body.appendChild(view.node);
      let first = null;
      const frame = () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
      const painted = new Promise(res => new MutationObserver((_, obs) => {
        if (view.node.dataset.drawnRank) { obs.disconnect(); frame().then(() => res(performance.now() - t0)); }
      }).observe(view.node, { attributes: true }));
      first = await painted;
      await view.drawn;
      await frame();
      return { first, complete: performance.now() - t0 };
    };
''')


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range ``Range`` support (what Jupyter's /files/ handler does)."""

    def log_message(self, *args):  # quiet
        pass

    def send_head(self):
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        a, _, b = rng.replace("bytes=", "").partition("-")
        start, end = int(a), min(int(b) if b else size - 1, size - 1)
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        return _Limited(f, end - start + 1)


class _Limited:
    def __init__(self, f, n):
        self.f, self.n = f, n

    def read(self, k=-1):
        k = self.n if k < 0 else min(k, self.n)
        data = self.f.read(k)
        self.n -= len(data)
        return data

    def close(self):
        self.f.close()


def _serve(root: Path):
    handler = lambda *a, **k: _RangeHandler(*a, directory=str(root), **k)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def prepare(work: Path, max_iter: int) -> None:
    """The paper workload: 25 % network, 10,000 test images, ranks 10-50 (cached between runs)."""
    import torch

    import peeklens as pl
    from peeklens import studies

    cache = Path(os.environ.get("PEEKLENS_CACHE", Path.home() / ".cache" / "peeklens")) / "bench-frontend"
    if (cache / f"sweep-{max_iter}.peeklens").exists():
        shutil.copy(cache / f"sweep-{max_iter}.peeklens", work / "sweep.peeklens")
        shutil.copy(cache / "spectrum.peeklens", work / "spectrum.peeklens")
        return
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    # as `peeklens demo` does it: the cached 25 % network, its 10,000 test images, ranks 10-50
    test = studies.load_mnist(train=False)
    res = studies.run_regime(studies.Regime(fraction=0.25), test, train_data=studies.load_mnist(train=True),
                             ranks=RANKS, max_iter=max_iter, spectrum_k=30, eval_samples=1000)
    sweep, spectrum = res.sweep, res.spectrum
    cache.mkdir(parents=True, exist_ok=True)
    pl.save(sweep, cache / f"sweep-{max_iter}.peeklens")
    pl.save(spectrum, cache / "spectrum.peeklens")
    prepare(work, max_iter)


def _format1(src: Path, dst: Path) -> None:
    """A format-1 copy of a results file (what the code before the schema reads): no metadata digest, no
    display section, no dtypes."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        meta = json.loads(zin.read("meta.json"))
        meta["format_version"] = 1
        meta.pop("dtypes", None)
        for holder in (meta, meta.get("fit") or {}):
            holder.pop("display", None)
        for n in zin.namelist():
            if n == "meta.json.sha256" or n.startswith("display."):
                continue
            zout.writestr(n, json.dumps(meta) if n == "meta.json" else zin.read(n))


def dump(checkout: Path, work: Path, out: Path, new: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout / "src"), OMP_NUM_THREADS="1")
    src = work
    if not new:
        src = work / "format1"
        src.mkdir(exist_ok=True)
        for name in ("sweep.peeklens", "spectrum.peeklens"):
            _format1(work / name, src / name)
    subprocess.run([sys.executable, "-c", _DUMP, str(src), str(out)], check=True, env=env, cwd=checkout)
    shutil.copytree(checkout / "src" / "peeklens" / "static", out / "static")
    (out / "index.html").write_text(_HARNESS)
    return json.loads((out / "sizes.json").read_text())


def doc_bundle(checkout: Path, out: Path, new: bool) -> None:
    entry = out / "doc-entry.ts"
    if new:
        entry.write_text(_DOC_ENTRY_NEW.replace("{core}", str(checkout / "js" / "core" / "index")))
    else:
        entry.write_text(_DOC_ENTRY_OLD.replace("{lab}", str(checkout / "js" / "lab" / "src")))
    esbuild = REPO / "node_modules" / ".bin" / "esbuild"
    subprocess.run([str(esbuild), str(entry), "--bundle", "--format=iife", f"--outfile={out / 'doc.js'}",
                    "--minify", "--log-level=warning", "--resolve-extensions=.ts,.js"], check=True,
                   cwd=checkout, env=dict(os.environ, NODE_PATH=str(REPO / "node_modules")))
    (out / "doc.html").write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
                                  '<script src="doc.js"></script></body></html>')


def measure(url: str, repeats: int = 3) -> dict:
    from playwright.sync_api import sync_playwright

    from peeklens._chromium import launch

    res: dict = {"first": [], "moves": [], "doc": [], "doc_complete": []}
    with sync_playwright() as p:
        browser = launch(p)
        for _ in range(repeats):
            # each page in a fresh context: no cache or connection shared between the measurements
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            pg = ctx.new_page()
            pg.goto(url + "/doc.html")
            d = pg.evaluate(f"window.openDoc('{url}/sweep.peeklens')")
            if os.environ.get("BENCH_DEBUG"):
                print(d, pg.evaluate("performance.getEntriesByType('resource').map(e => [e.name.slice(-16), "
                                     "Math.round(e.startTime), Math.round(e.duration), e.decodedBodySize])"))
            res["doc"].append(d["first"])
            res["doc_complete"].append(d["complete"])
            ctx.close()
        # the widget pages after every document page: closing a page that holds the widgets' buffers can
        # stall the next page load for seconds (seen with Chromium headless), which is not what we measure
        for _ in range(repeats):
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            pg = ctx.new_page()
            pg.goto(url + "/index.html")
            r = pg.evaluate("window.bench()")
            res["first"].append(r["first"])
            res["moves"] += r["moves"]
            ctx.close()
            time.sleep(3)  # let the closed page go before the next one
        browser.close()
    return res


# ---- the bqplot sample explorer: rank changes with 10,000 points, in JupyterLab ------------------------------
# The kernel (PYTHONPATH=<checkout>/src) shows pl.plots.SampleExplorer of a two-rank sweep of the 10,000 MNIST
# test images (pixels only); the page changes the rank again and again (a cell sets ``explorer.rank``, as the
# slider does) and times each change until the page is done with it.

_EXPLORER_SETUP = textwrap.dedent('''
    import json, time
    import peeklens as pl
    sweep = pl.load("explorer-sweep.peeklens")
    explorer = pl.plots.SampleExplorer(sweep, x=0, y=1, class_names=[f"digit {i}" for i in range(10)])
    explorer
''')

# Time one rank change in the page: from the cell run that sets the rank until the end of the last main-thread
# task it caused (long tasks > 50 ms; the redraws of 10,000 SVG points are such tasks), after the first point
# moved. ``sel`` is the figure's CSS selector.
_EXPLORER_TIME = textwrap.dedent('''
    async ([sel, code]) => {
      const fig = document.querySelector(sel);
      const first = () => fig.querySelector('.object_grp, .dot')?.getAttribute('transform');
      const before = first();
      const tasks = [];
      const po = new PerformanceObserver((l) => tasks.push(...l.getEntries().map((e) => [e.startTime, e.duration])));
      po.observe({ type: 'longtask' });
      let moved = null;
      const t0 = performance.now();
      const mo = new MutationObserver(() => { if (moved === null && first() !== before) moved = performance.now(); });
      mo.observe(fig, { attributes: true, childList: true, subtree: true });
      const app = window.jupyterapp, nb = app.shell.currentWidget.content;
      nb.widgets[nb.widgets.length - 1].model.sharedModel.setSource(code);
      nb.activeCellIndex = nb.widgets.length - 1;
      await app.commands.execute('notebook:run-cell');
      const frame = () => new Promise((r) => requestAnimationFrame(() => r(performance.now())));
      // done when the first point has moved and 1.5 s passed without a long task
      while (true) {
        await new Promise((r) => setTimeout(r, 250));
        const last = tasks.length ? Math.max(...tasks.map(([s, d]) => s + d)) : t0;
        if (moved !== null && performance.now() - Math.max(last, moved) > 1500) break;
        if (performance.now() - t0 > 60000) break;
      }
      await frame();
      po.disconnect(); mo.disconnect();
      const after = tasks.filter(([s]) => s >= t0);
      const end = Math.max(moved ?? t0, ...after.map(([s, d]) => s + d));
      return { total: end - t0, moved: (moved ?? NaN) - t0, blocking: after.reduce((a, [, d]) => a + d, 0),
               tasks: after.length };
    }
''')


def _explorer_sweep(work: Path, max_iter: int) -> Path:
    """The 10,000 MNIST test images (pixels), ranks 6 and 10, as the browser test's fixture (cached)."""
    cache = Path(os.environ.get("PEEKLENS_CACHE", Path.home() / ".cache" / "peeklens")) / "bench-frontend"
    path = cache / f"explorer-sweep-{max_iter}.peeklens"
    if not path.exists():
        import peeklens as pl
        from peeklens import studies

        x, y = studies.load_mnist(train=False)
        n = 10_000
        acts = pl.Activations.from_arrays({"input:0": x[:n].reshape(n, -1).T.numpy()}, shapes={"input:0": (28, 28)},
                                          labels=y[:n].numpy())
        cache.mkdir(parents=True, exist_ok=True)
        pl.save(pl.sweep(acts, ranks=[6, 10], max_iter=max_iter, progress=False), path)
    shutil.copy(path, work / "explorer-sweep.peeklens")
    return work / "explorer-sweep.peeklens"


def _jupyter_lab(root: Path, checkout: Path):
    """Start JupyterLab on a free loopback port serving ``root`` with the kernel importing ``checkout``;
    returns (process, url). Stop it with ``os.killpg(proc.pid, signal.SIGTERM)``."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = root / ".lab-home"
    env = dict(os.environ, PYTHONPATH=str(checkout / "src"), OMP_NUM_THREADS="1",
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"))
    settings = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.token=", "--ServerApp.password=",
           "--ServerApp.ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
           "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=root,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, 15)
    raise RuntimeError("JupyterLab did not start")


def measure_explorer(checkout: Path, work: Path, repeats: int, profile: bool = False) -> dict:
    """Rank changes of the sample explorer (10,000 points) in JupyterLab, with ``checkout``'s peeklens."""
    import signal

    from playwright.sync_api import sync_playwright

    from peeklens._chromium import launch

    root = work / f"explorer-{checkout.name}"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(work / "explorer-sweep.peeklens", root / "explorer-sweep.peeklens")
    cells = [_EXPLORER_SETUP, "print('READY')"]
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
                    for c in cells],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (root / "explorer.ipynb").write_text(json.dumps(nb))
    proc, url = _jupyter_lab(root, checkout)
    fig = ".pl-sample-explorer-figure"
    out: dict = {"total": [], "moved": [], "blocking": [], "tasks": []}
    try:
        with sync_playwright() as p:
            browser = launch(p)
            pg = browser.new_page(viewport={"width": 1400, "height": 1400})
            pg.set_default_timeout(120_000)
            pg.goto(f"{url}/lab/tree/explorer.ipynb")
            pg.wait_for_selector(".jp-NotebookPanel")
            pg.wait_for_function("() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                                 " const k = w && w.sessionContext.session && w.sessionContext.session.kernel;"
                                 " return !!k && k.status === 'idle'; }")
            pg.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            pg.wait_for_function(f"() => document.querySelectorAll('{fig} .object_grp, {fig} .dot').length >= 10000")
            time.sleep(3)
            cdp = None
            for i in range(repeats):
                rank = 10 if i % 2 == 0 else 6
                if profile and i == repeats - 1:
                    cdp = pg.context.new_cdp_session(pg)
                    cdp.send("Profiler.enable")
                    cdp.send("Profiler.start")
                r = pg.evaluate(_EXPLORER_TIME, [fig, f"explorer.rank = {rank}"])
                for k in out:
                    out[k].append(r[k])
            if cdp is not None:
                prof = cdp.send("Profiler.stop")["profile"]
                _print_profile(prof)
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    return out


def _print_profile(prof: dict, top: int = 25) -> None:
    """Self time per function of a CDP CPU profile, largest first."""
    nodes = {n["id"]: n for n in prof["nodes"]}
    dt = dict.fromkeys(nodes, 0.0)
    for nid, d in zip(prof["samples"], prof["timeDeltas"]):
        dt[nid] += d / 1000
    by: dict = {}
    for nid, ms in dt.items():
        cf = nodes[nid]["callFrame"]
        key = f"{cf['functionName'] or '(anon)'} {cf['url'].rsplit('/', 1)[-1][:40]}:{cf['lineNumber']}"
        by[key] = by.get(key, 0.0) + ms
    for key, ms in sorted(by.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{ms:9.1f} ms  {key}")


def explorer_main(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="peeklens-bench-explorer-"))
    _explorer_sweep(work, args.max_iter)
    versions = {"new": REPO} | ({"old": args.old.resolve()} if args.old else {})
    rows = {}
    for name, checkout in versions.items():
        t = measure_explorer(checkout, work, args.repeats, args.profile)
        rows[name] = {
            "rank change median ms": statistics.median(t["total"]),
            "rank change worst ms": max(t["total"]),
            "first point moved median ms": statistics.median(t["moved"]),
            "long tasks median ms": statistics.median(t["blocking"]),
        }
        print(name, json.dumps(t))
    print(f"\nsample explorer, 10,000 points, rank 6 <-> 10 set from a cell; medians of {args.repeats} changes")
    head = f"{'':32}" + "".join(f"{n:>12}" for n in rows) + ("       new/old" if "old" in rows else "")
    print(head)
    for key in rows["new"]:
        line = f"{key:32}" + "".join(f"{rows[n][key]:12.1f}" for n in rows)
        if "old" in rows and rows["old"][key]:
            line += f"{rows['new'][key] / rows['old'][key]:14.2f}"
        print(line)
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, help="a checkout of an earlier commit (widget bundles built)")
    ap.add_argument("--max-iter", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--explorer", action="store_true",
                    help="time the bqplot sample explorer's rank change (10,000 points, in JupyterLab) instead")
    ap.add_argument("--profile", action="store_true", help="with --explorer: print a CPU profile of the last change")
    args = ap.parse_args()
    if not chromium_path().exists():
        sys.exit(f"no Chromium at {chromium_path()}: install it or set PEEKLENS_CHROMIUM")
    if args.explorer:
        explorer_main(args)
        return
    work = Path(tempfile.mkdtemp(prefix="peeklens-bench-"))
    prepare(work, args.max_iter)
    versions = {"new": (REPO, True)} | ({"old": (args.old.resolve(), False)} if args.old else {})
    rows = {}
    for name, (checkout, new) in versions.items():
        out = work / name
        sizes = dump(checkout, work, out, new)
        doc_bundle(checkout, out, new)
        srv, url = _serve(out)
        try:
            t = measure(url, args.repeats)
        finally:
            srv.shutdown()
        rows[name] = {
            "widget payload MB": sum(sizes[k] for k in ("explorer", "gallery", "heatmaps")) / 1e6,
            "  gallery MB": sizes["gallery"] / 1e6,
            "  heatmaps MB": sizes["heatmaps"] / 1e6,
            "widget first paint ms": statistics.median(t["first"]),
            "slider redraw median ms": statistics.median(t["moves"]),
            "slider redraw worst ms": max(t["moves"]),
            "report MB": sizes["report"] / 1e6,
            ".peeklens file MB": sizes["file"] / 1e6,
            "lab document first paint ms": statistics.median(t["doc"]),
            "lab document complete ms": statistics.median(t["doc_complete"]),
        }
    print(json.dumps(rows, indent=1))
    print(f"\nfive-rank sweep {RANKS} of the paper workload (10,000 MNIST test images), max_iter {args.max_iter}; "
          f"medians of {args.repeats} page loads")
    head = f"{'':32}" + "".join(f"{n:>12}" for n in rows) + ("       new/old" if "old" in rows else "")
    print(head)
    for key in rows["new"]:
        line = f"{key:32}" + "".join(f"{rows[n][key]:12.2f}" for n in rows)
        if "old" in rows and rows["old"][key]:
            line += f"{rows['new'][key] / rows['old'][key]:14.2f}"
        print(line)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
