"""The networks of the paper's case studies.

* :class:`PaperNet`: the classic PyTorch MNIST example network, exactly (functional forward).
  Its analysed layers are the FX nodes ``relu`` (10 x 12 x 12 = 1440 neurons) and ``relu_1``
  (20 x 4 x 4 = 320 neurons), listed in :data:`PAPER_LAYERS`.
* :class:`AlexNet`: the "modified AlexNet" of the public ``bearpaw/pytorch-classification``
  repository (``models/cifar/alexnet.py``: five convolutions, no fully connected stack, one linear
  classifier), with the input adapted: 3 x 32 x 32 (CIFAR-10) as in that repository, or
  1 x 28 x 28 (MNIST), where the first convolution pads by 7 instead of 5 so that the feature maps
  keep the CIFAR sizes (8, 4, 2, 2, 2, then 1 after the last pool).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["PaperNet", "AlexNet", "SmallCNN", "PAPER_LAYERS", "ALEXNET_LAYERS", "SMALLCNN_LAYERS", "make_network"]

#: FX node names of the two ReLU outputs that the paper analyses.
PAPER_LAYERS: list[str] = ["relu", "relu_1"]

#: Module names of AlexNet's five ReLU outputs (in-place ReLUs; capture copies them).
ALEXNET_LAYERS: list[str] = ["features.1", "features.4", "features.7", "features.9", "features.11"]

#: Module names of :class:`SmallCNN`'s three ReLU outputs.
SMALLCNN_LAYERS: list[str] = ["relu1", "relu2", "relu3"]


class PaperNet(nn.Module):
    """The classic PyTorch MNIST example network used by the paper.

    conv1 1->10 (5x5) -> max-pool 2 -> ReLU; conv2 10->20 (5x5) -> Dropout2d -> max-pool 2 -> ReLU;
    fc1 320->50 -> ReLU -> dropout; fc2 50->10 -> log-softmax.  The forward pass uses the
    functional ``F.relu`` / ``F.max_pool2d``, so its analysed layers are the FX nodes
    ``relu`` and ``relu_1``.  Expects normalized 1 x 28 x 28 inputs (see
    :data:`peeklens.studies.data.MNIST_MEAN`).

    Examples
    --------
    >>> import torch
    >>> net = PaperNet()
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    #: Loss used in training: the network returns log-probabilities.
    loss = "nll"

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


class AlexNet(nn.Module):
    """The modified AlexNet of ``bearpaw/pytorch-classification`` (CIFAR models), for 28 or 32 px inputs.

    Parameters
    ----------
    in_channels : int, default 3
        1 for MNIST, 3 for CIFAR-10.
    input_size : {32, 28}
        Side of the square input.  28 pads the first convolution by 7 (instead of 5) so that every
        later feature map has the same size as for 32 x 32 inputs.
    num_classes : int, default 10

    Examples
    --------
    >>> import torch
    >>> AlexNet(1, 28)(torch.zeros(2, 1, 28, 28)).shape, AlexNet(3, 32)(torch.zeros(2, 3, 32, 32)).shape
    (torch.Size([2, 10]), torch.Size([2, 10]))
    """

    #: Loss used in training: the network returns logits.
    loss = "cross_entropy"

    def __init__(self, in_channels: int = 3, input_size: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        if input_size not in (28, 32):
            raise ValueError(f"input_size must be 28 or 32, got {input_size}")
        pad = 5 if input_size == 32 else 7
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=pad),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Linear(256, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return self.classifier(x)


class SmallCNN(nn.Module):
    """A small three-block CNN for CIFAR-10 (3 x 32 x 32), cheap to train on a CPU.

    Each block is conv 3x3 (padding 1) -> max-pool 2 -> ReLU, as in the paper network, with
    16, 32 and 64 channels (analysed layers ``relu1`` 16x16x16, ``relu2`` 32x8x8, ``relu3``
    64x4x4), then one linear classifier on the 1024 features.  Returns logits.

    Examples
    --------
    >>> import torch
    >>> SmallCNN()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    loss = "cross_entropy"

    def __init__(self, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, kernel_size=3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.relu3 = nn.ReLU()
        self.fc = nn.Linear(64 * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(F.max_pool2d(self.conv1(x), 2))
        x = self.relu2(F.max_pool2d(self.conv2(x), 2))
        x = self.relu3(F.max_pool2d(self.conv3(x), 2))
        return self.fc(x.flatten(1))


def make_network(name: str, dataset: str = "mnist") -> nn.Module:
    """A fresh network by name: ``"paper"`` (MNIST only) or ``"alexnet"`` for ``"mnist"`` / ``"cifar10"``.

    >>> type(make_network("alexnet", "cifar10")).__name__
    'AlexNet'
    """
    from ..errors import InputError

    if name == "paper":
        if dataset != "mnist":
            raise InputError(f"the paper network is for MNIST (1 x 28 x 28); got dataset {dataset!r}; use 'alexnet'")
        return PaperNet()
    if name == "alexnet":
        if dataset == "mnist":
            return AlexNet(1, 28)
        if dataset == "cifar10":
            return AlexNet(3, 32)
        raise InputError(f"unknown dataset {dataset!r}; choose 'mnist' or 'cifar10'")
    if name == "smallcnn":
        if dataset != "cifar10":
            raise InputError(f"the small CNN is for CIFAR-10 (3 x 32 x 32); got dataset {dataset!r}")
        return SmallCNN()
    raise InputError(f"unknown network {name!r}; choose 'paper', 'alexnet' or 'smallcnn'")


def layers_of(name: str) -> list[str]:
    """The analysed layers of a network by name.

    >>> layers_of("paper")
    ['relu', 'relu_1']
    """
    return list({"paper": PAPER_LAYERS, "smallcnn": SMALLCNN_LAYERS}.get(name, ALEXNET_LAYERS))
