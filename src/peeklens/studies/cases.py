"""The paper's case studies: which regimes to train, what the paper found, and one function to run them.

=========  =========================================================  =======================
study      regimes                                                    paper's test accuracy
=========  =========================================================  =======================
fraction   25 %, 50 %, 75 %, 100 % of MNIST, one epoch                83, 89, 93, 95 %
subset     classes {0}, {0-4}, {5-9}, {0-9}                           9, 50, 47, 93 %
ordered    class by class without shuffling, 9s first (and the        9 % (95 %)
           normally shuffled network for reference)
alexnet    modified AlexNet, 25-100 % of MNIST (or of CIFAR-10)        not reported
=========  =========================================================  =======================

The paper's finding in every study: the less (or the narrower) the training, the lower the RMSE
of the coupled factorization at every rank, i.e. the activations are more compressible.
:meth:`StudyResult.ordering` checks this rank by rank.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm

from .._version import __version__
from ..capturing import capture as _capture
from ..errors import InputError
from ..io import save as _save
from ..nmf import sweep as _sweep
from ..nmf.distributed import broadcast_module, gather_for_save, shard
from ..quality import RANKS as _QUALITY_RANKS
from ..quality import quality as _quality
from ..results import Sweep
from ..spectra import Spectrum
from ..spectra import spectrum as _spectrum
from .data import denormalizer, load_dataset, normalize
from .networks import layers_of
from .training import Regime, TrainedModel, evaluate, train

__all__ = ["STUDIES", "RegimeResult", "StudyResult", "study_regimes", "run_regime", "run_study", "PAPER_RANKS"]

PAPER_RANKS: list[int] = [10, 20, 30, 40, 50]

#: Study name -> short description.
STUDIES: dict[str, str] = {
    "fraction": "case study I: the paper network trained on 25/50/75/100 % of MNIST",
    "subset": "case study II: the paper network trained on classes {0}, {0-4}, {5-9}, {0-9}",
    "ordered": "case study III: the paper network trained class by class without shuffling (9s first)",
    "alexnet": "the modified AlexNet trained on 25/50/75/100 % of MNIST or CIFAR-10",
    "demo": "the paper network trained on 25 % and 100 % of MNIST",
}


def study_regimes(
    name: str,
    *,
    seed: int = 0,
    epochs: int = 1,
    first_class: int = 9,
    dataset: str = "mnist",
    fractions: Sequence[float] | None = None,
    train_samples: int | None = None,
) -> tuple[list[tuple[Regime, float | None]], list[tuple[int, int]]]:
    """The regimes of a study with the paper's accuracy for each, and the expected RMSE order.

    Returns
    -------
    regimes : list of (Regime, paper accuracy in % or None)
    expected : list of (i, j)
        Pairs meaning "regime i should have a lower RMSE than regime j at every rank".

    Examples
    --------
    >>> regs, exp = study_regimes("fraction")
    >>> [r.label for r, _ in regs], [a for _, a in regs], exp  # doctest: +NORMALIZE_WHITESPACE
    (['25% of the data', '50% of the data', '75% of the data', '100% of the data'], [83, 89, 93, 95],
     [(0, 1), (1, 2), (2, 3)])
    """
    base = dict(seed=seed, epochs=epochs, train_samples=train_samples)
    if name in ("fraction", "demo", "alexnet"):
        net = "alexnet" if name == "alexnet" else "paper"
        default = (0.25, 1.0) if name == "demo" else (0.25, 0.5, 0.75, 1.0)
        fr = list(fractions) if fractions else list(default)
        paper = {0.25: 83, 0.5: 89, 0.75: 93, 1.0: 95} if net == "paper" and dataset == "mnist" else {}
        regs = [
            (Regime(network=net, dataset=dataset if net == "alexnet" else "mnist", fraction=f, **base), paper.get(f))
            for f in fr
        ]
        order = sorted(range(len(fr)), key=lambda i: fr[i])
        return regs, [(order[i], order[i + 1]) for i in range(len(order) - 1)]
    if name == "subset":
        sets = [((0,), 9), ((0, 1, 2, 3, 4), 50), ((5, 6, 7, 8, 9), 47), (None, 93)]
        regs = [(Regime(classes=c, name=None if c else "classes 0-9", **base), a) for c, a in sets]
        return regs, [(0, 1), (0, 2), (1, 3), (2, 3)]
    if name == "ordered":
        regs = [
            (Regime(ordered=True, first_class=first_class, **base), 9 if first_class == 9 else None),
            (Regime(name="shuffled (100%)", **base), 95),
        ]
        return regs, [(0, 1)]
    raise InputError(f"unknown study {name!r}; choose one of {sorted(STUDIES)}")


@dataclass
class RegimeResult:
    """One trained network of a study: accuracy, sweep and spectra."""

    regime: Regime
    accuracy: float
    paper_accuracy: float | None
    sweep: Sweep
    spectrum: Spectrum
    n_train: int
    seconds: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.regime.label


@dataclass
class StudyResult:
    """All regimes of a study, with the paper's expected RMSE order."""

    name: str
    results: list[RegimeResult]
    expected: list[tuple[int, int]]
    meta: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)

    @property
    def ranks(self) -> list[int]:
        """Ranks finished by every regime."""
        common = set(self.results[0].sweep.ranks)
        for r in self.results[1:]:
            common &= set(r.sweep.ranks)
        return sorted(common)

    def rmse(self) -> dict[str, list[float]]:
        """RMSE per rank (over :attr:`ranks`) for every regime label."""
        return {r.label: [float(r.sweep[k].rmse) for k in self.ranks] for r in self.results}

    def ordering(self) -> dict:
        """Whether the RMSE orders the regimes as the paper found, at every rank.

        Returns
        -------
        dict
            ``per_rank``: {rank: True/False}; ``holds``: all ranks agree; ``violations``: list of
            ``(rank, lower_label, higher_label)`` where the expected lower RMSE was not lower.
        """
        per_rank, violations = {}, []
        for k in self.ranks:
            ok = True
            for i, j in self.expected:
                a, b = self.results[i], self.results[j]
                if not a.sweep[k].rmse < b.sweep[k].rmse:
                    ok = False
                    violations.append((k, a.label, b.label))
            per_rank[k] = ok
        return {"per_rank": per_rank, "holds": bool(per_rank) and all(per_rank.values()), "violations": violations}

    def summary(self) -> dict:
        """A JSON-ready summary: accuracies, RMSE table, ordering, settings."""
        o = self.ordering()
        return {
            "study": self.name,
            "meta": self.meta,
            "ranks": self.ranks,
            "regimes": [
                {
                    "label": r.label,
                    "regime": {k: v for k, v in r.regime.__dict__.items()},
                    "n_train": r.n_train,
                    "accuracy": r.accuracy,
                    "paper_accuracy": r.paper_accuracy,
                    "rmse": [float(r.sweep[k].rmse) for k in self.ranks],
                    "entropy_rank": r.spectrum.entropy_rank,
                    "seconds": r.seconds,
                }
                for r in self.results
            ],
            "expected_lower": [[self.results[i].label, self.results[j].label] for i, j in self.expected],
            "ordering_per_rank": {str(k): v for k, v in o["per_rank"].items()},
            "ordering_holds": o["holds"],
        }

    def markdown(self) -> str:
        """The reproduction table of this study as Markdown."""
        ranks = self.ranks
        head = "| regime | test accuracy | paper | " + " | ".join(f"RMSE r={k}" for k in ranks) + " |"
        lines = [head, "|" + "---|" * (3 + len(ranks))]
        for r in self.results:
            pa = f"{r.paper_accuracy:g} %" if r.paper_accuracy is not None else "–"
            lines.append(
                f"| {r.label} | {r.accuracy * 100:.1f} % | {pa} | "
                + " | ".join(f"{r.sweep[k].rmse:.5f}" for k in ranks)
                + " |"
            )
        o = self.ordering()
        exp = "; ".join(f"{self.results[i].label} < {self.results[j].label}" for i, j in self.expected)
        verdict = (
            "yes, at every rank"
            if o["holds"]
            else ("no: " + "; ".join(f"rank {k}: {a} not below {b}" for k, a, b in o["violations"]))
        )
        lines.append("")
        lines.append(f"Expected (paper): RMSE {exp}. Reproduced: {verdict}.")
        return "\n".join(lines)


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in text.lower())
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")


