"""Capture under hostile conditions: bad values, odd dtypes, failing models, devices, memory."""

from __future__ import annotations

import importlib
import tracemalloc
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import peeklens as pl

capture_mod = importlib.import_module("peeklens.capturing.core")
recorder_mod = importlib.import_module("peeklens.capturing.recorder")
batches_mod = importlib.import_module("peeklens.capturing.batches")


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 5), nn.ReLU())


X = torch.rand(12, 1, 8, 8)


def test_negative_inputs_name_the_inputs_and_the_remedies():
    with pytest.raises(pl.NonNegativityError, match=r"the inputs has negative.*nonneg='shift'.*input_transform="):
        pl.capture(small_net(), X - 0.5, layers=["1"], progress=False)
    acts = pl.capture(small_net(), X - 0.5, layers=["1"], progress=False, nonneg="shift")
    assert acts["input:0"].data.min() == 0.0 and acts["input:0"].transform.startswith("shift")


def test_negative_layer_is_named():
    with pytest.raises(pl.NonNegativityError, match=r"layer '0' has negative"):
        pl.capture(small_net(), X, layers=["0"], progress=False)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bad=st.sampled_from([float("nan"), float("inf"), float("-inf")]),
    i=st.integers(0, 11),
    batch=st.integers(1, 12),
)
def test_nan_or_inf_inputs_are_refused_naming_the_batch(bad, i, batch):
    x = X.clone()
    x[i, 0, 3, 3] = bad
    with pytest.raises(pl.CaptureError, match=r"input 'input:0' has NaN or Inf values in the batch starting at "
                                                 rf"sample {(i // batch) * batch}"):
        pl.capture(small_net(), x, layers=["1"], progress=False, batch_size=batch)


def test_inf_produced_inside_the_model_names_the_layer():
    class Blowup(nn.Module):
        def forward(self, x):
            return x / 0.0

    model = nn.Sequential(nn.ReLU(), Blowup())
    with pytest.raises(pl.CaptureError, match=r"layer '1' has NaN or Inf"):
        pl.capture(model, torch.rand(4, 5), layers=["1"], progress=False)


@pytest.mark.parametrize("data", [torch.rand(0, 1, 8, 8), [], iter([]), [torch.rand(0, 1, 8, 8)]],
                         ids=["empty-tensor", "empty-list", "empty-iterator", "empty-batch"])
def test_empty_data_is_refused(data):
    with pytest.raises(pl.InputError, match="empty"):
        pl.capture(small_net(), data, layers=["1"], progress=False)


def test_single_sample_captures_and_factorizes():
    acts = pl.capture(small_net(), X[:1], layers=["1"], progress=False)
    assert acts.n_samples == 1
    fit = pl.factorize(acts, rank=1, max_iter=20)
    assert fit.F.shape == (1, 1) and np.isfinite(fit.rmse)
    with pytest.raises(pl.InputError, match=r"rank 2 is larger than the smallest dimension.*1 samples"):
        pl.factorize(acts, rank=2)


@pytest.mark.parametrize("output", [None, "text", 3, {"a": "b"}], ids=["None", "str", "int", "dict-no-tensor"])
def test_layer_output_that_is_not_a_tensor(output):
    class Odd(nn.Module):
        def forward(self, x):
            return output

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.odd = Odd()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            self.odd(x)
            return self.fc(x)

    with pytest.raises(pl.CaptureError, match=r"layer 'odd' returned \w+, not a tensor"):
        pl.capture(Net(), torch.rand(3, 4), layers=["odd"], progress=False)


