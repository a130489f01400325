"""Checks of user input, with errors that restate the input and say what was expected.

Every check returns the value converted to its plain Python type, or raises
:class:`~peeklens.errors.InputError` with a message of the form
``"<name> must be <what>, got <value> (<type>)"``; a choice from a set names the
closest valid one.  Use these instead of hand-written ``isinstance`` checks, so that
every function of the package refuses bad input the same way:

>>> from peeklens._validation import positive_int, one_of
>>> positive_int(5, "rank")
5
>>> positive_int(-3, "rank")
Traceback (most recent call last):
...
peeklens.errors.InputError: rank must be a positive integer, got -3 (int)
>>> one_of("hlas", "solver", ["compressed", "hals", "mu"])
Traceback (most recent call last):
...
peeklens.errors.InputError: unknown solver 'hlas'; did you mean 'hals'? Choose one of ['compressed', 'hals', 'mu']
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable

import numpy as np

from .errors import InputError

__all__ = [
    "describe",
    "positive_int",
    "non_negative_int",
    "optional_positive_int",
    "finite_float",
    "boolean",
    "one_of",
    "closest",
    "check_keys",
    "positive_ints",
    "parse_ranks",
]


def describe(value: object) -> str:
    """The user's value as an error message restates it: its repr (shortened) and its type.

    >>> describe(-3), describe("10"), describe(2.5)
    ('-3 (int)', "'10' (str)", '2.5 (float)')
    """
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _is_int(value: object) -> bool:
    """An integer, but not a bool (``True`` is an ``int`` in Python, never meant as a rank)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(value: object, name: str) -> int:
    """``value`` as an ``int`` >= 1 (NumPy integers accepted; bools, floats and strings refused).

    >>> positive_int(3, "max_iter")
    3
    >>> positive_int(2.5, "max_iter")
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: max_iter must be a positive integer, got 2.5 (float)
    """
    if not _is_int(value) or int(value) < 1:
        raise InputError(f"{name} must be a positive integer, got {describe(value)}")
    return int(value)


def non_negative_int(value: object, name: str) -> int:
    """``value`` as an ``int`` >= 0.

    >>> non_negative_int(0, "power_iter")
    0
    >>> non_negative_int(-1, "power_iter")
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: power_iter must be an integer >= 0, got -1 (int)
    """
    if not _is_int(value) or int(value) < 0:
        raise InputError(f"{name} must be an integer >= 0, got {describe(value)}")
    return int(value)


def optional_positive_int(value: object, name: str) -> int | None:
    """``None``, or ``value`` as an ``int`` >= 1.

    >>> optional_positive_int(None, "max_samples") is None
    True
    >>> optional_positive_int(0, "max_samples")
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: max_samples must be a positive integer or None, got 0 (int)
    """
    if value is None:
        return None
    if not _is_int(value) or int(value) < 1:
        raise InputError(f"{name} must be a positive integer or None, got {describe(value)}")
    return int(value)


