"""One colour per block, network or class, shared by every bqplot figure of :mod:`peeklens.plots`.

The palette is Tableau 10, the one the TypeScript views of the dashboard use (``js/views/shared.ts``),
so a block drawn by ``sweep.plot(kind="errors")`` has the colour it has in ``spectrum.plot()`` and
in the dashboard when both list their blocks in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["PALETTE", "colors_for"]

#: Tableau 10, in order; colour ``i`` goes to the ``i``-th name.
PALETTE: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


def colors_for(
    names: Iterable[str], colors: Mapping[str, str] | None = None, taken: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A colour per name: ``colors`` first, then the colour a name already has in ``taken``,
    then the palette by position, skipping colours already in use.

    Parameters
    ----------
    names : iterable of str
        Block, network or class names, in their display order.
    colors : dict of str to str, optional
        Colours you choose for some names (any CSS colour).
    taken : dict of str to str, optional
        Names already drawn (e.g. in a figure being added to) and their colours.

    Examples
    --------
    >>> colors_for(["input:0", "relu"])
    {'input:0': '#4e79a7', 'relu': '#f28e2b'}
    >>> colors_for(["relu", "relu_1"], taken={"relu": "#f28e2b", "input:0": "#4e79a7"})
    {'relu': '#f28e2b', 'relu_1': '#e15759'}
    >>> colors_for(["a", "b"], colors={"a": "black"})
    {'a': 'black', 'b': '#4e79a7'}
    """
    colors = dict(colors or {})
    taken = dict(taken or {})
    out: dict[str, str] = {}
    used = set(taken.values()) | set(colors.values())
    free = [c for c in PALETTE if c not in used]
    i = 0
    for n in names:
        if n in colors:
            out[n] = colors[n]
        elif n in taken:
            out[n] = taken[n]
        else:
            if i < len(free):
                out[n] = free[i]
            else:  # more names than colours: cycle the palette
                out[n] = PALETTE[(len(taken) + i) % len(PALETTE)]
            i += 1
    return out
