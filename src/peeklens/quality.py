"""A label-free training-quality score: is this network well trained? (higher = better).

The paper's observation is that a poorly trained network (less data, fewer classes, collapsed by
class-ordered training) has more compressible activations on unlabeled test inputs.  The raw RMSE
of the coupled factorization mixes that with the scale of the activations (better-trained
networks have larger activations), so :func:`quality` measures scale-free properties of the
analysed layers instead and combines them into one number, :attr:`Quality.score`.

Which components make up the score, and how far the score tracks test accuracy, were measured by
the calibration study ``benchmarks/quality_zoo.py`` (docs/quality.md): the score was chosen on one
family of training regimes and its rank correlation with accuracy is reported on held-out regimes.

Scores are comparable only between networks of the same architecture, analysed at the same layers
on the same test inputs (:func:`compare` checks this); a score is not an accuracy and has no
meaning across architectures or datasets.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .activations import Activations
from .errors import InputError
from .nmf import factorize
from .results import Factorization, Sweep
from .spectra import spectrum

__all__ = [
    "Quality",
    "Comparison",
    "quality",
    "compare",
    "components",
    "summarize",
    "CALIBRATION",
    "SCORE",
]

# The score: the mean of these components (all scale-free; higher = better trained).
# Chosen by benchmarks/quality_zoo.py on the selection regimes; see docs/quality.md.
# BEGIN SCORE (written by benchmarks/quality_zoo.py)
SCORE: dict = {
    "components": ["deep_stable_rank", "mean_selectivity", "deep_error_decay"],
    "signs": [1.0, 1.0, -1.0],
    "center": [0.0049407160055925095, 0.5620586805904196, 0.7993905407748603],
    "scale": [0.0008252802140669188, 0.04450660249546952, 0.049606060676853955],
}
# END SCORE

# What the calibration study measured for the score (held-out regimes), for the repr.
# BEGIN CALIBRATION (written by benchmarks/quality_zoo.py)
CALIBRATION: dict = {
    "held_out": "label noise, subsets, class-ordered, learning rate; paper net",
    "n_networks": 29,
    "rho": 0.797,
    "rho_ci": [0.555, 0.916],
    "tau": 0.616,
    "tau_ci": [0.39, 0.781],
    "cifar_rho": 0.794,
    "seed_noise": 0.4945,
    "commit": "1687936",
}
# END CALIBRATION

#: Ranks of the coupled factorizations whose errors are components (as in the calibration study).
RANKS: tuple[int, ...] = (10, 30)

#: The noise floor used by :func:`compare` when no seed spread is given: the median absolute
#: difference of the score between seeds of one regime, measured by the calibration study.
SEED_NOISE: float = float(CALIBRATION.get("seed_noise", 0.02))


def _finite(v):
    """``v`` (JSON-like) with every non-finite float replaced by ``None``."""
    if isinstance(v, Mapping):
        return {str(k): _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _fingerprint(acts: Activations, layers: Sequence[str]) -> str:
    """A short hash of the input blocks and of the analysed layers' names and shapes."""
    h = hashlib.sha256()
    for n in acts.input_names:
        b = acts[n]
        h.update(n.encode())
        h.update(np.ascontiguousarray(np.asarray(b.data[:, : min(b.n_samples, 512)], dtype=np.float32)).tobytes())
        h.update(str(b.data.shape).encode())
    for n in layers:
        h.update(f"{n}:{acts[n].shape}".encode())
    h.update(str(acts.n_samples).encode())
    return h.hexdigest()[:16]


def _diversity(A: np.ndarray, max_neurons: int = 2048, seed: int = 0) -> tuple[float, float]:
    """(share of neurons that fire on at least 1 % of inputs, 1 - mean |cosine| between active neurons)."""
    fires = (A > 0).mean(axis=1)
    active = fires >= 0.01
    share = float(active.mean()) if active.size else 0.0
    X = A[active]
    if len(X) < 2:
        return share, 0.0
    if len(X) > max_neurons:
        X = X[np.random.default_rng(seed).choice(len(X), max_neurons, replace=False)]
    X = X.astype(np.float64)
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    C = X @ X.T
    m = len(X)
    off = (np.abs(C).sum() - np.trace(np.abs(C))) / (m * (m - 1))
    return share, float(1.0 - off)