def finite_float(
    value: object, name: str, *, minimum: float | None = None, maximum: float | None = None, strict: bool = False
) -> float:
    """``value`` as a finite ``float`` in ``[minimum, maximum]`` (``strict``: ``minimum`` excluded).

    >>> finite_float(1e-4, "tol", minimum=0)
    0.0001
    >>> finite_float(float("nan"), "tol", minimum=0)
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: tol must be a finite number >= 0, got nan (float)
    >>> finite_float(0, "fraction", minimum=0, maximum=1, strict=True)
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: fraction must be a finite number > 0 and <= 1, got 0 (int)
    """
    bounds = []
    if minimum is not None:
        bounds.append(f"{'>' if strict else '>='} {minimum:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    what = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        v = float(value)
        if minimum is not None and (v < minimum or (strict and v == minimum)):
            ok = False
        if maximum is not None and v > maximum:
            ok = False
    if not ok:
        raise InputError(f"{name} must be {what}, got {describe(value)}")
    return float(value)


def boolean(value: object, name: str) -> bool:
    """``value`` if it is a ``bool`` (or NumPy bool); ``0``/``1`` and strings are refused.

    >>> boolean(True, "extrapolate")
    True
    >>> boolean("no", "extrapolate")
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: extrapolate must be True or False, got 'no' (str)
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InputError(f"{name} must be True or False, got {describe(value)}")


def closest(value: object, choices: Iterable[str]) -> str | None:
    """The valid name closest to ``value`` (``difflib``), or ``None`` when none is close.

    >>> closest("nndsvd", ["random", "nndsvda"])
    'nndsvda'
    >>> closest("xyz", ["random", "nndsvda"]) is None
    True
    """
    if not isinstance(value, str):
        return None
    match = difflib.get_close_matches(value, [str(c) for c in choices], n=1, cutoff=0.6)
    return match[0] if match else None


def one_of(value: object, name: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``; else an error naming the closest valid one.

    >>> one_of("mu", "solver", ["compressed", "hals", "mu"])
    'mu'
    >>> one_of("magic", "solver", ["compressed", "hals", "mu"])
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: unknown solver 'magic'; choose one of ['compressed', 'hals', 'mu']
    """
    choices = list(choices)
    if isinstance(value, str) and value in choices:
        return value
    near = closest(value, choices)
    hint = f"did you mean {near!r}? Choose" if near else "choose"
    raise InputError(f"unknown {name} {value!r}; {hint} one of {sorted(choices)}")


def check_keys(given: Iterable[str], allowed: Iterable[str], what: str) -> None:
    """Refuse keys of a dict of options that are not in ``allowed``, listing the valid ones.

    >>> check_keys({"max_inner": 2}, ["max_inner"], "solver 'hals'")
    >>> check_keys({"iner": 2}, ["inner"], "f")
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: f has no option(s) ['iner'] (did you mean 'inner'?); its options are ['inner']
    """
    allowed = list(allowed)
    unknown = sorted(k for k in given if k not in allowed)
    if not unknown:
        return
    near = [f"{k!r} -> {c!r}" if len(unknown) > 1 else repr(c) for k in unknown if (c := closest(k, allowed))]
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    raise InputError(f"{what} has no option(s) {unknown}{hint}; its options are {sorted(allowed)}")


def positive_ints(values: object, name: str) -> list[int]:
    """A non-empty list of distinct positive integers, in the order given (a single int is a list of one).

    >>> positive_ints(range(10, 31, 10), "ranks")
    [10, 20, 30]
    >>> positive_ints([1, 2.5], "ranks")
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: ranks must be positive integers, got 2.5 (float) in [1, 2.5]
    >>> positive_ints([2, 2], "ranks")
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: ranks has duplicates: [2, 2]
    """
    if _is_int(values):
        values = [values]
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InputError(f"{name} must be an iterable of positive integers, got {describe(values)}")
    items = list(values)
    for v in items:
        if not _is_int(v) or int(v) < 1:
            raise InputError(f"{name} must be positive integers, got {describe(v)} in {items!r}")
    out = [int(v) for v in items]
    if not out:
        raise InputError(f"{name} is empty; give at least one, e.g. {name}=range(10, 51, 10)")
    if len(set(out)) != len(out):
        raise InputError(f"{name} has duplicates: {out}")
    return out


def parse_ranks(text: str, option: str = "--ranks") -> list[int]:
    """Ranks from text: ``"10:50:10"`` (start:stop:step, stop included), ``"10:50"``, ``"30,10"`` or ``"7"``.

    The result is sorted and without duplicates.  Used by the command line and by ``%peek``;
    ``option`` names the option in the error (``""``: none, when the caller names it already).

    >>> parse_ranks("10:50:10"), parse_ranks("2:4"), parse_ranks("30, 10,10"), parse_ranks("7")
    ([10, 20, 30, 40, 50], [2, 3, 4], [10, 30], [7])
    >>> parse_ranks("10:50:0")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: invalid ranks '10:50:0' for --ranks: use start:stop:step with a step >= 1, ...
    """
    where = f" for {option}" if option else ""
    usage = (
        "use start:stop:step with a step >= 1, stop included (e.g. 10:50:10), or a comma-separated list (e.g. 10,20,30)"
    )
    if not isinstance(text, str):
        raise InputError(f"invalid ranks {describe(text)}{where}: {usage}")
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) == 2:
                parts.append(1)
            if len(parts) != 3 or parts[2] < 1:
                raise ValueError(text)
            ranks = list(range(parts[0], parts[1] + 1, parts[2]))
        else:
            ranks = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise InputError(f"invalid ranks {text!r}{where}: {usage}") from None
    if not ranks or min(ranks) < 1:
        raise InputError(f"invalid ranks {text!r}{where}: ranks must be positive integers, e.g. 10:50:10")
    return ranks
