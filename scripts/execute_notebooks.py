"""Regenerate, execute and commit-ready the tutorial notebooks: outputs, widget state and a PNG per widget.

    python scripts/execute_notebooks.py                      # every tutorial, full size (as committed)
    python scripts/execute_notebooks.py 01-quickstart 03     # some of them (a name or its number prefix)
    python scripts/execute_notebooks.py --small              # small size, quick: a check, never committed
    python scripts/execute_notebooks.py --render-only        # re-draw the PNGs from the stored executions

For each notebook:

1. generate it from ``notebooks/make_notebooks.py`` (the source of truth) and ``notebooks/numbers.json``;
2. execute it with nbclient (``store_widget_state=True``; the kernel imports this checkout's ``src``), keeping
   the executed copy in ``build/notebooks/`` (or ``--cache``) keyed by the hash of its cells, of the solver
   sources and of the widgets' payload sources, so that an interrupted run resumes with the notebooks not yet
   done and a rerun after a change of the drawing alone executes nothing;
3. put the current widget bundles into the stored state (``_esm``), drop the models no output shows, and add to
   every widget output an ``image/png`` drawn by the widgets' own front end: the stored state is loaded by the
   Jupyter widgets HTML manager (vendored as the docs vendor it, :func:`vendor_widget_js`) into a page opened
   in headless Chromium, and each view's element is screenshotted, so that code hosts, nbviewer and VS Code
   show a picture where no widget runs (progress bars included: they are widgets too);
4. keep the widget state under ``--budget`` MiB (default 4): above it, the stored sweep views keep their
   current rank and as many further ranks as fit, byte for byte (:func:`fit_state_budget`; the PNGs are drawn
   before, from the whole state), and if one rank each is still too much, the largest views are stored as their
   PNG only (:func:`png_only_beyond_budget`);
5. record in ``metadata["peeklens"]`` what produced it (peeklens version, git commit at execution, the hashes,
   the size, the wall time, what the budget kept), and write ``notebooks/<name>.ipynb``.

``tests/test_notebooks.py`` checks that the committed notebooks carry outputs, widget state and PNGs, that
their cells equal what the generator writes and that the recorded hashes match the current sources; when
they do not, it asks for this command.

Needs Node's packages installed (``npm ci``: the HTML manager and RequireJS), the widget bundles built
(``npm run build:widgets``) and Chromium (``/usr/bin/chromium``, or ``$PEEKLENS_CHROMIUM``) with Playwright.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
GENERATOR = NOTEBOOKS / "make_notebooks.py"
NUMBERS = NOTEBOOKS / "numbers.json"
CACHE = REPO / "build" / "notebooks"
#: The sources whose change makes the stored numbers stale: the factorization solvers.
SOLVER_SOURCES = ("src/peeklens/nmf",)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
#: The widget modules the stored states use, by module name: (folder in the Python environment's
#: ``share/jupyter/nbextensions``, the AMD file in it). They are the packages' own classic-notebook builds.
WIDGET_MODULES = {"anywidget": "anywidget", "bqplot": "bqplot", "bqscales": "bqscales"}


# ----------------------------------------------------------------------------------------------- sources


def generate(names: list[str] | None = None) -> dict[str, nbformat.NotebookNode]:
    """The notebooks as ``notebooks/make_notebooks.py`` writes them (with ``numbers.json``), by file name."""
    spec = importlib.util.spec_from_file_location("_peeklens_make_notebooks", GENERATOR)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    numbers = json.loads(NUMBERS.read_text()) if NUMBERS.exists() else None
    with tempfile.TemporaryDirectory() as tmp:
        mod.HERE = Path(tmp)  # main() writes beside itself; here into a scratch folder
        mod.main(numbers)
        out = {p.name: nbformat.read(p, as_version=4) for p in sorted(Path(tmp).glob("*.ipynb"))}
    if names:
        picked = {n: nb for n, nb in out.items() if any(n == s or n.startswith(s) for s in names)}
        missing = [s for s in names if not any(n == s or n.startswith(s) for n in out)]
        if missing:
            raise SystemExit(f"no tutorial named {missing}; the generator writes {list(out)}")
        out = picked
    return out


def cells_hash(nb) -> str:
    """sha256 of the cells' types and sources (what the generator decides)."""
    h = hashlib.sha256()
    for c in nb.cells:
        h.update(json.dumps([c.cell_type, c.source]).encode())
    return h.hexdigest()


