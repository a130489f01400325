import pytest
import torch

import peeklens as pl
from peeklens.studies import ALEXNET_LAYERS, PAPER_LAYERS, AlexNet, PaperNet, layers_of, make_network


def test_paper_net_is_the_pytorch_example():
    net = PaperNet()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == {
        "conv1.weight": (10, 1, 5, 5), "conv1.bias": (10,),
        "conv2.weight": (20, 10, 5, 5), "conv2.bias": (20,),
        "fc1.weight": (50, 320), "fc1.bias": (50,),
        "fc2.weight": (10, 50), "fc2.bias": (10,),
    }
    out = net.eval()(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10)
    assert torch.allclose(out.exp().sum(1), torch.ones(3), atol=1e-5)  # log-softmax


def test_paper_layers_are_fx_relus_with_paper_sizes():
    acts = pl.capture(PaperNet(), torch.rand(7, 1, 28, 28), layers=PAPER_LAYERS, progress=False)
    assert acts.names == ["input:0", "relu", "relu_1"]
    assert [acts[n].n_features for n in acts.names] == [784, 1440, 320]
    assert acts["relu"].shape == (10, 12, 12) and acts["relu_1"].shape == (20, 4, 4)


@pytest.mark.parametrize("cin,size", [(1, 28), (3, 32)])
def test_alexnet_shapes_and_layers(cin, size):
    torch.manual_seed(0)
    net = AlexNet(cin, size)
    assert net(torch.rand(2, cin, size, size)).shape == (2, 10)
    acts = pl.capture(net, torch.rand(5, cin, size, size), layers=ALEXNET_LAYERS, progress=False)
    feats = [acts[n].shape for n in ALEXNET_LAYERS]
    # the same feature-map sizes for 28 px (first conv padded by 7) as for 32 px
    assert feats == [(64, 8, 8), (192, 4, 4), (384, 2, 2), (256, 2, 2), (256, 2, 2)]
    assert len([n for n in acts.names if n.startswith("input:")]) == cin


def test_make_network_errors():
    assert isinstance(make_network("paper"), PaperNet)
    assert layers_of("alexnet") == ALEXNET_LAYERS
    with pytest.raises(pl.InputError, match="paper network is for MNIST"):
        make_network("paper", "cifar10")
    with pytest.raises(pl.InputError, match="unknown network"):
        make_network("vgg")
    with pytest.raises(ValueError):
        AlexNet(3, 64)
