"""IPython integration: ``%load_ext peeklens`` registers ``%peek`` and rich display of results.

``%peek model data [--layers a b ...] [--ranks 10:50:10] [...]`` captures the activations of
``model`` over ``data`` (both names or expressions in the notebook's namespace), sweeps the
ranks with a progress bar, computes the spectra and shows the :class:`~peeklens.widgets.Dashboard`
(it is also the magic's value, so ``dash = %peek model data`` keeps it).

After loading the extension, :class:`~peeklens.Activations`, :class:`~peeklens.Factorization`,
:class:`~peeklens.Sweep` and :class:`~peeklens.Spectrum` display as widgets in a notebook, with a
compact HTML summary as the fallback for front ends without widgets (e.g. a rendered notebook).
"""

from __future__ import annotations

import argparse
import shlex

from .errors import InputError

__all__ = ["parse_ranks", "parse_peek_args", "peek", "load_ipython_extension", "unload_ipython_extension"]


def parse_ranks(text: str) -> list[int]:
    """Ranks from ``"10:50:10"`` (start:stop:step, stop included), ``"10:50"`` or ``"10,20,30"``.

    Examples
    --------
    >>> parse_ranks("10:50:10")
    [10, 20, 30, 40, 50]
    >>> parse_ranks("3,5")
    [3, 5]
    """
    text = text.strip()
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) == 2:
                parts.append(1)
            if len(parts) != 3 or parts[2] <= 0:
                raise ValueError
            start, stop, step = parts
            ranks = list(range(start, stop + 1, step))
        else:
            ranks = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise InputError(
            f"--ranks {text!r} is not understood; write start:stop:step (stop included, e.g. 10:50:10) "
            "or a comma-separated list (e.g. 10,20,30)"
        ) from None
    if not ranks or min(ranks) < 1:
        raise InputError(f"--ranks {text!r} gives no positive ranks; e.g. --ranks 10:50:10")
    return ranks


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would exit the kernel's process
        raise InputError(f"%peek: {message}. Usage: {self.format_usage().strip()}")

    def exit(self, status=0, message=None):
        if message:
            raise InputError(message)
        raise InputError(self.format_help())


def _parser() -> _Parser:
    p = _Parser(prog="%peek", description="Capture, sweep ranks and show the peeklens dashboard.", add_help=True)
    p.add_argument("model", help="a torch.nn.Module in the notebook's namespace (name or expression)")
    p.add_argument("data", help="a DataLoader, Dataset, tensor or iterable of batches (name or expression)")
    p.add_argument("--layers", nargs="+", default=None, help="layers to capture (default: peeklens's default)")
    p.add_argument("--ranks", default="10:50:10", help="start:stop:step, stop included, or a list 10,20,30")
    p.add_argument("--max-samples", type=int, default=None, help="use at most this many samples")
    p.add_argument("--solver", default=None, help="factorization solver (default: peeklens's default)")
    p.add_argument("--max-iter", type=int, default=None, help="iterations per rank")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ...")
    p.add_argument("--k", type=int, default=50, help="singular values per block for the spectra (0: none)")
    p.add_argument("--nonneg", default="error", help="negative activations: error, shift, split or abs")
    p.add_argument("--top-k", type=int, default=8, help="top inputs shown per factor")
    return p


def parse_peek_args(line: str) -> argparse.Namespace:
    """Parse the arguments of ``%peek`` (raises :class:`~peeklens.InputError` on bad input).

    >>> a = parse_peek_args("net loader --layers relu relu_1 --ranks 2:6:2")
    >>> a.model, a.data, a.layers, a.ranks
    ('net', 'loader', ['relu', 'relu_1'], [2, 4, 6])
    """
    args = _parser().parse_args(shlex.split(line))
    args.ranks = parse_ranks(args.ranks)
    return args


def _evaluate(shell, expr: str, what: str):
    try:
        return shell.ev(expr)
    except Exception as e:  # NameError, SyntaxError...
        raise InputError(f"%peek: could not evaluate {what} {expr!r} in the notebook: {type(e).__name__}: {e}") from None


def peek(shell, line: str):
    """The body of ``%peek``: returns the Dashboard."""
    import peeklens as pl

    from .widgets import Dashboard

    args = parse_peek_args(line)
    model = _evaluate(shell, args.model, "the model")
    data = _evaluate(shell, args.data, "the data")
    acts = pl.capture(model, data, layers=args.layers, max_samples=args.max_samples, device=args.device,
                      nonneg=args.nonneg, progress=True)
    kw = {}
    if args.solver:
        kw["solver"] = args.solver
    if args.max_iter:
        kw["max_iter"] = args.max_iter
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

    _peek_magic.__doc__ = _parser().format_help()
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
