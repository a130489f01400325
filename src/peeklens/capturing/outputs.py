"""The tensors inside a layer's output (a tensor, or tuples, lists and dicts of them), each with its name."""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["dense", "flatten_output", "pretty_name"]


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
    return name.removesuffix("@0")


def _seq_first(module) -> bool:
    """Whether ``module`` returns (sequence, batch, features) tensors (PyTorch's default for these modules)."""
    from torch import nn

    if isinstance(module, (nn.RNNBase, nn.MultiheadAttention, nn.Transformer)):
        return not getattr(module, "batch_first", False)
    if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        return not module.self_attn.batch_first
    if isinstance(module, (nn.TransformerEncoder, nn.TransformerDecoder)):
        return bool(len(module.layers)) and not module.layers[0].self_attn.batch_first
    return False


def batch_first(module, output):
    """``output`` of ``module`` with the batch as the first axis of every tensor.

    PyTorch's recurrent layers, ``nn.MultiheadAttention`` and the ``nn.Transformer*`` modules return
    (sequence, batch, features) unless built with ``batch_first=True``, and recurrent layers return
    their hidden states as (layers, batch, features) either way; both are transposed here.  Other
    modules' outputs are returned as they are.

    >>> lstm = torch.nn.LSTM(3, 4)
    >>> out, (h, c) = batch_first(lstm, lstm(torch.zeros(5, 2, 3)))
    >>> tuple(out.shape), tuple(h.shape)
    ((2, 5, 4), (2, 1, 4))
    """
    from torch import nn

    def t01(t):
        return t.transpose(0, 1) if isinstance(t, torch.Tensor) and t.ndim == 3 else t

    if isinstance(module, nn.RNNBase) and isinstance(output, tuple) and len(output) == 2:
        out, hidden = output
        if isinstance(out, torch.Tensor) and _seq_first(module):
            out = t01(out)
        hidden = tuple(t01(h) for h in hidden) if isinstance(hidden, tuple) else t01(hidden)
        return (out, hidden)
    if not _seq_first(module):
        return output
    if isinstance(module, nn.MultiheadAttention) and isinstance(output, tuple):
        return (t01(output[0]),) + tuple(output[1:])  # the weights are (batch, L, S) already
    return t01(output)


def element_matches(record: str, base: str, selector: str) -> bool:
    """Whether a flattened output name (``lstm[1][0]``) falls under a selection (``lstm`` + ``[1]``).

    >>> element_matches("lstm[1][0]", "lstm", "[1]"), element_matches("lstm[10]", "lstm", "[1]")
    (True, False)
    """
    want = base + selector
    return record == want or record.startswith(want + "[")


def dense(t: torch.Tensor, positions: int | None = None) -> torch.Tensor:
    """A nested tensor (``nn.TransformerEncoder``'s eval fast path) as a zero-padded dense one.

    ``positions`` pads the sequence axis to that length (the attention mask's); dense tensors pass.

    >>> t = torch.ones(2, 4, 3)
    >>> dense(t, 4) is t
    True
    """
    if not getattr(t, "is_nested", False):
        return t
    parts = t.unbind()
    if positions is None or not parts or parts[0].ndim < 1:
        return torch.nested.to_padded_tensor(t, 0.0)
    size = (len(parts), positions, *parts[0].shape[1:])
    return torch.nested.to_padded_tensor(t, 0.0, output_size=size)
