"""Passes over memory-mapped blocks and the speed of the out-of-core default call (issue 19, section 2).

Writes a synthetic non-negative data set to disk as samples-major ``.npy`` files, as
``capture(storage=)`` does (three blocks, a planted rank-20 structure plus noise; about
``--gib`` GiB), opens them as read-only memory maps and runs ``pl.factorize`` at ``--rank`` with
the given solver options, printing ``settings["passes"]`` (each a read of every block), the
seconds, the objective and the rate ``passes x data bytes / seconds``.  Run each configuration in
its own process (``--options '{"fused": true, "power_iter": 0, "refine": 3}'``); the files are kept
in ``--dir`` between runs.

Note: the rate is only a disk rate when the files are not in the page cache (a data set larger
than the RAM, as the 21 GiB of benchmarks/bench_resnet50.py); with a small set it is the rate of
the products on page-cached data.

    python benchmarks/bench_passes.py --dir /tmp/pl-passes --gib 1.5 --rank 10
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import peeklens as pl


def make(dirname: Path, gib: float, seed: int = 0) -> pl.Activations:
    shares = {"input:0": 1 / 3, "relu": 1 / 2, "relu_1": 1 / 6}
    n = 16000
    total = int(gib * 2**30 / 4 / n)
    rng = np.random.default_rng(seed)
    F = rng.random((n, 20), dtype=np.float32) ** 3
    blocks = {}
    for name, share in shares.items():
        m = int(total * share)
        path = dirname / f"{name.replace(':', '_')}.npy"
        if not path.exists():
            buf = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, m))
            W = rng.random((m, 20), dtype=np.float32) ** 4
            for j in range(0, n, 2000):
                part = F[j : j + 2000] @ W.T
                part += 0.2 * rng.random(part.shape, dtype=np.float32) ** 3
                buf[j : j + 2000] = np.maximum(part - 0.5, 0)
            buf.flush()
            del buf
        ro = np.load(path, mmap_mode="r")
        blocks[name] = pl.Block(name, ro.T, (m,), "input" if name.startswith("input") else "layer")
    return pl.Activations(blocks)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/tmp/pl-passes")
    ap.add_argument("--gib", type=float, default=1.5)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--options", default="{}", help="solver_options as JSON")
    ap.add_argument(
        "--in-memory", action="store_true", help="load the blocks into RAM first: the reference in-memory fit"
    )
    args = ap.parse_args(argv)
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    acts = make(d, args.gib)
    if args.in_memory:  # the same samples-major layout, in anonymous memory
        acts = pl.Activations(
            {n: pl.Block(n, np.array(acts[n].data.T).T, acts[n].shape, acts[n].kind) for n in acts.names}
        )
    data = sum(acts[n].data.nbytes for n in acts.names)
    opts = json.loads(args.options)
    t, c = time.perf_counter(), time.process_time()
    fit = pl.factorize(acts, args.rank, solver_options=opts or None)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    p = fit.settings["passes"]
    print(
        json.dumps(
            {
                "options": opts,
                "in_memory": bool(args.in_memory),
                "data_gib": round(data / 2**30, 3),
                "shape": [acts.n_features, acts.n_samples],
                "passes": p,
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "objective": float(fit.objective[-1]),
                "refinements": fit.settings.get("refinements"),
                "gb_per_s": round(p["total"] * data / 1e9 / wall, 3),
                "threads": os.environ.get("OMP_NUM_THREADS"),
                "peeklens": pl.__file__,
            }
        )
    )


if __name__ == "__main__":
    main()