#: Test images the studies' quality score is measured on (the first ones; the calibration's number).
QUALITY_SAMPLES = 2000
#: Networks whose studies measure the quality score: the calibrated architectures, where it is cheap
#: (a few CPU seconds for the paper network; AlexNet's five wide layers took 38 s each under load).
QUALITY_NETWORKS = ("paper", "smallcnn")


def run_regime(
    regime: Regime,
    test: tuple[torch.Tensor, torch.Tensor],
    *,
    paper_accuracy: float | None = None,
    train_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    root=None,
    download: bool | None = None,
    ranks: Iterable[int] = PAPER_RANKS,
    samples: int | None = None,
    device=None,
    cache=None,
    progress: bool = True,
    layers: Sequence[str] | None = None,
    spectrum_k: int = 50,
    eval_samples: int | None = None,
    distributed: bool = False,
    **factorize_kwargs,
) -> RegimeResult:
    """Train (or load) one regime, test it, capture the test images, sweep the ranks and take spectra.

    With ``distributed`` (a ``torchrun`` launch, see :func:`peeklens.nmf.distributed.init_from_env`), rank 0
    trains (and caches) the network while the other processes wait, every process then uses rank 0's weights,
    captures its contiguous share of the test images and the sweep and spectra are those of their union.
    """
    t0 = time.perf_counter()
    rank0 = not distributed or torch.distributed.get_rank() == 0
    if not rank0:
        torch.distributed.barrier()  # rank 0 trains and caches first; the others then load the checkpoint
    tm: TrainedModel = train(
        regime, data=train_data, root=root, download=download, device=device, cache=cache, progress=progress and rank0
    )
    if distributed:
        if rank0:
            torch.distributed.barrier()
        broadcast_module(tm.model)  # the same weights everywhere, cached or not
    t1 = time.perf_counter()
    x, y = test
    n_eval = len(x) if eval_samples is None else int(eval_samples)
    acc = evaluate(tm.model, x[:n_eval], y[:n_eval], regime.dataset)
    if samples is not None:
        x, y = x[: int(samples)], y[: int(samples)]
    if distributed:
        mine = shard(len(x))
        x, y = x[mine], y[mine]
    layers = list(layers or layers_of(regime.network))
    acts = _capture(
        tm.model,
        TensorDataset(normalize(x, regime.dataset), y),
        layers,
        input_transform=denormalizer(regime.dataset),
        batch_size=500,
        progress=progress,
        device=device,
    )
    t2 = time.perf_counter()
    sw = _sweep(
        acts, list(ranks), progress=progress and rank0, device=device, distributed=distributed, **factorize_kwargs
    )
    if sw.interrupted:  # pl.sweep keeps the finished ranks; a study stops here
        raise KeyboardInterrupt
    t3 = time.perf_counter()
    sv = _spectrum(acts, k=spectrum_k, blocks=acts.layer_names, device=device, distributed=distributed)
    t4 = time.perf_counter()
    if regime.network in QUALITY_NETWORKS and not distributed and acts.n_samples >= max(_QUALITY_RANKS):
        # the label-free quality score, on the first QUALITY_SAMPLES test images as calibrated (docs/quality.md)
        sw.quality = _quality(acts.subset(slice(0, QUALITY_SAMPLES)), device=device)
    t5 = time.perf_counter()
    sw.meta.update({"label": regime.label, "accuracy": acc, "regime": regime.key()})
    return RegimeResult(
        regime,
        acc,
        paper_accuracy,
        sw,
        sv,
        tm.n_train,
        {
            "train": round(t1 - t0, 2),
            "capture": round(t2 - t1, 2),
            "sweep": round(t3 - t2, 2),
            "spectrum": round(t4 - t3, 2),
            "quality": round(t5 - t4, 2),
            "cached_model": tm.cached,
        },
    )


