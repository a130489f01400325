"""Result containers of :mod:`peeklens.interpret`: plain NumPy arrays plus JSON-ready metadata.

Each result splits into ``arrays()`` (name -> ndarray) and ``meta()`` (JSON-ready dict), and
:meth:`from_parts` rebuilds it from the two, so that a results file can store them without pickle.
Inputs are kept in the space of the captured inputs, in model layout (N, C, H, W);
:func:`display_images` turns them into (N, H, W) or (N, H, W, 3) pictures as ``peeklens.views``
shows inputs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Maximized", "Attribution", "Inversion", "Explanation", "display_images"]


def display_images(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) inputs as pictures: (N, H, W) for one channel, (N, H, W, 3) for three.

    Other channel counts are averaged; flat (N, D) inputs become (N, 1, D) strips.

    Examples
    --------
    >>> import numpy as np
    >>> display_images(np.zeros((2, 3, 4, 5))).shape, display_images(np.zeros((2, 1, 4, 5))).shape
    ((2, 4, 5, 3), (2, 4, 5))
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        return x[:, None, :]
    if x.ndim != 4:
        return x
    if x.shape[1] == 1:
        return x[:, 0]
    if x.shape[1] == 3:
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    return x.mean(axis=1)


class _Parts:
    """arrays() / meta() / from_parts() over the dataclass fields (ndarrays vs JSON values)."""

    def arrays(self) -> dict[str, np.ndarray]:
        """The array fields (absent optional ones are left out)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }

    def meta(self) -> dict:
        """Every other field, JSON-ready, plus ``"type"``."""
        out = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, np.ndarray):
                out[f.name] = v
        return out

    @classmethod
    def from_parts(cls, meta: dict, arrays: dict[str, np.ndarray]):
        """Rebuild from :meth:`meta` and :meth:`arrays` (e.g. as read back from a file)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in meta.items() if k in names}
        kwargs.update({k: np.asarray(v) for k, v in arrays.items() if k in names})
        return cls(**kwargs)


@dataclass(eq=False)
class Maximized(_Parts):
    """Inputs that maximize a factor's activation (:func:`peeklens.maximize`).

    Attributes
    ----------
    layer : str
        The layer block.
    factor : int
    inputs : numpy.ndarray
        ``(n, *input_shape)`` float32, in the captured input space (model layout).
    scores : numpy.ndarray
        (n,) the factor's activation of each input, without transforms.
    reference : float
        The factor's activation of its top captured input (the sample with the largest
        ``F[:, factor]``); ``nan`` when the factorization carries no inputs.  ``scores / reference``
        says how far beyond real data the optimization went.
    history : numpy.ndarray
        (n, steps) the factor's activation (on the transformed input) after each step.
    interrupted : bool
        True when stopped by KeyboardInterrupt; ``inputs`` holds the images that finished.
    settings : dict
        steps, lr, parameterization, transforms, diversity, seed, device...
    """

    layer: str
    factor: int
    inputs: np.ndarray
    scores: np.ndarray
    history: np.ndarray
    reference: float = float("nan")
    interrupted: bool = False
    settings: dict = field(default_factory=dict)

    @property
    def images(self) -> np.ndarray:
        """The inputs as pictures, (n, H, W) or (n, H, W, 3) (see :func:`display_images`)."""
        return display_images(self.inputs)

    def __repr__(self) -> str:
        rel = (
            ""
            if not np.isfinite(self.reference) or self.reference == 0
            else (f", {np.round(self.scores / self.reference, 2).tolist()} x the top input")
        )
        return (
            f"Maximized(layer={self.layer!r}, factor={self.factor}, {len(self.scores)} inputs of shape "
            f"{tuple(self.inputs.shape[1:])}, scores={np.round(self.scores, 4).tolist()}{rel}"
            + (", interrupted" if self.interrupted else "")
            + ")"
        )


@dataclass(eq=False)
class Attribution(_Parts):
    """Where in each input a factor's evidence lies (:func:`peeklens.attribute`).

    Attributes
    ----------
    layer, factor, method
        What was attributed, and how.
    inputs : numpy.ndarray
        ``(N, *input_shape)`` the attributed inputs, in the captured space.
    indices : numpy.ndarray
        (N,) their sample indices in the factorization (-1 for inputs given by the caller).
    scores : numpy.ndarray
        (N,) the factor's activation of each input.
    heatmaps : numpy.ndarray
        (N, H, W) non-negative evidence per pixel, on the input grid: the absolute gradient summed
        over channels (guided backprop, DeconvNet), the positive part of the channel-summed
        integrated gradients, or the factor's spatial map upsampled (``"spatial"``).
    attributions : numpy.ndarray or None
        ``(N, *input_shape)`` Captum's raw signed attributions (gradient methods).
    layer_maps : numpy.ndarray or None
        (N, h, w) the factor's spatial map in the layer: the loading-weighted activation summed over
        channels (``"spatial"``); it sums to the score.
    boxes : numpy.ndarray or None
        (N, 4) ``top, left, height, width`` of the hottest region (``crops=True``).
    crops : numpy.ndarray or None
        (N, C, height, width) the inputs cut to those boxes.
    """

    layer: str
    factor: int
    method: str
    inputs: np.ndarray
    indices: np.ndarray
    scores: np.ndarray
    heatmaps: np.ndarray
    attributions: np.ndarray | None = None
    layer_maps: np.ndarray | None = None
    boxes: np.ndarray | None = None
    crops: np.ndarray | None = None
    settings: dict = field(default_factory=dict)

    @property
    def peaks(self) -> np.ndarray:
        """(N, 2) row, column of each heatmap's maximum."""
        h = self.heatmaps.reshape(len(self.heatmaps), -1)
        flat = h.argmax(axis=1)
        return np.stack(np.unravel_index(flat, self.heatmaps.shape[1:]), axis=1).astype(np.int64)

    @property
    def images(self) -> np.ndarray:
        """The inputs as pictures (see :func:`display_images`)."""
        return display_images(self.inputs)

    def __repr__(self) -> str:
        return (
            f"Attribution(layer={self.layer!r}, factor={self.factor}, method={self.method!r}, "
            f"{len(self.scores)} inputs, heatmaps {tuple(self.heatmaps.shape)}"
            + (", with crops" if self.crops is not None else "")
            + ")"
        )


