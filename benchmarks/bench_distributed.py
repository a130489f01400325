"""Distributed factorization (``distributed=True``, gloo): communication and time per iteration.

Issue 19, section 1: communication volume per iteration and time per iteration at 1, 2 and 4
processes on the paper workload's shape (10,000 samples x 2,544 features, rank 20), with random
non-negative data of that shape (blocks of 784, 1176, 500 and 84 features).

Run by hand::

    python benchmarks/bench_distributed.py                      # 1, 2, 4 processes
    python benchmarks/bench_distributed.py --world 1 2 --iters 10

Each world size launches this file as a script in that many processes (a ``file://``
rendezvous, one PyTorch thread each); every process holds an equal share of the samples.
``hals`` and ``mu`` run ``--iters`` iterations with ``tol=0`` (each iteration is two passes over the
local data and one all-reduce of (features + rank) x rank numbers); ``compressed`` is the whole
default call.  Reported per process: seconds per iteration, bytes all-reduced per iteration
(counted by :class:`peeklens.nmf.distributed.Comm`), all-reduces per iteration.  The
"plain" row is the ordinary single-process call (no process group) on the same data and thread
count.  The load average of the machine is printed: on a machine with fewer cores than
processes, the processes share cores and the times grow instead of shrinking.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FEATURES = [784, 1176, 500, 84]  # 2,544 in all
SAMPLES = 10_000
RANK = 20


def shard(rank: int, world: int):
    """This process's samples of the random workload (drawn for all samples, then cut)."""
    import peeklens as pl

    counts = [SAMPLES // world + (1 if i < SAMPLES % world else 0) for i in range(world)]
    lo = sum(counts[:rank])
    rng = np.random.default_rng(0)
    blocks = {}
    for i, m in enumerate(FEATURES):
        blocks["input:0" if i == 0 else f"layer{i}"] = np.ascontiguousarray(
            rng.random((m, SAMPLES), dtype=np.float32)[:, lo : lo + counts[rank]]
        )
    return pl.Activations.from_arrays(blocks)


def measure(acts, iters: int, distributed: bool) -> dict:
    import peeklens as pl

    out = {}
    for solver in ("hals", "mu"):
        t0 = time.perf_counter()
        fit = pl.factorize(acts, RANK, solver=solver, max_iter=iters, tol=0, init="random", distributed=distributed)
        sec = time.perf_counter() - t0
        d = fit.settings.get("distributed", {})
        out[solver] = {
            "s_per_iter": fit.seconds / fit.n_iter,
            "call_s": sec,
            "bytes_per_iter": d.get("bytes_reduced", 0) / fit.n_iter,
            "reduces_per_iter": d.get("all_reduces", 0) / fit.n_iter,
            "objective": float(fit.objective[-1]),
        }
    t0 = time.perf_counter()
    fit = pl.factorize(acts, RANK, distributed=distributed)
    d = fit.settings.get("distributed", {})
    out["compressed"] = {
        "call_s": time.perf_counter() - t0,
        "iters": fit.n_iter,
        "bytes_call": d.get("bytes_reduced", 0),
        "reduces_call": d.get("all_reduces", 0),
        "objective": float(fit.objective[-1]),
    }
    return out


def worker(rank: int, world: int, init_file: str, out: str, iters: int) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world, timeout=datetime.timedelta(minutes=10)
    )
    try:
        res = measure(shard(rank, world), iters, distributed=True)
    finally:
        dist.destroy_process_group()
    Path(out, f"rank{rank}.json").write_text(json.dumps(res))


def launch(world: int, iters: int) -> list[dict]:
    tmp = Path(tempfile.mkdtemp())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", str(r), str(world), str(tmp / "rdv"), str(tmp), str(iters)], env=env
        )
        for r in range(world)
    ]
    try:
        for p in procs:
            p.wait(timeout=1800)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(world)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    print(f"{SAMPLES} samples x {sum(FEATURES)} features, rank {RANK}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f} at start; one thread per process")  # fmt: skip
    import torch

    torch.set_num_threads(1)
    rows = [("plain", 1, measure(shard(0, 1), args.iters, distributed=False))]
    for w in args.world:
        res = launch(w, args.iters)
        rows.append((f"gloo x{w}", w, max(res, key=lambda r: r["hals"]["s_per_iter"])))  # the slowest process
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print("| run | hals s/iter | mu s/iter | bytes all-reduced/iter (hals, mu) | all-reduces/iter | "
          "default call s | its bytes | its all-reduces |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, _w, r in rows:
        h, m, c = r["hals"], r["mu"], r["compressed"]
        print(
            f"| {name} | {h['s_per_iter']:.4f} | {m['s_per_iter']:.4f} | {h['bytes_per_iter']:.0f}, "
            f"{m['bytes_per_iter']:.0f} | {h['reduces_per_iter']:.1f}, {m['reduces_per_iter']:.1f} | "
            f"{c['call_s']:.2f} | {c['bytes_call']:.0f} | {c['reduces_call']} |"
        )
    ref = rows[0][2]
    for name, _w, r in rows[1:]:
        print(f"{name}: objective / plain: hals {r['hals']['objective'] / ref['hals']['objective']:.7f}, "
              f"mu {r['mu']['objective'] / ref['mu']['objective']:.7f}, "
              f"default {r['compressed']['objective'] / ref['compressed']['objective']:.7f}")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6]))
    else:
        main()
