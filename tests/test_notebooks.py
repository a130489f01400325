"""Execute every tutorial notebook at a small size (PEEKLENS_NOTEBOOK_SMALL=1) so they never rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.ipynb"))


def test_all_five_notebooks_exist_and_are_stored_clean():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07", "08"]
    for p in NOTEBOOKS:
        nb = nbformat.read(p, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{p.name} is stored with outputs"
        text = "\n".join(c.source for c in nb.cells)
        assert "peeklens.widgets" in text  # every tutorial shows the interactive views
        assert "(not yet measured)" not in text, f"{p.name} lacks its measured numbers"


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
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, notebook_env, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "small run" in text
    widgets = [o for o in outputs if o.output_type == "display_data"
               and "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, f"{path.name} displayed no widget"