#: What the widgets' synced data is made of: a change here re-executes on the next run (CI does not fail for it).
PAYLOAD_SOURCES = ("src/peeklens/widgets", "src/peeklens/schema.py")
STATIC = REPO / "src" / "peeklens" / "static"


def _hash_files(files) -> str:
    h = hashlib.sha256()
    for p in sorted(files):
        h.update(p.relative_to(REPO).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def views_hash() -> str:
    """sha256 of the Python side of the widgets and of the payload schema (:data:`PAYLOAD_SOURCES`). The drawing
    itself (the built bundles) is not in it: :func:`refresh_bundles` puts the current bundles into the stored state."""
    files = [f for s in PAYLOAD_SOURCES for f in ((REPO / s).rglob("*.py") if (REPO / s).is_dir() else [REPO / s])]
    return _hash_files(files)


def refresh_bundles(nb) -> int:
    """Put the current build of every peeklens widget's front end (``src/peeklens/static/<widget>.js``) into the
    stored state as its ``_esm``, so that a change of the drawing alone needs no new execution. Returns how many."""
    import re

    n = 0
    for m in widget_state(nb)["state"].values():
        wid = m.get("state", {}).get("_anywidget_id", "")
        if m.get("model_module") != "anywidget" or not wid.startswith("peeklens."):
            continue
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", wid.rsplit(".", 1)[-1]).lower()
        bundle = STATIC / f"{snake}.js"
        if bundle.exists():
            m["state"]["_esm"] = bundle.read_text()
            n += 1
    return n


def solver_hash() -> str:
    """sha256 of the solver sources (:data:`SOLVER_SOURCES`), file by file in path order."""
    return _hash_files(p for s in SOLVER_SOURCES for p in (REPO / s).rglob("*.py"))


def _git_commit() -> str:
    """HEAD, with ``-dirty`` when tracked files other than the notebooks themselves differ from it."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)notebooks/*.ipynb"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ------------------------------------------------------------------------------------------------- execute


def execute(nb, *, small: bool, timeout: int) -> float:
    """Run ``nb`` in place with nbclient (widget state stored); returns the wall time in seconds."""
    from nbclient import NotebookClient

    env_keys = {"PEEKLENS_NOTEBOOK_SMALL": "1" if small else None, "TQDM_DISABLE": "1"}
    old = {k: os.environ.get(k) for k in env_keys}
    src = str(REPO / "src")
    old_pp = os.environ.get("PYTHONPATH")
    try:
        for k, v in env_keys.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        # the kernel imports this checkout's peeklens (and finds its built widget bundles)
        os.environ["PYTHONPATH"] = src + (os.pathsep + old_pp if old_pp else "")
        with tempfile.TemporaryDirectory() as cwd:
            client = NotebookClient(
                nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                resources={"metadata": {"path": cwd}},
            )  # fmt: skip
            t0 = time.perf_counter()
            client.execute()
            return time.perf_counter() - t0
    finally:
        for k, v in {**old, "PYTHONPATH": old_pp}.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _check_bundles() -> None:
    static = REPO / "src" / "peeklens" / "static"
    missing = [n for n in ("rank_explorer", "latent_gallery", "neuron_heatmaps") if not (static / f"{n}.js").exists()]
    if missing:
        raise SystemExit(f"the widget bundles {missing} are missing from {static}: run `npm run build:widgets` first")


# ------------------------------------------------------------------------------------------- widget state


def widget_outputs(nb):
    """(cell, output) for every output that shows a widget view."""
    for c in nb.cells:
        if c.cell_type == "code":
            for o in c.outputs:
                if o.get("output_type") in ("display_data", "execute_result") and WIDGET_VIEW in o.get("data", {}):
                    yield c, o


def widget_state(nb) -> dict:
    """The stored ``{"version_major", "version_minor", "state"}`` (empty state when none)."""
    return nb.metadata.get("widgets", {}).get(WIDGET_STATE, {"version_major": 2, "version_minor": 0, "state": {}})


def _children(model: dict) -> list[str]:
    out = []

    def walk(v):
        if isinstance(v, str) and v.startswith("IPY_MODEL_"):
            out.append(v[len("IPY_MODEL_") :])
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(model.get("state", {}))
    return out


def _buffer_array(model: dict, key: str):
    import numpy as np

    meta = model["state"]["meta"]
    for b in model.get("buffers", []):
        if b["path"] == ["arrays", key]:
            raw = base64.b64decode(b["data"])
            return np.frombuffer(raw, dtype=np.dtype(meta["dtypes"][key])).reshape(meta["shapes"][key])
    return None


def _set_buffer(model: dict, key: str, arr) -> None:
    import numpy as np

    meta = model["state"]["meta"]
    arr = np.ascontiguousarray(arr, dtype=np.dtype(meta["dtypes"][key]))
    meta["shapes"][key] = list(arr.shape)
    for b in model.get("buffers", []):
        if b["path"] == ["arrays", key]:
            b["data"] = base64.b64encode(arr.tobytes()).decode()


def _sweep_models(state: dict) -> list[dict]:
    """The stored peeklens views of one sweep (rank explorer, gallery, heatmaps): a Sweep ``meta`` and ``ranks``."""
    return [
        m
        for m in state.values()
        if m.get("model_module") == "anywidget"
        and isinstance(m["state"].get("meta"), dict)
        and m["state"]["meta"].get("type") == "Sweep"
        and m["state"].get("ranks")
    ]


def keep_ranks(model: dict, kept: list[int]) -> None:
    """Restrict one stored sweep view to the ranks ``kept``: their fits, arrays and display images stay exactly as
    the kernel sent them (so those ranks draw the same), the other ranks' go. The display images keep the samples
    that are among the top inputs of a kept rank's factors, chosen as the views choose them (largest loading,
    then smallest index; ``topInputsAmong`` in js/core/derive.ts), so the thumbnails do not change either."""
    import numpy as np

    st = model["state"]
    meta = st["meta"]
    drop = [r for r in st["ranks"] if r not in kept]
    d = meta.get("display") or {}
    cand = _buffer_array(model, d["samples"]) if d.get("samples") else None
    if cand is not None:
        need: set[int] = set()
        for r in kept:
            F = _buffer_array(model, meta["fits"][str(r)]["F"])
            if F is None:
                cand = None  # a view without F (the rank explorer) has no display images to trim
                break
            vals = F[cand.astype(np.int64)]  # (candidates, rank)
            for c in range(F.shape[1]):
                order = np.lexsort((cand, -vals[:, c]))  # largest first, then the smallest index
                need.update(int(cand[j]) for j in order[: d["top_k"]])
        if cand is not None:
            cols = np.array([j for j, s in enumerate(cand) if int(s) in need], dtype=np.int64)
            _set_buffer(model, d["samples"], cand[cols])
            for key in d["images"]:
                _set_buffer(model, key, _buffer_array(model, key)[:, cols])
    gone: set[str] = set()
    for r in drop:
        fit = meta["fits"].pop(str(r), {})
        gone.update(k for k in [fit.get("F"), *fit.get("W", []), fit.get("objective")] if k)
    for k in gone:
        meta.get("shapes", {}).pop(k, None)
        meta.get("dtypes", {}).pop(k, None)
        if isinstance(st.get("arrays"), dict):
            st["arrays"].pop(k, None)
    model["buffers"] = [
        b for b in model.get("buffers", []) if not (b["path"][:1] == ["arrays"] and b["path"][1] in gone)
    ]
    for field in ("ranks", "requested"):
        if isinstance(meta.get(field), list):
            meta[field] = [r for r in meta[field] if r in kept]
    st["ranks"] = [r for r in st["ranks"] if r in kept]


def fit_state_budget(nb, budget_mib: float) -> dict:
    """Keep the stored widget state under ``budget_mib``: when it is larger, every stored sweep view keeps its
    current rank and as many of its other ranks (in order) as fit. Returns what was kept, by widget class."""
    state = widget_state(nb)["state"]
    models = _sweep_models(state)
    size = len(json.dumps(state))
    if size <= budget_mib * 2**20 or not models:
        return {}
    full = {id(m): copy.deepcopy(m) for m in models}
    n_max = max(len(m["state"]["ranks"]) for m in models)
    kept = {}
    for n in range(n_max - 1, 0, -1):
        kept = {}
        for m in models:
            orig = full[id(m)]
            ranks = orig["state"]["ranks"]
            cur = orig["state"].get("rank", ranks[0])
            order = [cur, *[r for r in ranks if r != cur]]
            m.clear()
            m.update(copy.deepcopy(orig))
            keep = sorted(order[:n])
            keep_ranks(m, keep)
            kept[f"{m['state'].get('_anywidget_id', 'view')}#{len(kept)}"] = keep
        size = len(json.dumps(state))
        if size <= budget_mib * 2**20:
            break
    return kept


def png_only_beyond_budget(nb, budget_mib: float) -> int:
    """When the state is still over ``budget_mib`` with every sweep view down to one rank, store the largest
    views as their PNG only (their output keeps the picture and its text; the docs and code hosts show the PNG),
    largest first, until it fits. Returns how many views became pictures."""
    state = widget_state(nb)["state"]
    limit = budget_mib * 2**20

    def subtree(mid: str) -> int:
        seen, todo, size = set(), [mid], 0
        while todo:
            m = todo.pop()
            if m in seen or m not in state:
                continue
            seen.add(m)
            size += len(json.dumps(state[m]))
            todo += _children(state[m])
        return size

    roots = [o["data"][WIDGET_VIEW]["model_id"] for _, o in widget_outputs(nb)]
    n = 0
    for mid in sorted(set(roots), key=subtree, reverse=True):
        if len(json.dumps(state)) <= limit:
            break
        state.pop(mid, None)
        prune_state(nb)  # drops the view from its output (the PNG stays) and the models only it used
        n += 1
    return n


def prune_state(nb) -> None:
    """Keep only the models a shown view needs (its references, transitively, and the links between them).

    An output whose model was closed before the end (a progress bar with ``leave=False``) keeps only its text."""
    state = widget_state(nb)["state"]
    for _, o in list(widget_outputs(nb)):
        if o["data"][WIDGET_VIEW].get("model_id") not in state:
            del o["data"][WIDGET_VIEW]
    if not state:
        return
    keep: set[str] = set()
    todo = [o["data"][WIDGET_VIEW]["model_id"] for _, o in widget_outputs(nb)]
    while todo:
        m = todo.pop()
        if m in keep or m not in state:
            continue
        keep.add(m)
        todo += _children(state[m])
    # links (jslink) reference the views they join but are referenced by none: keep those joining kept models
    for mid, model in state.items():
        if mid not in keep and model.get("model_name") in ("LinkModel", "DirectionalLinkModel"):
            refs = _children(model)
            if refs and all(r in keep for r in refs):
                keep.add(mid)
                for r in refs:
                    keep.update(_children(state[r]) if r in state else [])
    for mid in list(state):
        if mid not in keep:
            del state[mid]


# ------------------------------------------------------------------------------------------------ render


def nbextensions_dir() -> Path:
    """Where the Python environment keeps the classic-notebook (AMD) builds of the widget packages."""
    for base in (Path(sys.prefix), Path(sys.base_prefix), Path.home() / ".local"):
        d = base / "share" / "jupyter" / "nbextensions"
        if (d / "anywidget" / "index.js").exists():
            return d
    raise SystemExit("anywidget's nbextension (share/jupyter/nbextensions/anywidget) is not installed")


def vendor_widget_js(dest: Path) -> list[str]:
    """Copy into ``dest`` what renders stored widget state without a kernel or a network: RequireJS, the
    Jupyter widgets HTML manager's ``embed-amd.js`` (both from ``node_modules``), the AMD builds of the widget
    modules (:data:`WIDGET_MODULES`, from the Python environment) and ``loader.js``, which points RequireJS
    at them (relative to its own URL). Returns the scripts a page loads, in order, relative to ``dest``."""
    nm = REPO / "node_modules"
    sources = {
        "require.js": nm / "requirejs" / "require.js",
        "embed-amd.js": nm / "@jupyter-widgets" / "html-manager" / "dist" / "embed-amd.js",
    }
    for src in sources.values():
        if not src.exists():
            raise SystemExit(
                f"{src} is missing: run `npm ci` (devDependencies requirejs, @jupyter-widgets/html-manager)"
            )
    dest.mkdir(parents=True, exist_ok=True)
    for name, src in sources.items():
        shutil.copyfile(src, dest / name)
    ext = nbextensions_dir()
    paths = {}
    for module, folder in WIDGET_MODULES.items():
        src = ext / folder / "index.js"
        if src.exists():
            (dest / folder).mkdir(exist_ok=True)
            shutil.copyfile(src, dest / folder / "index.js")
            paths[module] = f"{folder}/index"
    (dest / "loader.js").write_text(
        "// Generated by scripts/execute_notebooks.py: the widget modules load from beside this file, never a CDN.\n"
        "(function () {\n"
        '  var base = document.currentScript.src.replace(/[^/]*$/, "");\n'
        f"  var paths = {json.dumps(paths)};\n"
        "  for (var k in paths) paths[k] = base + paths[k];\n"
        "  require.config({ paths: paths });\n"
        "})();\n"
    )
    return ["require.js", "loader.js", "embed-amd.js"]


_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<style>body{{margin:0;padding:8px;background:#fff;font-family:sans-serif;width:{width}px}}
.pl-out{{display:inline-block;min-width:100%;padding:4px;box-sizing:border-box}}</style>
{scripts}
<script type="{state_mime}">{state}</script></head><body>{views}</body></html>"""