def run_study(
    name: str,
    *,
    root=None,
    out: str | os.PathLike | None = None,
    device=None,
    samples: int | None = 10000,
    ranks: Iterable[int] = PAPER_RANKS,
    seed: int = 0,
    epochs: int = 1,
    first_class: int = 9,
    dataset: str = "mnist",
    fractions: Sequence[float] | None = None,
    train_samples: int | None = None,
    eval_samples: int | None = None,
    cache=None,
    download: bool | None = None,
    progress: bool = True,
    report: bool = True,
    distributed: bool = False,
    **factorize_kwargs,
) -> StudyResult:
    """Run a case study end to end: train every regime, capture the test set, sweep, compare.

    Parameters
    ----------
    name : {"fraction", "subset", "ordered", "alexnet", "demo"}
    root : path, optional
        Data directory (default ``$PEEKLENS_DATA``).
    out : path, optional
        Write ``<name>.html`` (the report), two ``.peeklens`` files per regime (``pl.save`` of its
        sweep, and of its layers' spectrum as ``...-spectrum.peeklens``), ``<name>.json`` (the summary) and
        ``<name>.md`` (the reproduction table) here.
    samples : int, default 10000
        Number of test images captured (the first ones of the test set; all for ``None``).
    ranks : iterable of int, default 10, 20, 30, 40, 50
    seed, epochs, first_class, dataset, fractions, train_samples
        See :class:`~peeklens.studies.Regime` and :func:`study_regimes`.
    eval_samples : int, optional
        Measure the test accuracy on the first ``eval_samples`` test images (default: all of them).
    distributed : bool, default False
        Run under an initialized ``torch.distributed`` process group (``torchrun``): the test images are
        split among the processes, the factorization is of their union, and only rank 0 writes ``out``.
    **factorize_kwargs
        Passed to :func:`peeklens.sweep` (``solver=``, ``max_iter=``, ``tol=``...); the seed of the
        factorization is ``seed``.
    """
    regs, expected = study_regimes(
        name,
        seed=seed,
        epochs=epochs,
        first_class=first_class,
        dataset=dataset,
        fractions=fractions,
        train_samples=train_samples,
    )
    ranks = [int(r) for r in ranks]
    if not ranks or min(ranks) < 1:
        raise InputError(f"ranks must be positive integers, got {ranks}")
    ds = regs[0][0].dataset
    test = load_dataset(ds, False, root, download=download)
    train_data = load_dataset(ds, True, root, download=download)
    n_test = len(test[0]) if samples is None else min(int(samples), len(test[0]))
    if n_test < max(ranks):
        raise InputError(f"{n_test} test samples cannot support rank {max(ranks)}; use more --samples or lower ranks")
    results = []
    t0 = time.perf_counter()
    rank0 = not distributed or torch.distributed.get_rank() == 0
    outer = tqdm(regs, desc=f"{name}: networks", unit="net", disable=not (progress and rank0), position=0)
    for regime, paper_acc in outer:
        outer.set_postfix_str(regime.label)
        results.append(
            run_regime(
                regime,
                test,
                paper_accuracy=paper_acc,
                train_data=train_data,
                ranks=ranks,
                samples=n_test,
                device=device,
                cache=cache,
                progress=progress,
                seed=seed,
                eval_samples=eval_samples,
                distributed=distributed,
                **factorize_kwargs,
            )
        )
    outer.close()
    meta = {
        "study": name,
        "description": STUDIES[name],
        "dataset": ds,
        "network": regs[0][0].network,
        "samples": n_test,
        "eval_samples": len(test[0]) if eval_samples is None else min(eval_samples, len(test[0])),
        "ranks": ranks,
        "seed": seed,
        "epochs": epochs,
        "train_pool": len(train_data[0]) if train_samples is None else min(train_samples, len(train_data[0])),
        "factorize": {
            k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in factorize_kwargs.items()
        },
        "device": str(device or "cpu"),
        "seconds": round(time.perf_counter() - t0, 1),
        "processes": torch.distributed.get_world_size() if distributed else 1,
        "peeklens": __version__,
        "torch": torch.__version__,
    }
    res = StudyResult(name, results, expected, meta)
    if out is not None:
        write_outputs(res, out, report=report)
    return res


