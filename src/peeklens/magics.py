"""IPython integration: ``%load_ext peeklens`` registers ``%peek`` and rich display of results.

``%peek model data [--layers a b ...] [--ranks 10:50:10] [--denormalize mnist] [--nonneg shift] [...]``
captures the activations of ``model`` over ``data`` (both names or expressions in the notebook's
namespace), sweeps the ranks with a progress bar, computes the spectra and shows the
:class:`~peeklens.widgets.Dashboard` (it is also the magic's value, so ``dash = %peek model data``
keeps it).  Its arguments are parsed with IPython's ``magic_arguments`` (``%peek?`` lists them);
a peeklens error (e.g. negative inputs from a normalized loader) shows as one line with the fix.

After loading the extension, :class:`~peeklens.Activations`, :class:`~peeklens.Factorization`,
:class:`~peeklens.Sweep` and :class:`~peeklens.Spectrum` display as widgets in a notebook, with a
compact HTML summary as the fallback for front ends without widgets (e.g. a rendered notebook).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ._validation import finite_float, one_of, optional_positive_int, positive_int
from ._validation import parse_ranks as _parse_ranks
from .errors import InputError, NonNegativityError, PeeklensError

__all__ = [
    "parse_ranks",
    "parse_peek_args",
    "peek",
    "denormalizer",
    "DENORMALIZE",
    "NONNEG",
    "load_ipython_extension",
    "unload_ipython_extension",
]

#: Per-channel (mean, std) of the usual input normalizations, undone by ``--denormalize NAME``.
DENORMALIZE: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

#: ``--nonneg`` policies of :func:`peeklens.capture`.
NONNEG = ("error", "shift", "split", "abs")


def parse_ranks(text: str) -> list[int]:
    """Ranks from ``"10:50:10"`` (start:stop:step, stop included), ``"10:50"`` or ``"10,20,30"``.

    The one implementation of the command line's and ``%peek``'s ``--ranks`` (sorted, no duplicates).

    Examples
    --------
    >>> parse_ranks("10:50:10")
    [10, 20, 30, 40, 50]
    >>> parse_ranks("5,3")
    [3, 5]
    """
    return _parse_ranks(text, "--ranks")


def denormalizer(name: str) -> Callable:
    """The inverse of a standard normalization (``x * std + mean`` per channel, clamped to [0, 1]).

    For ``capture(..., input_transform=...)``: the inputs are recorded in [0, 1] again, as the
    non-negative factorization needs them.  ``name`` is one of :data:`DENORMALIZE`.

    >>> import torch
    >>> undo = denormalizer("mnist")
    >>> round(float(undo(torch.zeros(1, 1, 2, 2))[0, 0, 0, 0]), 4)
    0.1307
    """
    name = one_of(name, "normalization", DENORMALIZE)
    mean, std = DENORMALIZE[name]

    def undo(x):
        import torch

        if x.dim() < 2 or (len(mean) > 1 and x.shape[1] != len(mean)):
            raise InputError(
                f"--denormalize {name} expects inputs of shape (batch, {len(mean)}, ...), "
                f"got {tuple(x.shape)}; use --input-transform with your own function instead"
            )
        shape = (1, -1) + (1,) * (x.dim() - 2)
        m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape)
        s = torch.tensor(std, dtype=x.dtype, device=x.device).view(shape)
        return (x * s + m).clamp_(0, 1)

    undo.__name__ = f"denormalize_{name}"
    return undo


@magic_arguments()
@argument("model", help="a torch.nn.Module in the notebook's namespace (name or expression)")
@argument("data", help="a DataLoader, Dataset, tensor or iterable of batches (name or expression)")
@argument("--layers", nargs="+", default=None, help="layers to capture (default: peeklens's default)")
@argument("--ranks", default="10:50:10", help="start:stop:step, stop included, or a list 10,20,30 (default 10:50:10)")
@argument("--max-samples", type=int, default=None, help="use at most this many samples")
@argument("--batch-size", type=int, default=256, help="batch size when data is a tensor or Dataset (default 256)")
@argument(
    "--denormalize",
    default=None,
    metavar="{mnist,cifar10,imagenet}",
    help="undo this standard input normalization before recording the inputs (keeps them in [0, 1])",
)
@argument(
    "--input-transform",
    default=None,
    metavar="NAME",
    help="a function in the notebook's namespace applied to the inputs before they are recorded, "
    "e.g. one that undoes your normalization",
)
@argument(
    "--nonneg",
    default="error",
    metavar="{error,shift,split,abs}",
    help="what to do with negative activations (default error): shift by the block minimum, split into "
    "positive and negative parts, or take the absolute value",
)
@argument("--solver", default=None, help="factorization solver (default: peeklens's default; 'mu' is the paper's)")
@argument("--max-iter", type=int, default=None, help="iterations per rank")
@argument("--tol", type=float, default=None, help="relative-change tolerance")
@argument("--device", default=None, help="cpu, cuda, cuda:1 ...")
@argument("--k", type=int, default=50, help="singular values per block for the spectra (0: none)")
@argument("--top-k", type=int, default=8, help="top inputs shown per factor")
def _peek_signature(line: str):
    """Capture the activations of MODEL over DATA, sweep the ranks and show the peeklens dashboard.

    Example: ``%peek net loader --layers relu relu_1 --ranks 10:50:10 --denormalize mnist``.
    Errors end in one line naming the problem and the fix.
    """


def parse_peek_args(line: str) -> argparse.Namespace:
    """Parse and check the arguments of ``%peek`` (raises :class:`~peeklens.InputError` on bad input).

    >>> a = parse_peek_args("net loader --layers relu relu_1 --ranks 2:6:2 --denormalize mnist --nonneg shift")
    >>> a.model, a.data, a.layers, a.ranks, a.denormalize, a.nonneg
    ('net', 'loader', ['relu', 'relu_1'], [2, 4, 6], 'mnist', 'shift')
    """
    try:
        args = parse_argstring(_peek_signature, line)
    except UsageError as e:
        raise InputError(f"%peek: {e}. Usage: {_peek_signature.parser.format_usage().strip()}") from None
    args.ranks = parse_ranks(args.ranks)
    args.nonneg = one_of(args.nonneg, "--nonneg policy", NONNEG)
    if args.denormalize is not None:
        args.denormalize = one_of(args.denormalize, "--denormalize normalization", DENORMALIZE)
        if args.input_transform is not None:
            raise InputError("%peek: give --denormalize or --input-transform, not both")
    args.max_samples = optional_positive_int(args.max_samples, "--max-samples")
    args.batch_size = positive_int(args.batch_size, "--batch-size")
    if args.max_iter is not None:
        args.max_iter = positive_int(args.max_iter, "--max-iter")
    if args.tol is not None:
        args.tol = finite_float(args.tol, "--tol", minimum=0)
    if args.k < 0:
        raise InputError(f"--k must be an integer >= 0 (0: no spectra), got {args.k}")
    args.top_k = positive_int(args.top_k, "--top-k")
    return args


def _evaluate(shell, expr: str, what: str):
    try:
        return shell.ev(expr)
    except Exception as e:  # NameError, SyntaxError...
        raise InputError(
            f"%peek: could not evaluate {what} {expr!r} in the notebook: {type(e).__name__}: {e}"
        ) from None


def _input_transform(shell, args) -> Callable | None:
    if args.denormalize is not None:
        return denormalizer(args.denormalize)
    if args.input_transform is None:
        return None
    fn = _evaluate(shell, args.input_transform, "the input transform")
    if not callable(fn):
        raise InputError(f"%peek: --input-transform {args.input_transform!r} is a {type(fn).__name__}, not a function")
    return fn


def _one_line(error: PeeklensError) -> PeeklensError:
    """Make IPython show ``error`` as one line (``NonNegativityError: ... fix``) instead of a traceback."""
    line = f"{type(error).__name__}: {' '.join(str(error).split())}"
    if isinstance(error, NonNegativityError):  # the fix in the magic's own options
        line += (
            " -- with %peek: --denormalize mnist|cifar10|imagenet or --input-transform NAME for normalized "
            "inputs, --nonneg shift|split|abs for signed layers"
        )
    error._render_traceback_ = lambda: [line]  # type: ignore[attr-defined]  # read by IPython's showtraceback
    return error


def peek(shell, line: str):
    """The body of ``%peek``: returns the Dashboard; a peeklens error shows as one line."""
    try:
        return _peek(shell, line)
    except PeeklensError as e:
        raise _one_line(e) from None


def _peek(shell, line: str):
    import peeklens as pl

    from .widgets import Dashboard

    args = parse_peek_args(line)
    model = _evaluate(shell, args.model, "the model")
    data = _evaluate(shell, args.data, "the data")
    transform = _input_transform(shell, args)
    acts = pl.capture(
        model,
        data,
        layers=args.layers,
        max_samples=args.max_samples,
        device=args.device,
        nonneg=args.nonneg,
        input_transform=transform,
        batch_size=args.batch_size,
        progress=True,
    )
    kw = {}
    if args.solver:
        kw["solver"] = args.solver
    if args.max_iter:
        kw["max_iter"] = args.max_iter
    if args.tol is not None:
        kw["tol"] = args.tol
    if args.device:
        kw["device"] = args.device
    sw = pl.sweep(acts, ranks=args.ranks, progress=True, **kw)
    # spectra of the layers only: the input pixels' spectrum would dwarf them
    sp = pl.spectrum(acts, k=args.k, blocks=acts.layer_names or None, device=args.device) if args.k > 0 else None
    spectra = {type(model).__name__: sp} if sp is not None else None
    return Dashboard(sw, spectrum=spectra, top_k=args.top_k)


def _widget_bundle(obj, include=None, exclude=None):
    """Mime bundle: the widget view plus the HTML summary (for front ends without widgets)."""
    from .widgets import summary_html, widget_for

    try:
        widget = widget_for(obj)
        bundle = widget._repr_mimebundle_(include=include, exclude=exclude) or {}
    except Exception:  # widgets unavailable or the object cannot be shown as one: summary only
        bundle = {}
    if isinstance(bundle, tuple):
        bundle = bundle[0]
    bundle = dict(bundle)
    bundle["text/html"] = summary_html(obj)
    bundle.setdefault("text/plain", repr(obj))
    return bundle


def _result_types():
    from .activations import Activations
    from .results import Factorization, Sweep
    from .spectra import Spectrum

    return (Activations, Factorization, Sweep, Spectrum)


def load_ipython_extension(ipython) -> None:
    """Register ``%peek`` and the rich display of peeklens results."""
    from .widgets import summary_html

    def _peek_magic(line):
        return peek(ipython, line)

    _peek_magic.__doc__ = _peek_signature.__doc__ + "\n" + _peek_signature.parser.format_help()
    ipython.register_magic_function(_peek_magic, magic_kind="line", magic_name="peek")

    formatters = ipython.display_formatter.formatters
    in_kernel = getattr(ipython, "kernel", None) is not None
    for typ in _result_types():
        formatters["text/html"].for_type(typ, summary_html)
        if in_kernel:  # a widget needs a front end with a widget manager (a notebook), not a terminal
            ipython.display_formatter.mimebundle_formatter.for_type(typ, _widget_bundle)


def unload_ipython_extension(ipython) -> None:
    """Remove the rich display (``%peek`` stays until the kernel restarts)."""
    formatters = ipython.display_formatter.formatters
    for typ in _result_types():
        formatters["text/html"].pop(typ, None)
        ipython.display_formatter.mimebundle_formatter.pop(typ, None)