def _participation(A: np.ndarray, device=None) -> float:
    """Participation ratio ``(sum l)^2 / sum l^2`` of the eigenvalues l of the centered covariance of ``A``."""
    import torch

    X = torch.from_numpy(np.asarray(A, dtype=np.float32)).to(device or "cpu").double()
    X = X - X.mean(dim=1, keepdim=True)
    G = X @ X.T if X.shape[0] <= X.shape[1] else X.T @ X
    ev = torch.linalg.eigvalsh(G).clamp(min=0)
    s2 = float((ev**2).sum())
    return float(ev.sum()) ** 2 / s2 if s2 > 0 else 0.0


def components(
    acts: Activations,
    *,
    layers: Sequence[str] | None = None,
    ranks: Sequence[int] = (10, 30),
    seed: int = 0,
    device=None,
    max_iter: int = 100,
) -> dict[str, float]:
    """Every candidate component of the score, measured on one network's captured activations.

    Parameters
    ----------
    acts : Activations
        The captured test inputs and layers (``pl.capture``); labels are not used.
    layers : list of str, optional
        The analysed layers, shallow to deep (default: every layer block of ``acts``).
    ranks : sequence of int, default (10, 30)
        Ranks of the coupled factorization whose per-block relative errors are measured.
    seed, device, max_iter
        Passed to :func:`peeklens.factorize`.

    Returns
    -------
    dict of str to float
        Per layer ``L`` (and ``deep_...`` for the deepest one): ``rel_error@r:L`` (relative error
        of the coupled factorization at rank r: higher = less compressible), ``entropy_rank:L``
        and ``stable_rank:L`` divided by the layer's neurons, ``active:L`` (share of neurons
        firing on >= 1 % of inputs), ``diversity:L`` (1 - mean |cosine| of active neurons'
        patterns), ``density:L`` (share of non-zero activations), ``log_scale:L`` (log of the RMS
        activation: the scale effect, reported but not scale-free), ``participation:L`` (participation
        ratio of the centered covariance's eigenvalues, per neuron), ``norm_cv:L`` (coefficient of
        variation of the inputs' activation norms), ``selectivity:L`` (mean Treves-Rolls lifetime
        sparseness of the neurons); ``rmse@r`` (the paper's raw
        RMSE) and ``f_peak@r`` (mean share of each input's largest factor in its row of F); and,
        from :func:`summarize`, ``deep_X`` and ``mean_X`` for every per-layer ``X``.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> rng = np.random.default_rng(0)
    >>> acts = pl.Activations.from_arrays({"relu": rng.random((40, 60)), "relu_1": rng.random((20, 60))})
    >>> c = components(acts, ranks=(2,), max_iter=20)
    >>> sorted(k for k in c if k.startswith("deep_"))[:3], c["mean_active"]
    (['deep_active', 'deep_density', 'deep_diversity'], 1.0)
    """
    layers = list(layers) if layers is not None else list(acts.layer_names)
    if not layers:
        raise InputError(
            "the activations have no layer blocks; capture at least one layer (pl.capture(..., layers=[...]))"
        )
    missing = [n for n in layers if n not in acts]
    if missing:
        raise InputError(f"layers {missing} are not in the activations (they have {acts.names})")
    ranks = [int(r) for r in ranks]
    if not ranks or min(ranks) < 1:
        raise InputError(f"ranks must be positive integers, got {ranks}")
    if max(ranks) > acts.n_samples:
        raise InputError(f"rank {max(ranks)} needs at least {max(ranks)} inputs; the activations have {acts.n_samples}")
    out: dict[str, float] = {}
    sub = acts.select(list(acts.input_names) + layers)
    for r in ranks:
        fit = factorize(sub, rank=r, seed=seed, device=device, max_iter=max_iter)
        out[f"rmse@{r}"] = float(fit.rmse)
        for n in layers:
            out[f"rel_error@{r}:{n}"] = float(fit.errors[n])
        F = np.asarray(fit.F, dtype=np.float64)
        tot = F.sum(axis=1)
        ok = tot > 0
        out[f"f_peak@{r}"] = float((F[ok].max(axis=1) / tot[ok]).mean()) if ok.any() else 0.0
    sv = spectrum(sub, k=min(50, acts.n_samples), blocks=layers, device=device)
    for n in layers:
        A = np.asarray(acts[n].data, dtype=np.float32)
        N = A.shape[0]
        out[f"entropy_rank:{n}"] = float(sv.entropy_rank[n]) / N
        out[f"stable_rank:{n}"] = float(sv.stable_rank[n]) / N
        out[f"active:{n}"], out[f"diversity:{n}"] = _diversity(A, seed=seed)
        out[f"density:{n}"] = float((A > 0).mean())
        out[f"participation:{n}"] = _participation(A, device) / N
        norms = np.linalg.norm(A.astype(np.float64), axis=0)
        out[f"norm_cv:{n}"] = float(norms.std() / norms.mean()) if norms.mean() > 0 else 0.0
        m1, m2 = A.mean(axis=1, dtype=np.float64), (A.astype(np.float64) ** 2).mean(axis=1)
        fired = m2 > 0
        # Treves-Rolls lifetime sparseness per neuron, averaged over neurons that fire (1 = fires for few inputs)
        out[f"selectivity:{n}"] = float(np.mean(1 - m1[fired] ** 2 / m2[fired])) if fired.any() else 0.0
        out[f"log_scale:{n}"] = float(math.log(max(float(np.sqrt(np.mean(A.astype(np.float64) ** 2))), 1e-30)))
    return summarize(out, layers)


