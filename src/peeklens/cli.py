"""The ``peeklens`` command line: the demo and the paper's case studies.

    peeklens demo                       # paper network on 25 % and 100 % of MNIST -> HTML report
    peeklens study fraction|subset|ordered|alexnet [options]
    peeklens explain RESULTS.peeklens   # maximized images and attributions of the factors, into the file
    peeklens --help / peeklens study fraction --help

Errors in the input (a missing data directory, an impossible option) print one line and exit with
status 2 (bad option) or 1 (anything else), without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import webbrowser
from collections.abc import Callable, Sequence
from pathlib import Path

from ._validation import finite_float, one_of, positive_int
from ._validation import parse_ranks as _parse_ranks
from ._version import __version__
from .errors import InputError, PeeklensError

__all__ = ["main", "build_parser", "parse_ranks"]

EPILOG = """\
data: the directory holding mnist/ (the four IDX .gz files) and/or cifar10/ (.npz subset), from --data
or $PEEKLENS_DATA, else ~/.cache/peeklens/data or ./data; when it is in none of them, MNIST / CIFAR-10 are
downloaded once through torchvision (--no-download: never; offline, one line says where to put the files).
Trained networks are cached in --cache (default $PEEKLENS_CACHE or ~/.cache/peeklens/models), so a second
run only factorizes.
"""


def parse_ranks(text: str) -> list[int]:
    """``"10:50:10"`` (start:stop:step, stop included), ``"10,20,30"`` or ``"10"`` to a list of ranks.

    The same parser as ``%peek``'s (:func:`peeklens._validation.parse_ranks`), with argparse's error type.

    >>> parse_ranks("10:50:10"), parse_ranks("5,3"), parse_ranks("7")
    ([10, 20, 30, 40, 50], [3, 5], [7])
    """
    return _argument(lambda t: _parse_ranks(t, ""))(text)  # argparse names the option


def _argument(check: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse ``type=`` from a check that raises InputError: the message becomes argparse's."""

    def convert(text: str):
        try:
            return check(text)
        except InputError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = getattr(check, "__name__", "value")
    return convert


def _positive_int_text(text: str) -> int:
    try:
        return positive_int(int(text), "value")
    except (ValueError, InputError):  # restate what was typed, not its conversion
        raise InputError(f"expected a positive integer, got {text!r}") from None


_positive_int = _argument(_positive_int_text)


def _fractions_text(text: str) -> list[float]:
    try:
        vals = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise InputError(f"invalid fractions {text!r}: use e.g. 0.25,0.5,1") from None
    if not vals:
        raise InputError(f"invalid fractions {text!r}: use e.g. 0.25,0.5,1")
    try:
        return [finite_float(v, "each fraction", minimum=0, maximum=1, strict=True) for v in vals]
    except InputError as e:
        raise InputError(f"invalid fractions {text!r}: {e}") from None


_fractions = _argument(_fractions_text)


def _tolerance_text(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--tol must be a finite number >= 0, got {text!r}") from None
    return finite_float(value, "--tol", minimum=0)


_tolerance = _argument(_tolerance_text)


def _device(text: str) -> str:
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}: use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"device {text!r} requested but no CUDA GPU is available; use --device cpu")
    return text


