"""Containers for captured data: :class:`Block` and :class:`Activations`.

A block is one matrix of the paper's coupled factorization: an input channel
``D_i`` (pixels x samples) or a layer's activations ``A_j`` (neurons x
samples).  Matrices are always **features x samples**, as in the paper.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .errors import InputError

__all__ = ["Activations", "Block"]

BlockKind = Literal["input", "layer"]


@dataclass(eq=False)
class Block:
    """One named matrix of shape (features, samples), non-negative unless ``signed``.

    Parameters
    ----------
    name : str
        Unique name: ``"input:0"`` for the first input channel, the module or
        FX node name for a layer (``"conv1"``, ``"relu_1"``), with ``"@k"``
        appended for the k-th call of a module that runs several times.
    data : numpy.ndarray
        float32 matrix of shape (features, samples); may be a memory map.
    shape : tuple of int
        Per-sample shape that one column folds back to: ``(H, W)`` for an
        input channel, ``(C, H, W)`` for a convolutional layer, ``(N,)`` for
        a dense one.  ``prod(shape) == features``.
    kind : {"input", "layer"}
        Whether the block is an input channel (the paper's D_i) or a layer
        (the paper's A_j).
    transform : str, optional
        What was done to make the block non-negative (``"shift"``, ``"abs"``,
        ``"split+"``/``"split-"``), or ``None``.
    signed : bool, default False
        The block keeps values of both signs (``capture(..., nonneg="semi")``):
        the factorization fits it by semi-NMF (Ding, Li & Jordan 2010), with
        loadings of any sign while the shared sample factor F stays >= 0.

    Examples
    --------
    >>> import numpy as np
    >>> b = Block("relu", np.ones((6, 4), np.float32), (6,), "layer")
    >>> b.n_features, b.n_samples
    (6, 4)
    """

    name: str
    data: np.ndarray
    shape: tuple[int, ...]
    kind: BlockKind = "layer"
    transform: str | None = None
    signed: bool = False

    def __post_init__(self) -> None:
        self.shape = tuple(int(s) for s in self.shape)
        self.signed = bool(self.signed)
        if self.data.ndim != 2:
            raise InputError(
                f"block {self.name!r}: data must be a 2-D (features x samples) matrix, "
                f"got shape {tuple(self.data.shape)}"
            )
        if int(np.prod(self.shape)) != self.data.shape[0]:
            raise InputError(
                f"block {self.name!r}: per-sample shape {self.shape} has "
                f"{int(np.prod(self.shape))} elements but the matrix has {self.data.shape[0]} rows"
            )
        if self.kind not in ("input", "layer"):
            raise InputError(f"block {self.name!r}: kind must be 'input' or 'layer', got {self.kind!r}")

    @property
    def n_features(self) -> int:
        """Number of rows (pixels or neurons)."""
        return int(self.data.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of columns (inputs)."""
        return int(self.data.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes held by the matrix."""
        return int(self.data.nbytes)

    def fold(self, column: np.ndarray) -> np.ndarray:
        """Reshape one column (or a features x k matrix) back to the per-sample shape.

        Examples
        --------
        >>> import numpy as np
        >>> b = Block("x", np.zeros((6, 2), np.float32), (2, 3), "layer")
        >>> b.fold(np.arange(6)).shape
        (2, 3)
        """
        column = np.asarray(column)
        if column.ndim == 1:
            return column.reshape(self.shape)
        return column.T.reshape((column.shape[1],) + self.shape)

    def info(self) -> dict:
        """JSON-ready description (no data)."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "kind": self.kind,
            "n_features": self.n_features,
            "transform": self.transform,
            "signed": self.signed,
        }

    def __repr__(self) -> str:
        extra = f", transform={self.transform!r}" if self.transform else ""
        extra += ", signed" if self.signed else ""
        return (
            f"Block({self.name!r}, {self.kind}, {self.n_features} features x {self.n_samples} samples, "
            f"shape={self.shape}{extra})"
        )


@dataclass(eq=False)
class Activations(Mapping[str, Block]):
    """Named blocks that share one sample axis: the input of the factorization.

    Behaves as a read-only mapping ``name -> Block`` in capture order (input
    channels first, then layers in the order the model ran them).

    Parameters
    ----------
    blocks : dict of str to Block
        The blocks; all must have the same number of samples.
    labels : numpy.ndarray, optional
        Integer labels per sample, kept for display only; the factorization
        never sees them.
    meta : dict
        Free-form JSON-ready description (model class, capture settings).
    sample_info : dict of str to numpy.ndarray, optional
        Where each sample came from, when a sample is not one whole input
        (``capture(..., samples="tokens")``): equal-length int64 arrays, one
        entry per sample: ``"sample"`` (index of the source input in the data),
        ``"position"`` (token / patch / pixel position in it) and, when the
        model was fed token ids, ``"token"`` (the id).  Views use them to show
        a token sample as its text or its image patch.

    Examples
    --------
    >>> import numpy as np
    >>> acts = Activations.from_arrays({"a": np.ones((3, 5)), "b": np.ones((2, 5))})
    >>> acts.names, acts.n_samples
    (['a', 'b'], 5)
    """

    blocks: dict[str, Block]
    labels: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    sample_info: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        self.blocks = dict(self.blocks)
        if not self.blocks:
            raise InputError("Activations needs at least one block")
        counts = {name: b.n_samples for name, b in self.blocks.items()}
        if len(set(counts.values())) != 1:
            raise InputError(
                "all blocks must share the sample axis (same number of columns), got "
                + ", ".join(f"{k}: {v}" for k, v in counts.items())
            )
        for name, b in self.blocks.items():
            if name != b.name:
                raise InputError(f"block stored under {name!r} is named {b.name!r}")
        if self.labels is not None:
            self.labels = np.asarray(self.labels)
            if self.labels.shape != (self.n_samples,):
                raise InputError(
                    f"labels must have one entry per sample ({self.n_samples}), got shape {self.labels.shape}"
                )
        if self.sample_info is not None:
            self.sample_info = {str(k): np.asarray(v) for k, v in self.sample_info.items()}
            bad = {k: v.shape for k, v in self.sample_info.items() if v.shape != (self.n_samples,)}
            if bad:
                raise InputError(f"sample_info arrays must have one entry per sample ({self.n_samples}), got {bad}")

    @classmethod
    def from_arrays(
        cls,
        arrays: Mapping[str, np.ndarray],
        *,
        shapes: Mapping[str, tuple[int, ...]] | None = None,
        kinds: Mapping[str, BlockKind] | None = None,
        labels: np.ndarray | None = None,
        signed: Iterable[str] = (),
        sample_info: Mapping[str, np.ndarray] | None = None,
    ) -> Activations:
        """Build from plain (features x samples) matrices, e.g. activations computed elsewhere.

        Blocks whose name starts with ``"input"`` are input blocks unless
        ``kinds`` says otherwise; blocks named in ``signed`` keep values of
        both signs (fitted by semi-NMF); ``sample_info`` says where each
        sample came from (see the class).

        Examples
        --------
        >>> import numpy as np
        >>> acts = Activations.from_arrays({"h": -np.ones((3, 5))}, signed=["h"])
        >>> acts["h"].signed
        True
        """
        shapes = dict(shapes or {})
        kinds = dict(kinds or {})
        signed = [signed] if isinstance(signed, str) else list(signed)
        unknown = [n for n in signed if n not in arrays]
        if unknown:
            raise InputError(f"signed={unknown} names no block; blocks are {list(arrays)}")
        blocks = {}
        for name, arr in arrays.items():
            arr = np.asarray(arr)
            if arr.ndim != 2:
                raise InputError(f"block {name!r}: expected a (features x samples) matrix, got shape {arr.shape}")
            data = np.ascontiguousarray(arr, dtype=np.float32)
            kind = kinds.get(name, "input" if name.startswith("input") else "layer")
            blocks[name] = Block(name, data, tuple(shapes.get(name, (data.shape[0],))), kind, signed=name in signed)
        return cls(blocks, labels=labels, sample_info=None if sample_info is None else dict(sample_info))

    # Mapping protocol -------------------------------------------------
    def __getitem__(self, name: str) -> Block:
        try:
            return self.blocks[name]
        except KeyError:
            raise KeyError(f"no block named {name!r}; blocks are {self.names}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.blocks)

    def __len__(self) -> int:
        return len(self.blocks)

    # Convenience ------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Block names in order."""
        return list(self.blocks)

    @property
    def input_names(self) -> list[str]:
        """Names of the input-channel blocks (the paper's D_i)."""
        return [n for n, b in self.blocks.items() if b.kind == "input"]

    @property
    def layer_names(self) -> list[str]:
        """Names of the layer blocks (the paper's A_j)."""
        return [n for n, b in self.blocks.items() if b.kind == "layer"]

    @property
    def n_samples(self) -> int:
        """Number of samples (columns) shared by every block."""
        return next(iter(self.blocks.values())).n_samples

    @property
    def n_features(self) -> int:
        """Total rows over all blocks (rows of the stacked matrix)."""
        return sum(b.n_features for b in self.blocks.values())

    @property
    def nbytes(self) -> int:
        """Bytes held by all blocks."""
        return sum(b.nbytes for b in self.blocks.values())

    def select(self, names) -> Activations:
        """A new Activations with only the named blocks (same arrays, no copy)."""
        names = [names] if isinstance(names, str) else list(names)
        return Activations({n: self[n] for n in names}, labels=self.labels, meta=dict(self.meta),
                           sample_info=self.sample_info)

    def subset(self, index) -> Activations:
        """A new Activations restricted to some samples (a slice or an index array)."""
        blocks = {
            n: Block(n, np.ascontiguousarray(b.data[:, index]), b.shape, b.kind, b.transform, b.signed)
            for n, b in self.blocks.items()
        }
        labels = None if self.labels is None else self.labels[index]
        info = None if self.sample_info is None else {k: v[index] for k, v in self.sample_info.items()}
        return Activations(blocks, labels=labels, meta=dict(self.meta), sample_info=info)

    def stacked(self, weights: Mapping[str, float] | None = None) -> np.ndarray:
        """The blocks stacked on top of each other: (total features x samples).

        With one shared F the paper's coupled factorization is an NMF of this
        matrix; ``weights`` scales each block by the square root of its weight.
        """
        parts = []
        for n, b in self.blocks.items():
            w = 1.0 if weights is None else float(weights.get(n, 1.0))
            parts.append(b.data if w == 1.0 else b.data * np.float32(np.sqrt(w)))
        return np.concatenate(parts, axis=0)

    def info(self) -> dict:
        """JSON-ready description of the blocks (no data)."""
        return {n: b.info() for n, b in self.blocks.items()}

    def summary(self) -> str:
        """A short multi-line text description."""
        lines = [f"Activations: {len(self)} blocks x {self.n_samples} samples ({self.nbytes / 2**20:.1f} MiB)"]
        for b in self.blocks.values():
            shape = "x".join(map(str, b.shape))
            extra = f"  [{b.transform}]" if b.transform else ""
            extra += "  [signed]" if b.signed else ""
            lines.append(f"  {b.kind:5s}  {b.name:24s} {b.n_features:>8d} features  ({shape}){extra}")
        if self.labels is not None:
            lines.append(f"  labels: {len(np.unique(self.labels))} classes (display only)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()