def summarize(comp: Mapping[str, float], layers: Sequence[str]) -> dict[str, float]:
    """Add the architecture-independent names: ``deep_X`` (the deepest layer's ``X:L``) and ``mean_X`` (over layers).

    The score uses only these (and ``f_peak@r``), so that one definition applies to any network.

    Examples
    --------
    >>> summarize({"active:a": 0.5, "active:b": 1.0, "f_peak@10": 0.3}, ["a", "b"])["mean_active"]
    0.75
    """
    out = dict(comp)
    ranks = sorted({int(k.split("@")[1].split(":")[0]) for k in comp if k.startswith("rel_error@")})
    if len(ranks) >= 2:  # how fast the error falls with the rank (scale-free)
        lo, hi = ranks[0], ranks[-1]
        for layer in layers:
            a, b = comp.get(f"rel_error@{lo}:{layer}"), comp.get(f"rel_error@{hi}:{layer}")
            if a is not None and b is not None:
                out[f"error_decay:{layer}"] = float(b) / float(a) if a > 0 else 1.0
    per: dict[str, list[float]] = {}
    for layer in layers:
        for k, v in list(out.items()):
            if k.endswith(f":{layer}") and not k.startswith(("deep_", "mean_")):
                per.setdefault(k[: -len(layer) - 1], []).append(float(v))
    deep = layers[-1]
    for base, vals in per.items():
        if f"{base}:{deep}" in out:
            out[f"deep_{base}"] = float(out[f"{base}:{deep}"])
        if len(vals) == len(layers):
            out[f"mean_{base}"] = float(np.mean(vals))
    return out


def _terms(comp: Mapping[str, float], spec: Mapping) -> dict[str, float]:
    """Each chosen component standardized by the calibration networks' mean and spread, signed so that
    higher = better trained: the terms the score averages."""
    n = len(spec["components"])
    center = spec.get("center", [0.0] * n)
    scale = spec.get("scale", [1.0] * n)
    out = {}
    for name, sign, m, d in zip(spec["components"], spec["signs"], center, scale):
        if name not in comp:
            raise InputError(f"the score needs component {name!r}, which was not measured")
        out[name] = float(sign) * (float(comp[name]) - float(m)) / float(d)
    return out


