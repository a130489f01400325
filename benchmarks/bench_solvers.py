"""Factorization solvers against scikit-learn on the paper workload, and how time grows.

Run by hand (not part of the tests)::

    PEEKLENS_DATA=../shared/data python benchmarks/bench_solvers.py            # full (several minutes)
    PEEKLENS_DATA=../shared/data python benchmarks/bench_solvers.py --quick    # ranks 10 and 50, small scaling
    python benchmarks/bench_solvers.py --device cuda                           # peeklens solvers on a GPU

The paper workload, built in this process: the paper's MNIST network trained for ONE epoch on the
60,000 MNIST training images (plain torch, SGD lr 0.01 momentum 0.5, batch 64, inputs in [0, 1]),
captured on the full 10,000-image test set: blocks of 784 + 1440 + 320 rows.  For each rank
(10, 20, 30, 40, 50):

* scikit-learn ``NMF(solver="cd", init="random", max_iter=200, tol=0)`` on the stacked matrix: its
  final objective is the TARGET of that rank;
* scikit-learn ``NMF(solver="mu", init="random", max_iter=200, tol=0)``;
* the paper's MU (``solver="mu"``, 200 iterations);
* every peeklens solver with its defaults, and the time it needs to reach the target, from the
  timed trace of that one default call (HALS: its exact objective after every iteration;
  compressed: the exact objective of each refinement round); when the defaults stop above the
  target, from a longer run (marked ``*``).

Final objectives are ``sum ||X - W H||^2`` over the stacked matrix, recomputed here in float64
from the returned factors.
Peak memory is the growth of the process's peak resident set during the call (Linux: VmHWM after
resetting it through /proc/self/clear_refs) -- it includes torch's CPU allocations -- compared
with the size of the stacked float32 data matrix.  On CUDA the peak of torch's allocator is shown.

Then the whole five-rank sweep: the default solver (warm starts and one shared sketch, and without
warm starts), and exact HALS one rank at a time against all ranks at once (``batched=True``), the
default call again with seeds 0, 1, 2 (``--seeds``: the spread of its time to target), and
a scaling run: samples 1k -> 60k (the MNIST training set through the same network) and neurons
up to 50k (synthetic non-negative low-rank data), rank 20.

The machine may be shared: the script prints ``os.getloadavg()`` next to the timings.

``--whole-call`` prints only the table of issue 19 (section 4): for each rank, scikit-learn
``NMF(solver="cd", init="random", max_iter=200, tol=0)`` and the WHOLE default ``pl.factorize`` call
(checks, sketch, init, solver, errors), both in this process, each run ``--reps`` times (median);
wall seconds (``time.perf_counter``) and CPU seconds (``time.process_time``, less sensitive to other
processes on a shared machine) and both ratios.  Set ``OMP_NUM_THREADS`` (the same for both)::

    OMP_NUM_THREADS=1 PEEKLENS_DATA=../shared/data python benchmarks/bench_solvers.py --whole-call --reps 3
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import peeklens as pl
from peeklens import nmf as fz

REPO = Path(__file__).resolve().parents[1]

try:  # the studies module has the same network; keep a copy so the benchmark runs without it
    from peeklens.studies.networks import PaperNet
except Exception:  # pragma: no cover

    class PaperNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 10, 5)
            self.conv2 = nn.Conv2d(10, 20, 5)
            self.conv2_drop = nn.Dropout2d()
            self.fc1 = nn.Linear(320, 50)
            self.fc2 = nn.Linear(50, 10)

        def forward(self, x):
            x = F.relu(F.max_pool2d(self.conv1(x), 2))
            x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
            x = F.relu(self.fc1(x.view(-1, 320)))
            x = F.dropout(x, training=self.training)
            return F.log_softmax(self.fc2(x), dim=1)


# ----------------------------------------------------------------------------- data
def mnist(train: bool):
    """MNIST from $PEEKLENS_DATA (default ../shared/data): (N, 1, 28, 28) in [0, 1] and labels."""
    from peeklens.studies import load_mnist

    return load_mnist(train=train, root=os.environ.get("PEEKLENS_DATA", REPO.parent / "shared" / "data"))


def train_one_epoch(x, y, seed=0) -> nn.Module:
    torch.manual_seed(seed)
    net = PaperNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.5)
    net.train()
    perm = torch.randperm(len(x))
    for i in range(0, len(x), 64):
        b = perm[i : i + 64]
        opt.zero_grad()
        F.nll_loss(net(x[b]), y[b]).backward()
        opt.step()
    net.eval()
    return net


# ----------------------------------------------------------------------------- measuring
def _vm(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def measure(fn, device="cpu"):
    """(result, seconds, peak extra bytes) of ``fn()``."""
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        base = _vm("VmRSS:")
    t = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    peak = (torch.cuda.max_memory_allocated() if cuda else _vm("VmHWM:")) - base
    return out, dt, max(peak, 0)


def objective_np(X, W, H) -> float:
    """||X - W H||^2 in float64, in chunks (X samples x features)."""
    s = 0.0
    for i in range(0, X.shape[0], 2000):
        R = X[i : i + 2000].astype(np.float64) - W[i : i + 2000].astype(np.float64) @ H.astype(np.float64)
        s += float(np.sum(R * R))
    return s


def fit_objective(acts, fit) -> float:
    """``sum_b ||X_b - W_b F^T||^2`` recomputed here in float64 from the factors (not the solver's report)."""
    total = 0.0
    for name in acts.names:
        X, W = acts[name].data, fit.loadings[name].astype(np.float64)
        for j in range(0, X.shape[1], 2000):
            R = X[:, j : j + 2000].astype(np.float64) - W @ fit.F[j : j + 2000].astype(np.float64).T
            total += float(np.sum(R * R))
    return total


class Trace:
    """Wraps a solver to record (seconds since start, objective, exact?) after every iteration.

    Times count from ``__enter__``, so put the whole ``pl.factorize`` call inside: the data's move,
    the sketch and the init are included.  HALS records the exact objective after every iteration;
    the compressed solver records estimates, except at the refinement rounds it lists in
    ``settings["exact_steps"]`` (the exact objective from ``X_w F``, ``V`` and Gram matrices).
    """

    def __init__(self, name):
        self.module = getattr(fz, name)  # peeklens.nmf.hals, .compressed, ...: factorize calls module.solve
        self.name, self.orig, self.points, self.t0 = name, self.module.solve, [], None

    def __enter__(self):
        orig = self.orig

        @functools.wraps(orig)
        def wrapped(problem, F_, W_, *, callback=None, **kw):
            def cb(i, obj):
                self.points.append((i, time.perf_counter() - self.t0, obj))
                if callback is not None:
                    callback(i, obj)

            return orig(problem, F_, W_, callback=cb, **kw)

        self.module.solve = wrapped
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.module.solve = self.orig

    def time_to(self, target, exact_steps=None):
        """Seconds until the first exact objective <= target (None: never)."""
        for i, t, obj in self.points:
            if (exact_steps is None or i in exact_steps) and obj <= target:
                return t
        return None


def mb(n):
    return f"{n / 2**20:7.0f} MiB"


# ----------------------------------------------------------------------------- parts
def sklearn_runs(X, rank, seed=0):
    from sklearn.decomposition import NMF

    out = {}
    for solver in ["cd", "mu"]:

        def run(solver=solver):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = NMF(rank, solver=solver, init="random", max_iter=200, tol=0, random_state=seed)
                W = m.fit_transform(X)
            return W, m.components_

        (W, H), dt, peak = measure(run)
        out[solver] = (dt, objective_np(X, W, H), peak)
    return out


def peeklens_runs(acts, rank, target, device, time_to_target=True, solvers=("mu", "hals", "compressed")):
    rows = {}
    if "mu" in solvers:  # the paper's MU, 200 iterations as in sklearn
        fit, dt, peak = measure(
            lambda: pl.factorize(acts, rank, solver="mu", max_iter=200, tol=0, device=device), device
        )
        obj = fit_objective(acts, fit)
        rows["peeklens mu (paper)"] = (dt, obj, peak, dt if obj <= target else None, None)
    for solver in [s for s in ("hals", "compressed") if s in solvers]:
        with Trace(solver) as tr:
            fit, dt, peak = measure(
                lambda solver=solver: pl.factorize(acts, rank, solver=solver, device=device), device
            )
        obj = fit_objective(acts, fit)
        exact_steps = set(fit.settings.get("exact_steps", [])) if solver == "compressed" else None
        reach = tr.time_to(target, exact_steps)
        how = "default settings"
        if reach is None and obj <= target:
            reach = dt
        if reach is None and time_to_target:  # not with the defaults: how long with more iterations
            if solver == "hals":
                longer = dict(max_iter=400, tol=0)
            else:
                longer = dict(tol=1e-6, solver_options={"refine": 12})
            with Trace(solver) as tr:
                f2 = pl.factorize(acts, rank, solver=solver, device=device, **longer)
            reach = tr.time_to(target, set(f2.settings.get("exact_steps", [])) if solver == "compressed" else None)
            how = "longer run: " + ", ".join(f"{k}={v}" for k, v in longer.items())
        name = f"peeklens {solver}" + (" (default)" if solver == fz.DEFAULT_SOLVER else "")
        rows[name] = (dt, obj, peak, reach, None if how == "default settings" else how)
    return rows


def paper_workload(args):
    t = time.perf_counter()
    xtr, ytr = mnist(train=True)
    xte, yte = mnist(train=False)
    net = train_one_epoch(xtr, ytr)
    with torch.no_grad():
        acc = float((net(xte).argmax(1) == yte).float().mean())
    print(f"trained the paper network for one epoch in {time.perf_counter() - t:.1f} s; test accuracy {acc:.3f}")
    acts = pl.capture(net, xte, layers=["relu", "relu_1"], progress=False)
    print(acts)
    return net, xtr, acts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="device of the peeklens solvers (cpu, cuda)")
    ap.add_argument("--quick", action="store_true", help="ranks 10 and 50 only, smaller scaling run")
    ap.add_argument("--ranks", default=None, help="comma-separated ranks (default 10,20,30,40,50)")
    ap.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn (no targets then)")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs (fresh processes)")
    ap.add_argument("--solvers", default="mu,hals,compressed", help="peeklens solvers to time")
    ap.add_argument("--targets", help="JSON {rank: [seconds, objective]} of an earlier sklearn-cd run: skip sklearn")
    ap.add_argument("--acts", help="npz of the captured blocks from an earlier run (skips training and capture)")
    ap.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="repeat the default call with seeds 0..N-1 and show the spread of its time to target (0: skip)",
    )
    ap.add_argument("--whole-call", action="store_true", help="only the whole-call table against sklearn-cd")
    ap.add_argument("--reps", type=int, default=3, help="runs of each config in --whole-call (median)")
    ap.add_argument("--sklearn-reps", type=int, default=None, help="runs of sklearn in --whole-call (default --reps)")
    ap.add_argument("--save-acts", help="write the captured blocks to this npz (for --acts)")
    args = ap.parse_args(argv)
    ranks = (
        [int(r) for r in args.ranks.split(",")] if args.ranks else ([10, 50] if args.quick else [10, 20, 30, 40, 50])
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
        f"load average {os.getloadavg()}"
    )
    if args.acts:
        z = np.load(args.acts, allow_pickle=False)
        acts = pl.Activations.from_arrays({k.replace("input_0", "input:0"): z[k] for k in z.files})
        net = xtr = None
        args.no_scaling = True
    else:
        net, xtr, acts = paper_workload(args)
    if args.save_acts:
        np.savez(args.save_acts, **{n.replace(":", "_"): np.ascontiguousarray(acts[n].data) for n in acts.names})
    if args.whole_call:
        whole_call(acts, ranks, args)
        return 0
    targets = {int(k): tuple(v) for k, v in json.load(open(args.targets)).items()} if args.targets else {}
    X = acts.stacked().T.copy()  # samples x features, float32, for scikit-learn
    data_bytes = X.nbytes
    print(f"stacked data matrix: {X.shape[0]} x {X.shape[1]} float32 = {mb(data_bytes)}\n")

    summary = []
    for r in ranks:
        print(f"== rank {r}  (load average {os.getloadavg()[0]:.1f})")
        skl = {} if (args.no_sklearn or r in targets) else sklearn_runs(X, r)
        if r in targets:
            skl = {"cd": (targets[r][0], targets[r][1], 0)}
        target = skl["cd"][1] if skl else -math.inf
        head = (
            f"  {'solver':28s}{'seconds':>9}{'objective':>13}{'vs target':>11}{'peak mem':>12}{'x data':>8}"
            f"{'to target':>11}{'speed-up':>10}"
        )
        print(head)
        t_cd = skl["cd"][0] if skl else float("nan")
        for name, (dt, obj, peak) in [
            (k, skl[v]) for k, v in (("sklearn cd (target)", "cd"), ("sklearn mu", "mu")) if v in skl
        ]:
            reach = dt if obj <= target else None
            print(
                f"  {name:28s}{dt:9.2f}{obj:13.6g}{obj / target - 1:+11.3%}{mb(peak):>12}{peak / data_bytes:8.2f}"
                f"{(f'{reach:.2f}' if reach else 'not'):>11}{(f'{t_cd / reach:.1f}x' if reach else '-'):>10}"
            )
        rows = peeklens_runs(acts, r, target, args.device, time_to_target=bool(skl), solvers=args.solvers.split(","))
        for name, (dt, obj, peak, reach, how) in rows.items():
            mark = "*" if how else ""
            print(
                f"  {name:28s}{dt:9.2f}{obj:13.6g}{obj / target - 1:+11.3%}{mb(peak):>12}{peak / data_bytes:8.2f}"
                f"{(f'{reach:.2f}{mark}' if reach else 'not'):>11}{(f'{t_cd / reach:.1f}x' if reach else '-'):>10}"
            )
            if how and reach:
                print(f"    * {name}: not with its defaults; reached in a longer run ({how})")
            if "(default)" in name:
                summary.append((r, t_cd, dt, obj, target, reach, peak, how))
        sys.stdout.flush()

    print(f"\n== whole sweep, ranks {ranks}, default solver {fz.DEFAULT_SOLVER!r} (load {os.getloadavg()[0]:.1f})")
    # the default sweep with and without warm starts; then exact HALS for every rank, one rank at a
    # time and all ranks at once (batched=True: the same fits, one pass per half-iteration for all)
    sweeps = [
        ("default, warm_start=True", dict(warm_start=True)),
        ("default, warm_start=False", dict(warm_start=False)),
        ("hals, one rank at a time", dict(solver="hals", warm_start=False)),
        ("hals, batched=True", dict(batched=True)),
    ]
    tgt = {row[0]: row[4] for row in summary}
    for label, kw in sweeps:
        s, dt, peak = measure(
            lambda kw=kw: pl.sweep(acts, ranks, progress=False, device=args.device, **kw), args.device
        )
        objs = [fit_objective(acts, s[r]) for r in ranks]
        rel = ", ".join(f"{r}: {o / tgt[r] - 1:+.2%}" if r in tgt else f"{r}: {o:.5g}" for r, o in zip(ranks, objs))
        reads = (
            sum(s[r].settings["passes"]["total"] for r in ranks)
            if not kw.get("batched")
            else (s[ranks[0]].settings["passes"]["total"] + sum(s[r].settings["passes"]["errors"] for r in ranks[1:]))
        )
        print(
            f"  {label:26s}: {dt:.2f} s, {reads:.0f} reads of the data, peak {mb(peak)} "
            f"({peak / data_bytes:.2f}x data); objective vs sklearn-cd target: {rel}"
        )

    if summary:
        print("\n== default solver against sklearn-cd (speed-up = sklearn-cd seconds / seconds to reach its objective)")
        for r, t_cd, dt, obj, target, reach, peak, how in summary:
            print(
                f"  rank {r}: sklearn-cd {t_cd:.2f} s; default {dt:.2f} s at {obj / target - 1:+.3%}; "
                + (
                    f"reaches the target in {reach:.2f} s: {t_cd / reach:.1f}x"
                    if reach
                    else "does not reach the target"
                )
                + (f" (in a longer run: {how})" if how and reach else "")
                + f"; peak {peak / data_bytes:.2f}x data"
            )

    if summary and args.seeds > 0:
        seed_spread(acts, summary, args.seeds, args.device)
    if not args.no_memory:
        memory_runs(acts, ranks, args.device)
    if not args.no_scaling:
        scaling(net, xtr, args)
    print(f"\nload average at the end {os.getloadavg()}")


