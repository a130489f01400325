"""The tensors inside a layer's output (a tensor, or tuples, lists and dicts of them), each with its name."""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["flatten_output", "pretty_name"]


def flatten_output(name: str, value) -> list[tuple[str, torch.Tensor]]:
    """Tensors in a layer output, named ``name``, ``name[0]``, ``name[key]``...

    >>> [n for n, _ in flatten_output("lstm", (torch.zeros(1), (torch.zeros(1), torch.zeros(1))))]
    ['lstm[0]', 'lstm[1][0]', 'lstm[1][1]']
    """
    if isinstance(value, torch.Tensor):
        return [(name, value)]
    out: list[tuple[str, torch.Tensor]] = []
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (tuple, list)):
        items = list(enumerate(value))
    else:
        items = []
    for k, v in items:
        if isinstance(v, torch.Tensor):
            out.append((f"{name}[{k}]", v))
        elif isinstance(v, (tuple, list, Mapping)):
            out.extend(flatten_output(f"{name}[{k}]", v))
    return out


def pretty_name(name: str) -> str:
    """A record name as users read it: without the ``@0`` of a module's first call.

    >>> pretty_name("relu@0"), pretty_name("relu@1")
    ('relu', 'relu@1')
    """
    return name[:-2] if name.endswith("@0") else name
