"""%load_ext peeklens: the %peek magic and rich display, in a real IPython shell."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from IPython.core.interactiveshell import InteractiveShell

import peeklens as pl
from peeklens.magics import _widget_bundle, parse_peek_args, parse_ranks
from peeklens.widgets import Dashboard


@pytest.fixture(scope="module")
def shell():
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "peeklens")
    return ip


@pytest.mark.parametrize(
    "text, ranks",
    [("10:50:10", [10, 20, 30, 40, 50]), ("2:4", [2, 3, 4]), ("5", [5]), ("3, 7", [3, 7]), ("10:45:10", [10, 20, 30, 40])],
)
def test_parse_ranks(text, ranks):
    assert parse_ranks(text) == ranks


@pytest.mark.parametrize("text", ["a:b", "10:50:0", "0", "1:2:3:4", "", "-3"])
def test_parse_ranks_rejects(text):
    with pytest.raises(pl.InputError, match="--ranks"):
        parse_ranks(text)


def test_bad_arguments_raise_not_exit():
    with pytest.raises(pl.InputError, match="the following arguments are required: data"):
        parse_peek_args("net")
    with pytest.raises(pl.InputError, match="unrecognized arguments: --bogus"):
        parse_peek_args("net data --bogus 1")


@pytest.mark.slow
def test_peek_captures_sweeps_and_returns_dashboard(shell, paper_net, mnist_test):
    x, y = mnist_test
    shell.user_ns["net"] = paper_net
    shell.user_ns["data"] = torch.utils.data.TensorDataset(x[:300], y[:300])
    dash = shell.run_line_magic("peek", "net data --layers relu relu_1 --ranks 2:6:2 --max-iter 10 --k 5")
    assert isinstance(dash, Dashboard)
    assert dash.explorer.ranks == [2, 4, 6]
    fit = dash.gallery.meta["fits"]["2"]
    assert [b["shape"] for b in fit["blocks"]] == [[28, 28], [10, 12, 12], [20, 4, 4]]
    assert dash.heatmaps.layer_names == ["relu", "relu_1"]
    assert [(p["name"], p["meta"]["names"]) for p in dash.spectrum.spectra] == [("PaperNet", ["relu", "relu_1"])]
    assert dash.sweep[4].n_samples == 300


def test_peek_names_what_it_cannot_evaluate(shell):
    with pytest.raises(pl.InputError, match="could not evaluate the model 'no_such_net'"):
        shell.run_line_magic("peek", "no_such_net data")


def test_results_display_as_html_summary_outside_a_kernel(shell):
    rng = np.random.default_rng(0)
    acts = pl.Activations.from_arrays({"input:0": rng.random((4, 9)), "<b>x</b>": rng.random((3, 9))})
    sw = pl.sweep(acts, ranks=[1, 2], max_iter=3, progress=False)
    data, _ = shell.display_formatter.format(sw)
    assert "<b>Sweep</b> over 2 ranks" in data["text/html"]
    assert "&lt;b&gt;x&lt;/b&gt;" in data["text/html"]
    # no kernel here (terminal IPython): no widget view
    assert "application/vnd.jupyter.widget-view+json" not in data


def test_widget_bundle_has_view_and_fallback():
    rng = np.random.default_rng(0)
    acts = pl.Activations.from_arrays({"input:0": rng.random((4, 9)), "relu": rng.random((3, 9))}, shapes={"input:0": (2, 2)})
    for obj in (acts, pl.factorize(acts, rank=2, max_iter=3), pl.sweep(acts, ranks=[1, 2], max_iter=3, progress=False),
                pl.spectrum(acts, k=2)):
        b = _widget_bundle(obj)
        assert "application/vnd.jupyter.widget-view+json" in b, type(obj).__name__
        assert b["text/html"].startswith("<div>") and "text/plain" in b