def test_model_raising_mid_batch_names_the_batch_and_restores_the_model():
    class Flaky(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.act = nn.ReLU()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            h = self.act(self.fc(x))
            if self.calls == 4:  # probe + 2 batches fine, the 3rd batch fails after act ran
                raise RuntimeError("boom in layer 7")
            return h

    m = Flaky().train()
    with pytest.raises(pl.CaptureError, match=r"Flaky raised RuntimeError on the batch starting at sample 20.*boom"):
        pl.capture(m, torch.rand(50, 4), layers=["act"], batch_size=10, progress=False)
    assert m.training, "train mode must be restored"
    assert not m.act._forward_hooks, "hooks must be removed"
    acts = pl.capture(m, torch.rand(50, 4), layers=["act"], batch_size=10, progress=False)  # reusable
    assert acts.n_samples == 50


def test_keyboard_interrupt_mid_capture_keeps_finished_batches():
    class Stop(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()
            self.seen = 0

        def forward(self, x):
            self.seen += 1
            if self.seen == 4:  # probe + 2 batches done, interrupted in the 3rd
                raise KeyboardInterrupt
            return self.act(x)

    data = torch.rand(40, 5)
    with pytest.warns(UserWarning, match="capture interrupted: keeping the 20 samples"):
        acts = pl.capture(Stop(), data, layers=["act"], batch_size=10, progress=False)
    assert acts.n_samples == 20 and acts.meta["interrupted"] is True
    np.testing.assert_array_equal(acts["act"].data, data[:20].T.numpy())
    np.testing.assert_array_equal(acts["input:0"].data, data[:20].T.numpy())


def test_keyboard_interrupt_mid_capture_of_unknown_length_data_keeps_finished_batches():
    data = torch.rand(30, 5)

    def batches():
        yield data[:10]
        yield data[10:20]
        raise KeyboardInterrupt

    with pytest.warns(UserWarning, match="keeping the 20 samples"):
        acts = pl.capture(nn.Sequential(nn.ReLU()), batches(), layers=["0"], progress=False)
    np.testing.assert_array_equal(acts["0"].data, data[:20].T.numpy())


def test_keyboard_interrupt_before_any_sample_propagates():
    class Stop(nn.Module):
        def forward(self, x):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pl.capture(nn.Sequential(Stop()), torch.rand(4, 3), layers=["0"], progress=False)


def test_meta_device_model_is_refused_before_running():
    with torch.device("meta"):
        m = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with pytest.raises(pl.DeviceError, match=r"'meta' device.*to_empty"):
        pl.capture(m, torch.rand(5, 4), progress=False)


def test_data_on_meta_device_is_refused():
    with pytest.raises(pl.InputError, match=r"inputs are on the 'meta' device"):
        pl.capture(nn.Sequential(nn.ReLU()), torch.empty(5, 4, device="meta"), progress=False)


def test_cuda_requested_without_cuda_is_a_device_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(pl.DeviceError, match=r"'cuda'.*CUDA is not available.*device='cpu'"):
        pl.capture(small_net(), X, device="cuda", progress=False)


def test_model_on_another_device_than_the_data(monkeypatch):
    """The model claims to live on another device: batches are moved there (simulated with a hook)."""
    seen = []
    monkeypatch.setattr(capture_mod, "model_device", lambda model: torch.device("cpu", 0))
    orig = batches_mod.Feeder.to_device

    def spy(raw, device, dtype, clone=False):
        seen.append(device)
        return orig(raw, device, dtype, clone)

    monkeypatch.setattr(batches_mod.Feeder, "to_device", staticmethod(spy))
    acts = pl.capture(small_net(), X.to(torch.float64), layers=["1"], progress=False)
    assert all(d == torch.device("cpu", 0) for d in seen) and acts.n_samples == 12


def test_cuda_out_of_memory_in_forward_says_how_to_reduce(monkeypatch):
    class Hungry(nn.Module):
        def forward(self, x):
            if x.shape[0] > 1:  # the one-sample probe fits
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
            return x.relu()

    with pytest.raises(pl.DeviceError, match=r"ran out of GPU memory on the batch starting at sample 0.*batch_size="):
        pl.capture(nn.Sequential(Hungry()), torch.rand(8, 3), layers=["0"], progress=False)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.int64, torch.bool])
def test_integer_inputs_are_refused_with_the_conversion(dtype):
    x = (torch.rand(6, 1, 8, 8) * 255).to(dtype)
    with pytest.raises(pl.InputError, match=r"dtype|x.float\(\) / 255"):
        pl.capture(small_net(), x, layers=["1"], progress=False)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_float64_half_bfloat16_inputs_are_converted_to_the_model_dtype(dtype):
    x = X.to(dtype)
    acts = pl.capture(small_net(), x, layers=["1"], progress=False)
    ref = pl.capture(small_net(), x.float(), layers=["1"], progress=False)
    assert acts["1"].data.dtype == np.float32
    np.testing.assert_allclose(acts["1"].data, ref["1"].data, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_half_bfloat16_float64_models(dtype):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU()).to(dtype)
    acts = pl.capture(model, torch.rand(9, 6), layers=["1"], progress=False)
    assert acts["1"].data.dtype == np.float32 and acts["1"].data.shape == (5, 9)
    with torch.no_grad():
        ref = model(torch.rand(9, 6).to(dtype))  # noqa: F841 - the model still runs in its own dtype
    assert next(model.parameters()).dtype == dtype


def test_integer_layer_output_is_stored_as_float():
    class ArgMax(nn.Module):
        def forward(self, x):
            return x.argmax(dim=1, keepdim=True)

    acts = pl.capture(nn.Sequential(ArgMax()), torch.rand(7, 4), layers=["0"], progress=False)
    assert acts["0"].data.dtype == np.float32 and acts["0"].data.max() <= 3


