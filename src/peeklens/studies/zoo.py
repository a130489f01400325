"""The calibration zoo of the quality score: many networks trained under many regimes.

Each entry is ``(group, Regime)``.  ``group`` names the family of regimes a network belongs to;
the calibration study (``benchmarks/quality_zoo.py``) chooses the score on the
:data:`SELECTION_GROUPS` and reports it on the other, held-out groups.

>>> zoo = zoo_regimes()
>>> len([r for g, r in zoo if r.network == "paper"]) >= 30
True
>>> sorted({g for g, _ in zoo}) == sorted(SELECTION_GROUPS + HELD_OUT_GROUPS)
True
"""

from __future__ import annotations

from .training import Regime

__all__ = ["zoo_regimes", "SELECTION_GROUPS", "HELD_OUT_GROUPS"]

#: Regime families the score is chosen on (paper network, MNIST).
SELECTION_GROUPS: list[str] = ["fraction", "epochs"]
#: Regime families the chosen score is reported on (never looked at while choosing).
HELD_OUT_GROUPS: list[str] = ["label noise", "subsets", "ordered", "learning rate", "cifar10 cnn"]

CNN = dict(network="smallcnn", dataset="cifar10", lr=0.05, momentum=0.9)


def zoo_regimes(seeds: tuple[int, ...] = (0, 1, 2)) -> list[tuple[str, Regime]]:
    """Every network of the calibration zoo, as ``(group, Regime)`` pairs.

    Parameters
    ----------
    seeds : tuple of int
        The seeds of the groups trained with several seeds (at least the first two are used by
        every group that repeats seeds).
    """
    s2 = seeds[:2]
    out: list[tuple[str, Regime]] = []
    for s in seeds:
        for f in (0.01, 0.03, 0.1, 0.25, 0.5, 1.0):
            out.append(("fraction", Regime(fraction=f, seed=s)))
    for s in s2:
        for e in (0.25, 0.5):
            out.append(("epochs", Regime(epochs=e, seed=s)))
    out += [("epochs", Regime(epochs=2)), ("epochs", Regime(epochs=5))]
    for s in s2:
        for n in (0.2, 0.4, 0.6, 0.8):
            out.append(("label noise", Regime(label_noise=n, seed=s)))
    for s in s2:
        for c in ((0,), (0, 1), (0, 1, 2, 3, 4), (5, 6, 7, 8, 9), (0, 1, 2, 3, 4, 5, 6, 7)):
            out.append(("subsets", Regime(classes=c, seed=s)))
    for first in (9, 0, 3):
        out.append(("ordered", Regime(ordered=True, first_class=first)))
    for s in s2:
        for lr in (0.001, 0.003, 0.03, 0.1):
            out.append(("learning rate", Regime(lr=lr, seed=s)))
    for s in seeds:
        for e in (1, 2, 4, 8):
            out.append(("cifar10 cnn", Regime(epochs=e, seed=s, **CNN)))
    for f in (0.1, 0.25, 0.5):
        out.append(("cifar10 cnn", Regime(fraction=f, epochs=4, **CNN)))
    for n in (0.3, 0.6):
        out.append(("cifar10 cnn", Regime(label_noise=n, epochs=4, **CNN)))
    return out