def _common(p: argparse.ArgumentParser, *, samples_default: int | None = 10000) -> None:
    g = p.add_argument_group("data and output")
    g.add_argument("--data", metavar="DIR", help="data directory (default: $PEEKLENS_DATA)")
    g.add_argument("--download", action=argparse.BooleanOptionalAction, default=None,
                   help="download the data through torchvision when it is not found locally (default: yes; "
                   "--no-download: never)")
    g.add_argument("--out", metavar="DIR", default=None, help="output directory (default: ./peeklens-out)")
    g.add_argument(
        "--cache", metavar="DIR", help="checkpoint cache (default: $PEEKLENS_CACHE or ~/.cache/peeklens/models)"
    )
    g.add_argument("--no-cache", action="store_true", help="train again and keep no checkpoint")
    g.add_argument("--open", action="store_true", help="open the report in a web browser when done")
    g = p.add_argument_group("experiment")
    g.add_argument(
        "--samples",
        type=_positive_int,
        default=samples_default,
        help=f"number of test images captured (default: {samples_default or 'all'})",
    )
    g.add_argument(
        "--ranks",
        type=parse_ranks,
        default=[10, 20, 30, 40, 50],
        metavar="R",
        help="ranks to sweep: start:stop:step or a list (default: 10:50:10, the paper's)",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of training and factorization (default: 0)")
    g.add_argument("--epochs", type=_positive_int, default=1, help="training epochs (default: 1, the paper's)")
    g.add_argument(
        "--train-samples",
        type=_positive_int,
        default=None,
        metavar="N",
        help="use only the first N training images (quick runs; default: all)",
    )
    g.add_argument("--device", type=_device, default=None, help="cpu, cuda or cuda:N (default: cpu)")
    g = p.add_argument_group("factorization")
    g.add_argument(
        "--solver", default=None, help="factorization solver (default: peeklens's default; 'mu' is the paper's)"
    )
    g.add_argument("--max-iter", type=_positive_int, default=None, help="iterations per rank (default: the solver's)")
    g.add_argument("--tol", type=_tolerance, default=None, help="relative-change tolerance (default: the solver's)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2), not the whole usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``peeklens`` command."""
    ap = _Parser(
        prog="peeklens",
        description="Look inside trained networks through the coupled non-negative factorization of "
        "Saini & Papalexakis (2018): train the paper's networks, capture their activations on the test set, "
        "sweep ranks and write a self-contained HTML report.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--version", action="version", version=f"peeklens {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="paper network on 25 %% and 100 %% of MNIST, one epoch each -> HTML report",
        description="Train the paper's MNIST network on 25 % and on 100 % of the training images for one epoch, "
        "capture the 10,000 test images, sweep ranks 10-50, and write a self-contained HTML report (RMSE against "
        "rank, spectra, latent images, neuron heatmaps, accuracies) plus the saved results (.peeklens files, "
        "open with pl.load).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(demo)
    study = sub.add_parser(
        "study",
        help="run one of the paper's case studies",
        description="Run one of the paper's case studies and write its report.",
    )
    ss = study.add_subparsers(dest="study", metavar="STUDY")
    helps = {
        "fraction": "case study I: 25/50/75/100 % of MNIST (paper: 83/89/93/95 % accuracy)",
        "subset": "case study II: classes {0}, {0-4}, {5-9}, {0-9} (paper: 9/50/47/93 %)",
        "ordered": "case study III: class by class without shuffling, 9s first (paper: 9 %), vs shuffled",
        "alexnet": "the modified AlexNet on 25-100 % of MNIST or CIFAR-10",
    }
    for name, text in helps.items():
        sp = ss.add_parser(
            name,
            help=text.replace("%", "%%"),
            description=text
            + ". "
            + (
                "Each network is trained for --epochs on its regime, tested on the full test set, and its activations "
                "on the first --samples test images are factorized at every rank."
            ),
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _common(sp, samples_default=2000 if name == "alexnet" else 10000)
        if name in ("fraction", "alexnet"):
            sp.add_argument(
                "--fractions",
                type=_fractions,
                default=None,
                metavar="F",
                help="training fractions, e.g. 0.25,0.5,0.75,1 (the default)",
            )
        if name == "ordered":
            sp.add_argument(
                "--first-class",
                type=int,
                choices=range(10),
                default=9,
                metavar="C",
                help="the class trained first (default: 9, as in the paper)",
            )
        if name == "alexnet":
            sp.add_argument(
                "--dataset",
                choices=["mnist", "cifar10"],
                default="mnist",
                help="mnist (28x28 grayscale) or cifar10 (32x32 RGB; the local subset has 5,169 "
                "training and 1,017 test images) (default: mnist)",
            )
    from .interpret.command import add_parser as add_explain_parser

    add_explain_parser(sub)
    return ap


def _factorize_kwargs(args) -> dict:
    kw = {}
    if args.solver is not None:
        kw["solver"] = args.solver
    if args.max_iter is not None:
        kw["max_iter"] = args.max_iter
    if args.tol is not None:
        kw["tol"] = args.tol
    return kw


def _run(args, name: str, stream) -> int:
    import torch.distributed

    from .nmf import SOLVERS
    from .nmf.distributed import init_from_env
    from .studies import run_study

    if args.solver is not None:
        try:
            one_of(args.solver, "solver", SOLVERS)
        except InputError as e:
            raise _UsageError(f"argument --solver: {e}") from None
    out = Path(args.out or "peeklens-out")
    t0 = time.perf_counter()
    launched = init_from_env()  # under torchrun: join the process group; the processes share the test images
    res = run_study(
        name,
        root=args.data,
        out=out,
        device=args.device,
        samples=args.samples,
        ranks=args.ranks,
        seed=args.seed,
        epochs=args.epochs,
        first_class=getattr(args, "first_class", 9),
        dataset=getattr(args, "dataset", "mnist"),
        fractions=getattr(args, "fractions", None),
        train_samples=args.train_samples,
        cache=False if args.no_cache else args.cache,
        download=args.download,
        progress=not args.quiet,
        distributed=launched,
        **_factorize_kwargs(args),
    )
    took = time.perf_counter() - t0
    if launched and torch.distributed.get_rank() != 0:
        return 0  # rank 0 prints and writes
    p = lambda s="": print(s, file=stream)  # noqa: E731
    p()
    procs = f" on {res.meta['processes']} processes" if res.meta.get("processes", 1) > 1 else ""
    p(f"peeklens {name}: {res.meta['samples']} test images, ranks {res.ranks}, {took:.0f} s{procs}")
    width = max(len(r.label) for r in res.results)
    for r in res.results:
        pa = f" (paper {r.paper_accuracy:g} %)" if r.paper_accuracy is not None else ""
        rm = "  ".join(f"{r.sweep[k].rmse:.4f}" for k in res.ranks)
        p(f"  {r.label:<{width}}  accuracy {r.accuracy * 100:5.1f} %{pa:<15}  RMSE {rm}")
    o = res.ordering()
    if res.expected:
        p(
            "  RMSE order as in the paper at every rank: "
            + (
                "yes"
                if o["holds"]
                else "no (" + "; ".join(f"rank {k}: {a} not below {b}" for k, a, b in o["violations"]) + ")"
            )
        )
    report = Path(res.files["report"]).resolve()
    p(f"Report:  {report}")
    p(f"Results: {out.resolve()} (pl.load each .peeklens file)")
    if args.open:
        webbrowser.open(report.as_uri())
    return 0


class _UsageError(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``peeklens`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a one-line message on bad options
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "study" and args.study is None:
        print(
            "peeklens study: error: name a study: fraction, subset, ordered or alexnet (see peeklens study --help)",
            file=sys.stderr,
        )
        return 2
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    name = "demo" if args.command == "demo" else getattr(args, "study", None)
    try:
        if args.command == "explain":
            from .interpret.command import run as run_explain

            return run_explain(args, sys.stdout)
        return _run(args, name, sys.stdout)
    except _UsageError as exc:
        print(f"peeklens: error: {exc}", file=sys.stderr)
        return 2
    except PeeklensError as exc:
        print(f"peeklens: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("peeklens: interrupted", file=sys.stderr)
        return 130
    except (OSError, MemoryError) as exc:
        print(f"peeklens: error: {exc}", file=sys.stderr)
        return 1
    finally:
        import torch.distributed

        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