def timed(fn):
    """(result, wall seconds, CPU seconds of this process) of ``fn()``."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def whole_call(acts, ranks, args):
    """The table of issue 19, section 4: sklearn-cd (200 iterations) against the whole default call."""
    from sklearn.decomposition import NMF

    X = acts.stacked().T.copy()  # samples x features, float32, for scikit-learn
    pl.factorize(acts, 2)  # load torch's kernels once, outside the timings
    skl_reps = args.sklearn_reps or args.reps
    print(
        f"== whole default pl.factorize call vs sklearn NMF(solver='cd', init='random', max_iter=200, tol=0); "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, torch threads {torch.get_num_threads()}, "
        f"median of {skl_reps} sklearn / {args.reps} peeklens runs"
    )
    head = (
        f"  {'rank':>4} {'skl wall':>9} {'skl cpu':>8} {'skl objective':>14} {'pl wall':>8} {'pl cpu':>7} "
        f"{'pl objective':>13} {'vs skl':>9} {'wall x':>7} {'cpu x':>6} {'passes':>6} {'rounds':>6} {'load':>5}"
    )
    print(head)
    rows = []
    for r in ranks:
        skl = []
        for _ in range(skl_reps):

            def run(r=r):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    m = NMF(r, solver="cd", init="random", max_iter=200, tol=0, random_state=0)
                    return m.fit_transform(X), m.components_

            (W, H), wall, cpu = timed(run)
            skl.append((wall, cpu, objective_np(X, W, H)))
        mine = []
        for _ in range(args.reps):
            fit, wall, cpu = timed(lambda r=r: pl.factorize(acts, r, device=args.device))
            mine.append((wall, cpu, fit_objective(acts, fit), fit.settings))
        sw, sc = float(np.median([x[0] for x in skl])), float(np.median([x[1] for x in skl]))
        target = skl[0][2]
        pw, pc = float(np.median([x[0] for x in mine])), float(np.median([x[1] for x in mine]))
        obj, st = mine[0][2], mine[0][3]
        rows.append((r, sw, sc, target, pw, pc, obj))
        print(
            f"  {r:4d} {sw:9.2f} {sc:8.2f} {target:14.7g} {pw:8.3f} {pc:7.3f} {obj:13.7g} {obj / target - 1:+9.4%} "
            f"{sw / pw:6.1f}x {sc / pc:5.1f}x {st['passes']['total']:6.0f} {st.get('refinements', '-')!s:>6} "
            f"{os.getloadavg()[0]:5.1f}"
        )
        sys.stdout.flush()
    print(
        "  (vs skl: the default's final objective relative to sklearn-cd's; it REACHES sklearn's objective "
        "where this is <= 0; wall x / cpu x: sklearn seconds / pl.factorize seconds)"
    )
    return rows


def seed_spread(acts, summary, n_seeds, device):
    """The default call again with seeds 0..n-1: the fits are chaotic (a different sketch and random
    start, or float32 rounding, change which minimum they reach and which round first crosses the
    target), so one seed's ratio is one sample."""
    print(
        f"\n== default solver, seeds 0..{n_seeds - 1}: seconds to reach the sklearn-cd target "
        "(final objective vs target)"
    )
    for r, t_cd, _dt, _obj, target, _reach, _peak, _how in summary:
        cells, times = [], []
        for seed in range(n_seeds):
            with Trace(fz.DEFAULT_SOLVER) as tr:
                fit = pl.factorize(acts, r, seed=seed, device=device)
            steps = set(fit.settings.get("exact_steps", [])) or None
            reach = tr.time_to(target, steps)
            obj = fit_objective(acts, fit)
            times.append(reach)
            cells.append(f"{reach:.2f} s" if reach else "not reached")
            cells[-1] += f" ({obj / target - 1:+.3%})"
        hits = [t for t in times if t]
        ratio = f"{t_cd / max(hits):.1f}x to {t_cd / min(hits):.1f}x" if hits else "-"
        print(f"  rank {r}: " + "; ".join(cells) + f"   [{len(hits)}/{n_seeds} reach it; {ratio}]")
        sys.stdout.flush()


