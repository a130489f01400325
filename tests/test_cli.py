import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import peeklens as pl
from peeklens.cli import build_parser, main, parse_ranks


def run_cli(*args, env=None):
    """The real console entry point in a subprocess: exit status, stdout, stderr."""
    e = dict(os.environ, **(env or {}))
    p = subprocess.run(
        [sys.executable, "-m", "peeklens.cli", *args], capture_output=True, text=True, env=e, timeout=300
    )
    return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize(
    "argv",
    [[], ["demo"], ["study"], ["study", "fraction"], ["study", "subset"], ["study", "ordered"], ["study", "alexnet"]],
)
def test_help_is_complete(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: peeklens")
    if argv and argv != ["study"]:
        for opt in ("--data", "--out", "--device", "--samples", "--ranks", "--seed", "--solver", "--cache"):
            assert opt in out
    if argv == ["study", "ordered"]:
        assert "--first-class" in out
    if argv == ["study", "alexnet"]:
        assert "--dataset" in out and "cifar10" in out
    if not argv:
        assert "demo" in out and "study" in out and "PEEKLENS_DATA" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: peeklens" in capsys.readouterr().out
    assert main(["study"]) == 2
    assert "name a study" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv,msg",
    [
        (["demo", "--ranks", "abc"], "invalid ranks"),
        (["demo", "--ranks", "0:5"], "positive"),
        (["demo", "--samples", "0"], "positive integer"),
        (["study", "fraction", "--fractions", "0.5,2"], "invalid fractions"),
        (["study", "ordered", "--first-class", "12"], "invalid choice"),
        (["study", "alexnet", "--dataset", "imagenet"], "invalid choice"),
        (["study", "nope"], "invalid choice"),
        (["demo", "--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_options_one_line_exit_2(argv, msg, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_cuda_without_gpu_is_a_usage_error(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--device", "cuda"])
    assert exc.value.code == 2 and "no CUDA GPU" in capsys.readouterr().err


def test_unknown_solver(capsys, tmp_path):
    assert main(["demo", "--solver", "magic", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown solver 'magic'" in err and err.count("\n") == 1


def test_missing_data_subprocess(tmp_path):
    rc, out, err = run_cli("demo", "--data", str(tmp_path / "nowhere"), "--no-download", "--out", str(tmp_path / "o"))
    assert rc == 1
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "does not exist" in err and "nowhere" in err
    # No $PEEKLENS_DATA and empty caches (HOME and the working directory are empty folders).
    env = {k: v for k, v in os.environ.items() if k != "PEEKLENS_DATA"} | {"HOME": str(tmp_path)}
    p = subprocess.run(
        [sys.executable, "-m", "peeklens.cli", "study", "subset", "--no-download"], capture_output=True, text=True,
        env=env, timeout=120, cwd=tmp_path,
    )
    assert p.returncode == 1 and "PEEKLENS_DATA" in p.stderr and "Traceback" not in p.stderr
    rc, _, err = run_cli("study", "alexnet", "--dataset", "cifar10", "--data", str(tmp_path), "--no-download")
    assert rc == 1 and "CIFAR-10" in err and "Traceback" not in err


def test_offline_download_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    """Without the data and without internet: one line saying what to do, exit 1, no half-written folder."""
    import torchvision.datasets

    class OfflineMNIST:
        def __init__(self, root, train=True, download=False):
            (tmp_path / "target").mkdir(exist_ok=True)
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error no network>")

    monkeypatch.setattr(torchvision.datasets, "MNIST", OfflineMNIST)
    target = tmp_path / "data"
    assert main(["demo", "--data", str(target), "--out", str(tmp_path / "o"), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not be downloaded" in err and "no network" in err
    assert "PEEKLENS_DATA" in err and not target.exists()


def test_parse_ranks():
    assert parse_ranks("10:50:10") == [10, 20, 30, 40, 50]
    assert parse_ranks("3:5") == [3, 4, 5]
    assert parse_ranks("30,10,10") == [10, 30]
    assert build_parser().parse_args(["demo"]).ranks == [10, 20, 30, 40, 50]


@pytest.mark.slow
def test_demo_end_to_end_small(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "demo",
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "cache"),
            "--samples",
            "200",
            "--train-samples",
            "1200",
            "--ranks",
            "2,3",
            "--max-iter",
            "20",
            "-q",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    report = Path(text.split("Report:")[1].split()[0])
    assert report == (out / "demo.html").resolve() and report.exists()
    assert "accuracy" in text and "(paper 83 %)" in text and "RMSE order as in the paper" in text
    saved = sorted(p.name for p in out.glob("*.peeklens"))
    assert saved == [
        "demo-100-of-the-data-spectrum.peeklens",
        "demo-100-of-the-data.peeklens",
        "demo-25-of-the-data-spectrum.peeklens",
        "demo-25-of-the-data.peeklens",
    ]
    sv = pl.load(out / saved[0])
    assert isinstance(sv, pl.Spectrum) and sv.names == ["relu", "relu_1"]
    sw = pl.load(out / saved[1])
    assert sw.ranks == [2, 3] and sw[2].settings["max_iter"] == 20
    summary = json.loads((out / "demo.json").read_text())
    assert summary["meta"]["samples"] == 200 and summary["meta"]["factorize"] == {"max_iter": 20}


@pytest.mark.slow
def test_study_ordered_subprocess(tmp_path):
    rc, out, err = run_cli(
        "study",
        "ordered",
        "--first-class",
        "3",
        "--out",
        str(tmp_path / "o"),
        "--cache",
        str(tmp_path / "c"),
        "--samples",
        "150",
        "--train-samples",
        "1000",
        "--ranks",
        "2",
        "--max-iter",
        "10",
        "-q",
    )
    assert rc == 0, err
    assert "class-ordered from 3" in out and "shuffled (100%)" in out
    summary = json.loads((tmp_path / "o" / "ordered.json").read_text())
    assert summary["regimes"][0]["regime"]["first_class"] == 3
    assert summary["expected_lower"] == [["class-ordered from 3", "shuffled (100%)"]]


def test_ctrl_c_exits_130_without_traceback(monkeypatch, capsys, tmp_path):
    import peeklens.studies.cases as cases

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cases, "train", interrupted)
    assert main(["demo", "--out", str(tmp_path), "--samples", "50", "--ranks", "2", "-q"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "peeklens: interrupted"


@pytest.mark.slow
def test_demo_under_torchrun_equals_one_process(tmp_path):
    """`torchrun --nproc_per_node 2 -m peeklens.cli demo`: the processes share the test images, rank 0 alone
    prints and writes, and the sweeps are those of one process on all the images."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PEEKLENS_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    common = ["demo", "--samples", "120", "--ranks", "2,3", "--train-samples", "600", "-q"]
    p = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(port), "-m", "peeklens.cli", *common, "--out", str(tmp_path / "two")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.count("Report:") == 1 and "on 2 processes" in p.stdout
    one = subprocess.run([sys.executable, "-m", "peeklens.cli", *common, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    for f in sorted((tmp_path / "one").glob("demo-*of-the-data.peeklens")):
        a, b = pl.load(f), pl.load(tmp_path / "two" / f.name)
        assert b.ranks == a.ranks and b[2].F.shape == (120, 2)
        np.testing.assert_allclose(b.rmse, a.rmse, rtol=1e-3)
