"""Reading memory-mapped blocks at the speed of the disk.

Blocks that ``capture(storage=)`` wrote are read-only memory maps of samples-major ``.npy`` files.
A product that lets the page faults fetch them (one GEMM over a whole 3 GiB block) reads the file
a few pages at a time, in the GEMM's order, and keeps every page mapped: measured on the 21 GiB of
ResNet-50's Bottleneck outputs, the first read ran at 0.63 GB/s against the disk's 1.1 GB/s, and
once the mapped pages filled the RAM the factorization's reads fell to 0.04 GB/s (the kernel
evicting and refetching the pages it was about to use).

So products with a mapped block go **a band of samples at a time** (a contiguous stretch of the
file, :data:`BAND_BYTES`), and the kernel is told what comes next: ``madvise(MADV_WILLNEED)`` on
the next band starts its read while this band is computed, and ``madvise(MADV_COLD)`` on a finished
band makes its pages the first to be reclaimed (they stay cached while the RAM has room).  Both are
hints: they never change a value, and where the system refuses them nothing changes but speed.

Blocks in memory take none of this: their products stay single GEMMs, bit for bit as before.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
import weakref

import torch

__all__ = ["BAND_BYTES", "register", "is_mapped", "advise", "band_starts", "streamed_mm", "prefetch_bands"]

#: Bytes of one band of a mapped block: large reads, while the (features x k) sums a band adds to
#: stay a small share of the traffic.
BAND_BYTES = 256 << 20

MADV_WILLNEED = 3
MADV_COLD = 20  # Linux >= 5.4

_PAGE = mmap.PAGESIZE
#: storage address -> byte length of every registered memory-mapped block
_MAPPED: dict[int, int] = {}

try:  # pragma: no cover - platform
    _libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    _madvise = _libc.madvise if _libc is not None else None
    if _madvise is not None:
        _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        _madvise.restype = ctypes.c_int
except (OSError, AttributeError):  # pragma: no cover - platform
    _madvise = None


def register(owner: object, tensors: list[torch.Tensor]) -> None:
    """Mark ``tensors`` (views of memory-mapped files) as mapped for as long as ``owner`` lives."""
    keys = []
    for t in tensors:
        storage = t.untyped_storage()
        _MAPPED[storage.data_ptr()] = storage.nbytes()
        keys.append(storage.data_ptr())
    weakref.finalize(owner, _forget, keys)


def _forget(keys: list[int]) -> None:
    for k in keys:
        _MAPPED.pop(k, None)


def is_mapped(t: torch.Tensor) -> bool:
    """Whether ``t`` is (a view of) a registered memory-mapped block."""
    return bool(_MAPPED) and t.device.type == "cpu" and t.untyped_storage().data_ptr() in _MAPPED


def advise(t: torch.Tensor, advice: int) -> None:
    """``madvise`` the memory of ``t`` (one contiguous stretch: ``t`` or ``t.T`` contiguous), if mapped."""
    if _madvise is None or t.numel() == 0 or not is_mapped(t):
        return
    if not (t.is_contiguous() or t.T.is_contiguous()):
        return
    start = t.data_ptr()
    base = start - start % _PAGE
    _madvise(base, start - base + t.numel() * t.element_size(), advice)


def band_starts(n: int, step: int) -> list[int]:
    """Starts of the bands of ``step`` along an axis of length ``n``."""
    return list(range(0, n, max(1, step)))


def prefetch_bands(bands):
    """Iterate over ``(index, band)`` pairs of one mapped block: the next band is read ahead
    (``MADV_WILLNEED``) while this one is used, and a used band is marked cold."""
    bands = list(bands)
    if bands:
        advise(bands[0][1], MADV_WILLNEED)
    for i, (key, band) in enumerate(bands):
        if i + 1 < len(bands):
            advise(bands[i + 1][1], MADV_WILLNEED)
        yield key, band
        advise(band, MADV_COLD)


def sample_band_size(A: torch.Tensor, along: int) -> int:
    """Rows (``along=0``) or columns (``along=1``) of ``A`` in one band of :data:`BAND_BYTES`."""
    other = A.shape[1 - along]
    return max(1, BAND_BYTES // max(1, other * A.element_size()))


def streamed_mm(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``A @ B`` for a mapped ``A`` (big) and a skinny ``B``, a band of ``A``'s memory at a time.

    ``A`` contiguous (samples x features): bands of rows, each a slice of the result.  ``A^T``
    contiguous (features x samples, the usual block view): bands of columns, their products added
    up (as ``(B_band^T A_band^T)^T``, the fast layout for GEMM).
    """
    if A.is_contiguous():
        out = torch.empty((A.shape[0], B.shape[1]), dtype=torch.result_type(A, B), device=B.device)
        step = sample_band_size(A, 0)
        rows = ((i, A[i : i + step]) for i in band_starts(A.shape[0], step))
        Bt = B.T.contiguous()
        for i, band in prefetch_bands(rows):
            out[i : i + band.shape[0]] = (Bt @ band.T).T  # GEMM's fast layout for a short, wide band
        return out
    step = sample_band_size(A, 1)
    acc = None
    cols = ((j, A[:, j : j + step]) for j in band_starts(A.shape[1], step))
    for j, band in prefetch_bands(cols):
        part = B[j : j + band.shape[1]].T @ band.T  # (k x band) @ (band x features), contiguous
        acc = part if acc is None else acc.add_(part)
    return acc.T
