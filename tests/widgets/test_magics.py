"""%load_ext peeklens: the %peek magic and rich display, in a real IPython shell."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from IPython.core.interactiveshell import InteractiveShell

import peeklens as pl
from peeklens import cli
from peeklens.magics import _widget_bundle, denormalizer, parse_peek_args, parse_ranks
from peeklens.widgets import Dashboard


@pytest.fixture(scope="module")
def shell():
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "peeklens")
    return ip


@pytest.mark.parametrize(
    "text, ranks",
    [
        ("10:50:10", [10, 20, 30, 40, 50]),
        ("2:4", [2, 3, 4]),
        ("5", [5]),
        ("3, 7", [3, 7]),
        ("10:45:10", [10, 20, 30, 40]),
    ],
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
    acts = pl.Activations.from_arrays(
        {"input:0": rng.random((4, 9)), "relu": rng.random((3, 9))}, shapes={"input:0": (2, 2)}
    )
    for obj in (
        acts,
        pl.factorize(acts, rank=2, max_iter=3),
        pl.sweep(acts, ranks=[1, 2], max_iter=3, progress=False),
        pl.spectrum(acts, k=2),
    ):
        b = _widget_bundle(obj)
        assert "application/vnd.jupyter.widget-view+json" in b, type(obj).__name__
        assert b["text/html"].startswith("<div>") and "text/plain" in b


def test_one_parse_ranks_for_the_magic_and_the_command_line():
    for text in ["10:50:10", "30,10,10", "2:4", "7"]:
        assert parse_ranks(text) == cli.parse_ranks(text)
    assert parse_ranks("30,10,10") == [10, 30]  # sorted, no duplicates, as on the command line


def test_capture_options_are_parsed_and_checked():
    a = parse_peek_args("net data --denormalize cifar10 --nonneg split --max-samples 100 --batch-size 50 --tol 1e-3")
    assert (a.denormalize, a.nonneg, a.max_samples, a.batch_size, a.tol) == ("cifar10", "split", 100, 50, 1e-3)
    assert parse_peek_args("net data --input-transform undo").input_transform == "undo"
    with pytest.raises(pl.InputError, match="unknown --nonneg policy 'shfit'; did you mean 'shift'"):
        parse_peek_args("net data --nonneg shfit")
    with pytest.raises(pl.InputError, match="unknown --denormalize normalization 'mnsit'; did you mean 'mnist'"):
        parse_peek_args("net data --denormalize mnsit")
    with pytest.raises(pl.InputError, match="not both"):
        parse_peek_args("net data --denormalize mnist --input-transform undo")
    with pytest.raises(pl.InputError, match="--max-samples must be a positive integer or None, got 0"):
        parse_peek_args("net data --max-samples 0")
    with pytest.raises(pl.InputError, match="argument --max-iter: invalid int value"):
        parse_peek_args("net data --max-iter x")


def test_denormalizer_undoes_the_normalization():
    x = torch.rand(4, 3, 5, 5)
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    torch.testing.assert_close(denormalizer("imagenet")((x - mean) / std), x)
    with pytest.raises(pl.InputError, match=r"expects inputs of shape \(batch, 3, ...\), got \(4, 1, 5, 5\)"):
        denormalizer("imagenet")(torch.zeros(4, 1, 5, 5))


@pytest.fixture()
def normalized(shell):
    """A tiny CNN and a normalized loader, as in the README's quickstart."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 5), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(3 * 24 * 24, 10)
    )
    images = torch.rand(40, 1, 28, 28)
    labels = torch.randint(0, 10, (40,))
    shell.user_ns.update(
        tiny=net,
        loader=torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset((images - 0.1307) / 0.3081, labels), batch_size=16
        ),
    )
    shell.user_ns["undo"] = lambda x: x * 0.3081 + 0.1307
    return images


def test_capture_error_is_one_line_with_the_magic_options(shell, normalized, capsys):
    with pytest.raises(pl.NonNegativityError) as info:  # the error itself is kept for programs
        shell.run_line_magic("peek", "tiny loader --layers 1 --ranks 2 --k 0")
    lines = info.value._render_traceback_()
    assert len(lines) == 1 and lines[0].startswith("NonNegativityError: ") and "--denormalize mnist" in lines[0]
    capsys.readouterr()
    shell.run_cell("%peek tiny loader --layers 1 --ranks 2 --k 0")  # what a notebook user sees
    out = capsys.readouterr()
    shown = [
        ln for ln in (out.out + out.err).splitlines() if ln.strip() and "sample/s]" not in ln
    ]  # minus progress bars
    assert len(shown) == 1 and shown[0].startswith("NonNegativityError:"), shown


@pytest.mark.parametrize("option", ["--denormalize mnist", "--input-transform undo"])
def test_peek_undoes_the_normalization(shell, normalized, option):
    dash = shell.run_line_magic("peek", f"tiny loader --layers 1 --ranks 1,2 --max-iter 5 --k 0 {option}")
    assert isinstance(dash, Dashboard) and dash.sweep.ranks == [1, 2]
    inputs = dash.sweep[2].inputs["input:0"]
    np.testing.assert_allclose(
        inputs.reshape(40, -1) if inputs.shape[0] == 40 else inputs.T.reshape(40, -1),
        normalized.reshape(40, -1).numpy(),
        atol=1e-5,
    )


def test_nonneg_option_reaches_capture(shell, normalized):
    dash = shell.run_line_magic(
        "peek", "tiny loader --layers 3 --ranks 1 --max-iter 3 --k 0 --nonneg abs --denormalize mnist"
    )
    assert dash.sweep[1].blocks["3"]["kind"] == "layer"
