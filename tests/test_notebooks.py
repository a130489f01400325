"""The tutorial notebooks: committed executed at full size (outputs, widget state, a PNG per widget) and not
stale, and executed afresh at a small size (PEEKLENS_NOTEBOOK_SMALL=1) so that they never rot.

``notebooks/make_notebooks.py`` writes them; ``python scripts/execute_notebooks.py`` executes them and records
what produced the outputs (the hash of the cells and of the solver sources). When a change to the generator or
to the solvers makes the committed outputs stale, these tests say so and name that command.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]

#: The tutorials, by number: notebooks/<number>-*.ipynb (written by notebooks/make_notebooks.py).
TUTORIALS = ["01", "02", "03", "04", "05", "06", "07", "08"]

_spec = importlib.util.spec_from_file_location("_peeklens_execute_notebooks", REPO / "scripts" / "execute_notebooks.py")
ex = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ex)

NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))
RERUN = "python scripts/execute_notebooks.py"


@pytest.fixture(scope="module")
def generated():
    return ex.generate()


def _fix(name: str) -> str:
    return f"run `{RERUN} {name[:2]}` (full size) and commit notebooks/{name}"


def test_the_tutorials_are_committed_and_generated():
    assert [p.name[:2] for p in NOTEBOOKS] == TUTORIALS
    assert sorted(ex.generate()) == [p.name for p in NOTEBOOKS]
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        nbformat.validate(nb)
        text = "\n".join(c.source for c in nb.cells)
        assert "peeklens.widgets" in text  # every tutorial shows the interactive views
        assert "(not yet measured)" not in text, f"{p.name} lacks its measured numbers"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_cells_are_what_the_generator_writes(path, generated):
    nb = nbformat.read(path, as_version=4)
    want = generated[path.name]
    got = [(c.cell_type, c.source) for c in nb.cells]
    assert got == [(c.cell_type, c.source) for c in want.cells], (
        f"notebooks/{path.name} differs from what notebooks/make_notebooks.py writes: {_fix(path.name)}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_outputs_are_full_size_and_not_stale(path, generated):
    nb = nbformat.read(path, as_version=4)
    stamp = nb.metadata.get("peeklens")
    assert stamp, f"notebooks/{path.name} was not executed by {RERUN}: {_fix(path.name)}"
    assert stamp["size"] == "full", f"notebooks/{path.name} holds a small run: {_fix(path.name)}"
    assert stamp["cells_sha256"] == ex.cells_hash(generated[path.name]), (
        f"the cells of notebooks/{path.name} changed since its outputs were made: {_fix(path.name)}"
    )
    assert stamp["solver_sha256"] == ex.solver_hash(), (
        f"the solver sources ({', '.join(ex.SOLVER_SOURCES)}) changed since notebooks/{path.name} was executed, "
        f"so its numbers may be stale: {_fix(path.name)}"
    )
    for key in ("peeklens_version", "git_commit", "execution_wall_s"):
        assert stamp.get(key), key
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), f"notebooks/{path.name} has cells that did not run"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"], f"notebooks/{path.name} stores an error"
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "full-size run" in printed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_widget_has_its_state_and_a_png(path):
    nb = nbformat.read(path, as_version=4)
    state = ex.widget_state(nb)["state"]
    views = list(ex.widget_outputs(nb))
    assert views, f"notebooks/{path.name} stores no widget view"
    peeklens_views = 0
    for _, out in views:
        model = out["data"][ex.WIDGET_VIEW]["model_id"]
        assert model in state, f"notebooks/{path.name}: the state of widget {model} is missing"
        png = out["data"].get("image/png", "")
        assert png.startswith("iVBORw0KGgo"), f"notebooks/{path.name}: a widget output has no PNG fallback"
        assert len(png) > 2000  # a picture, not a blank square
        peeklens_views += any(
            state[m]["model_module"] == "anywidget" for m in [model, *ex._children(state[model])] if m in state
        )
    assert peeklens_views, f"notebooks/{path.name} shows no peeklens widget"
    # every stored anywidget carries its front end, so that the view draws without peeklens installed
    assert all(m["state"].get("_esm") for m in state.values() if m["model_module"] == "anywidget")


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory):
    import os

    cache = tmp_path_factory.mktemp("nb-cache")
    old = {k: os.environ.get(k) for k in ("PEEKLENS_NOTEBOOK_SMALL", "PEEKLENS_CACHE", "TQDM_DISABLE")}
    os.environ.update(PEEKLENS_NOTEBOOK_SMALL="1", PEEKLENS_CACHE=str(cache), TQDM_DISABLE="1")
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.mark.slow
@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS], ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(name, generated, notebook_env, tmp_path):
    """A fresh copy from the generator (not the committed file) runs top to bottom at the small size."""
    from nbclient import NotebookClient

    nb = copy.deepcopy(generated[name])
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "small run" in text
    widgets = [o for o in outputs if o.output_type == "display_data" and ex.WIDGET_VIEW in o.get("data", {})]
    assert widgets, f"{name} displayed no widget"


def _dashboard_state(ranks, rank):
    import numpy as np
    from ipywidgets.embed import dependency_state, embed_data

    import peeklens as pl
    from peeklens.widgets import Dashboard

    rng = np.random.default_rng(0)
    acts = pl.Activations.from_arrays(
        {"input:0": rng.random((16, 60)), "relu": rng.random((8, 60))}, shapes={"input:0": (4, 4)}
    )
    dash = Dashboard(pl.sweep(acts, ranks=ranks, max_iter=5, progress=False), rank=rank)
    # only this dashboard's models (embed_data's default state is every live widget of the process)
    data = embed_data(views=[dash], state=dependency_state([dash], drop_defaults=True))
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {ex.WIDGET_STATE: data["manager_state"]}
    return nb


def test_a_slimmed_widget_state_keeps_its_ranks_exactly():
    """Over the budget, the stored sweep views keep their current rank: its arrays byte for byte, and the display
    images of every top input the views pick for it (the others' go)."""
    import numpy as np

    nb = _dashboard_state([2, 3, 4], rank=3)
    state = ex.widget_state(nb)["state"]
    gallery = next(m for m in state.values() if any(b["path"] == ["arrays", "r2.F"] for b in m.get("buffers", [])))
    before = {tuple(b["path"]): b["data"] for b in gallery["buffers"]}
    F = ex._buffer_array(gallery, "r3.F").copy()
    samples = ex._buffer_array(gallery, "display.samples").copy()
    images = ex._buffer_array(gallery, "display.image.0").copy()

    kept = ex.fit_state_budget(nb, budget_mib=0.0001)  # nothing fits: the current rank alone
    assert kept and all(v == [3] for v in kept.values())
    for m in ex._sweep_models(state):
        assert m["state"]["ranks"] == [3] and list(m["state"]["meta"]["fits"]) == ["3"]
    after = {tuple(b["path"]): b["data"] for b in gallery["buffers"]}
    assert after[("arrays", "r3.F")] == before[("arrays", "r3.F")]
    assert after[("arrays", "r3.W.0")] == before[("arrays", "r3.W.0")]
    assert not [p for p in after if p[1].startswith(("r2.", "r4."))]
    # every factor's top 8 among the original display samples (largest loading, then smallest index) is kept
    new_samples = ex._buffer_array(gallery, "display.samples")
    for c in range(F.shape[1]):
        order = sorted(samples, key=lambda s: (-F[s, c], s))[:8]
        assert set(order) <= set(new_samples.tolist())
    assert len(new_samples) < len(samples)
    cols = [list(samples).index(s) for s in new_samples]
    np.testing.assert_array_equal(ex._buffer_array(gallery, "display.image.0"), images[:, cols])


def test_views_beyond_the_budget_are_stored_as_their_picture():
    """Still over the budget at one rank per view: the largest views keep only their PNG (and text), the others
    stay live with every model they reference."""
    nb = nbformat.v4.new_notebook()
    big, small = "x" * 50_000, "y" * 10
    state = {
        "g": {"model_module": "anywidget", "state": {"_esm": big, "layout": "IPY_MODEL_gl"}},
        "gl": {"model_module": "@jupyter-widgets/base", "state": {}},
        "r": {"model_module": "anywidget", "state": {"_esm": small, "layout": "IPY_MODEL_rl"}},
        "rl": {"model_module": "@jupyter-widgets/base", "state": {}},
    }
    nb.metadata["widgets"] = {ex.WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": state}}
    png = {"image/png": "iVBORw0KGgo" + "A" * 3000, "text/plain": "view"}
    nb.cells = [nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output(
        "display_data", data={**png, ex.WIDGET_VIEW: {"model_id": m, "version_major": 2, "version_minor": 0}})])
        for m in ("g", "r")]  # fmt: skip
    assert ex.png_only_beyond_budget(nb, budget_mib=0.01) == 1
    stored = ex.widget_state(nb)["state"]
    assert set(stored) == {"r", "rl"}  # the big view and the layout only it used are gone
    first, second = (c.outputs[0]["data"] for c in nb.cells)
    assert ex.WIDGET_VIEW not in first and first["image/png"] == png["image/png"]
    assert second[ex.WIDGET_VIEW]["model_id"] == "r"
    assert ex.png_only_beyond_budget(nb, budget_mib=1) == 0


def test_a_state_within_the_budget_is_left_whole():
    nb = _dashboard_state([2, 3], rank=2)
    before = json.dumps(ex.widget_state(nb))
    assert ex.fit_state_budget(nb, budget_mib=50) == {}
    assert json.dumps(ex.widget_state(nb)) == before


def test_the_stored_views_get_the_current_bundles():
    """A change of the drawing alone needs no new execution: the built bundle replaces a stored ``_esm``."""
    bundle = ex.STATIC / "latent_gallery.js"
    if not bundle.exists():
        pytest.skip("the widget bundles are not built (npm run build:widgets)")
    nb = nbformat.v4.new_notebook()
    state = {
        "a": {"model_module": "anywidget", "state": {"_anywidget_id": "peeklens.widgets.LatentGallery", "_esm": "old"}},
        "b": {"model_module": "anywidget", "state": {"_anywidget_id": "other.Widget", "_esm": "theirs"}},
    }
    nb.metadata["widgets"] = {ex.WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": state}}
    assert ex.refresh_bundles(nb) == 1
    stored = ex.widget_state(nb)["state"]
    assert stored["a"]["state"]["_esm"] == bundle.read_text()
    assert stored["b"]["state"]["_esm"] == "theirs"
