"""The peeklens error family.

Every error peeklens raises on purpose derives from :class:`PeeklensError`, and
also from the built-in class that describes it best (``ValueError`` for bad
input, ``MemoryError`` for work that would not fit, ...), so that both
``except PeeklensError`` and the usual ``except ValueError`` work.  Messages
name the offending thing (a layer name, a shape, a value) and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "PeeklensError",
    "InputError",
    "LayerNotFoundError",
    "NonNegativityError",
    "MemoryLimitError",
    "FileFormatError",
    "CaptureError",
    "DeviceError",
]


class PeeklensError(Exception):
    """Base class of every error that peeklens raises on purpose."""


class InputError(PeeklensError, ValueError):
    """Data, a rank or an option that peeklens cannot work with."""


class LayerNotFoundError(PeeklensError, KeyError):
    """A layer name that the model does not have.

    The message lists the closest valid names.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NonNegativityError(InputError):
    """A block with negative values, which a non-negative factorization cannot fit."""


class MemoryLimitError(PeeklensError, MemoryError):
    """Work whose estimated memory exceeds what is available or allowed."""


class FileFormatError(PeeklensError, ValueError):
    """A results file that is truncated, tampered with, or of an unknown version."""


class CaptureError(PeeklensError, RuntimeError):
    """The model failed, or returned something peeklens cannot record, during capture."""


class DeviceError(PeeklensError, RuntimeError):
    """A device that is unavailable or out of memory."""
