"""Token samples in the views: the display section keeps each shown token's text in context (decode=)."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

import peeklens as pl
from peeklens import report, schema
from peeklens.patches import PatchGrid
from peeklens.views import top_inputs
from peeklens.widgets import Dashboard, LatentGallery

VOCAB = ["<pad>", "the", "cat", "sat", "on", "mat", "dog", "ran", "far", "away"]


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.mlp = nn.Embedding(len(VOCAB), 6), nn.Sequential(nn.Linear(6, 8), nn.ReLU())

    def forward(self, input_ids, attention_mask):
        return self.mlp(self.emb(input_ids))


@pytest.fixture(scope="module")
def capture():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, len(VOCAB), (12, 7), generator=g)
    mask = torch.ones_like(ids)
    mask[::3, 5:] = 0  # padding: not samples
    batches = [{"input_ids": ids[i : i + 4], "attention_mask": mask[i : i + 4]} for i in range(0, 12, 4)]
    acts = pl.capture(Tiny(), batches, layers=["mlp.1"], samples="tokens", include_input=False, progress=False)
    return acts, ids, mask


def expected_text(ids, mask, sample, position, context=3):
    """The token at (sample, position) with its neighbours in that input (padding left out), from the ids."""
    words = []
    for p in range(max(0, position - context), min(ids.shape[1], position + context + 1)):
        if mask[sample, p]:
            w = VOCAB[int(ids[sample, p])]
            words.append(f"[{w}]" if p == position else w)
    return " ".join(words)


def test_display_keeps_the_text_of_the_shown_tokens(capture):
    acts, ids, mask = capture
    assert acts.n_samples == int(mask.sum())
    sw = pl.sweep(acts, ranks=[2, 3], max_iter=30, progress=False)
    assert sw[2].sample_info is not None and set(sw[2].sample_info) >= {"sample", "position", "token"}
    meta, arrays = schema.to_payload(sw, top_k=4, decode=VOCAB)
    d = meta["display"]
    samples = arrays[d["samples"]]
    assert d["images"] == [] and len(d["text"]) == len(samples)
    info = acts.sample_info
    for s, text in zip(samples, d["text"]):
        assert text == expected_text(ids, mask, int(info["sample"][s]), int(info["position"][s]))
    # every factor's top tokens are among the shown samples, at every rank
    for r in sw.ranks:
        assert set(top_inputs(sw[r], 4).ravel().tolist()) <= set(samples.tolist())
    # a tokenizer-style decode gives the same text
    meta2, _ = schema.to_payload(sw, top_k=4, decode=lambda t: " ".join(VOCAB[i] for i in t))
    assert meta2["display"]["text"] == d["text"]
    # without decode: no text, and no display section (nothing to show)
    assert schema.to_payload(sw, top_k=4)[0]["display"] is None


def test_saved_file_and_gallery_carry_the_text(capture, tmp_path):
    acts, ids, mask = capture
    fit = pl.factorize(acts, rank=2, max_iter=30)
    path = pl.save(fit, tmp_path / "tokens.peeklens", decode=VOCAB, top_k=3)
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("meta.json"))
    disp = meta["fit"]["display"]  # a Factorization keeps its sample fields in "fit"
    assert disp["top_k"] == 3 and len(disp["text"]) >= 3 and all(t.count("[") == 1 for t in disp["text"])
    loaded = pl.load(path)
    np.testing.assert_allclose(loaded.F, fit.F)
    gal = LatentGallery(fit, decode=VOCAB, top_k=3)
    assert gal.meta["display"]["text"] == disp["text"]  # the widget syncs the same display section
    with pytest.raises(pl.InputError, match="decode="):
        LatentGallery(fit)
    d = gal.data()  # the arrays behind it: the top tokens (no latent image without an input block)
    assert "latent_images" not in d and d["top_inputs"].shape == (2, 3)
    dash = Dashboard(fit, decode=VOCAB, top_k=3)
    assert dash.gallery is not None and dash.gallery.meta["display"]["text"] == disp["text"]
    assert Dashboard(fit).gallery is None
    # the offline report embeds the file with the text (its gallery draws it with the same TypeScript)
    html = report.render_report({"net": fit}, decode=VOCAB)
    b64 = re.search(r'data-kind="sweep"[^>]*>([^<]+)</script>', html).group(1)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(b64))) as z:
        embedded = json.loads(z.read("meta.json"))
    assert embedded["display"]["text"]
    with zipfile.ZipFile(io.BytesIO(pl.io.to_bytes(fit, decode=VOCAB, top_k=3))) as z:
        assert json.loads(z.read("meta.json"))["fit"]["display"]["text"] == disp["text"]


def test_token_texts_checks_the_vocabulary():
    info = {"sample": np.array([0, 0]), "position": np.array([0, 1]), "token": np.array([1, 12])}
    with pytest.raises(pl.InputError, match="token id 12 is not in the vocabulary of 10"):
        schema.token_texts(info, [1], VOCAB)
    with pytest.raises(pl.InputError, match="no 'token'"):
        schema.token_texts({"sample": info["sample"], "position": info["position"]}, [0], VOCAB)


class TinyViT(nn.Module):
    """4x4-pixel patches of 8x8 images (a 2x2 grid) and a CLS token in front."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Conv2d(1, 6, 4, stride=4)
        self.cls = nn.Parameter(torch.rand(1, 1, 6))
        self.mlp = nn.Sequential(nn.Linear(6, 8), nn.ReLU())

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)  # (batch, 4 patches, 6)
        return self.mlp(torch.cat([self.cls.expand(x.shape[0], 1, 6), t], dim=1))


def test_image_patch_samples_keep_their_patch_and_location(tmp_path):
    g = torch.Generator().manual_seed(2)
    images = torch.rand(10, 1, 8, 8, generator=g)
    acts = pl.capture(TinyViT(), images, layers=["mlp.1"], samples="tokens", include_input=False, progress=False)
    assert acts.n_samples == 10 * 5  # CLS + 4 patches per image
    fit = pl.factorize(acts, rank=2, max_iter=20)
    grid = PatchGrid(images.numpy(), patch=4, offset=1, context=1)
    meta, arrays = schema.to_payload(fit, top_k=3, decode=grid)
    d = meta["fit"]["display"]
    samples = arrays[d["samples"]]
    crops, boxes, cells = (arrays[d["patches"][k]] for k in ("images", "boxes", "cells"))
    assert crops.shape == (len(samples), 12, 12, 1) and boxes.shape == (len(samples), 4)
    lo, hi = float(images.min()), float(images.max())
    info = acts.sample_info
    for j, s in enumerate(samples):
        img, p = int(info["sample"][s]), int(info["position"][s]) - 1
        if p < 0:  # the CLS token: no patch
            assert boxes[j].tolist() == [-1, -1, -1, -1] and cells[j].tolist() == [-1, -1] and not crops[j].any()
            continue
        row, col = divmod(p, 2)
        assert cells[j].tolist() == [row, col] and boxes[j].tolist() == [4, 4, 4, 4]
        patch = images[img, 0, 4 * row : 4 * row + 4, 4 * col : 4 * col + 4].numpy()
        np.testing.assert_allclose(crops[j, 4:8, 4:8, 0], (patch - lo) / (hi - lo), rtol=1e-5, atol=1e-6)
    gal = LatentGallery(fit, decode=grid, top_k=3)  # no input block: the gallery shows the patches
    assert gal.meta["display"]["patches"]["images"] in gal.arrays
    with pytest.raises(pl.InputError, match="8x8"):
        schema.to_payload(fit, decode=PatchGrid(images.numpy(), patch=16))
