"""How a batch reaches the model, wrapped models, in-place safety, token ids, signed blocks, and the errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import peeklens as pl


class Masked(nn.Module):
    """forward(input_ids, attention_mask): embeddings zeroed at padding, then an MLP."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6)
        self.mlp = nn.Sequential(nn.Linear(6, 8), nn.ReLU())

    def forward(self, input_ids, attention_mask):
        return self.mlp(self.emb(input_ids) * attention_mask[..., None])


def ids_batch(n=4, t=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(n, t, dtype=torch.long)
    mask[0, 3:] = 0
    return {"input_ids": torch.randint(0, 20, (n, t), generator=g), "attention_mask": mask,
            "labels": torch.arange(n) % 3}


# ------------------------------------------------------------------ dict batches, forward=, selectors
def test_dict_batch_is_passed_by_keyword_and_labels_are_not(hooks, same):
    torch.manual_seed(0)
    model = Masked()
    b = ids_batch()
    ref = hooks(model, ["mlp.1"], lambda: model(b["input_ids"], b["attention_mask"]))["mlp.1"][0]
    acts = pl.capture(model, [b], layers=["mlp.1"], include_input=False, progress=False)
    same(acts["mlp.1"], ref)
    assert acts.labels.tolist() == b["labels"].tolist()


def test_forward_option_covers_any_call(hooks, same):
    torch.manual_seed(0)
    model = Masked()
    b = ids_batch()
    pairs = [(b["input_ids"], b["attention_mask"])]
    calls = []

    def fwd(m, batch):
        calls.append(type(batch).__name__)
        return m(batch[0], attention_mask=batch[1])

    acts = pl.capture(model, pairs, layers=["mlp.1"], forward=fwd, include_input=False, labels=False,
                      progress=False)
    ref = hooks(model, ["mlp.1"], lambda: model(*pairs[0]))["mlp.1"][0]
    same(acts["mlp.1"], ref)
    assert calls == ["tuple", "tuple"]  # the one-sample probe, then the batch
    assert acts.labels is None


def test_selectors_by_key_index_and_callable():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    x, z, y = torch.rand(6, 3), torch.rand(6, 2), torch.arange(6)
    a = pl.capture(model, [{"feats": x, "other": z, "cls": y}], forward=lambda m, b: m(b["feats"]),
                   inputs="feats", labels="cls", progress=False)
    np.testing.assert_allclose(a["input:0"].data, x.T.numpy())
    assert a.labels.tolist() == y.tolist()
    b = pl.capture(model, [(y, x)], forward=lambda m, bt: m(bt[1]), inputs=1, labels=0, progress=False)
    np.testing.assert_allclose(b["input:0"].data, x.T.numpy())
    assert b.labels.tolist() == y.tolist()
    c = pl.capture(model, [(x, y)], inputs=lambda bt: bt[0] * 2, progress=False)
    np.testing.assert_allclose(c["input:0"].data, 2 * x.T.numpy(), rtol=1e-6)


def test_a_single_dict_batch_and_dict_without_matching_keys():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    x = torch.rand(5, 3)
    acts = pl.capture(model, {"x": x, "y": torch.arange(5)}, progress=False)  # one dict, not a list of them
    assert acts.n_samples == 5 and acts.labels.tolist() == list(range(5))
    np.testing.assert_allclose(acts["input:0"].data, x.T.numpy())


# ------------------------------------------------------------------ token ids
def test_token_ids_are_accepted_without_an_input_block_and_refused_with_one():
    torch.manual_seed(0)
    model = Masked()
    b = ids_batch()
    acts = pl.capture(model, [b], layers=["mlp.1"], include_input=False, progress=False)
    assert acts.input_names == []
    with pytest.raises(pl.InputError, match=r"integer dtype torch.int64.*Token ids: pass include_input=False"):
        pl.capture(model, [b], layers=["mlp.1"], progress=False)


# ------------------------------------------------------------------ wrapped models
def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 5), nn.ReLU())


