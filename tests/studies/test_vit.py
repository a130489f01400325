"""The tiny ViT of the transformer tutorial: shapes, per-token capture, training, cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import peeklens as pl
from peeklens.errors import InputError
from peeklens.studies import vit
from peeklens.studies.vit import TinyViT, ViTConfig, patch_box, train_vit


def _digits(n=96, seed=0):
    """Images whose class is where a bright square is: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.1
    for i, c in enumerate(y.tolist()):
        r, q = divmod(c, 2)
        x[i, 0, r * 14 : r * 14 + 14, q * 14 : q * 14 + 14] += 0.9
    return x, y


def test_per_token_capture_equals_forward_hooks_and_positions_map_to_patches():
    torch.manual_seed(0)
    model = TinyViT(dim=16, depth=2, heads=2, mlp_dim=32).eval()
    x = torch.randn(5, 1, 28, 28)
    seen = {}
    handles = [
        model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o.detach()))
        for n in ("blocks.0.mlp", "blocks.1.attn")
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    acts = pl.capture(
        model,
        x,
        layers=["blocks.0.mlp", "blocks.1.attn"],
        samples="tokens",
        include_input=False,
        nonneg="semi",
        progress=False,
    )
    assert acts.n_samples == 5 * model.n_tokens == 5 * 50
    info = acts.sample_info
    for name, out in seen.items():
        block = acts[name]
        assert block.signed and (block.data < 0).any()
        ref = out.reshape(-1, 16).numpy()  # (image, token) row-major, as sample_info says
        order = info["sample"] * model.n_tokens + info["position"]
        np.testing.assert_allclose(block.data.T, ref[order], rtol=1e-5, atol=1e-6)
    # token 1 + i is patch i of the row-major 7 x 7 grid: the embedding of a patch sees only its pixels
    x2 = x.clone()
    top, left, bottom, right = patch_box(1 + 17)
    x2[:, :, top:bottom, left:right] += 1.0
    emb = lambda z: model.embed(z).flatten(2).transpose(1, 2)  # noqa: E731
    changed = (emb(x2) - emb(x)).abs().sum((0, 2)) > 0
    assert changed.nonzero().flatten().tolist() == [17]


def test_patch_box_and_bad_settings():
    assert patch_box(0) is None
    assert patch_box(1) == (0, 0, 4, 4) and patch_box(7) == (0, 24, 4, 28) and patch_box(8) == (4, 0, 8, 4)
    assert patch_box(1 + 3, patch=7) == (0, 21, 7, 28) and patch_box(1 + 4, patch=7) == (7, 0, 14, 7)
    with pytest.raises(InputError, match="outside"):
        patch_box(50)
    with pytest.raises(InputError, match="divide"):
        TinyViT(patch=5)
    with pytest.raises(InputError, match="multiple of heads"):
        TinyViT(dim=10, heads=4)
    with pytest.raises(InputError, match="epochs"):
        train_vit(ViTConfig(epochs=0), data=_digits(), cache=False, progress=False)


def test_training_learns_is_seeded_and_caches(tmp_path, monkeypatch):
    x, y = _digits(256)
    cfg = ViTConfig(epochs=8, dim=16, depth=1, heads=2, mlp_dim=32, batch_size=32)
    a = train_vit(cfg, data=(x, y), cache=tmp_path, progress=False)
    assert not a.cached and a.path is None and not list(tmp_path.iterdir())  # explicit data is never cached
    with torch.no_grad():
        acc = (a.model(pl.studies.normalize(x, "mnist")).argmax(1) == y).float().mean().item()
    assert acc > 0.9 and a.final_loss < 0.5
    b = train_vit(cfg, data=(x, y), cache=False, progress=False)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k

    # the default data (MNIST) is cached under the settings' key and loaded back
    monkeypatch.setattr(vit, "load_mnist", lambda train=True: (x, y))
    first = train_vit(cfg, cache=tmp_path, progress=False)
    assert not first.cached and first.path.exists() and first.path.name.startswith("tinyvit-mnist-")
    again = train_vit(cfg, cache=tmp_path, progress=False)
    assert again.cached and again.final_loss == pytest.approx(first.final_loss)
    for k, v in first.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k
    other = ViTConfig(epochs=8, dim=16, depth=1, heads=2, mlp_dim=32, batch_size=32, seed=1)
    assert other.key() != cfg.key()
