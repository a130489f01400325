"""Time the paper's algorithm on the paper's workload.

``factorize(rank=10, max_iter=300, solver="mu", tol=0)`` on the blocks of the paper network
(784 + 1440 + 320 rows) over the full 10,000-image MNIST test set, on this machine's CPU.
The network's weights do not change the cost of an iteration; pass ``--checkpoint`` to use
trained ones.

    python benchmarks/bench_paper_mu.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from bench_capture import PaperNet, mnist_test

import peeklens as pl


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--checkpoint", help="state dict of a trained paper network (weights_only load)")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    net = PaperNet()
    if args.checkpoint:
        net.load_state_dict(torch.load(args.checkpoint, weights_only=True))
    acts = pl.capture(net, mnist_test(), layers=["relu", "relu_1"], progress=False)
    print(acts)
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        fit = pl.factorize(acts, rank=10, max_iter=300, tol=0, solver="mu")
        times.append(time.perf_counter() - t)
    print(fit)
    mu_median = statistics.median(times)
    print(
        f"factorize(rank=10, max_iter=300, solver='mu'): median {mu_median:.2f} s "
        f"over {args.repeats} runs ({', '.join(f'{t:.2f}' for t in times)}); "
        f"{torch.get_num_threads()} torch threads"
    )
    mu_rmse = fit.rmse
    for solver in ["compressed", "hals"]:  # the fast solvers with their defaults, same data, same process
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            f = pl.factorize(acts, rank=10, max_iter=300, solver=solver)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(
            f"factorize(rank=10, max_iter=300, solver={solver!r}): median {med:.2f} s "
            f"({mu_median / med:.0f}x faster than mu), rmse {f.rmse:.4f} (mu: {mu_rmse:.4f}), {f.n_iter} iterations"
        )


if __name__ == "__main__":
    sys.exit(main())
