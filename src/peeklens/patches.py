"""Image patches as samples: where a token sample of an image model (a ViT's patch token) comes from.

A capture with ``samples="tokens"`` of a vision transformer makes every patch token of every image a
sample; :attr:`Activations.sample_info` keeps its source image (``sample``) and ``position``. Given the
images and the patch grid, :func:`patch_crops` cuts out each shown sample's patch with a margin of
neighbouring patches, so the views can show the patch where it sits (``pl.save(..., decode=PatchGrid(...))``
keeps them in the schema's ``display`` section).

>>> import numpy as np
>>> imgs = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)   # two 4x4 images, 2x2 patches
>>> info = {"sample": np.array([0, 0, 1]), "position": np.array([1, 4, 2])}  # position 0: CLS
>>> crops, boxes, cells = patch_crops(info, [1, 2], PatchGrid(imgs, patch=2, offset=1, context=0))
>>> crops.shape, boxes.tolist(), cells.tolist()
((2, 2, 2, 1), [[0, 0, 2, 2], [0, 0, 2, 2]], [[1, 1], [0, 1]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError

__all__ = ["PatchGrid", "patch_crops"]


@dataclass
class PatchGrid:
    """How the token samples of an image model map onto its input images.

    Parameters
    ----------
    images : array-like
        The source images in capture order, (N, C, H, W), (N, H, W) or (N, H, W, 3) channels-last for
        RGB: ``images[sample_info["sample"][i]]`` is sample ``i``'s image.
    patch : int or (int, int)
        Patch height and width in pixels (16 for ``vit_b_16``).
    offset : int, default 1
        Tokens before the first patch (a CLS token: 1); they have no patch.
    context : int, default 1
        Neighbouring patches kept around each patch on every side.
    """

    images: np.ndarray
    patch: int | tuple[int, int]
    offset: int = 1
    context: int = 1


def _channels_last(images: np.ndarray) -> np.ndarray:
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 3:
        return a[..., None]
    if a.ndim == 4 and a.shape[1] in (1, 3) and a.shape[-1] not in (1, 3):
        return np.moveaxis(a, 1, -1)
    if a.ndim == 4:
        return a
    raise InputError(f"PatchGrid.images must be (N, C, H, W), (N, H, W) or (N, H, W, C), got shape {a.shape}")


def patch_crops(sample_info, samples, grid: PatchGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each sample's patch with ``grid.context`` patches of margin, scaled to [0, 1] over all images.

    Returns
    -------
    crops : numpy.ndarray
        (n, h, w, C) float32, h = (2 context + 1) x patch height (zeros outside the image).
    boxes : numpy.ndarray
        (n, 4) int32: ``top, left, height, width`` of the patch in its crop (-1 for a token without a
        patch, e.g. CLS).
    cells : numpy.ndarray
        (n, 2) int32: the patch's row and column in the image's patch grid (-1 without a patch).
    """
    imgs = _channels_last(grid.images)
    ph, pw = (grid.patch, grid.patch) if np.isscalar(grid.patch) else tuple(grid.patch)
    ph, pw, c = int(ph), int(pw), int(grid.context)
    n_img, H, W, C = imgs.shape
    cols = W // pw
    if ph <= 0 or pw <= 0 or cols == 0 or H // ph == 0:
        raise InputError(f"patch {grid.patch} does not fit images of {H}x{W} pixels")
    lo, hi = float(imgs.min()), float(imgs.max())
    scale = 1.0 / (hi - lo) if hi > lo else 1.0
    src = np.asarray(sample_info["sample"], dtype=np.int64)
    pos = np.asarray(sample_info["position"], dtype=np.int64) - int(grid.offset)
    idx = np.asarray(samples, dtype=np.int64).reshape(-1)
    if idx.size and src[idx].max() >= n_img:
        raise InputError(f"sample_info refers to image {int(src[idx].max())} but PatchGrid has {n_img} images")
    h, w = (2 * c + 1) * ph, (2 * c + 1) * pw
    crops = np.zeros((idx.size, h, w, C), dtype=np.float32)
    boxes = np.full((idx.size, 4), -1, dtype=np.int32)
    cells = np.full((idx.size, 2), -1, dtype=np.int32)
    for out, i in enumerate(idx):
        p = int(pos[i])
        row, col = divmod(p, cols)
        if p < 0 or row >= H // ph:
            continue  # CLS or another token without a patch
        top, left = (row - c) * ph, (col - c) * pw
        y0, y1, x0, x1 = max(top, 0), min(top + h, H), max(left, 0), min(left + w, W)
        crops[out, y0 - top : y1 - top, x0 - left : x1 - left] = (imgs[src[i], y0:y1, x0:x1] - lo) * scale
        boxes[out] = (c * ph, c * pw, ph, pw)
        cells[out] = (row, col)
    return crops, boxes, cells
