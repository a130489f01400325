"""Widgets, the HTML report and the CLI with hostile names, odd results and bad command lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import peeklens as pl

EVIL = "<script>alert('x')</script><img src=x onerror=alert(1)>"
LABEL_EVIL = '"><b>label</b>'


@pytest.fixture(scope="module")
def evil_sweep():
    rng = np.random.default_rng(0)
    acts = pl.Activations.from_arrays(
        {"input:0": rng.random((16, 30)), EVIL: rng.random((6, 30))},
        shapes={"input:0": (4, 4), EVIL: (6, 1, 1)}, labels=np.arange(30) % 3,
    )
    return acts, pl.sweep(acts, ranks=[2, 3], max_iter=5, progress=False, solver="mu")


def _no_live_markup(html: str) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert" in html


def test_html_summaries_show_names_as_text(evil_sweep):
    from peeklens.widgets import summary_html

    acts, sw = evil_sweep
    for obj in (acts, sw[2], sw, pl.spectrum(acts, k=3)):
        _no_live_markup(summary_html(obj))


def test_widgets_carry_names_as_plain_text_traits(evil_sweep):
    from peeklens.widgets import Dashboard

    _, sw = evil_sweep
    dash = Dashboard(sw)
    assert EVIL in dash.explorer.meta["fits"]["2"]["names"]  # raw text: the front end puts it in textContent
    state = str(dash.heatmaps.get_state())
    assert EVIL in state or "&lt;script" not in state  # never pre-escaped HTML either
    js = "".join(p.read_text() for p in Path(pl.__file__).parents[2].joinpath("js").rglob("*.ts")
                 if "test" not in p.name and "node_modules" not in p.parts)
    if js:  # the widget sources (present in a checkout) never assign names through innerHTML
        assert "innerHTML" not in js.replace("never innerHTML", "")


def test_report_escapes_layer_names(evil_sweep, tmp_path):
    from peeklens.report import write_report

    _, sw = evil_sweep
    p = write_report({LABEL_EVIL: sw}, tmp_path / "r.html", title=EVIL, table={"network": [EVIL]}, verdict=EVIL)
    html = Path(p).read_text()
    _no_live_markup(html)
    assert "<b>label</b>" not in html and "&quot;&gt;&lt;b&gt;label&lt;/b&gt;" in html
    # layer names travel inside the embedded results (base64) and are drawn as text by the bundle
    import base64
    import re

    b64 = re.search(r'<script type="application/x-peeklens"[^>]*>([A-Za-z0-9+/=]+)</script>', html).group(1)
    (tmp_path / "x.peeklens").write_bytes(base64.b64decode(b64))
    assert EVIL in pl.load(tmp_path / "x.peeklens").block_names


def test_widgets_on_interrupted_single_rank_and_empty_sweeps(evil_sweep):
    from peeklens.widgets import Dashboard, widget_for

    acts, sw = evil_sweep
    partial = pl.Sweep({2: sw[2]}, interrupted=True, requested=[2, 3, 4])
    dash = Dashboard(partial)
    assert dash.explorer.ranks == [2]
    with pytest.raises(pl.InputError, match="rank 3 is not in this sweep; ranks are \\[2\\]"):
        dash.rank = 3
    with pytest.raises(pl.InputError, match="no finished ranks"):
        Dashboard(pl.Sweep({}, interrupted=True, requested=[2]))
    assert widget_for(sw[3]).rank == 3  # a single Factorization
    with pytest.raises(pl.InputError, match="cannot show a ndarray"):
        widget_for(np.zeros(3))


def test_widgets_on_a_sweep_loaded_from_file(evil_sweep, tmp_path):
    from peeklens.widgets import Dashboard

    _, sw = evil_sweep
    back = pl.load(pl.save(sw, tmp_path / "s.peeklens", include_inputs=False))
    dash = Dashboard(back)  # no input images loaded: latent images without thumbnails, still a dashboard
    assert dash.explorer.ranks == [2, 3]
    assert dash.gallery is not None and dash.gallery.meta["display"] is None


def _cli(*args, env=None) -> subprocess.CompletedProcess:
    import os

    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "peeklens.cli", *args], capture_output=True, text=True,
                          timeout=300, env=e)


def test_cli_missing_data_directory_is_one_line(tmp_path):
    # --no-download: no attempt to reach the network (the default tries to download the data set)
    r = _cli("study", "fraction", "--no-download", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
             "--samples", "50", "--ranks", "2")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "nowhere" in lines[0] and "--data" in lines[0]


def test_cli_damaged_data_file_is_one_line(tmp_path):
    import os

    src = Path(os.environ.get("PEEKLENS_DATA", Path(__file__).parents[3] / "shared" / "data")) / "mnist"
    d = tmp_path / "data" / "mnist"
    d.mkdir(parents=True)
    for f in src.glob("t10k-*.gz"):
        (d / f.name).write_bytes(f.read_bytes()[:2000])  # a cut download
    assert len(list(d.iterdir())) == 2
    r = _cli("study", "fraction", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "o"),
             "--samples", "50", "--ranks", "2")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "truncated or damaged" in r.stderr


@pytest.mark.parametrize("args, match", [
    (["demo", "--ranks", "0"], "--ranks"), (["demo", "--samples", "-3"], "--samples"),
    (["study", "fraction", "--ranks", "50:10"], "--ranks"), (["demo", "--no-such-flag"], "unrecognized"),
])
def test_cli_impossible_options_are_one_line(args, match, capsys):
    from peeklens.cli import main

    with pytest.raises(SystemExit) as info:
        main(args)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1 and match in err and "Traceback" not in err


def test_cli_keyboard_interrupt_exits_130_without_traceback(monkeypatch, capsys, tmp_path):
    import peeklens.cli as cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run", interrupted)
    assert cli.main(["demo", "--out", str(tmp_path)]) == 130
    assert capsys.readouterr().err.strip() == "peeklens: interrupted"