@dataclass(eq=False)
class Inversion(_Parts):
    """An input whose activation in ``layer`` reproduces a factor's loading pattern (:func:`peeklens.invert`).

    Attributes
    ----------
    layer : str
    factor : int
    inputs : numpy.ndarray
        ``(1, *input_shape)`` the inverted input, in the captured space, within the input range.
    cosine : float
        Cosine between the input's activation in ``layer`` and the loading vector.
    history : numpy.ndarray
        (steps,) the cosine after each step (before the final clip to the range).
    interrupted : bool
    settings : dict
    """

    layer: str
    factor: int
    inputs: np.ndarray
    cosine: float
    history: np.ndarray
    interrupted: bool = False
    settings: dict = field(default_factory=dict)

    @property
    def images(self) -> np.ndarray:
        """The input as a picture (see :func:`display_images`)."""
        return display_images(self.inputs)

    def __repr__(self) -> str:
        return (
            f"Inversion(layer={self.layer!r}, factor={self.factor}, cosine={self.cosine:.4f}"
            + (", interrupted" if self.interrupted else "")
            + ")"
        )


@dataclass(eq=False)
class Explanation(_Parts):
    """What the factors of one layer mean, for the views: made by :func:`peeklens.explain`.

    Kept on the factorization (``fit.interpretation[layer]``), saved by :func:`peeklens.save` as the
    schema's ``interpretation`` section and shown by every front end in the latent gallery's tiles.
    Pictures are stored small: images as uint8, heatmaps as uint8 with one float32 scale per map.
    Rows follow ``factors`` (the factors that were explained, in order; an interrupted run keeps the
    ones that finished).

    Attributes
    ----------
    layer : str
        The layer block whose factor directions ``O_layer[:, k]`` were explained.
    rank : int
        Rank of the factorization.
    factors : numpy.ndarray
        (m,) int64, the factor of each row.
    method : str or None
        Attribution method (:data:`ATTRIBUTION_METHODS`), None when not attributed.
    value_range : list of float
        ``[lo, hi]``: the maximized images are ``(v - lo) / (hi - lo)`` clipped to [0, 1], as thumbnails are.
    top_k : int
        Top inputs attributed per factor.
    maximized : numpy.ndarray or None
        (m, n, H, W, C) uint8, ``C`` 1 (grey) or 3 (RGB): the maximizing input(s) of each factor as pictures.
    maximized_scores : numpy.ndarray or None
        (m, n) float32, the factor's activation of each maximized input.
    reference : numpy.ndarray or None
        (m,) float32, the factor's activation of its top captured input.
    samples : numpy.ndarray or None
        (m, top_k) int64, the attributed samples: each factor's top inputs
        (:func:`peeklens.views.top_inputs`), the thumbnails the gallery shows.
    heatmaps : numpy.ndarray or None
        (m, top_k, H, W) uint8, each map divided by its maximum (``heat_scale``) times 255.
    heat_scale : numpy.ndarray or None
        (m, top_k) float32, the maximum of each heatmap.
    scores : numpy.ndarray or None
        (m, top_k) float32, the factor's activation of each attributed sample.
    boxes : numpy.ndarray or None
        (m, top_k, 4) int32, ``top, left, height, width`` of the hottest region of each sample.
    interrupted : bool
        True when stopped by KeyboardInterrupt before every requested factor finished.
    settings : dict
        What :func:`peeklens.explain` used (steps, images per factor, seed, ...).
    """

    layer: str
    rank: int
    factors: np.ndarray
    method: str | None = None
    value_range: list = field(default_factory=lambda: [0.0, 1.0])
    top_k: int = 0
    maximized: np.ndarray | None = None
    maximized_scores: np.ndarray | None = None
    reference: np.ndarray | None = None
    samples: np.ndarray | None = None
    heatmaps: np.ndarray | None = None
    heat_scale: np.ndarray | None = None
    scores: np.ndarray | None = None
    boxes: np.ndarray | None = None
    interrupted: bool = False
    settings: dict = field(default_factory=dict)

    #: The fields that hold arrays (the schema stores each under its own key).
    ARRAY_FIELDS = (
        "factors",
        "maximized",
        "maximized_scores",
        "reference",
        "samples",
        "heatmaps",
        "heat_scale",
        "scores",
        "boxes",
    )

    def row(self, factor: int) -> int:
        """The row of ``factor`` in the arrays, or -1 when it was not explained.

        Examples
        --------
        >>> import numpy as np
        >>> Explanation("relu", 3, np.array([2, 0])).row(0)
        1
        """
        hit = np.flatnonzero(np.asarray(self.factors) == int(factor))
        return int(hit[0]) if hit.size else -1

    def heatmap(self, factor: int, j: int) -> np.ndarray:
        """The ``j``-th attribution heatmap of ``factor`` in its original units (float32, H x W)."""
        i = self.row(factor)
        if i < 0 or self.heatmaps is None or self.heat_scale is None:
            raise KeyError(f"factor {factor} has no heatmaps in this explanation (factors {self.factors.tolist()})")
        return self.heatmaps[i, j].astype(np.float32) / 255.0 * np.float32(self.heat_scale[i, j])

    def __repr__(self) -> str:
        what = [
            f"{self.maximized.shape[1]} maximized image(s)" if self.maximized is not None else "",
            f"{self.method} heatmaps of {self.top_k} top inputs" if self.heatmaps is not None else "",
        ]
        return (
            f"Explanation(layer={self.layer!r}, rank {self.rank}, factors {np.asarray(self.factors).tolist()}: "
            + ", ".join(w for w in what if w)
            + (", interrupted" if self.interrupted else "")
            + ")"
        )