@dataclass(eq=False)
class Quality:
    """The label-free training-quality score of one network (higher = better trained).

    Attributes
    ----------
    score : float
        The score (see :data:`SCORE` for its definition).  Only compare it with scores of the same
        architecture, layers and test inputs (:attr:`fingerprint`).
    components : dict of str to float
        Every measured component (see :func:`components`); the score's are listed in
        :attr:`used`.
    used : list of str
        The components that make up the score.
    layers : list of str
        The analysed layers.
    n_samples : int
        Number of test inputs.
    fingerprint : str
        Hash of the test inputs and of the layers' names and shapes: equal fingerprints mean
        comparable scores.
    calibration : dict
        What the calibration study measured for this score (held-out Spearman rho, Kendall tau and
        their 95 % bootstrap intervals), empty when not calibrated.
    seconds : float
        Wall time of the measurement.
    terms : dict of str to float
        Per used component its standardized term (z-score against the calibration networks, signed
        so that higher = better trained): the score is their mean.
    """

    score: float
    components: dict[str, float]
    used: list[str]
    layers: list[str]
    n_samples: int
    fingerprint: str
    calibration: dict = field(default_factory=dict)
    seconds: float = 0.0
    terms: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """A JSON-ready dict of everything."""
        return {
            "score": self.score,
            "components": dict(self.components),
            "used": list(self.used),
            "layers": list(self.layers),
            "n_samples": self.n_samples,
            "fingerprint": self.fingerprint,
            "calibration": dict(self.calibration),
            "seconds": self.seconds,
            "terms": dict(self.terms),
        }

    def to_json(self) -> dict:
        """:meth:`as_dict` with every non-finite number as ``None``: the schema's ``quality`` section.

        Examples
        --------
        >>> q = Quality(1.5, {"a": float("nan"), "b": 2.0}, ["b"], ["relu"], 60, "ab12")
        >>> q.to_json()["components"]
        {'a': None, 'b': 2.0}
        """
        return _finite(self.as_dict())

    @classmethod
    def from_dict(cls, d: Mapping) -> Quality:
        """The :class:`Quality` of :meth:`as_dict` or :meth:`to_json` (``None`` numbers read as NaN).

        Raises :class:`~peeklens.InputError` naming the field that is missing or of the wrong type.

        Examples
        --------
        >>> q = Quality(1.5, {"a": 0.25, "b": 2.0}, ["b"], ["relu"], 60, "ab12", {"rho": 0.8})
        >>> back = Quality.from_dict(q.to_json())
        >>> back.score, back.components, back.calibration
        (1.5, {'a': 0.25, 'b': 2.0}, {'rho': 0.8})
        """
        if not isinstance(d, Mapping):
            raise InputError(f"a quality section must be an object, got {type(d).__name__}")

        def num(v, what: str) -> float:
            if v is None:
                return float("nan")
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InputError(f"quality {what} must be a number, got {v!r}")
            return float(v)

        def names(v, what: str) -> list[str]:
            if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
                raise InputError(f"quality {what!r} must be a list of names, got {v!r}")
            return list(v)

        for key in ("score", "components", "used"):
            if key not in d:
                raise InputError(f"the quality section has no {key!r} (it has {sorted(d)})")
        comp = d["components"]
        if not isinstance(comp, Mapping):
            raise InputError(f"quality 'components' must be an object of numbers, got {type(comp).__name__}")
        components = {str(k): num(v, f"component {k!r}") for k, v in comp.items()}
        used = names(d["used"], "used")
        missing = [u for u in used if u not in components]
        if missing:
            raise InputError(f"quality components {missing} are listed in 'used' but not measured")
        cal = d.get("calibration") or {}
        if not isinstance(cal, Mapping):
            raise InputError(f"quality 'calibration' must be an object, got {type(cal).__name__}")
        terms = d.get("terms") or {}
        if not isinstance(terms, Mapping):
            raise InputError(f"quality 'terms' must be an object of numbers, got {type(terms).__name__}")
        return cls(
            num(d["score"], "score"),
            components,
            used,
            names(d.get("layers", []), "layers"),
            int(num(d.get("n_samples", 0), "n_samples")),
            str(d.get("fingerprint", "")),
            dict(cal),
            num(d.get("seconds", 0.0), "seconds"),
            {str(k): num(v, f"term {k!r}") for k, v in terms.items()},
        )

    def __repr__(self) -> str:
        lines = [f"Quality score {self.score:.4f}  (label-free; higher = better trained)"]
        lines.append("  components: " + ", ".join(f"{k} = {self.components[k]:.4f}" for k in self.used))
        lines.append(f"  layers {self.layers}, {self.n_samples} test inputs, fingerprint {self.fingerprint}")
        cal = self.calibration
        if cal:
            lines.append(
                f"  trust: on held-out training regimes ({cal.get('held_out', '?')}), Spearman rho "
                f"{cal['rho']:.2f} [{cal['rho_ci'][0]:.2f}, {cal['rho_ci'][1]:.2f}], Kendall tau {cal['tau']:.2f} "
                f"[{cal['tau_ci'][0]:.2f}, {cal['tau_ci'][1]:.2f}] against test accuracy (docs/quality.md)"
            )
        else:
            lines.append("  trust: not calibrated (run benchmarks/quality_zoo.py)")
        lines.append("  comparable only with scores of the same architecture, layers and test inputs")
        return "\n".join(lines)


