"""What one sample (one column of every block) is, for layers with positions: tokens, patches, pixels.

A layer output shaped (batch, positions, features) -- a transformer's tokens -- or (batch, C, H, W) -- a
feature map, whose H x W positions carry C features -- can give samples four ways:

* ``"inputs"`` (default, the paper's): one sample per input, the whole output flattened; every batch must
  have the same number of positions;
* ``"mean"``: one sample per input, the output averaged over its positions (padding excluded);
* ``"first"``: one sample per input, the first position only (a CLS token); (batch, positions, features) only;
* ``"tokens"``: one sample per position of every input (padding excluded); the labels and
  :attr:`Activations.sample_info` (source sample, position, token id) follow.

The input blocks follow: with ``"inputs"``, ``"mean"`` and ``"first"`` a sample is still one input, so
its input block is the whole input; with ``"tokens"`` the input must itself be (batch, tokens, features)
(one row per token), else ``include_input=False``.

Outputs with other numbers of axes ((batch, features), ...) are kept whole with ``"inputs"``, ``"mean"``
and ``"first"``; ``"tokens"`` refuses them.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import CaptureError, InputError

__all__ = ["SAMPLE_CHOICES", "Sampler"]

SAMPLE_CHOICES = ("inputs", "mean", "first", "tokens")


class Sampler:
    """Turns each record of a batch into its sample rows.

    Examples
    --------
    >>> s = Sampler("tokens")
    >>> s.begin(2, torch.tensor([[1, 1, 0], [1, 0, 0]]))
    >>> s.rows_of("h", torch.arange(12.).reshape(2, 3, 2), "layer").tolist()
    [[0.0, 1.0], [2.0, 3.0], [6.0, 7.0]]
    >>> s.index()
    (array([0, 0, 1]), array([0, 1, 0]))
    """

    def __init__(self, how: str):
        if how not in SAMPLE_CHOICES:
            raise InputError(f"samples must be one of {SAMPLE_CHOICES}, got {how!r}")
        self.how = how
        self.n = 0
        self.mask: torch.Tensor | None = None
        self.positions: int | None = None  # positions of this batch (tokens mode)
        #: (H, W) of the feature maps whose positions became tokens (position = h * W + w), if any
        self.grid: tuple[int, int] | None = None
        self._first: str | None = None  # the record that set them

    @property
    def per_input(self) -> bool:
        """True when each input gives exactly one sample."""
        return self.how != "tokens"

    def begin(self, n: int, mask: torch.Tensor | None) -> None:
        """Start a batch of ``n`` inputs with an optional padding mask (batch, positions): nonzero = real."""
        self.n = n
        self.positions, self._first = None, None
        self.mask = None
        if mask is None or self.how in ("inputs", "first"):
            return
        if mask.ndim != 2 or mask.shape[0] != n:
            raise InputError(
                f"the attention mask has shape {tuple(mask.shape)}, expected (batch, positions) = ({n}, positions); "
                "give a mask with one row per sample and one column per token (mask= chooses it, mask=False "
                "ignores it)"
            )
        self.mask = mask.detach().to("cpu") != 0
        self.positions, self._first = int(mask.shape[1]), "the attention mask"

    def rows_of(self, name: str, t: torch.Tensor, kind: str) -> torch.Tensor:
        """The sample rows of one record (first axis: the batch).

        Input records stay whole unless samples are tokens (one input is one sample otherwise).
        """
        if kind == "input" and self.how != "tokens":
            return t
        if self.how == "inputs" or t.ndim < 3:
            if self.how == "tokens":
                raise CaptureError(
                    f"{kind} {name!r} has one vector per sample (shape {tuple(t.shape)}), not one per token; with "
                    "samples='tokens' capture layers shaped (batch, tokens, features) or (batch, C, H, W)"
                    + (", and pass include_input=False" if kind == "input" else "")
                )
            return t
        if t.ndim == 4:
            if kind == "input" and self.how == "tokens":
                raise InputError(
                    f"with samples='tokens' the input block needs one row per token, (batch, tokens, features); "
                    f"the input has shape {tuple(t.shape)}: pass include_input=False (acts.sample_info keeps each "
                    "token's source sample and position, to find its patch)"
                )
            if self.how == "first":
                raise CaptureError(
                    f"samples='first' keeps the first token of (batch, tokens, features) outputs; {kind} {name!r} "
                    f"is (batch, C, H, W) {tuple(t.shape)}: use samples='mean' or 'tokens', or capture token layers"
                )
            if self.how == "tokens":
                self.grid = (int(t.shape[2]), int(t.shape[3]))
            t = t.flatten(2).transpose(1, 2)  # (batch, H*W positions, C)
        if t.ndim != 3:
            return t
        if self.how == "first":
            return t[:, 0]
        self._check_positions(name, t, kind)
        if self.how == "mean":
            if self.mask is None:
                return t.mean(1)
            m = self.mask.to(t.device, t.dtype).unsqueeze(-1)
            return (t * m).sum(1) / m.sum(1).clamp(min=1)
        if self.mask is None:
            return t.reshape(-1, t.shape[-1])
        return t[self.mask.to(t.device)]

    def _check_positions(self, name: str, t: torch.Tensor, kind: str) -> None:
        p = int(t.shape[1])
        if self.positions is None:
            self.positions, self._first = p, f"{kind} {name!r}"
        elif p != self.positions and (self.how == "tokens" or self.mask is not None):
            raise CaptureError(
                f"{kind} {name!r} has {p} positions but {self._first} has {self.positions}; with samples="
                f"{self.how!r} every captured layer needs one row per token of the input: capture layers of the "
                "same sequence length (or mask=False when the mask does not describe this layer)"
            )

    def rows(self) -> int:
        """Rows (samples) this batch gives; known once a record with positions was seen (tokens mode)."""
        if self.per_input:
            return self.n
        if self.mask is not None:
            return int(self.mask.sum())
        if self.positions is None:
            raise CaptureError(
                "samples='tokens' found no layer shaped (batch, tokens, features) or (batch, C, H, W); capture such "
                "layers or use samples='inputs'"
            )
        return self.n * self.positions

    def index(self) -> tuple[np.ndarray, np.ndarray]:
        """(sample within the batch, position) of every row of this batch (tokens mode)."""
        if self.mask is not None:
            i, j = np.nonzero(self.mask.numpy())
            return i.astype(np.int64), j.astype(np.int64)
        i, j = np.meshgrid(np.arange(self.n), np.arange(self.positions or 1), indexing="ij")
        return i.reshape(-1), j.reshape(-1)

    def labels(self, y: np.ndarray | None) -> np.ndarray | None:
        """Per-row labels from per-input (n,) or per-position (n, positions) integer labels."""
        if y is None:
            return None
        if self.per_input:
            return y if y.ndim == 1 else None
        i, j = self.index()
        if y.ndim == 1:
            return y[i]
        if y.shape[1] != (self.positions or 0):
            return None
        return y[i, j]
