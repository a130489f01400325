"""The tensor lens (coupled non-negative matrix-tensor factorization) against the matrix model and TensorLy.

Run by hand (not part of the tests); one thread by default (the machine is shared)::

    PEEKLENS_DATA=../shared/data python benchmarks/bench_tensor.py                 # everything but the study
    PEEKLENS_DATA=../shared/data python benchmarks/bench_tensor.py --only paper    # paper workload only
    PEEKLENS_DATA=../shared/data python benchmarks/bench_tensor.py --only resnet   # ResNet-18 layer set only
    PEEKLENS_DATA=../shared/data python benchmarks/bench_tensor.py --only tensorly # single tensor vs TensorLy
    PEEKLENS_DATA=../shared/data python benchmarks/bench_tensor.py --study         # writes the table of docs/tensor.md
    python benchmarks/bench_tensor.py --device cuda                                # on a GPU

Parts:

* **paper**: the paper's MNIST network trained one epoch on 100 % of the training set
  (``studies.train(studies.Regime(fraction=1.0))``, cached), captured on the 10,000 MNIST test
  images, layers ``relu`` (10x12x12) and ``relu_1`` (20x4x4), input channel as a matrix.  Per rank:
  seconds per iteration (``(t(21 iterations) - t(1 iteration)) / 20`` from the same start, so the
  start costs cancel) and seconds to convergence with the defaults (``tol=1e-4``) for the matrix
  model (``pl.factorize``, its default solver and ``solver="hals"``) and the tensor model
  (``factorize_tensor``), with the final RMSE and relative errors.
* **resnet**: torchvision ResNet-18 with random weights (``weights=None``, seed 0; nothing is
  downloaded), the first 1,017 CIFAR-10 test images of ``$PEEKLENS_DATA`` upsampled to 64x64, not
  pooled; blocks: the 3 input channels (64x64 matrices) and the outputs of ``layer1`` (64x16x16),
  ``layer2`` (128x8x8), ``layer3`` (256x4x4) as tensors.  Same measurements.
* **tensorly**: one tensor, the paper workload's ``relu`` block (10,000 samples x 10 channels x 144
  positions), against TensorLy's ``non_negative_parafac_hals`` (NumPy and PyTorch backends) from
  the *same* random start (uniform [0, 1), seed 0), with TensorLy's stopping rule applied to both:
  stop at the first iteration whose relative reconstruction error changed by less than ``tol``
  (``cvg_criterion="abs_rec_error"``; for peeklens applied to its per-iteration trace of exact
  objectives, timed per iteration).  Also: the time peeklens needs to reach TensorLy's final error.
* **--study**: matrix vs tensor at equal rank on the case-study networks (training fractions
  25 %, 50 %, 75 %, 100 %; ranks 10-50): relative error per block, RMSE, parameters, time; whether
  the tensor RMSE orders the regimes as the matrix RMSE does; spatial maps (docs/img/tensor_spatial.png).
  Writes the tables between the markers of docs/tensor.md.

The machine may be shared: the script prints ``os.getloadavg()`` next to the timings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import peeklens as pl
from peeklens import studies
from peeklens.nmf import tensor_hals
from peeklens.nmf._problem import make_problem
from peeklens.nmf.tensor import factorize_tensor, sweep_tensor, tensor_layout, tensor_spatial_maps

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("PEEKLENS_DATA", str(REPO.parent / "shared" / "data"))


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


# ----------------------------------------------------------------------------- workloads
def paper_acts(fraction: float = 1.0) -> pl.Activations:
    model = studies.train(studies.Regime(fraction=fraction), progress=False).model
    x, y = studies.load_mnist(train=False)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(studies.normalize(x, "mnist"), y),
                                         batch_size=1000)
    return pl.capture(model, loader, layers=["relu", "relu_1"], input_transform=studies.denormalizer("mnist"),
                      progress=False)


def resnet_acts(size: int = 64) -> pl.Activations:
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    x, y = studies.load_cifar10(train=False)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=128)
    return pl.capture(model, loader, layers=["layer1", "layer2", "layer3"], progress=False)


# ----------------------------------------------------------------------------- timing
def per_iteration(fit_fn) -> float:
    """Seconds per iteration from the same start: ``(t(21) - t(1)) / 20``."""
    t1 = fit_fn(1).seconds
    t21 = fit_fn(21).seconds
    return (t21 - t1) / 20


def compare_models(acts: pl.Activations, ranks, device, label: str) -> list[dict]:
    rows = []
    for r in ranks:
        row = {"rank": r}
        models = {
            "matrix (default)": lambda it=None, r=r: pl.factorize(acts, r, device=device, **({} if it is None else
                                                                                          dict(max_iter=it, tol=0))),
            "matrix (hals)": lambda it=None, r=r: pl.factorize(acts, r, solver="hals", device=device,
                                                               **({} if it is None else dict(max_iter=it, tol=0))),
            "tensor": lambda it=None, r=r: factorize_tensor(acts, r, device=device,
                                                            **({} if it is None else dict(max_iter=it, tol=0))),
        }
        for name, fn in models.items():
            fit = fn()
            spi = per_iteration(fn) if name != "matrix (default)" else float("nan")
            n_params = fit.settings.get("n_params") or (acts.n_samples + acts.n_features) * r
            row[name] = dict(seconds=fit.seconds, n_iter=fit.n_iter, spi=spi, rmse=fit.rmse, errors=fit.errors,
                             n_params=n_params)
            print(f"{label} rank {r:>3} {name:<17} {fit.seconds:7.2f} s to convergence ({fit.n_iter:>3} it), "
                  f"{spi * 1e3:7.1f} ms/it, rmse {fit.rmse:.4f}, params {n_params:>8}, errors "
                  + " ".join(f"{k}={v:.3f}" for k, v in fit.errors.items()) + f"   [{load()}]", flush=True)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- TensorLy
class Trace:
    """A solver callback that records (seconds since start, objective) after every iteration."""

    def __init__(self, device):
        self.device, self.stamps, self.objs, self.t0 = device, [], [], 0.0

    def start(self):
        self.t0 = time.perf_counter()

    def __call__(self, i, obj):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter() - self.t0)
        self.objs.append(obj)


def tensorly_compare(acts: pl.Activations, ranks, tol: float, device) -> None:
    import tensorly as tl
    from tensorly.cp_tensor import CPTensor
    from tensorly.decomposition import non_negative_parafac_hals

    name = "relu"
    one = acts.select([name])
    C, H, W = one[name].shape
    T = one.n_samples
    Y = np.ascontiguousarray(one[name].data.T).reshape(T, C, H * W)  # samples x channels x positions
    normX = float(np.linalg.norm(Y.astype(np.float64)))
    problem = make_problem(one, None, device)
    layout = tensor_layout(one)
    for r in ranks:
        rng = np.random.default_rng(0)
        F0 = rng.random((T, r), dtype=np.float32)
        C0 = rng.random((C, r), dtype=np.float32)
        S0 = rng.random((H * W, r), dtype=np.float32)
        # peeklens: timed trace of exact objectives
        trace = Trace(problem.device)
        start = [torch.from_numpy(a.copy()).to(problem.device) for a in (F0, C0, S0)]
        trace.start()
        tensor_hals.solve(problem, layout, start[0], [start[1:]], max_iter=500, tol=0, callback=trace)
        stamps, objs = trace.stamps, trace.objs
        err = np.sqrt(np.maximum(objs, 0)) / normX
        stop = next((k for k in range(1, len(err)) if abs(err[k - 1] - err[k]) < tol), len(err) - 1)
        ours = dict(n_iter=stop + 1, seconds=stamps[stop], err=err[stop])
        for backend in ["numpy", "pytorch"]:
            tl.set_backend(backend)
            if backend == "numpy":
                X = tl.tensor(Y)
                init = CPTensor((np.ones(r, np.float32), [F0.copy(), C0.copy(), S0.copy()]))
            else:
                X = tl.tensor(torch.from_numpy(Y).to(device))
                init = CPTensor((torch.ones(r, device=device),
                                 [torch.from_numpy(a.copy()).to(device) for a in (F0, C0, S0)]))
            t = time.perf_counter()
            cp, errs = non_negative_parafac_hals(X, r, n_iter_max=500, init=init, tol=tol, return_errors=True)
            if backend == "pytorch" and str(device).startswith("cuda"):
                torch.cuda.synchronize()
            secs = time.perf_counter() - t
            tl_err = float(errs[-1])
            reach = next((k for k in range(len(err)) if err[k] <= tl_err), None)
            reach_s = stamps[reach] if reach is not None else float("nan")
            print(f"tensorly[{backend}] rank {r:>3}: {len(errs):>3} it {secs:7.2f} s "
                  f"({secs / len(errs) * 1e3:6.1f} ms/it) "
                  f"rel.err {tl_err:.5f} | peeklens same rule: {ours['n_iter']:>3} it {ours['seconds']:7.2f} s "
                  f"({ours['seconds'] / ours['n_iter'] * 1e3:6.1f} ms/it) rel.err {ours['err']:.5f} | speed-up "
                  f"{secs / ours['seconds']:.1f}x; peeklens reaches TensorLy's error after "
                  f"{'-' if reach is None else reach + 1} it, {reach_s:.2f} s ({secs / reach_s:.1f}x)   [{load()}]",
                  flush=True)
        tl.set_backend("numpy")


# ----------------------------------------------------------------------------- study
BEGIN, END = "<!-- bench_tensor:study:begin -->", "<!-- bench_tensor:study:end -->"


def study(fractions, ranks, device, doc: Path, png: Path) -> None:
    results = {}
    for frac in fractions:
        acts = paper_acts(frac)
        t = time.perf_counter()
        ms = pl.sweep(acts, ranks, progress=False, device=device)
        tm = time.perf_counter() - t
        t = time.perf_counter()
        ts = sweep_tensor(acts, ranks, progress=False, device=device)
        tt = time.perf_counter() - t
        results[frac] = (acts, ms, ts, tm, tt)
        print(f"fraction {frac:.0%}: matrix sweep {tm:.1f} s, tensor sweep {tt:.1f} s   [{load()}]", flush=True)
        for r in ranks:
            print(f"  rank {r}: matrix rmse {ms[r].rmse:.4f} tensor rmse {ts[r].rmse:.4f}", flush=True)
    names = next(iter(results.values()))[0].names
    lines = [f"Generated by `python benchmarks/bench_tensor.py --study` ({time.strftime('%Y-%m-%d')}, device "
             f"{device or 'cpu'}, {torch.get_num_threads()} thread(s), torch {torch.__version__}). Both models: "
             "defaults (`pl.sweep` and `sweep_tensor`, warm starts, `tol=1e-4`), 10,000 MNIST test images.", ""]
    head = "| training | rank | model | RMSE | " + " | ".join(f"rel. error `{n}`" for n in names) + \
        " | parameters | seconds |"
    lines += [head, "|" + " --- |" * (head.count("|") - 1)]
    for frac, (acts, ms, ts, _, _) in results.items():
        for r in ranks:
            for label, fit in [("matrix", ms[r]), ("tensor", ts[r])]:
                n_params = fit.settings.get("n_params") or (acts.n_samples + acts.n_features) * r
                lines.append(f"| {frac:.0%} | {r} | {label} | {fit.rmse:.4f} | "
                             + " | ".join(f"{fit.errors[n]:.4f}" for n in names)
                             + f" | {n_params:,} | {fit.seconds:.1f} |")
    lines.append("")
    # ordering of the regimes
    fr = list(results)
    lines.append("Regimes ordered by RMSE (lowest first) at each rank:")
    lines.append("")
    lines.append("| rank | matrix | tensor | same order |")
    lines.append("| --- | --- | --- | --- |")
    agree = 0
    for r in ranks:
        om = sorted(fr, key=lambda f: results[f][1][r].rmse)
        ot = sorted(fr, key=lambda f: results[f][2][r].rmse)
        agree += om == ot
        lines.append(f"| {r} | {' < '.join(f'{f:.0%}' for f in om)} | {' < '.join(f'{f:.0%}' for f in ot)} | "
                     f"{'yes' if om == ot else 'no'} |")
    lines.append("")
    lines.append(f"Same order at {agree} of {len(ranks)} ranks. Whole sweeps (seconds): "
                 + ", ".join(f"{f:.0%} matrix {results[f][3]:.1f} / tensor {results[f][4]:.1f}" for f in fr) + ".")
    # spatial maps
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rank = 10 if 10 in ranks else ranks[0]
        show = [fr[0], fr[-1]] if len(fr) > 1 else fr
        fig, axes = plt.subplots(2 * len(show), rank, figsize=(rank * 1.1, 2.6 * len(show)), squeeze=False)
        for i, f in enumerate(show):
            fit = results[f][2][rank]
            for j, layer in enumerate(["relu", "relu_1"]):
                maps = tensor_spatial_maps(fit, layer)
                for k in range(rank):
                    ax = axes[2 * i + j, k]
                    ax.imshow(maps[k], cmap="viridis")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if k == 0:
                        ax.set_ylabel(f"{f:.0%}\n{layer}", fontsize=8)
                    if i == 0 and j == 0:
                        ax.set_title(f"factor {k}", fontsize=8)
        fig.suptitle(f"Tensor model, rank {rank}: spatial factor S_j of each component (H x W)", fontsize=9)
        fig.tight_layout()
        png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=90)
        lines += ["", f"![spatial maps]({os.path.relpath(png, doc.parent)})", ""]
        # what the maps show: how spread each map is (share of positions holding half its mass)
        for f in show:
            fit = results[f][2][rank]
            for layer in ["relu", "relu_1"]:
                S = fit.spatial[layer]
                share = []
                for k in range(S.shape[1]):
                    v = np.sort(S[:, k])[::-1]
                    tot = v.sum()
                    share.append((np.searchsorted(np.cumsum(v), 0.5 * tot) + 1) / len(v) if tot > 0 else 0.0)
                lines.append(f"- {f:.0%}, `{layer}`: half of each spatial map's mass lies on "
                             f"{np.median(share):.0%} (median over factors; min {min(share):.0%}, max "
                             f"{max(share):.0%}) of the {S.shape[0]} positions.")
    except ImportError:  # pragma: no cover
        lines.append("(matplotlib not installed: no picture)")
    text = doc.read_text()
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    pre, rest = text.split(BEGIN, 1)
    _, post = rest.split(END, 1)
    doc.write_text(pre + BEGIN + "\n" + "\n".join(lines) + "\n" + END + post)
    print(f"wrote {doc}")


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["paper", "resnet", "tensorly"], action="append")
    ap.add_argument("--ranks", type=int, nargs="+", default=[10, 30, 50])
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tol", type=float, default=1e-6, help="TensorLy stopping rule (abs. change of rel. error)")
    ap.add_argument("--study", action="store_true")
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--doc", type=Path, default=REPO / "docs" / "tensor.md")
    ap.add_argument("--png", type=Path, default=REPO / "docs" / "img" / "tensor_spatial.png")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {a.device or 'cpu'}, "
          f"python {sys.version.split()[0]}   [{load()}]", flush=True)
    if a.study:
        study(a.fractions, [10, 20, 30, 40, 50] if a.ranks == [10, 30, 50] else a.ranks, a.device, a.doc, a.png)
        return
    parts = a.only or ["paper", "resnet", "tensorly"]
    paper = paper_acts(1.0) if ("paper" in parts or "tensorly" in parts) else None
    if "paper" in parts:
        print(paper.summary())
        compare_models(paper, a.ranks, a.device, "paper")
    if "resnet" in parts:
        acts = resnet_acts()
        print(acts.summary())
        compare_models(acts, a.ranks, a.device, "resnet18")
    if "tensorly" in parts:
        tensorly_compare(paper, a.ranks, a.tol, a.device)


if __name__ == "__main__":
    main()