def quality(
    acts: Activations,
    *,
    layers: Sequence[str] | None = None,
    seed: int = 0,
    device=None,
    max_iter: int = 100,
) -> Quality:
    """Score how well a network is trained, from its activations on unlabeled test inputs.

    Parameters
    ----------
    acts : Activations
        ``pl.capture(model, test_inputs, layers)``: the test inputs (input blocks) and the analysed
        layers.  Labels, if any, are not used.  Use the same inputs and layers for every network
        you want to compare.
    layers : list of str, optional
        The analysed layers, shallow to deep (default: every layer block, in capture order).
    seed, device, max_iter
        Passed to :func:`peeklens.factorize`.

    Returns
    -------
    Quality

    Notes
    -----
    Cost on the paper's workload (2 layers, 1440 + 320 neurons, 2,000 MNIST test inputs, one
    thread): 1.6 s of CPU time, 8-9 s of wall time on the project's shared 2-core machine at a load
    average of 15 (docs/quality.md): two coupled factorizations (ranks 10 and 30), the layers'
    exact spectra and a few Gram matrices.  Cheap enough for every checkpoint.
    It needs at least 30 inputs; the calibration used 2,000.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> rng = np.random.default_rng(0)
    >>> acts = pl.Activations.from_arrays({"relu": rng.random((40, 60)), "relu_1": rng.random((20, 60))})
    >>> q = quality(acts, max_iter=20)  # pl.quality
    >>> isinstance(q.score, float) and set(q.used) <= set(q.components)
    True
    """
    import time

    t0 = time.perf_counter()
    layers = list(layers) if layers is not None else list(acts.layer_names)
    if acts.n_samples < max(RANKS):
        raise InputError(
            f"pl.quality needs at least {max(RANKS)} test inputs (its factorizations have ranks {RANKS}); "
            f"the activations have {acts.n_samples}. Capture more inputs (the calibration used 2,000)"
        )
    ranks = list(RANKS)
    comp = components(acts, layers=layers, ranks=ranks, seed=seed, device=device, max_iter=max_iter)
    terms = _terms(comp, SCORE)
    score = float(np.mean(list(terms.values())))
    return Quality(
        score,
        comp,
        list(SCORE["components"]),
        layers,
        acts.n_samples,
        _fingerprint(acts, layers),
        dict(CALIBRATION),
        round(time.perf_counter() - t0, 3),
        terms,
    )


