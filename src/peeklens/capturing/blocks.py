"""Recorded buffers turned into named :class:`~peeklens.Block` objects, with the non-negativity policy applied."""

from __future__ import annotations

import numpy as np

from ..activations import Block
from .recorder import Recorder

__all__ = ["NONNEG_POLICIES", "finish_blocks"]

NONNEG_POLICIES = ("error", "shift", "split", "abs", "semi")


def finish_blocks(rec: Recorder, nonneg: str) -> dict[str, Block]:
    """One Block per recorded slot (two for ``nonneg="split"``), named as users read them.

    Names drop the ``@0`` of modules called once and keep ``@k`` for modules called several times.
    With ``nonneg="semi"`` a block with negative values keeps them and is marked ``signed``.
    """
    bases: dict[str, int] = {}
    for name in rec.slots:
        if "@" in name:
            base = name.rsplit("@", 1)[0]
            bases[base] = bases.get(base, 0) + 1
    blocks: dict[str, Block] = {}
    for name, slot in rec.slots.items():
        nice = name
        if "@" in name:
            base = name.rsplit("@", 1)[0]
            nice = base if bases[base] == 1 else name
        data = slot.buf.T  # (features x samples) view of the samples-major buffer
        shape = slot.shape if slot.shape else (1,)
        kind = slot.kind
        if slot.lo >= 0 or nonneg == "error":
            blocks[nice] = Block(nice, data, shape, kind)
        elif nonneg == "semi":  # signed values kept; the factorization leaves this block's loadings free
            blocks[nice] = Block(nice, data, shape, kind, signed=True)
        elif nonneg == "shift":
            slot.buf -= np.float32(slot.lo)
            blocks[nice] = Block(nice, data, shape, kind, transform=f"shift({slot.lo:.6g})")
        elif nonneg == "abs":
            np.abs(slot.buf, out=slot.buf)
            blocks[nice] = Block(nice, data, shape, kind, transform="abs")
        elif nonneg == "split":
            neg = np.maximum(-slot.buf, 0)
            np.maximum(slot.buf, 0, out=slot.buf)
            blocks[nice + "+"] = Block(nice + "+", data, shape, kind, transform="split+")
            blocks[nice + "-"] = Block(nice + "-", neg.T, shape, kind, transform="split-")
    return blocks
