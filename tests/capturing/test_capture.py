import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import peeklens as pl
from peeklens.errors import (
    CaptureError,
    InputError,
    LayerNotFoundError,
    MemoryLimitError,
    NonNegativityError,
)


# ----------------------------------------------------------------- paper network
@pytest.mark.slow
def test_paper_network_on_real_mnist_has_the_papers_block_sizes(paper_net, mnist_test):
    x, y = mnist_test
    loader = DataLoader(TensorDataset(x, y), batch_size=500)
    acts = pl.capture(paper_net, loader, layers=["relu", "relu_1"], progress=False)
    assert acts.names == ["input:0", "relu", "relu_1"]
    assert [acts[n].n_features for n in acts.names] == [784, 1440, 320]
    assert acts["relu"].shape == (10, 12, 12) and acts["relu_1"].shape == (20, 4, 4)
    assert acts.n_samples == 10_000
    assert acts["input:0"].kind == "input" and acts["relu"].kind == "layer"
    np.testing.assert_array_equal(acts.labels, y.numpy())
    # the input block holds the images as fed, column = one image
    np.testing.assert_allclose(acts["input:0"].data[:, 3], x[3, 0].reshape(-1).numpy())
    # layer columns equal an independent forward pass (in eval mode)
    paper_net.eval()
    with torch.no_grad():
        h = torch.relu(torch.max_pool2d(paper_net.conv1(x[:7]), 2))
    np.testing.assert_allclose(acts["relu"].data[:, :7], h.reshape(7, -1).T.numpy(), rtol=1e-5, atol=1e-6)


def test_default_layers_are_the_functional_relus(paper_net):
    acts = pl.capture(paper_net, torch.rand(16, 1, 28, 28), progress=False)
    assert acts.layer_names == ["relu", "relu_1", "relu_2"]


def test_default_layers_are_relu_modules_when_present():
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU6())
    acts = pl.capture(model, torch.rand(10, 5), progress=False)
    assert acts.layer_names == ["1", "3"]


def test_train_mode_is_restored_and_capture_runs_in_eval(paper_net):
    paper_net.train()
    x = torch.rand(32, 1, 28, 28)
    a1 = pl.capture(paper_net, x, layers=["relu_1"], progress=False)
    a2 = pl.capture(paper_net, x, layers=["relu_1"], progress=False)
    assert paper_net.training
    # Dropout2d sits before relu_1: in train mode two runs would differ
    np.testing.assert_array_equal(a1["relu_1"].data, a2["relu_1"].data)


# ----------------------------------------------------------------- torchvision
@pytest.mark.slow
def test_resnet18_named_layers():
    from torchvision.models import resnet18

    model = resnet18(weights=None)
    x = torch.rand(6, 3, 64, 64)
    acts = pl.capture(model, x, layers=["layer1", "layer2.1.relu", "avgpool"], progress=False)
    assert acts.input_names == ["input:0", "input:1", "input:2"]
    assert acts["input:1"].shape == (64, 64)
    assert acts["layer1"].shape == (64, 16, 16)
    # BasicBlock applies its ReLU module twice: one block per call
    assert "layer2.1.relu@0" in acts and "layer2.1.relu@1" in acts
    assert acts["layer2.1.relu@0"].shape == (128, 8, 8)
    assert acts["avgpool"].shape == (512, 1, 1)
    model.eval()
    with torch.no_grad():
        ref = model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(x)))))
    np.testing.assert_allclose(acts["layer1"].data, ref.reshape(6, -1).T.numpy(), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------- odd modules
class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.lin(self.act(self.lin(x))))


def test_module_called_twice_gives_one_block_per_call():
    model = Twice()
    x = torch.rand(8, 4)
    acts = pl.capture(model, x, layers=["act"], include_input=False, progress=False)
    assert acts.names == ["act@0", "act@1"]
    with torch.no_grad():
        first = torch.relu(model.lin(x))
        second = torch.relu(model.lin(first))
    np.testing.assert_allclose(acts["act@0"].data, first.T.numpy(), rtol=1e-6)
    np.testing.assert_allclose(acts["act@1"].data, second.T.numpy(), rtol=1e-6)


class TupleOut(nn.Module):
    def forward(self, x):
        return torch.relu(x), {"sq": x**2, "meta": "not a tensor"}


class WithTuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.split = TupleOut()

    def forward(self, x):
        a, d = self.split(x)
        return a + d["sq"]


def test_tuple_and_dict_outputs_are_flattened():
    x = torch.randn(5, 3)
    acts = pl.capture(WithTuple(), x, layers=["split"], include_input=False, progress=False)
    assert acts.names == ["split[0]", "split[1][sq]"]
    np.testing.assert_allclose(acts["split[1][sq]"].data, (x**2).T.numpy(), rtol=1e-6)


class InplaceNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        h = self.fc(x)
        h = self.relu(h)  # mutates fc's output in place
        h.mul_(3.0)  # mutates relu's output in place
        return h


def test_inplace_ops_do_not_change_recorded_values():
    model = InplaceNet()
    x = torch.randn(10, 6)
    acts = pl.capture(model, x, layers=["fc", "relu"], include_input=False, nonneg="split", progress=False)
    with torch.no_grad():
        pre = model.fc(x)
    np.testing.assert_allclose(acts["fc+"].data, pre.clamp(min=0).T.numpy(), rtol=1e-6)
    np.testing.assert_allclose(acts["fc-"].data, (-pre).clamp(min=0).T.numpy(), rtol=1e-6)
    np.testing.assert_allclose(acts["relu"].data, pre.clamp(min=0).T.numpy(), rtol=1e-6)


class FunctionalInplace(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        h = torch.relu(self.fc(x))
        h.add_(100.0)  # would corrupt an uncopied FX output
        return h


def test_fx_nodes_are_copied_before_later_inplace_ops():
    model = FunctionalInplace()
    x = torch.randn(7, 4)
    acts = pl.capture(model, x, layers=["relu"], include_input=False, progress=False)
    with torch.no_grad():
        ref = torch.relu(model.fc(x))
    np.testing.assert_allclose(acts["relu"].data, ref.T.numpy(), rtol=1e-6)


# ----------------------------------------------------------------- data forms
def test_data_forms_give_the_same_blocks():
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU())
    x = torch.rand(23, 3)
    y = torch.arange(23) % 4
    ref = pl.capture(model, x, progress=False)
    for data in (TensorDataset(x, y), DataLoader(TensorDataset(x, y), batch_size=4),
                 [(x[:10], y[:10]), (x[10:], y[10:])],
                 x.numpy(), [{"x": x[:5], "y": y[:5]}, {"x": x[5:], "y": y[5:]}]):
        acts = pl.capture(model, data, progress=False, batch_size=7)
        np.testing.assert_allclose(acts["1"].data, ref["1"].data, rtol=1e-6)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    assert pl.capture(model, loader, progress=False).labels.tolist() == y.tolist()
    assert ref.labels is None


def test_generator_of_batches_with_unknown_length():
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU())
    x = torch.rand(20, 3)
    acts = pl.capture(model, (x[i : i + 6] for i in range(0, 20, 6)), progress=False)
    assert acts.n_samples == 20
    np.testing.assert_allclose(acts["input:0"].data, x.T.numpy())


def test_max_samples_truncates_mid_batch():
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU())
    x = torch.rand(50, 3)
    acts = pl.capture(model, DataLoader(TensorDataset(x, torch.zeros(50, dtype=torch.long)), batch_size=16),
                      max_samples=21, progress=False)
    assert acts.n_samples == 21 and acts.labels.shape == (21,)
    np.testing.assert_allclose(acts["input:0"].data, x[:21].T.numpy())


def test_rgb_inputs_give_one_block_per_channel_and_transform_applies():
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU())
    x = torch.randn(4, 3, 8, 8)
    acts = pl.capture(model, x, input_transform=lambda t: t * 0.5 + 2.0, progress=False)
    assert acts.input_names == ["input:0", "input:1", "input:2"]
    np.testing.assert_allclose(acts["input:2"].data, (x[:, 2] * 0.5 + 2.0).reshape(4, -1).T.numpy(), rtol=1e-6)


def test_pool_reduces_feature_maps():
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU())
    x = torch.rand(5, 1, 8, 8)
    acts = pl.capture(model, x, pool=2, progress=False)
    assert acts["1"].shape == (3, 2, 2)
    with torch.no_grad():
        ref = nn.functional.adaptive_avg_pool2d(model(x), 2)
    np.testing.assert_allclose(acts["1"].data, ref.reshape(5, -1).T.numpy(), rtol=1e-5)
    assert acts["input:0"].shape == (8, 8)  # inputs are never pooled


def test_storage_on_disk_is_memory_mapped(tmp_path):
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU())
    x = torch.rand(12, 3)
    acts = pl.capture(model, x, storage=tmp_path, progress=False)
    assert isinstance(acts["1"].data.base, np.memmap) or isinstance(acts["1"].data, np.memmap)
    assert len(list(tmp_path.glob("*.npy"))) == 2
    fit = pl.factorize(acts, rank=2, max_iter=5)
    assert fit.loadings["1"].shape == (5, 2)


# ----------------------------------------------------------------- non-negativity
def test_negative_inputs_raise_with_remedies():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with pytest.raises(NonNegativityError, match=r"inputs.*negative.*input_transform"):
        pl.capture(model, torch.randn(8, 3), progress=False)