@dataclass(eq=False)
class Comparison:
    """Networks ranked by their quality score, best first.

    Attributes
    ----------
    names : list of str
        Network names, best score first.
    qualities : dict of str to Quality
    noise : float
        Differences at most this large are within the seed noise.
    ties : list of (str, str)
        Pairs of networks, adjacent or not, whose scores differ by at most :attr:`noise`.
    """

    names: list[str]
    qualities: dict[str, Quality]
    noise: float
    ties: list[tuple[str, str]]

    def within_noise(self, a: str, b: str) -> bool:
        """Whether networks ``a`` and ``b`` are not distinguishable by the score."""
        return (a, b) in self.ties or (b, a) in self.ties

    def as_dict(self) -> dict:
        return {
            "ranking": [{"name": n, **self.qualities[n].as_dict()} for n in self.names],
            "noise": self.noise,
            "ties": [list(t) for t in self.ties],
        }

    def __repr__(self) -> str:
        width = max(len(n) for n in self.names)
        used = self.qualities[self.names[0]].used
        head = (
            f"{'#':>2}  {'network':{width}s}  {'score':>8s}  "
            + "  ".join(f"{u:>14s}" for u in used)
            + "  within noise of"
        )
        lines = [
            f"Comparison of {len(self.names)} networks by quality score (higher = better trained; "
            f"seed noise {self.noise:.3g})",
            head,
        ]
        for i, n in enumerate(self.names):
            q = self.qualities[n]
            near = [b for a, b in self.ties if a == n] + [a for a, b in self.ties if b == n]
            lines.append(
                f"{i + 1:>2}  {n:{width}s}  {q.score:8.4f}  "
                + "  ".join(f"{q.components[u]:14.4f}" for u in used)
                + "  "
                + (", ".join(near) or "-")
            )
        cal = self.qualities[self.names[0]].calibration
        if cal:
            lines.append(
                f"trust: held-out Spearman rho {cal['rho']:.2f} [{cal['rho_ci'][0]:.2f}, {cal['rho_ci'][1]:.2f}] "
                "between the score and test accuracy (docs/quality.md)"
            )
        return "\n".join(lines)


def compare(
    networks: Mapping[str, Activations | Quality],
    *,
    noise: float | None = None,
    strict: bool = True,
    **quality_kwargs,
) -> Comparison:
    """Rank networks by :func:`quality`, flagging pairs whose scores differ by no more than the seed noise.

    Parameters
    ----------
    networks : dict of str to Activations, Quality, Sweep or Factorization
        Each network's captured activations (scored here), its :class:`Quality`, or a result carrying
        one (``sweep.quality``, e.g. a ``.peeklens`` file saved with it, ``pl.load(path)``).
    noise : float, optional
        Score differences up to this are "within noise" (default :data:`SEED_NOISE`, the seed
        spread measured by the calibration study).
    strict : bool, default True
        Raise :class:`~peeklens.InputError` when the networks were not measured on the same test
        inputs and layers (different fingerprints); with ``False``, warn instead.
    **quality_kwargs
        Passed to :func:`quality`.

    Examples
    --------
    >>> import numpy as np, peeklens as pl
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((16, 60))
    >>> nets = {n: pl.Activations.from_arrays({"input:0": x, "relu": rng.random((30, 60)) ** p},
    ...                                       kinds={"input:0": "input"}) for n, p in [("a", 1), ("b", 8)]}
    >>> c = pl.compare(nets, max_iter=20)
    >>> sorted(c.names)
    ['a', 'b']
    """
    if not networks:
        raise InputError("compare() needs at least one network")
    qs: dict[str, Quality] = {}
    for name, obj in networks.items():
        if isinstance(obj, Quality):
            qs[name] = obj
        elif isinstance(obj, Activations):
            qs[name] = quality(obj, **quality_kwargs)
        elif isinstance(obj, (Sweep, Factorization)):
            if obj.quality is None:
                raise InputError(
                    f"network {name!r}: this {type(obj).__name__} carries no quality score; set "
                    f"result.quality = pl.quality(acts) before saving it, or pass the activations"
                )
            qs[name] = obj.quality
        else:
            raise InputError(
                f"network {name!r}: expected Activations, Quality, Sweep or Factorization, got {type(obj).__name__}"
            )
    prints = {}
    for name, q in qs.items():
        prints.setdefault((q.fingerprint, tuple(q.used)), []).append(name)
    if len(prints) > 1:
        groups = "; ".join(f"{names} (fingerprint {fp})" for (fp, _), names in prints.items())
        msg = (
            "the networks were not measured on the same test inputs and layers, so their scores are not "
            f"comparable: {groups}. Capture every network on the same inputs at the same layers"
        )
        if strict:
            raise InputError(msg)
        warnings.warn(msg, stacklevel=2)
    noise = SEED_NOISE if noise is None else float(noise)
    if not noise >= 0:
        raise InputError(f"noise must be >= 0, got {noise!r}")
    names = sorted(qs, key=lambda n: -qs[n].score)
    ties = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :] if abs(qs[a].score - qs[b].score) <= noise]
    return Comparison(names, qs, noise, ties)
