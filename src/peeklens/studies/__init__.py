"""The paper's case studies: networks, data, training regimes, and runners.

Used by the ``peeklens`` command line, the tutorial notebooks and the benchmarks; the core
(``capture``, ``factorize``...) never imports it.

>>> from peeklens.studies import PaperNet, Regime, study_regimes
>>> [r.label for r, _ in study_regimes("subset")[0]]
['class 0', 'classes 0-4', 'classes 5-9', 'classes 0-9']
"""

from .cases import PAPER_RANKS, STUDIES, RegimeResult, StudyResult, run_regime, run_study, small_size, study_regimes
from .data import (
    CIFAR10_CLASSES,
    DataNotFoundError,
    data_dir,
    denormalizer,
    load_cifar10,
    load_dataset,
    load_mnist,
    normalize,
)
from .networks import (
    ALEXNET_LAYERS,
    PAPER_LAYERS,
    SMALLCNN_LAYERS,
    AlexNet,
    PaperNet,
    SmallCNN,
    layers_of,
    make_network,
)
from .training import Regime, TrainedModel, cache_dir, evaluate, noisy_labels, select_indices, train

__all__ = [
    "PaperNet",
    "AlexNet",
    "SmallCNN",
    "SMALLCNN_LAYERS",
    "PAPER_LAYERS",
    "ALEXNET_LAYERS",
    "make_network",
    "layers_of",
    "load_mnist",
    "load_cifar10",
    "load_dataset",
    "normalize",
    "denormalizer",
    "data_dir",
    "DataNotFoundError",
    "CIFAR10_CLASSES",
    "Regime",
    "TrainedModel",
    "train",
    "evaluate",
    "select_indices",
    "noisy_labels",
    "cache_dir",
    "STUDIES",
    "PAPER_RANKS",
    "RegimeResult",
    "StudyResult",
    "study_regimes",
    "run_regime",
    "run_study",
    "small_size",
]
