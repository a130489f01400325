"""Capture overhead against a plain ``torch.no_grad()`` forward pass over the same data.

Target (issue "Kernel-side core"): capture costs at most 15 % more than the plain forward pass.

Run by hand::

    python benchmarks/bench_capture.py            # paper network on the 10,000 MNIST test images, ResNet-18,
                                                  # a GPT-style decoder on dict batches and a small ViT
    python benchmarks/bench_capture.py --repeats 5
    python benchmarks/bench_capture.py --only transformer

Both are timed in the same process, interleaved (plain, capture, plain, capture...), and the
median of the repeats is reported, so that load from other processes hits both alike; process
CPU time is reported beside wall-clock time (with OMP_NUM_THREADS=1 it is the work done, less
sensitive to a loaded machine).
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import peeklens as pl
from peeklens.studies import PaperNet

REPO = Path(__file__).resolve().parents[1]


def mnist_test() -> torch.Tensor:
    d = Path(os.environ.get("PEEKLENS_DATA", REPO.parent / "shared" / "data")) / "mnist"
    with gzip.open(d / "t10k-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)
    return torch.from_numpy(x.copy()).float().div_(255)


def plain(model, x, batch):
    model.eval()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            model(x[i : i + batch])


def timed(fn) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of ``fn()`` (CPU time is less sensitive to a loaded machine)."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def plain_dicts(model, batches):
    model.eval()
    with torch.no_grad():
        for b in batches:
            model(**{k: v for k, v in b.items() if k != "labels"})


def compare(name, model, x, layers, batch, repeats, run_plain=None, **kw):
    """Median time of capture over the median time of a plain forward, both over the same data."""
    run_plain = run_plain or (lambda: plain(model, x, batch))
    head = x[:1] if isinstance(x, list) else x[:batch]
    run_plain()  # warm-up
    pl.capture(model, head, layers, progress=False, batch_size=batch, **kw)
    tp, tc = [], []
    for _ in range(repeats):
        tp.append(timed(run_plain))
        tc.append(timed(lambda: pl.capture(model, x, layers, progress=False, batch_size=batch, **kw)))
    p, c = statistics.median(t[0] for t in tp), statistics.median(t[0] for t in tc)
    pc, cc = statistics.median(t[1] for t in tp), statistics.median(t[1] for t in tc)
    acts = pl.capture(model, x, layers, progress=False, batch_size=batch, **kw)
    feats = sum(b.n_features for b in acts.blocks.values())
    print(
        f"{name:46s} {acts.n_samples:6d} samples {feats:6d} features/sample | wall: plain {p:6.2f}s capture {c:6.2f}s "
        f"ratio {c / p:4.2f} | cpu: plain {pc:6.2f}s capture {cc:6.2f}s ratio {cc / pc:4.2f}"
    )
    return c / p


class Decoder(torch.nn.Module):
    """A GPT-style decoder (pre-norm blocks, causal mask, padding mask) fed tokenizer-style dict batches."""

    def __init__(self, vocab=512, d=256, n_layer=4, n_pos=128):
        super().__init__()
        nn = torch.nn
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(n_pos, d)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
            for _ in range(n_layer))
        self.head = nn.Linear(d, vocab)

    def forward(self, input_ids, attention_mask=None):
        t = input_ids.shape[1]
        h = self.tok(input_ids) + self.pos(torch.arange(t))
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        pad = None if attention_mask is None else attention_mask == 0
        for block in self.blocks:
            h = block(h, src_mask=causal, src_key_padding_mask=pad, is_causal=True)
        return self.head(h)


def token_batches(n_batches=8, batch=32, t=64, vocab=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        ids = torch.randint(1, vocab, (batch, t), generator=g)
        lengths = torch.randint(t // 2, t + 1, (batch,), generator=g)
        mask = (torch.arange(t)[None] < lengths[:, None]).long()
        out.append({"input_ids": ids * mask, "attention_mask": mask, "labels": torch.zeros(batch, dtype=torch.long)})
    return out


def transformers(repeats):
    torch.manual_seed(0)
    dec = Decoder()
    batches = token_batches()
    layers = [f"blocks.{i}" for i in range(4)]
    run = lambda: plain_dicts(dec, batches)
    compare("GPT-style decoder, 4 blocks, per token (hooks)", dec, batches, layers, 32, repeats, run_plain=run,
            samples="tokens", include_input=False, nonneg="semi")
    compare("GPT-style decoder, 4 blocks, mean (hooks)", dec, batches, layers, 32, repeats, run_plain=run,
            samples="mean", include_input=False, nonneg="semi")
    compare("GPT-style decoder, 4 blocks, flattened (hooks)", dec, batches, layers, 32, repeats, run_plain=run,
            include_input=False, nonneg="semi")

    from torchvision.models import vit_b_16

    vit = vit_b_16(weights=None, image_size=64)  # 16 patches + the class token
    xv = torch.rand(64, 3, 64, 64)
    vit_layers = [f"encoder.layers.encoder_layer_{i}.mlp" for i in (2, 5, 8, 11)]
    compare("vit_b_16 64px, 4 MLPs, per token (hooks)", vit, xv, vit_layers, 32, repeats, samples="tokens",
            include_input=False, nonneg="semi")
    compare("vit_b_16 64px, 4 MLPs, flattened (hooks)", vit, xv, vit_layers, 32, repeats, nonneg="semi")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", choices=["cnn", "transformer"], default=None)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores\n")
    if args.only != "cnn":
        transformers(args.repeats)
    if args.only == "transformer":
        return 0
    x = mnist_test()
    net = PaperNet()
    compare("paper net, relu+relu_1 (FX)", net, x, ["relu", "relu_1"], 500, args.repeats)
    compare("paper net, default (all relus)", net, x, None, 500, args.repeats)

    from torchvision.models import resnet18

    r18 = resnet18(weights=None)
    xr = torch.rand(256, 3, 112, 112)
    compare("resnet18 112px, layer1..4 (hooks)", r18, xr, ["layer1", "layer2", "layer3", "layer4"], 64, args.repeats)
    compare("resnet18 112px, avgpool+layer4 (hooks)", r18, xr, ["layer4", "avgpool"], 64, args.repeats)


if __name__ == "__main__":
    sys.exit(main())
