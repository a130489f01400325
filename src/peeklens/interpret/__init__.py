"""What a factor means: activation maximization, attribution and inversion of factors.

The coupled factorization finds, in every captured layer, directions ``O_layer[:, k]`` (one per
factor).  These functions apply the feature-visualization methods surveyed by Qin et al. ("How
convolutional neural networks see the world") to such a direction, scoring an input ``x`` by
``<activation_layer(x), O_layer[:, k]>``:

* :func:`maximize`: the input that maximizes the factor (Fourier / MACO parameterization, random
  transforms, diversity);
* :func:`attribute`: where in given inputs the factor's evidence lies (guided backprop,
  DeconvNet, integrated gradients through Captum, or the factor's own spatial map);
* :func:`invert`: an input whose activation reproduces the loading pattern (Mahendran & Vedaldi);
* :func:`explain`: all of a fit's factors at once for the views (maximized images, attribution
  heatmaps of the top inputs), kept on the factorization and saved in its ``.peeklens`` file.

All return plain NumPy arrays in small dataclasses (:class:`Maximized`, :class:`Attribution`,
:class:`Inversion`) whose ``arrays()`` / ``meta()`` split is what a results file stores.
"""

from .attribute import ATTRIBUTION_METHODS, attribute
from .explain import explain
from .invert import invert
from .maximize import maximize
from .results import Attribution, Explanation, Inversion, Maximized, display_images

__all__ = [
    "maximize",
    "attribute",
    "invert",
    "explain",
    "Maximized",
    "Attribution",
    "Inversion",
    "Explanation",
    "display_images",
    "ATTRIBUTION_METHODS",
]