def write_outputs(res: StudyResult, out: str | os.PathLike, *, report: bool = True) -> dict:
    """Save every regime's sweep and spectrum (``pl.save``), the JSON summary and the HTML report into ``out``."""
    out = Path(out)
    for r in res.results:  # collective for a distributed study: every process takes part, rank 0 gets F whole
        r.sweep = gather_for_save(r.sweep)
    if any(r.sweep is None for r in res.results):
        return {}  # not rank 0 of a distributed study: rank 0 writes everything
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for r in res.results:
        p = out / f"{res.name}-{_slug(r.label)}.peeklens"
        _save(r.sweep, p)
        files[r.label] = str(p)
        # the layers' spectra beside the sweep: the JupyterLab document overlays the folder's spectra
        _save(r.spectrum, out / f"{res.name}-{_slug(r.label)}-spectrum.peeklens")
    summary = res.summary()
    summary["files"] = files
    (out / f"{res.name}.json").write_text(json.dumps(summary, indent=2, default=str))
    files["summary"] = str(out / f"{res.name}.json")
    (out / f"{res.name}.md").write_text(res.markdown() + "\n")
    files["table"] = str(out / f"{res.name}.md")
    res.files = files
    if report:
        from ..report import write_report

        files["report"] = str(
            write_report({r.label: r.sweep for r in res.results}, out / f"{res.name}.html", **_report_words(res, files))
        )
    return files


