"""Seconds per factor for pl.maximize / pl.attribute / pl.invert, and what they reach.

Networks:

* the paper network, trained on 25 % of MNIST (``studies.train``, cached), factorized on real MNIST
  test images captured in [0, 1] (layers ``relu``, ``relu_1``);
* torchvision's ResNet-18 with **random weights** (seed 0; no pretrained weights are downloaded) at
  112 x 112, factorized on CIFAR-10 test images upsampled to 112 px (modules ``layer1``, ``layer3``).

Reported per factor: seconds for maximize (Fourier, default steps; MACO; free pixels without
transforms as the plain-gradient-ascent reference) with the reached score as a multiple of the
factor's top real input, attribute (each method, on the factor's top 8 inputs; and Captum's
guided backprop called directly on a hand-written objective as the reference), and invert (with
the reached cosine between the layer's activation and the loading vector).

Run by hand (the machine is shared: one thread, short runs)::

    OMP_NUM_THREADS=1 PEEKLENS_DATA=/work/shared/data python benchmarks/bench_interpret.py
    python benchmarks/bench_interpret.py --only paper --factors 3
    python benchmarks/bench_interpret.py --device cuda        # where there is a GPU
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from torch import nn

import peeklens as pl
from peeklens import studies


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def captum_reference(model, layer_module: nn.Module, w: np.ndarray, x: torch.Tensor, pre) -> float:
    """Captum's GuidedBackprop on a hand-written objective (forward hook, full forward pass): seconds."""
    from captum.attr import GuidedBackprop

    w_t = torch.from_numpy(w)

    class Objective(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, z):
            got = {}
            h = layer_module.register_forward_hook(lambda m, i, o: got.setdefault("a", o))
            try:
                self.model(pre(z) if pre else z)
            finally:
                h.remove()
            return got["a"].flatten(1) @ w_t

    for p in model.parameters():
        p.requires_grad_(False)
    t, _ = timed(GuidedBackprop(Objective()).attribute, x.clone().requires_grad_(True))
    for p in model.parameters():
        p.requires_grad_(True)
    return t


def run(name, model, fit, layers, factors, pre, steps, inv_steps, device, ref_module=None):
    import captum.attr  # noqa: F401 - imported once here, not inside the first timed attribution

    rows = []
    for layer in layers:
        for k in factors:
            r = {"net": name, "layer": layer, "factor": k}
            t, m = timed(pl.maximize, model, fit, layer, k, steps=steps, preprocess=pre, device=device, progress=False)
            r["maximize_s"], r["max_x_top"] = t, float(m.scores[0] / m.reference)
            t, m = timed(
                pl.maximize,
                model,
                fit,
                layer,
                k,
                steps=steps,
                param="maco",
                preprocess=pre,
                device=device,
                progress=False,
            )
            r["maco_s"], r["maco_x_top"] = t, float(m.scores[0] / m.reference)
            t, m = timed(
                pl.maximize,
                model,
                fit,
                layer,
                k,
                steps=steps,
                param="pixel",
                jitter=0,
                scale=(1, 1),
                rotate=0,
                preprocess=pre,
                device=device,
                progress=False,
            )
            r["pixel_ref_s"], r["pixel_x_top"] = t, float(m.scores[0] / m.reference)
            for method in pl.interpret.ATTRIBUTION_METHODS:
                t, a = timed(
                    pl.attribute, model, fit, layer, k, method=method, k=8, crops=True, preprocess=pre, device=device
                )
                r[f"{method}_s"] = t
            if ref_module is not None and layer in ref_module:
                x = torch.from_numpy(a.inputs)
                r["captum_direct_s"] = captum_reference(model, ref_module[layer], fit.loadings[layer][:, k], x, pre)
            t, inv = timed(
                pl.invert, model, fit, layer, k, steps=inv_steps, preprocess=pre, device=device, progress=False
            )
            r["invert_s"], r["cosine"] = t, inv.cosine
            rows.append(r)
            print(fmt(r), flush=True)
    return rows


def fmt(r):
    keys = [k for k in r if k not in ("net", "layer", "factor")]
    return f"{r['net']:8s} {r['layer']:8s} #{r['factor']:<2d} " + "  ".join(f"{k}={r[k]:.3f}" for k in keys)


def summary(rows):
    print("\nmedians per network and layer (seconds per factor; 'x_top': score / top real input's score)")
    keys = [k for k in rows[0] if k not in ("net", "layer", "factor")]
    groups = {}
    for r in rows:
        groups.setdefault((r["net"], r["layer"]), []).append(r)
    head = "| net | layer | " + " | ".join(keys) + " |"
    print(head)
    print("|" + "---|" * (len(keys) + 2))
    for (net, layer), rs in groups.items():
        vals = [
            statistics.median([x[k] for x in rs if k in x]) if any(k in x for x in rs) else float("nan") for k in keys
        ]
        print(f"| {net} | {layer} | " + " | ".join(f"{v:.3g}" for v in vals) + " |")


def paper(args):
    pre = functools.partial(studies.normalize, dataset="mnist")
    model = studies.train(studies.Regime(fraction=0.25), progress=False).model
    x, y = studies.load_mnist(train=False)
    n = args.samples
    acts = pl.capture(
        model,
        torch.utils.data.TensorDataset(pre(x[:n]), y[:n]),
        layers=["relu", "relu_1"],
        input_transform=studies.denormalizer("mnist"),
        progress=False,
    )
    fit = pl.factorize(acts, rank=10, seed=0)
    print(f"paper net (trained, 25 % of MNIST), {n} real test images, rank 10: {fit.errors}")
    return run(
        "paper", model, fit, ["relu", "relu_1"], range(args.factors), pre, args.steps, args.inv_steps, args.device
    )


def resnet(args):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(weights=None).eval()  # random weights: nothing is downloaded
    x, _ = studies.load_cifar10(train=False)
    x = nn.functional.interpolate(
        x[: min(args.samples, 200)], size=(112, 112), mode="bilinear", align_corners=False
    ).clamp(0, 1)
    acts = pl.capture(model, x, layers=["layer1", "layer3"], progress=False, batch_size=50)
    fit = pl.factorize(acts, rank=8, seed=0)
    print(f"ResNet-18 (random weights) at 112 px, {len(x)} CIFAR-10 test images upsampled, rank 8: {fit.errors}")
    mods = dict(model.named_modules())
    return run(
        "resnet18",
        model,
        fit,
        ["layer1", "layer3"],
        range(min(args.factors, 1)),
        None,
        args.resnet_steps,
        args.inv_steps // 2,
        args.device,
        ref_module={n: mods[n] for n in ("layer1", "layer3")},
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["paper", "resnet"], default=None)
    ap.add_argument("--factors", type=int, default=2, help="factors per layer (ResNet: at most 1)")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=256, help="maximize steps (paper net)")
    ap.add_argument("--resnet-steps", type=int, default=128, help="maximize steps (ResNet-18)")
    ap.add_argument("--inv-steps", type=int, default=400, help="invert steps (ResNet-18: half)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {args.device}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    rows = []
    if args.only in (None, "paper"):
        rows += paper(args)
    if args.only in (None, "resnet"):
        rows += resnet(args)
    summary(rows)


if __name__ == "__main__":
    main()
