"""bqplot figures and the sample explorer: views that are Python objects you compose.

The dashboard, the lab document and the report draw with the TypeScript views (:mod:`peeklens.widgets`);
this package is for figures you build on in Python:

* :func:`sweep_figure`, :func:`spectrum_figure`, :func:`factorization_figure` (what ``Sweep.plot()``,
  ``Spectrum.plot()`` and ``Factorization.plot()`` return) and :func:`compare`: bqplot ``Figure`` objects
  to restyle, add marks to, put in your own ``ipywidgets`` layouts, or draw into with ``fig=``;
* :class:`SampleExplorer`: the samples in factor space, coloured by label or prediction, with brush and lasso
  selection that sets ``explorer.selected`` in Python, and :func:`link_gallery` to a
  :class:`~peeklens.widgets.LatentGallery`;
* :mod:`peeklens.plots.data`: the arrays behind every figure and view (:func:`figure_data` for these figures;
  ``.data()`` / ``.to_frame()`` on the explorer and the widgets).

>>> import peeklens as pl
>>> sorted(pl.plots.__all__)[:3]
['PALETTE', 'SampleExplorer', 'colors_for']
"""

from .data import figure_data, gallery_data, heatmap_data, rank_data, spectrum_frame
from .explorer import SampleExplorer, link_gallery
from .figures import compare, factorization_figure, series_colors, spectrum_figure, sweep_figure
from .palette import PALETTE, colors_for

__all__ = [
    "sweep_figure",
    "spectrum_figure",
    "factorization_figure",
    "compare",
    "series_colors",
    "SampleExplorer",
    "link_gallery",
    "figure_data",
    "rank_data",
    "gallery_data",
    "heatmap_data",
    "spectrum_frame",
    "PALETTE",
    "colors_for",
]
