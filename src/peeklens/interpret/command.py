"""``peeklens explain``: add the interpretation section (:func:`peeklens.explain`) to a saved results file.

The JupyterLab document and the offline report have no kernel, so what a factor means is computed
here, from the file and the trained network, and saved in the file:

    peeklens explain peeklens-out/demo-100-of-the-data.peeklens            # network from the file's regime
    peeklens explain results.peeklens --checkpoint net.pt --network alexnet --dataset cifar10 --layer features.4

A file written by ``peeklens demo`` / ``peeklens study`` names its regime (``network-dataset-digest``),
which says which network to build and which cached checkpoint holds its weights.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from ..errors import InputError

__all__ = ["add_parser", "run", "regime_parts"]

_REGIME = re.compile(r"^(?P<network>[a-z0-9]+)-(?P<dataset>[a-z0-9]+)-[0-9a-f]+$")


def regime_parts(key: str | None) -> tuple[str | None, str | None]:
    """``(network, dataset)`` of a study's regime key, or ``(None, None)``.

    Examples
    --------
    >>> regime_parts("paper-mnist-020bad25c9049886")
    ('paper', 'mnist')
    >>> regime_parts(None)
    (None, None)
    """
    m = _REGIME.match(key or "")
    return (m.group("network"), m.group("dataset")) if m else (None, None)


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``explain`` subcommand to the ``peeklens`` subparsers."""
    p = sub.add_parser(
        "explain",
        help="add maximized images and attribution heatmaps of the factors to a .peeklens file",
        description="Explain the factors of one layer of a saved sweep (pl.explain): each factor's maximized input "
        "and the attribution heatmaps of its top inputs, saved in the file's interpretation section so that the "
        "JupyterLab document and the HTML report show them in the latent gallery.",
    )
    p.add_argument("results", metavar="RESULTS", help="a .peeklens file holding a Sweep or Factorization")
    p.add_argument("--checkpoint", metavar="PT", help="the trained network's weights (default: the cached "
                   "checkpoint of the file's regime)")  # fmt: skip
    p.add_argument(
        "--cache", metavar="DIR", help="checkpoint cache (default: $PEEKLENS_CACHE or ~/.cache/peeklens/models)"
    )
    p.add_argument("--network", choices=["paper", "alexnet", "smallcnn"], help="default: from the file's regime")
    p.add_argument("--dataset", choices=["mnist", "cifar10"], help="default: from the file's regime")
    p.add_argument("--layer", help="layer block to explain (default: the last convolutional layer)")
    p.add_argument("--ranks", default=None, help="ranks to explain, e.g. 10,20 or 'all' (default: the smallest)")
    p.add_argument("--factors", default=None, help="factors to explain, e.g. 0,3,5 (default: all)")
    p.add_argument("--attribute", default="auto",
                   choices=["auto", "spatial", "guided_backprop", "deconvnet", "integrated_gradients", "none"],
                   help="attribution method (default: auto = spatial for convolutional layers)")  # fmt: skip
    p.add_argument("--images", type=int, default=1, help="maximized images per factor (default: 1)")
    p.add_argument("--steps", type=int, default=128, help="optimization steps per image (default: 128)")
    p.add_argument("--top-k", type=int, default=None, help="top inputs attributed (default: the file's thumbnails)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--output", metavar="PATH", help="write here instead of replacing RESULTS")
    p.add_argument("--report", metavar="HTML", help="also write an HTML report of the explained results")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _ints(text: str | None, what: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InputError(f"--{what} must be integers separated by commas, got {text!r}") from None


def _model(args, meta: dict):
    import torch

    from ..studies.networks import make_network
    from ..studies.training import cache_dir

    key = (meta.get("info") or {}).get("regime")
    network, dataset = regime_parts(key)
    network, dataset = args.network or network, args.dataset or dataset
    if network is None or dataset is None:
        raise InputError(
            f"{args.results} does not name its network (no study regime); give --network, --dataset and --checkpoint"
        )
    ckpt = Path(args.checkpoint) if args.checkpoint else (cache_dir(args.cache) / f"{key}.pt" if key else None)
    if ckpt is None or not ckpt.is_file():
        raise InputError(
            f"no checkpoint {ckpt}: give --checkpoint PT (a state dict, or a study checkpoint with a 'model' entry), "
            "or run the study again with its cache"
        )
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    model = make_network(network, dataset)
    try:
        model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
    except (RuntimeError, AttributeError) as e:
        raise InputError(f"{ckpt} does not hold weights of the {network} network for {dataset}: {e}") from None
    return model.eval(), dataset


def run(args, stream) -> int:
    """Run ``peeklens explain`` with parsed ``args``; messages go to ``stream``."""
    import functools

    from .. import io
    from ..report import write_report
    from ..results import Sweep
    from ..studies.data import normalize
    from .explain import explain

    t0 = time.perf_counter()
    path = Path(args.results)
    meta = io.read_meta(path)
    res = io.load(path)
    sweep = res if isinstance(res, Sweep) else None
    fits = dict(res.fits) if sweep is not None else {res.rank: res} if hasattr(res, "rank") else {}
    if not fits:
        raise InputError(f"{path} holds a {meta.get('type')}, not a Sweep or Factorization")
    first = next(iter(fits.values()))
    if not first.inputs:
        raise InputError(f"{path} was saved without its inputs (include_inputs=False); they are needed to attribute")
    model, dataset = _model(args, meta)
    layer = args.layer
    if layer is None:
        convs = [n for n in first.layer_names if len(first.blocks[n].get("shape") or ()) == 3]
        layer = (convs or first.layer_names or [None])[-1]
    if args.ranks in (None, ""):
        ranks = [min(fits)]
    elif args.ranks == "all":
        ranks = sorted(fits)
    else:
        ranks = _ints(args.ranks, "ranks")
    display = (meta.get("display") if sweep is not None else meta.get("fit", {}).get("display")) or {}
    top_k = args.top_k or int(display.get("top_k") or 8)
    out = explain(
        model,
        res,
        layer,
        ranks=ranks,
        factors=_ints(args.factors, "factors"),
        attribute=None if args.attribute == "none" else args.attribute,
        n_images=args.images,
        steps=args.steps,
        top_k=top_k,
        preprocess=functools.partial(normalize, dataset=dataset),
        device=args.device,
        progress=not args.quiet,
    )
    target = Path(args.output) if args.output else path
    io.save(res, target, include_inputs=True, top_k=int(display.get("top_k") or 8),
            class_names=display.get("class_names"))  # fmt: skip
    n = sum(len(e.factors) for e in out.values())
    print(f"peeklens explain: layer {layer}, ranks {sorted(out)}, {n} factors, {time.perf_counter() - t0:.0f} s",
          file=stream)  # fmt: skip
    print(f"Results: {target.resolve()}", file=stream)
    if args.report:
        label = (meta.get("info") or {}).get("label") or path.stem
        report = write_report({label: res}, args.report, class_names=display.get("class_names"))
        print(f"Report:  {report.resolve()}", file=stream)
    return 0