@pytest.mark.parametrize("wrap", [pytest.param("compile", marks=pytest.mark.slow), "dataparallel"])
def test_wrapped_models_accept_the_original_layer_names(wrap):
    net = small_net()
    x = torch.rand(7, 1, 8, 8)
    ref = pl.capture(net, x, layers=["1", "4"], progress=False)
    wrapped = torch.compile(net) if wrap == "compile" else nn.DataParallel(net)
    prefix = "_orig_mod." if wrap == "compile" else "module."
    assert any(n.startswith(prefix) for n, _ in wrapped.named_modules())
    for layers in (["1", "4"], [prefix + "1", prefix + "4"]):
        acts = pl.capture(wrapped, x, layers=layers, progress=False)
        assert acts.layer_names == ["1", "4"]
        np.testing.assert_array_equal(acts["4"].data, ref["4"].data)
    assert pl.list_layers(wrapped)["modules"] == pl.list_layers(net)["modules"]
    assert acts.meta["unwrapped"] == (["torch.compile"] if wrap == "compile" else ["DataParallel"])


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_torchscript_is_refused_with_what_to_do():
    scripted = torch.jit.script(small_net())
    with pytest.raises(pl.CaptureError, match=r"TorchScript.*load_state_dict\(scripted.state_dict\(\)\)"):
        pl.capture(scripted, torch.rand(3, 1, 8, 8), progress=False)

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.jit.script(nn.Sequential(nn.Linear(3, 3), nn.ReLU()))

        def forward(self, x):
            return self.inner(x)

    with pytest.raises(pl.CaptureError, match=r"\['inner'\].*TorchScript.*cannot take forward hooks"):
        pl.capture(Outer(), torch.rand(3, 3), layers=["inner"], progress=False)


# ------------------------------------------------------------------ in-place safety
class EditsItsInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.relu = nn.ReLU()

    def forward(self, x):
        x.mul_(3.0)  # edits the caller's tensor
        return self.relu(self.lin(x))


def test_stored_input_is_what_the_user_passed_even_for_the_probe_sample():
    torch.manual_seed(0)
    model = EditsItsInput()
    x = torch.rand(6, 4)
    original = x.clone()
    acts = pl.capture(model, [x.clone(), x.clone()], layers=["relu"], progress=False)
    np.testing.assert_array_equal(acts["input:0"].data[:, :6], original.T.numpy())
    with torch.no_grad():
        expect = torch.relu(model.lin(original * 3.0))  # sample 0 edited once, not twice (probe + batch)
    np.testing.assert_allclose(acts["relu"].data[:, :6], expect.T.numpy(), rtol=1e-6)


# ------------------------------------------------------------------ tuple outputs
class PairOut(nn.Module):
    def forward(self, x):
        return x.relu(), x.sum()  # a per-sample tensor and a scalar summary


class UsesPair(nn.Module):
    def __init__(self):
        super().__init__()
        self.pair = PairOut()

    def forward(self, x):
        a, s = self.pair(x)
        return a * s


