"""peeklens: look inside a trained neural network through a coupled factorization lens.

Saini & Papalexakis (2018), "A Peek Into the Hidden Layers of a Convolutional
Neural Network Through a Factorization Lens": stack every input channel and
every analysed layer as a (features x samples) matrix and factorize them
jointly with one shared, non-negative sample factor.

>>> import peeklens as pl
>>> sorted(["capture", "factorize", "sweep", "spectrum", "save", "load"]) == sorted(
...     n for n in pl.__all__ if n in {"capture", "factorize", "sweep", "spectrum", "save", "load"})
True
"""

from ._version import __version__
from .activations import Activations, Block
from .capturing import capture, estimate_bytes, list_layers
from .errors import (
    CaptureError,
    DeviceError,
    FileFormatError,
    InputError,
    LayerNotFoundError,
    MemoryLimitError,
    NonNegativityError,
    PeeklensError,
)
from .interpret import attribute, explain, invert, maximize
from .io import load, save
from .nmf import factorize, sweep
from .quality import Comparison, Quality, compare, quality
from .results import Factorization, Sweep
from .spectra import Spectrum, spectrum

__all__ = [
    "__version__",
    # pipeline
    "capture",
    "factorize",
    "sweep",
    "spectrum",
    "save",
    "load",
    "list_layers",
    "estimate_bytes",
    # what a factor means (peeklens.interpret)
    "maximize",
    "attribute",
    "invert",
    "explain",
    # training quality without labels (peeklens.quality)
    "quality",
    "compare",
    # data classes
    "Activations",
    "Block",
    "Factorization",
    "Sweep",
    "Spectrum",
    "Quality",
    "Comparison",
    # errors
    "PeeklensError",
    "InputError",
    "LayerNotFoundError",
    "NonNegativityError",
    "MemoryLimitError",
    "FileFormatError",
    "CaptureError",
    "DeviceError",
    # notebook
    "show",
    "plots",
]


def show(obj, **kwargs) -> None:
    """Display ``obj`` as an interactive notebook widget (Sweep/Factorization: dashboard;
    Spectrum: spectrum plot; dict of Sweeps: comparison). See :mod:`peeklens.widgets`."""
    from .widgets import show as _show

    _show(obj, **kwargs)


def __getattr__(name: str):
    """``pl.plots`` (bqplot figures, sample explorer) is imported on first use: bqplot is slow to import."""
    if name == "plots":
        import importlib

        return importlib.import_module(".plots", __name__)
    raise AttributeError(f"module 'peeklens' has no attribute {name!r}")


def load_ipython_extension(ipython):  # pragma: no cover - exercised through IPython
    """``%load_ext peeklens``: registers ``%peek`` and rich display of results."""
    from .magics import load_ipython_extension as _load

    _load(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension lives, for ``jupyter labextension develop``."""
    return [{"src": "labextension", "dest": "peeklens"}]