def _report_words(res: StudyResult, files: dict) -> dict:
    """What the report shows besides the sweeps: title, context line, summary table, verdict, spectra."""
    m = res.meta
    ranks = res.ranks
    table: dict = {
        "network": [r.label for r in res.results],
        "training images": [f"{r.n_train:,}" if r.n_train is not None else None for r in res.results],
        "test accuracy": [f"{r.accuracy * 100:.1f} %" for r in res.results],
        "paper": [f"{r.paper_accuracy:g} %" if r.paper_accuracy is not None else None for r in res.results],
    }
    if any(r.sweep.quality is not None for r in res.results):
        table["quality score"] = [f"{r.sweep.quality.score:+.2f}" if r.sweep.quality else None for r in res.results]
    for k in ranks:
        table[f"RMSE r={k}"] = [f"{r.sweep[k].rmse:.5f}" for r in res.results]
    for n in res.results[0].spectrum.entropy_rank if res.results[0].spectrum is not None else []:
        if not n.startswith("input:"):
            table[f"entropy rank {n}"] = [
                f"{r.spectrum.entropy_rank[n]:.1f}" if n in r.spectrum.entropy_rank else None for r in res.results
            ]
    verdict = ok = None
    if res.expected:
        o = res.ordering()
        exp = "; ".join(f"{res.results[i].label} < {res.results[j].label}" for i, j in res.expected)
        ok = o["holds"]
        verdict = (
            f"Paper's finding: lower RMSE for {exp} (less or narrower training makes the activations more "
            "compressible). "
            + (
                "The RMSE orders the networks as the paper found at every rank."
                if ok
                else "The paper's order does not hold at every rank: "
                + "; ".join(f"rank {k}: {a} not below {b}" for k, a, b in o["violations"])
                + "."
            )
        )
    context = [
        f"{m.get('samples')} test images of {m.get('dataset')}",
        f"ranks {m.get('ranks')}",
        f"seed {m.get('seed')}",
        f"{m.get('seconds')} s in all",
    ]
    if m.get("factorize"):
        context.append("factorization: " + ", ".join(f"{k}={v}" for k, v in m["factorize"].items()))
    return {
        "title": f"peeklens · {m.get('description', res.name)}",
        "subtitle": " · ".join(context),
        "table": table,
        "verdict": verdict,
        "verdict_ok": ok,
        "verdict_title": "Does the RMSE order the networks as in the paper?",
        "spectra": {r.label: r.spectrum for r in res.results if r.spectrum is not None},
        "files": dict(files),
    }


def small_size() -> bool:
    """True when ``$PEEKLENS_NOTEBOOK_SMALL`` asks notebooks and examples to run at a small size."""
    return os.environ.get("PEEKLENS_NOTEBOOK_SMALL", "") not in ("", "0", "false", "no")