def test_negative_layer_raises_naming_it():
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    with pytest.raises(NonNegativityError, match=r"layer '1'.*nonneg='shift'"):
        pl.capture(model, torch.rand(8, 3), layers=["1"], include_input=False, progress=False)


def test_nonneg_policies():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    x = torch.rand(9, 3)
    with torch.no_grad():
        ref = model(x).T.numpy()
    shift = pl.capture(model, x, layers=["1"], include_input=False, nonneg="shift", progress=False)
    np.testing.assert_allclose(shift["1"].data, ref - ref.min(), rtol=1e-5, atol=1e-6)
    assert shift["1"].data.min() == 0 and shift["1"].transform.startswith("shift")
    ab = pl.capture(model, x, layers=["1"], include_input=False, nonneg="abs", progress=False)
    np.testing.assert_allclose(ab["1"].data, np.abs(ref), rtol=1e-6)
    sp = pl.capture(model, x, layers=["1"], include_input=False, nonneg="split", progress=False)
    np.testing.assert_allclose(sp["1+"].data - sp["1-"].data, ref, rtol=1e-6, atol=1e-7)
    with pytest.raises(InputError, match="nonneg"):
        pl.capture(model, x, nonneg="clip", progress=False)


# ----------------------------------------------------------------- bad input
def test_nan_in_data_raises():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    x = torch.rand(8, 3)
    x[5, 1] = float("nan")
    with pytest.raises(CaptureError, match="NaN or Inf"):
        pl.capture(model, x, progress=False)


def test_empty_data_raises():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with pytest.raises(InputError, match="empty"):
        pl.capture(model, torch.rand(0, 3), progress=False)
    with pytest.raises(InputError, match="empty"):
        pl.capture(model, [], progress=False)


def test_unknown_layer_lists_closest_names(paper_net):
    with pytest.raises(LayerNotFoundError) as e:
        pl.capture(paper_net, torch.rand(4, 1, 28, 28), layers=["relu_one"], progress=False)
    msg = str(e.value)
    assert "'relu_one'" in msg and "relu_1" in msg and "list_layers" in msg
    assert isinstance(e.value, KeyError)


def test_over_memory_limit_is_refused_before_allocating():
    model = nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.ReLU())
    x = torch.rand(1000, 1, 32, 32)
    with pytest.raises(MemoryLimitError, match=r"needs about .*max_samples=.*pool="):
        pl.capture(model, x, max_bytes=10 * 2**20, batch_size=50, progress=False)
    acts = pl.capture(model, x, max_bytes=10 * 2**20, batch_size=50, pool=4, progress=False)
    assert acts["1"].shape == (64, 4, 4)


def test_integer_inputs_raise_with_a_fix():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with pytest.raises(InputError, match=r"x.float\(\) / 255"):
        pl.capture(model, torch.randint(0, 255, (4, 3), dtype=torch.uint8), progress=False)


def test_model_error_names_the_batch():
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = nn.ReLU()
            self.seen = 0

        def forward(self, x):
            self.seen += len(x)
            if self.seen > 10:
                raise RuntimeError("kaboom")
            return self.relu(x)

    with pytest.raises(CaptureError, match=r"Boom raised RuntimeError on the batch starting at sample 8.*kaboom"):
        pl.capture(Boom(), torch.rand(20, 3), batch_size=8, progress=False)


def test_estimate_bytes_matches_capture(paper_net):
    est = pl.estimate_bytes(paper_net, torch.rand(2, 1, 28, 28), 10_000, layers=["relu", "relu_1"])
    assert est == {"input:0": 784 * 4 * 10_000, "relu": 1440 * 4 * 10_000, "relu_1": 320 * 4 * 10_000}


def test_traced_graph_is_reused_but_sees_new_weights_and_replaced_modules(paper_net):
    x = torch.rand(6, 1, 28, 28)
    a = pl.capture(paper_net, x, layers=["relu"], include_input=False, progress=False)
    with torch.no_grad():
        paper_net.conv1.weight.mul_(2.0)
        paper_net.conv1.bias.mul_(2.0)
    b = pl.capture(paper_net, x, layers=["relu"], include_input=False, progress=False)
    np.testing.assert_allclose(b["relu"].data, 2 * a["relu"].data, rtol=1e-5, atol=1e-6)
    paper_net.conv1 = nn.Conv2d(1, 10, 5)  # a new module object: the cached graph must not be used
    c = pl.capture(paper_net, x, layers=["relu"], include_input=False, progress=False)
    with torch.no_grad():
        ref = torch.relu(torch.max_pool2d(paper_net.conv1(x), 2))
    np.testing.assert_allclose(c["relu"].data, ref.reshape(6, -1).T.numpy(), rtol=1e-5, atol=1e-6)
