"""Memory facts shared by capture, the solvers and the file reader: what is available, and bytes as text."""

from __future__ import annotations

import psutil

__all__ = ["available_memory", "format_bytes"]


def available_memory() -> int | None:
    """Bytes of memory available to new allocations without swapping (``psutil``), or None if unknown.

    >>> available_memory() > 0
    True
    """
    try:
        return int(psutil.virtual_memory().available)
    except (OSError, RuntimeError, AttributeError):  # pragma: no cover - exotic platforms
        return None


def format_bytes(n: float) -> str:
    """A byte count in binary units, as people read it.

    >>> format_bytes(512), format_bytes(3 * 1024**3)
    ('512 B', '3.0 GiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"