def _json_script(obj) -> str:
    return json.dumps(obj).replace("</", "<\\/")


def _wait_until_settled(el, *, every_ms: int = 300, times: int = 3, limit_s: float = 90) -> None:
    """Wait until the element's markup and size stop changing (the views draw asynchronously)."""
    probe = "e => e.innerHTML.length + ':' + Math.round(e.getBoundingClientRect().height)"
    last, same, t0 = None, 0, time.monotonic()
    while same < times and time.monotonic() - t0 < limit_s:
        el.page.wait_for_timeout(every_ms)
        now = el.evaluate(probe)
        same = same + 1 if now == last else 0
        last = now


def render_pngs(nb, *, width: int = 1000, workdir: Path | None = None) -> int:
    """Add an ``image/png`` (a screenshot of the live view) to every widget output of ``nb``; returns how many."""
    from playwright.sync_api import sync_playwright

    from peeklens._chromium import launch

    outs = list(widget_outputs(nb))
    if not outs:
        return 0
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        scripts = "".join(f'<script src="{s}"></script>' for s in vendor_widget_js(workdir))
        views = "".join(
            f'<div class="pl-out" id="out-{i}"><script type="{WIDGET_VIEW}">{_json_script(o["data"][WIDGET_VIEW])}'
            "</script></div>"
            for i, (_, o) in enumerate(outs)
        )
        page_path = workdir / "page.html"
        page_path.write_text(_PAGE.format(
            width=width, scripts=scripts, state_mime=WIDGET_STATE,
            state=_json_script(widget_state(nb)), views=views,
        ))  # fmt: skip
        p = stack.enter_context(sync_playwright())
        try:
            browser = launch(p)
        except FileNotFoundError as e:
            raise SystemExit(str(e)) from None
        stack.callback(browser.close)
        ctx = browser.new_context(viewport={"width": width + 16, "height": 900}, offline=True, device_scale_factor=1)
        ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort())
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.as_uri())
        for i, (_cell, out) in enumerate(outs):
            el = page.locator(f"#out-{i}")
            # a view has rendered when its element holds something drawn (canvas, svg) or text
            page.wait_for_function(
                """(id) => { const el = document.getElementById(id); if (!el) return false;
                    const w = el.querySelector('.jupyter-widgets, .widget-html, .lm-Widget');
                    return !!w && (el.querySelector('canvas, svg') !== null || el.innerText.trim().length > 0); }""",
                arg=f"out-{i}", timeout=60_000,
            )  # fmt: skip
            _wait_until_settled(el)
            if el.locator(".pl-error").count():
                raise RuntimeError(f"a view drew an error: {el.locator('.pl-error').first.inner_text()}")
            png = el.screenshot(type="png", animations="disabled")
            out["data"]["image/png"] = base64.b64encode(png).decode()
            out.setdefault("metadata", {}).setdefault("image/png", {})["peeklens_fallback"] = True
        if errors:
            raise RuntimeError(f"the widget page raised: {errors}")
    return len(outs)


