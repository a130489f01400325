"""The solvers' names and their documented options, and the check of ``solver_options``.

Each solver takes the common arguments (``max_iter``, ``tol``, ``eps``, ``seed``) from
:func:`~peeklens.factorize` itself; ``solver_options`` carries only what is particular to one
solver, listed here with a check and a line of documentation each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from .._validation import boolean, check_keys, finite_float, non_negative_int, one_of, positive_int

__all__ = ["SOLVERS", "SOLVER_OPTIONS", "Option", "check_solver", "check_solver_options"]

#: Solver names. ``"mu"`` is the paper's algorithm; ``"hals"`` hierarchical ALS;
#: ``"compressed"`` HALS on a randomized sketch of the data, finished on the real data.
SOLVERS: tuple[str, ...] = ("compressed", "hals", "mu")


class Option(NamedTuple):
    """One documented solver option: its check (value, name) -> value, and what it does."""

    check: Callable[[object, str], object]
    doc: str


def _optional(check: Callable[[object, str], object]) -> Callable[[object, str], object]:
    def checked(value: object, name: str) -> object:
        return None if value is None else check(value, name)

    return checked


def _tolerance(value: object, name: str) -> float:
    return finite_float(value, name, minimum=0)


#: The options each solver takes in ``solver_options``.
SOLVER_OPTIONS: dict[str, dict[str, Option]] = {
    "mu": {},
    "hals": {
        "max_inner": Option(_optional(positive_int), "row sweeps per pass over the data (default: from the sizes)"),
    },
    "compressed": {
        "oversample": Option(non_negative_int, "extra columns of the sketch beyond the rank (20)"),
        "power_iter": Option(non_negative_int, "power iterations of the sketch (2)"),
        "refine": Option(non_negative_int, "most refinement rounds, each two passes over the data (one if fused) (5)"),
        "start_iter": Option(positive_int, "compressed iterations of the start (20)"),
        "round_iter": Option(
            _optional(positive_int), "compressed iterations of each refinement round (20; 60 with a signed block)"
        ),
        "start_tol": Option(_optional(_tolerance), "tolerance of the start (10 * tol)"),
        "round_tol": Option(_optional(_tolerance), "tolerance of each round (tol / 10)"),
        "exact_iter": Option(non_negative_int, "plain HALS iterations on the real data at the end (0)"),
        "extrapolate": Option(boolean, "extrapolate the compressed iterations (True)"),
        "also_random": Option(boolean, "also start from the paper's random start, keep the better"),
        "stop": Option(
            _optional(_tolerance), "stop the rounds once further ones would lower the objective by less (10 * tol)"
        ),
        "fused": Option(
            boolean, "one pass per refinement round instead of two, widening one round late (on for blocks on disk)"
        ),
    },
}


def check_solver(solver: object) -> str:
    """``solver`` if it names a solver, else an error listing them (and the closest)."""
    return one_of(solver, "solver", SOLVERS)


def check_solver_options(solver: str, options: Mapping[str, object] | None) -> dict[str, object]:
    """``options`` checked against ``solver``'s documented options (converted to plain types).

    >>> check_solver_options("hals", {"max_inner": 2})
    {'max_inner': 2}
    >>> check_solver_options("hals", {"oversample": 3})
    Traceback (most recent call last):
    ...
    peeklens.errors.InputError: solver 'hals' has no option(s) ['oversample']; its options are ['max_inner']
    """
    options = dict(options or {})
    spec = SOLVER_OPTIONS[solver]
    check_keys(options, spec, f"solver {solver!r}")
    return {k: spec[k].check(v, f"solver_options[{k!r}]") for k, v in options.items()}