_MEMORY_CHILD = r"""
import json, sys, numpy as np, torch
import peeklens as pl
def vm(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
path, what, device = sys.argv[1], sys.argv[2], sys.argv[3]
z = np.load(path, allow_pickle=False)
acts = pl.Activations.from_arrays({k.replace("input_0", "input:0"): z[k] for k in z.files})
data = sum(acts[n].data.nbytes for n in acts.names)
pl.factorize(pl.Activations.from_arrays({"w": np.ones((8, 8), np.float32)}), 2)  # load torch's kernels
open("/proc/self/clear_refs", "w").write("5")
base = vm("VmRSS:")
if what == "sweep":
    pl.sweep(acts, [10, 20, 30, 40, 50], progress=False, device=device)
else:
    pl.factorize(acts, int(what), device=device)
print(json.dumps({"extra": vm("VmHWM:") - base, "data": data}))
"""


def memory_runs(acts, ranks, device):
    """Peak memory of the default solver, each run in a fresh process with the data already loaded.

    In one long process, memory freed by earlier runs is reused and the peak barely moves; a
    fresh process shows what one call needs on top of the data (the growth of VmHWM over VmRSS).
    """
    import subprocess
    import tempfile

    print("\n== peak memory of the default solver, each in a fresh process (extra over the loaded data)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "acts.npz")
        np.savez(path, **{n.replace(":", "_"): np.ascontiguousarray(acts[n].data) for n in acts.names})
        for what in [str(r) for r in ranks] + ["sweep"]:
            out = subprocess.run(
                [sys.executable, "-c", _MEMORY_CHILD, path, what, str(device)], capture_output=True, text=True
            )
            if out.returncode != 0:
                print(f"  {what}: failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            m = json.loads(out.stdout.strip().splitlines()[-1])
            label = f"rank {what}" if what != "sweep" else "five-rank sweep"
            print(f"  {label:16s}: {mb(m['extra'])} extra = {m['extra'] / m['data']:.2f}x the data matrix")
        sys.stdout.flush()


def scaling(net, xtr, args):
    rank = 20
    print(f"\n== scaling, rank {rank}, default solver, default settings (load {os.getloadavg()[0]:.1f})")
    sizes = [1000, 5000, 20000] if args.quick else [1000, 5000, 10000, 20000, 40000, 60000]
    for n in sizes:
        acts = pl.capture(net, xtr[:n], layers=["relu", "relu_1"], progress=False)
        fit, dt, peak = measure(lambda acts=acts: pl.factorize(acts, rank, device=args.device), args.device)
        print(
            f"  samples {n:6d} x 2544 features: {dt:6.2f} s, {fit.n_iter} iterations, peak {mb(peak)}, "
            f"data {mb(acts.n_features * n * 4)}"
        )
        del acts
    rng = np.random.default_rng(0)
    n = 5000
    neurons = [1000, 5000, 20000] if args.quick else [1000, 5000, 10000, 20000, 50000]
    for m in neurons:
        Fm = rng.random((n, 30), dtype=np.float32)
        Wm = rng.random((m, 30), dtype=np.float32) ** 4
        data = Wm @ Fm.T
        data += 0.1 * rng.random(data.shape, dtype=np.float32)
        acts = pl.Activations.from_arrays({"layer": data})
        del data
        fit, dt, peak = measure(lambda acts=acts: pl.factorize(acts, rank, device=args.device), args.device)
        print(
            f"  neurons {m:6d} x {n} samples (synthetic): {dt:6.2f} s, {fit.n_iter} iterations, peak {mb(peak)}, "
            f"data {mb(m * n * 4)}"
        )
        del acts


if __name__ == "__main__":
    sys.exit(main())