# ------------------------------------------------------------------------------------------------- driver


def _stamp(nb, *, key: dict, wall_s: float, small: bool, commit: str) -> None:
    import peeklens

    nb.metadata["peeklens"] = {
        "generated_by": "python scripts/execute_notebooks.py",
        "peeklens_version": peeklens.__version__,
        "git_commit": commit,
        "cells_sha256": key["cells"],
        "solver_sha256": key["solver"],
        "solver_sources": list(SOLVER_SOURCES),
        "views_sha256": key.get("views", ""),
        "size": "small" if small else "full",
        "execution_wall_s": round(wall_s, 1),
        "executed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.2f} MiB"


def run(
    names,
    *,
    small: bool,
    force: bool,
    render_only: bool,
    timeout: int,
    out_dir: Path,
    budget_mib: float = 4.0,
    cache_dir: Path | None = None,
) -> list[dict]:
    """Generate, execute (or reuse the stored execution), render and write each notebook; one report per notebook."""
    _check_bundles()
    books = generate(names)
    solver, views = solver_hash(), views_hash()
    cache = (cache_dir or CACHE) / ("small" if small else "full")
    cache.mkdir(parents=True, exist_ok=True)
    reports = []
    for name, nb in books.items():
        try:
            reports.append(_one(name, nb, solver=solver, views=views, cache=cache, small=small, force=force,
                                render_only=render_only, timeout=timeout, out_dir=out_dir,
                                budget_mib=budget_mib))  # fmt: skip
        except Exception as e:  # noqa: BLE001 - report it and go on with the next notebook
            print(f"[failed] {name}: {type(e).__name__}: {e}", flush=True)
            reports.append({"name": name, "failed": f"{type(e).__name__}: {e}"})
    return reports


def _one(name, nb, *, solver, views, cache, small, force, render_only, timeout, out_dir, budget_mib) -> dict:
    key = {"cells": cells_hash(nb), "solver": solver, "views": views}
    cached = cache / name
    t0 = time.perf_counter()
    reused = False
    if cached.exists() and not force:
        old = nbformat.read(cached, as_version=4)
        old_key = old.metadata.get("peeklens_cache_key", {})
        if old_key == key:
            nb, wall, reused = old, old.metadata.get("peeklens_wall_s", 0.0), True
        else:
            changed = [k for k in key if old_key.get(k) != key[k]]
            print(f"[execute] {name}: {', '.join(changed)} changed since the stored execution", flush=True)
    if not reused:
        if render_only:
            raise RuntimeError(f"{name}: no stored execution matches the current sources; run without --render-only")
        print(f"[execute] {name} ({'small' if small else 'full'} size) ...", flush=True)
        commit = _git_commit()  # the code the kernel runs
        wall = execute(nb, small=small, timeout=timeout)
        nb.metadata["peeklens_cache_key"], nb.metadata["peeklens_wall_s"] = key, round(wall, 1)
        nb.metadata["peeklens_commit"] = commit
        nbformat.write(nb, cached)
        print(f"[execute] {name}: {wall:.0f} s", flush=True)
    else:
        print(f"[execute] {name}: reusing the execution stored in {cached.relative_to(REPO)} ({wall:.0f} s)")
    nb = copy.deepcopy(nb)
    commit = nb.metadata.get("peeklens_commit") or _git_commit()
    for k in ("peeklens_cache_key", "peeklens_wall_s", "peeklens_commit"):
        nb.metadata.pop(k, None)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    if errors:
        raise RuntimeError(f"{name} raised: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    prune_state(nb)
    refresh_bundles(nb)
    t1 = time.perf_counter()
    n = render_pngs(nb)  # from the whole state: the pictures show what the kernel's widgets showed
    render_s = time.perf_counter() - t1
    full_mib = len(json.dumps(widget_state(nb))) / 2**20
    kept = fit_state_budget(nb, budget_mib)
    png_only = png_only_beyond_budget(nb, budget_mib)
    _stamp(nb, key=key, wall_s=wall, small=small, commit=commit)
    nb.metadata["peeklens"]["widget_state"] = {
        "budget_mib": budget_mib,
        "unslimmed_mib": round(full_mib, 2),
        "ranks_kept": kept or "all",
        "png_only_views": png_only,
    }
    nbformat.validate(nb)
    out = out_dir / name
    nbformat.write(nb, out)
    state_bytes = len(json.dumps(widget_state(nb)))
    rep = {"name": name, "execute_s": round(wall, 1), "reused": reused, "render_s": round(render_s, 1),
           "widgets": n, "size": _size(out), "widget_state": f"{state_bytes / 2**20:.2f} MiB",
           "unslimmed_state": f"{full_mib:.2f} MiB", "ranks_kept": kept or "all",
           "png_only_views": png_only, "total_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print(f"[done] {out.relative_to(REPO) if out.is_relative_to(REPO) else out}: {rep}", flush=True)
    return rep


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="notebooks by file name or prefix (default: all)")
    ap.add_argument("--small", action="store_true", help="small size (PEEKLENS_NOTEBOOK_SMALL=1), a quick check")
    ap.add_argument("--force", action="store_true", help="execute again even when a stored execution matches")
    ap.add_argument("--render-only", action="store_true", help="only re-draw the PNGs from stored executions")
    ap.add_argument(
        "--budget", type=float, default=4.0,
        help="MiB of widget state per notebook (default 4); above it the stored views keep fewer ranks, "
        "then the largest become their PNG",
    )  # fmt: skip
    ap.add_argument(
        "--cache", type=Path, default=None,
        help="where the executions are kept between runs (default build/notebooks; another checkout's works)",
    )  # fmt: skip
    ap.add_argument("--timeout", type=int, default=7200, help="seconds per cell (default 7200)")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder to write to (default notebooks/; with --small build/notebooks/small-out)",
    )
    a = ap.parse_args(argv)
    out_dir = a.out or (CACHE / "small-out" if a.small else NOTEBOOKS)
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = run(
        a.names, small=a.small, force=a.force, render_only=a.render_only, timeout=a.timeout, out_dir=out_dir,
        budget_mib=a.budget, cache_dir=a.cache,
    )  # fmt: skip
    print(json.dumps(reports, indent=1))
    if any("failed" in r for r in reports):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