def test_layer_too_large_is_refused_before_any_buffer_is_allocated(monkeypatch):
    """A 40 GB layer: refused by the estimate; no block buffer is ever created."""
    allocated = []
    monkeypatch.setattr(recorder_mod.Recorder, "allocate", lambda self, n: allocated.append(n))

    class Wide(nn.Module):  # 1,000,000 features per sample, computed cheaply
        def forward(self, x):
            return x[:, :1].expand(-1, 1_000_000)

    class Ten(torch.utils.data.Dataset):
        def __len__(self):
            return 10_000

        def __getitem__(self, i):
            return torch.rand(4)

    tracemalloc.start()
    try:
        with pytest.raises(pl.MemoryLimitError, match=r"capturing 10000 samples needs about 37\.\d GiB.*'0': 37\.\d GiB"
                                                      r".*max_samples=.*pool=.*storage="):
            pl.capture(nn.Sequential(Wide()), Ten(), layers=["0"], batch_size=500, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert allocated == []
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MiB were allocated before refusing"


def test_max_bytes_refusal_names_the_biggest_block_and_the_knobs():
    with pytest.raises(pl.MemoryLimitError, match=r"more than max_bytes=1000.*Largest blocks: '1': .*pool=1"):
        pl.capture(small_net(), X, layers=["1"], max_bytes=1000, progress=False)


def test_unknown_length_data_stops_growing_at_the_limit():
    def batches():
        for _ in range(100):
            yield torch.rand(10, 100)

    # 100 features x 4 B = 400 B per sample and block (two blocks): 10 batches fit in 8,000 B
    with pytest.raises(pl.MemoryLimitError, match="the data has no length"):
        pl.capture(nn.Sequential(nn.ReLU()), batches(), layers=["0"], max_bytes=8_000, progress=False)


def test_html_layer_names_round_trip_as_text(tmp_path):
    evil = "<script>alert('x')</script>"
    model = nn.Sequential()
    model.add_module(evil, nn.ReLU())
    acts = pl.capture(model, torch.rand(5, 3), layers=[evil], progress=False, storage=tmp_path / "blocks")
    assert evil in acts.names
    assert all("<" not in p.name and "/" not in p.name for p in (tmp_path / "blocks").iterdir())
    back = pl.load(pl.save(acts, tmp_path / "a.peeklens"))
    assert back.names == acts.names


def test_unknown_layer_lists_close_names():
    model = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), relu=nn.ReLU(), head=nn.Flatten()))
    with pytest.raises(pl.LayerNotFoundError, match=r"layer 'rleu' not found in Sequential; closest valid names: "
                                                    r"\['relu'"):
        pl.capture(model, X, layers=["rleu"], progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"max_samples": 0}, "max_samples"), ({"batch_size": 0}, "batch_size"), ({"batch_size": 2.5}, "batch_size"),
    ({"nonneg": "clip"}, "nonneg"), ({"max_bytes": -1}, "max_bytes"), ({"device": "gpu9"}, "device"),
])
def test_bad_options_are_refused_early(kwargs, match):
    with pytest.raises(pl.InputError, match=match):
        pl.capture(small_net(), X, layers=["1"], progress=False, **kwargs)


def test_shape_changing_between_batches_is_refused():
    data = [torch.rand(4, 1, 8, 8), torch.rand(4, 1, 10, 10)]
    with pytest.raises(pl.CaptureError, match=r"changed its per-sample shape.*pool="):
        pl.capture(nn.Sequential(nn.ReLU()), data, layers=["0"], include_input=False, progress=False)


@settings(max_examples=12, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), n=st.integers(1, 9), bs=st.integers(1, 4))
def test_random_shapes_capture_exactly(shape, n, bs):
    x = torch.rand(n, *shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        acts = pl.capture(nn.Sequential(nn.ReLU()), x, layers=["0"], include_input=False, progress=False,
                          batch_size=bs)
    np.testing.assert_array_equal(acts["0"].data, x.reshape(n, -1).T.numpy())


def test_storage_never_overwrites_an_earlier_capture(tmp_path):
    x = torch.rand(6, 1, 8, 8)
    first = pl.capture(small_net(), x, layers=["1"], progress=False, storage=tmp_path)
    before = first["1"].data.copy()
    with pytest.raises(pl.InputError, match=r"already holds block files \['input_0.npy', '1@0.npy'\].*new or empty"):
        pl.capture(small_net(), torch.rand(6, 1, 8, 8), layers=["1"], progress=False, storage=tmp_path)
    np.testing.assert_array_equal(first["1"].data, before)
    second = pl.capture(small_net(), x, layers=["1"], progress=False, storage=tmp_path / "again")
    np.testing.assert_array_equal(second["1"].data, before)
    assert isinstance(second["1"].data.base, np.memmap) or isinstance(second["1"].data, np.memmap)


def test_layer_that_runs_only_for_some_batches_is_refused_not_left_uninitialized():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.ReLU(), nn.ReLU()

        def forward(self, x):
            return self.b(x) if x.sum() > 1000 else self.a(x)  # the one-sample probe takes branch a

    x = torch.rand(64, 40)
    with pytest.raises(pl.CaptureError, match=r"\['a'\] did not run on the batch starting at sample 0.*every input"):
        pl.capture(Branchy(), x, layers=["a"], batch_size=64, progress=False)
    with pytest.raises(pl.CaptureError, match=r"\['b'\] never ran .*on the first sample.*control flow"):
        pl.capture(Branchy(), x, layers=["a", "b"], batch_size=64, progress=False)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.ReLU()

        def forward(self, x):
            h = self.a(x)
            return self.a(h) if x.sum() > 1000 else h

    with pytest.raises(pl.CaptureError, match=r"'a@1' ran on the batch starting at sample 0 but not on the first"):
        pl.capture(Twice(), x, layers=["a"], include_input=False, batch_size=64, progress=False)
