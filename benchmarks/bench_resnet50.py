"""Large-model benchmark: ResNet-50 (weights=None), 1,000 images at 224x224, all 16 Bottleneck outputs.

Measures time and peak memory of ``pl.capture`` + ``pl.factorize(rank=10)`` in two modes:

- ``--mode storage``: full-resolution blocks kept on disk as memory-mapped ``.npy`` files
  (``capture(storage=DIR)``); the factorization streams over the memory maps.
- ``--mode pool``: every Bottleneck output average-pooled to ``--pool`` x ``--pool`` per channel
  (``capture(pool=...)``), blocks in RAM.

Inputs are synthetic random images (this is about memory, not about what the network learned);
they are generated per index, so the data set itself holds nothing in memory.

Peak memory is sampled from ``/proc/self/status`` every 50 ms: ``RssAnon`` is memory the process
owns (what must fit in RAM), ``RssFile`` is file pages mapped in (memory-mapped blocks: page cache
the kernel can drop and reread), ``VmHWM``/``ru_maxrss`` is the peak of their sum.

Run each mode in its own process so that peaks do not mix::

    python benchmarks/bench_resnet50.py --mode pool
    python benchmarks/bench_resnet50.py --mode storage --storage /tmp/peeklens-r50 --max-iter 5
    python benchmarks/bench_resnet50.py --mode storage --keep --default-call      # issue 19, section 2
    python benchmarks/bench_resnet50.py --mode storage --reuse --keep --default-call --options '{"fused": true}'
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import threading
import time
from pathlib import Path

import torch
import torchvision
from torchvision.models.resnet import Bottleneck

import peeklens as pl


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                out[key] = int(rest.split()[0]) * 1024
    return out


class PeakMonitor:
    """Samples /proc/self/status in a thread and keeps the peaks of RSS, anonymous and file RSS."""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for k, v in _status().items():
                self.peak[k] = max(self.peak.get(k, 0), v)
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMonitor:
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        for k, v in _status().items():
            self.peak[k] = max(self.peak.get(k, 0), v)


class RandomImages(torch.utils.data.Dataset):
    """``n`` random 3x224x224 images in [0, 1), the same for the same index."""

    def __init__(self, n: int, size: int = 224) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(i)
        return torch.rand(3, self.size, self.size, generator=g), i % 10


def reuse_blocks(store: Path, model) -> pl.Activations:
    """Activations over the memory-mapped ``.npy`` files that ``capture(storage=store)`` wrote."""
    import numpy as np

    layers = [n for n, m in model.named_modules() if isinstance(m, Bottleneck)]
    blocks = {}
    for name in ["input:0", "input:1", "input:2"] + layers:
        f = store / (name.replace(":", "_") + ".npy") if name.startswith("input") else store / f"{name}@0.npy"
        buf = np.load(f, mmap_mode="r")  # (samples x features), as capture writes it
        blocks[name] = pl.Block(name, buf.T, (buf.shape[1],), "input" if name.startswith("input") else "layer")
    return pl.Activations(blocks)


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["storage", "pool"], required=True)
    ap.add_argument("--n", type=int, default=1000, help="number of images")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--pool", type=int, default=2, help="pooled spatial size in --mode pool")
    ap.add_argument("--storage", default="/tmp/peeklens-r50", help="block directory in --mode storage")
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--max-iter", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="keep the memory-mapped blocks afterwards")
    ap.add_argument("--reuse", action="store_true",
                    help="--mode storage: factorize the blocks already in --storage (kept by --keep) without capturing")
    ap.add_argument("--solver", default=None, help="factorize solver (default: peeklens's default)")
    ap.add_argument("--exact-iter", type=int, default=None,
                    help="solver_options exact_iter of the 'compressed' solver (passes over the real data)")
    ap.add_argument("--default-call", action="store_true",
                    help="the whole default pl.factorize(acts, rank) call (library max_iter and tol) instead of "
                         "max_iter=--max-iter, tol=0; prints passes over the data and the read rate")
    ap.add_argument("--options", default=None, help="solver_options as JSON (e.g. '{\"fused\": true}')")
    ap.add_argument("--json", help="write the numbers to this file too")
    args = ap.parse_args()

    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    layers = [n for n, m in model.named_modules() if isinstance(m, Bottleneck)]
    assert len(layers) == 16, layers
    loader = torch.utils.data.DataLoader(RandomImages(args.n), batch_size=args.batch, shuffle=False)

    kw: dict = {}
    if args.mode == "storage":
        store = Path(args.storage)
        if store.exists() and not args.reuse:
            shutil.rmtree(store)
        kw["storage"] = store
    else:
        kw["pool"] = args.pool

    est = pl.estimate_bytes(model, torch.rand(2, 3, 224, 224), args.n, layers=layers, pool=kw.get("pool"))
    print(f"threads: {torch.get_num_threads()}  torch {torch.__version__}  peeklens {pl.__version__}")
    print(f"estimated blocks: {len(est)} blocks, {gib(sum(est.values()))} in all "
          f"(largest {max(est, key=est.get)}: {gib(max(est.values()))})")
    base = _status()

    t0 = time.perf_counter()
    with PeakMonitor() as cap_mem:
        if args.reuse:
            acts = reuse_blocks(Path(args.storage), model)
        else:
            acts = pl.capture(model, loader, layers=layers, progress=False, **kw)
    t_capture = time.perf_counter() - t0
    print(f"capture: {t_capture:.1f} s, {len(acts)} blocks, {acts.n_features:,} features x {acts.n_samples} "
          f"samples = {gib(acts.nbytes)}; peak RssAnon {gib(cap_mem.peak['RssAnon'])}, "
          f"peak RssFile {gib(cap_mem.peak['RssFile'])}, peak RSS {gib(cap_mem.peak['VmRSS'])}")

    import importlib

    fz = importlib.import_module("peeklens.nmf")

    solver = args.solver or fz.DEFAULT_SOLVER
    opts = dict(json.loads(args.options)) if args.options else {}
    if args.exact_iter is not None:
        opts["exact_iter"] = args.exact_iter
    opts = opts or None
    limits = {} if args.default_call else {"max_iter": args.max_iter, "tol": 0}
    t0 = time.perf_counter()
    with PeakMonitor() as fit_mem:
        fit = pl.factorize(acts, rank=args.rank, solver=solver, solver_options=opts, **limits)
    t_fit = time.perf_counter() - t0
    passes = fit.settings.get("passes", {})
    if passes:
        total = passes.get("total", 0.0)
        print(f"passes over the data: {passes}; {total * acts.nbytes / t_fit / 1e9:.3f} GB/s "
              f"({t_fit / max(total, 1e-9):.1f} s per pass's worth); objective {float(fit.objective[-1]):.10g}")
    print(f"factorize(rank={args.rank}, max_iter={args.max_iter}, solver={solver!r}, options={opts}): "
          f"{fit.n_iter} iterations, {t_fit:.1f} s "
          f"({t_fit / max(1, fit.n_iter):.2f} s/iteration incl. setup), rmse {fit.rmse:.4g}; "
          f"peak RssAnon {gib(fit_mem.peak['RssAnon'])}, peak RssFile {gib(fit_mem.peak['RssFile'])}, "
          f"peak RSS {gib(fit_mem.peak['VmRSS'])}")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"process peak RSS (ru_maxrss, anonymous + mapped file pages): {gib(maxrss)}")

    result = {
        "mode": args.mode, "n": args.n, "batch": args.batch, "pool": kw.get("pool"), "rank": args.rank,
        "max_iter": args.max_iter, "solver": solver, "solver_options": opts, "n_iter": fit.n_iter,
        "reused_blocks": bool(args.reuse), "blocks": len(acts), "features": acts.n_features,
        "block_bytes": acts.nbytes, "largest_block": max(est, key=est.get),
        "largest_block_bytes": max(est.values()), "capture_s": t_capture, "factorize_s": t_fit,
        "rmse": fit.rmse, "baseline_rss": base.get("VmRSS"),
        "capture_peak": cap_mem.peak, "factorize_peak": fit_mem.peak, "ru_maxrss": maxrss,
        "torch_threads": torch.get_num_threads(), "default_call": bool(args.default_call),
        "passes": passes, "objective": float(fit.objective[-1]),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    del acts, fit
    if args.mode == "storage" and not args.keep:
        shutil.rmtree(kw["storage"], ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