def test_tuple_elements_without_a_batch_axis_are_dropped_with_a_warning():
    x = torch.rand(5, 3)
    with pytest.warns(UserWarning, match=r"left out.*pair\[1\] \(\)"):
        acts = pl.capture(UsesPair(), x, layers=["pair"], progress=False)
    assert acts.layer_names == ["pair[0]"]
    np.testing.assert_allclose(acts["pair[0]"].data, x.relu().T.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        only = pl.capture(UsesPair(), x, layers=["pair[0]"], progress=False)
    assert only.layer_names == ["pair[0]"]
    with pytest.raises(pl.CaptureError, match=r"no output element \['pair\[2\]'\].*\['pair\[0\]', 'pair\[1\]'\]"):
        pl.capture(UsesPair(), x, layers=["pair[2]"], progress=False)
    with pytest.raises(pl.CaptureError, match=r"pair\[1\].*first axis is not the batch"):
        pl.capture(UsesPair(), x, layers=["pair[1]"], progress=False)


# ------------------------------------------------------------------ signed blocks
def test_semi_keeps_signed_values_and_marks_only_signed_blocks():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(8, 4)
    acts = pl.capture(model, x, layers=["1", "2"], nonneg="semi", progress=False)
    assert acts["input:0"].signed and acts["2"].signed and not acts["1"].signed
    model.eval()
    with torch.no_grad():
        np.testing.assert_allclose(acts["2"].data, model(x).T.numpy(), rtol=1e-5, atol=1e-6)
    assert acts["2"].data.min() < 0 and acts["2"].transform is None
    assert "signed" in repr(acts["2"]) and acts["2"].info()["signed"] is True
    sub = acts.subset(slice(0, 4))
    assert sub["2"].signed and sub.n_samples == 4


# ------------------------------------------------------------------ errors
def test_a_forward_that_raises_names_the_batch_and_forward():
    def bad(model, batch):
        raise KeyError("pixel_values")

    with pytest.raises(pl.CaptureError, match=r"raised KeyError on the batch starting at sample 0.*check forward="):
        pl.capture(small_net(), torch.rand(3, 1, 8, 8), forward=bad, progress=False)


def test_a_dict_batch_the_model_cannot_take_says_how_it_was_called():
    class NeedsTwo(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = nn.ReLU()

        def forward(self, a, b):
            return self.relu(a + b)

    with pytest.raises(pl.CaptureError, match=r"batch \{'a': \(1, 2\)\}.*missing.*'b'.*dicts by keyword"):
        pl.capture(NeedsTwo(), [{"a": torch.rand(3, 2)}], layers=["relu"], include_input=False, progress=False)


def test_a_mask_of_the_wrong_shape_is_refused():
    torch.manual_seed(0)
    b = ids_batch()
    b["attention_mask"] = b["attention_mask"][:3]
    with pytest.raises(pl.InputError,
                       match=r"attention mask has shape \(3, 5\).*expected \(batch, positions\) = \(4, "):
        pl.capture(_MaskFree(), [b], layers=["mlp.1"], samples="tokens", include_input=False, progress=False)
    b["attention_mask"] = torch.ones(4, 7)
    with pytest.raises(pl.CaptureError, match=r"'mlp.1' has 5 positions but the attention mask has 7"):
        pl.capture(_MaskFree(), [b], layers=["mlp.1"], samples="tokens", include_input=False, progress=False)


class _MaskFree(Masked):
    def forward(self, input_ids, attention_mask=None):
        return self.mlp(self.emb(input_ids))


def test_variable_length_with_flattening_says_to_pool_or_use_tokens():
    torch.manual_seed(0)
    model = _MaskFree()
    data = [ids_batch(t=5), ids_batch(t=7, seed=1)]
    with pytest.raises(pl.CaptureError, match=r"changed its per-sample shape from \(5, 8\) to \(7, 8\).*"
                                              r"samples='mean', 'first' or 'tokens'"):
        pl.capture(model, data, layers=["mlp.1"], include_input=False, progress=False)
    acts = pl.capture(model, data, layers=["mlp.1"], include_input=False, samples="tokens", progress=False)
    assert acts.n_samples == 3 + 3 * 5 + 3 + 3 * 7  # padding of each batch's first sample excluded


def test_bad_selectors_and_sample_choices():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    with pytest.raises(pl.InputError, match=r"inputs='nope' is not part of the batch.*\['x', 'y'\]"):
        pl.capture(model, [{"x": torch.rand(2, 3), "y": torch.arange(2)}], inputs="nope", progress=False)
    with pytest.raises(pl.InputError, match=r"unknown samples 'tokenz'; did you mean 'tokens'"):
        pl.capture(model, torch.rand(2, 3), samples="tokenz", progress=False)
    with pytest.raises(pl.InputError, match=r"labels= must be a key"):
        pl.capture(model, torch.rand(2, 3), labels=1.5, progress=False)
    with pytest.raises(pl.InputError, match=r"forward= must be a callable"):
        pl.capture(model, torch.rand(2, 3), forward="model", progress=False)
    with pytest.raises(pl.CaptureError, match=r"one vector per sample.*not one per token"):
        pl.capture(model, torch.rand(2, 3), samples="tokens", include_input=False, progress=False)
    with pytest.raises(pl.InputError, match=r"input has shape \(1, 1, 8, 8\): pass include_input=False"):
        pl.capture(small_net(), torch.rand(2, 1, 8, 8), layers=["1"], samples="tokens", progress=False)
    with pytest.raises(pl.CaptureError, match=r"samples='first'.*\(batch, C, H, W\)"):
        pl.capture(small_net(), torch.rand(2, 1, 8, 8), layers=["1"], samples="first", progress=False)


def test_feature_map_positions_as_samples_keep_their_grid(hooks, same):
    net = small_net()
    x = torch.rand(3, 1, 8, 8)
    ref = hooks(net, ["1"], lambda: net(x))["1"][0]  # (3, 3, 6, 6)
    acts = pl.capture(net, x, layers=["1"], samples="tokens", include_input=False, progress=False)
    assert acts.n_samples == 3 * 36 and acts["1"].shape == (3,)
    same(acts["1"], ref.flatten(2).transpose(1, 2).reshape(-1, 3))
    assert acts.meta["token_grid"] == [6, 6]
    assert acts.sample_info["position"][:7].tolist() == list(range(7))  # position = h * 6 + w
    mean = pl.capture(net, x, layers=["1"], samples="mean", progress=False)
    same(mean["1"], ref.mean((2, 3)))
    assert mean.input_names == ["input:0"] and mean["input:0"].shape == (8, 8)


def test_a_semi_capture_goes_straight_into_the_factorization():
    """nonneg='semi' blocks reach pl.factorize marked signed: their loadings take both signs, F stays >= 0."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 8))
    acts = pl.capture(model, torch.rand(40, 6), layers=["1", "2"], nonneg="semi", progress=False)
    fit = pl.factorize(acts, rank=3, seed=0)
    assert fit.settings["signed"] == ["1", "2"]
    assert fit.F.min() >= 0 and min(fit.loadings["2"].min(), fit.loadings["1"].min()) < 0
    assert fit.loadings["input:0"].min() >= 0


def test_index_zero_selects_a_part_of_a_dict_free_batch():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    x, y = torch.rand(5, 3), torch.arange(5)
    acts = pl.capture(model, [[x, y]], inputs=0, labels=1, progress=False)
    np.testing.assert_allclose(acts["input:0"].data, x.T.numpy())
    with pytest.raises(pl.InputError, match=r"inputs= must be a key"):
        pl.capture(model, [[x, y]], inputs=True, progress=False)


def test_token_samples_on_disk_equal_those_in_memory(tmp_path):
    torch.manual_seed(0)
    model = _MaskFree()
    data = [ids_batch(t=5), ids_batch(t=7, seed=1)]
    ram = pl.capture(model, data, layers=["mlp.1"], include_input=False, samples="tokens", progress=False)
    disk = pl.capture(model, data, layers=["mlp.1"], include_input=False, samples="tokens", storage=tmp_path,
                      progress=False)
    assert isinstance(disk["mlp.1"].data.base, np.memmap) or isinstance(disk["mlp.1"].data, np.memmap)
    np.testing.assert_array_equal(disk["mlp.1"].data, ram["mlp.1"].data)
    np.testing.assert_array_equal(disk.sample_info["token"], ram.sample_info["token"])


class Pixels:
    """A batch object of the user's own type."""

    def __init__(self, x, y):
        self.pixels, self.y = x, y


def test_batch_objects_of_any_type_with_forward_and_selectors(hooks, same):
    net = small_net()
    x, y = torch.rand(6, 1, 8, 8), torch.arange(6) % 2
    data = [Pixels(x[:4], y[:4]), Pixels(x[4:], y[4:])]
    acts = pl.capture(net, data, layers=["1"], forward=lambda m, b: m(b.pixels), inputs=lambda b: b.pixels,
                      labels=lambda b: b.y, progress=False)
    same(acts["1"], hooks(net, ["1"], lambda: net(x))["1"][0])
    same(acts["input:0"], x[:, 0])
    assert acts.labels.tolist() == y.tolist()
    with pytest.raises(pl.InputError, match=r"got Pixels; for other batch objects pass forward="):
        pl.capture(net, data, layers=["1"], progress=False)
    with pytest.raises(pl.InputError, match=r"max_samples=5 falls inside a batch of type Pixels"):
        pl.capture(net, data, layers=["1"], forward=lambda m, b: m(b.pixels), inputs=lambda b: b.pixels,
                   max_samples=5, progress=False)
