"""The factor as a differentiable objective: ``input -> <layer activation, loading vector>``.

:func:`factor_objective` resolves a layer *block* name of a :class:`~peeklens.Factorization`
(``"relu"``, ``"layer1.0.relu@1"``, ``"relu+"``, ``"out[0]"``) to the same place in the model that
:func:`peeklens.capture` recorded (a forward hook on a module, or an FX node through
torchvision's ``create_feature_extractor``), and returns a :class:`FactorObjective` module whose
``forward`` gives one score per sample: the dot product of the layer's flattened activation, as
captured (pooled and made non-negative the same way), with the factor's loading vector.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..errors import InputError, LayerNotFoundError
from ..results import Factorization

__all__ = ["FactorObjective", "LayerSpec", "check_factor", "layer_spec", "factor_objective", "relu_modules"]


class LayerSpec:
    """Where a layer block lives in the model and how capture turned its output into the block.

    Attributes
    ----------
    block : str
        The block name in the factorization.
    base : str
        The module or FX node name.
    mode : {"hooks", "fx"}
    call : int
        Which call of a module called several times (``name@k``).
    keys : tuple
        Index path into a tuple/list/dict output (``name[0][key]``).
    shape : tuple of int
        The block's per-sample shape (after capture's pooling).
    transform : str or None
        capture's non-negativity transform of the block.
    """

    def __init__(self, block, base, mode, call, keys, shape, transform):
        self.block, self.base, self.mode, self.call, self.keys = block, base, mode, call, keys
        self.shape = tuple(int(s) for s in shape)
        self.transform = transform

    @property
    def is_conv(self) -> bool:
        """Whether the block has a (C, H, W) shape."""
        return len(self.shape) == 3

    def __repr__(self) -> str:
        return f"LayerSpec({self.block!r} -> {self.mode} {self.base!r}, call {self.call}, keys {self.keys})"


def check_factor(fit: Factorization, layer: str, factor) -> int:
    """Validate ``layer`` (a layer block of ``fit``) and ``factor``; return the factor as an int."""
    if not isinstance(fit, Factorization):
        raise InputError(
            f"fit must be a peeklens.Factorization (from pl.factorize, a Sweep[rank] or pl.load), got "
            f"{type(fit).__name__}"
        )
    if not isinstance(layer, str):
        raise InputError(f"layer must be a block name (str), got {layer!r}")
    if layer not in fit.loadings:
        layers = [n for n in fit.loadings if fit.blocks.get(n, {}).get("kind") != "input"]
        close = difflib.get_close_matches(layer, layers, n=5, cutoff=0.4)
        hint = f"closest: {close}" if close else f"its layers are {layers}"
        raise LayerNotFoundError(f"layer {layer!r} is not a block of this factorization; {hint}")
    if fit.blocks.get(layer, {}).get("kind") == "input":
        raise InputError(
            f"{layer!r} is an input-channel block (its factor loadings are the latent image already); "
            f"give a layer block: {fit.layer_names}"
        )
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)):
        raise InputError(f"factor must be an integer index, got {factor!r}")
    if not 0 <= int(factor) < fit.rank:
        raise InputError(f"factor {factor} is out of range: this factorization has rank {fit.rank} (0..{fit.rank - 1})")
    return int(factor)


_CALL = re.compile(r"^(?P<base>.*)@(?P<k>\d+)$")
_KEYS = re.compile(r"\[([^\[\]]*)\]$")


def _split_keys(name: str) -> tuple[str, tuple]:
    keys: list = []
    while True:
        m = _KEYS.search(name)
        if not m or m.start() == 0:
            break
        k = m.group(1)
        keys.insert(0, int(k) if k.lstrip("-").isdigit() else k)
        name = name[: m.start()]
    return name, tuple(keys)


def _fx_node_names(model: nn.Module) -> list[str]:
    from torchvision.models.feature_extraction import get_graph_node_names

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, names = get_graph_node_names(model)
    except Exception:  # noqa: BLE001 - a model that cannot be traced has no FX names
        return []
    return [n for n in names if n not in ("x", "input")]


def layer_spec(model: nn.Module, fit: Factorization, layer: str) -> LayerSpec:
    """Resolve the block ``layer`` of ``fit`` to a module hook or an FX node of ``model``.

    Raises :class:`~peeklens.LayerNotFoundError` with the closest names when the model has no such
    layer (e.g. a factorization of another model).
    """
    info = fit.blocks.get(layer, {})
    transform = info.get("transform")
    shape = tuple(info.get("shape") or (fit.loadings[layer].shape[0],))
    name = layer
    if transform in ("split+", "split-") and name[-1:] in "+-":
        name = name[:-1]
    modules = dict(model.named_modules())

    def parse(n: str):
        """(base, call, keys) for a name as capture writes it, or None."""
        base, keys = _split_keys(n)
        call = 0
        m = _CALL.match(base)
        if m and base not in modules:
            base, call = m.group("base"), int(m.group("k"))
        if base == "" or base not in modules:
            return None
        return base, call, keys

    parsed = parse(name)
    if parsed is not None:
        return LayerSpec(layer, parsed[0], "hooks", parsed[1], parsed[2], shape, transform)
    nodes = _fx_node_names(model)
    base, keys = _split_keys(name)
    if name in nodes:
        return LayerSpec(layer, name, "fx", 0, (), shape, transform)
    if base in nodes:
        return LayerSpec(layer, base, "fx", 0, keys, shape, transform)
    candidates = list(dict.fromkeys([n for n in modules if n] + nodes))
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.4)
    hint = f"closest names in the model: {close}" if close else f"the model's names include {candidates[:12]}"
    raise LayerNotFoundError(
        f"layer {layer!r} of the factorization is not in {type(model).__name__}; {hint}. Use the model the "
        "activations were captured from (peeklens.list_layers(model) lists its names)."
    )


class _Reached(BaseException):
    """Raised by the hook once the layer has run: the rest of the forward pass is not needed.

    A BaseException, so that a model's own ``except Exception`` cannot swallow it.
    """


def _pick(value, keys: tuple, block: str):
    for k in keys:
        try:
            value = value[k]
        except (KeyError, IndexError, TypeError) as e:
            raise InputError(f"layer {block!r}: the output has no entry [{k!r}] ({e})") from e
    if not isinstance(value, torch.Tensor):
        raise InputError(f"layer {block!r}: the output is {type(value).__name__}, not a tensor")
    return value


class FactorObjective(nn.Module):
    """``x -> (score, activation)``: the factor's activation per sample, and the layer block as captured.

    ``forward(x)`` returns the scores (batch,) only, so that Captum can attribute them;
    :meth:`run` returns both.  ``x`` is in the space of the captured inputs; ``preprocess`` maps it
    to what the model takes.
    """

    def __init__(
        self,
        model: nn.Module,
        spec: LayerSpec,
        loading: torch.Tensor,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        super().__init__()
        self.spec = spec
        self.preprocess = preprocess
        self.register_buffer("loading", loading)
        self.model = model
        self.extractor: nn.Module | None = None
        if spec.mode == "fx":
            from torchvision.models.feature_extraction import create_feature_extractor

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.extractor = create_feature_extractor(model, return_nodes={spec.base: "out"})
            except Exception as e:
                raise InputError(
                    f"could not trace {type(model).__name__} with torch.fx to reach node {spec.base!r}: {e}"
                ) from e
            self.extractor.eval()

    # The activation ---------------------------------------------------------------
    def _raw(self, x: torch.Tensor) -> torch.Tensor:
        if self.extractor is not None:
            return _pick(self.extractor(x)["out"], self.spec.keys, self.spec.block)
        module = dict(self.model.named_modules())[self.spec.base]
        seen = {"calls": 0, "out": None}

        def hook(mod, inputs, output):
            k = seen["calls"]
            seen["calls"] = k + 1
            if k == self.spec.call:
                seen["out"] = _pick(output, self.spec.keys, self.spec.block)
                raise _Reached

        handle = module.register_forward_hook(hook)
        try:
            self.model(x)
        except _Reached:
            pass
        finally:
            handle.remove()
        if seen["out"] is None:
            raise InputError(
                f"layer {self.spec.block!r} did not run (module {self.spec.base!r} was called {seen['calls']} "
                f"times, call {self.spec.call} was wanted)"
            )
        return seen["out"]

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        """The layer block for a batch, as capture stored it: (batch, features)."""
        if self.preprocess is not None:
            x = self.preprocess(x)
        t = self._raw(x).float()
        shape = self.spec.shape
        if t.ndim == 4 and len(shape) == 3 and tuple(t.shape[2:]) != shape[1:] and t.shape[1] == shape[0]:
            H, W = t.shape[2:]
            if H % shape[1] == 0 and W % shape[2] == 0:  # same numbers; avg_pool2d's CUDA backward is deterministic
                t = nn.functional.avg_pool2d(t, (H // shape[1], W // shape[2]))
            else:
                t = nn.functional.adaptive_avg_pool2d(t, shape[1:])  # as capture's pool=
        n = int(np.prod(shape))
        if t[0].numel() != n:
            raise InputError(
                f"layer {self.spec.block!r} gives per-sample shape {tuple(t.shape[1:])} here but the factorization "
                f"has {shape} ({n} features); give inputs of the shape that was captured"
            )
        tr = self.spec.transform or ""
        if tr.startswith("shift("):
            t = t - float(tr[len("shift(") : -1])
        elif tr == "abs":
            t = t.abs()
        elif tr == "split+":
            t = torch.relu(t)
        elif tr == "split-":
            t = torch.relu(-t)
        return t.reshape(t.shape[0], n)

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (batch,) and the activation (batch, features)."""
        a = self.activation(x)
        return a @ self.loading, a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]


def factor_objective(model: nn.Module, fit: Factorization, layer: str, factor: int, preprocess=None) -> FactorObjective:
    """The :class:`FactorObjective` of factor ``factor`` in block ``layer`` (validated)."""
    factor = check_factor(fit, layer, factor)
    spec = layer_spec(model, fit, layer)
    w = torch.as_tensor(np.asarray(fit.loadings[layer][:, factor], dtype=np.float32))
    return FactorObjective(model, spec, w, preprocess)


def relu_modules(graph_module: nn.Module) -> nn.Module:
    """Replace functional ReLU calls (``F.relu``, ``torch.relu``) in an FX graph by ``nn.ReLU`` modules.

    Captum's guided backprop and DeconvNet override the gradient of ``nn.ReLU`` modules only.
    """
    import torch.fx

    if not isinstance(graph_module, torch.fx.GraphModule):
        return graph_module
    targets = {torch.relu, nn.functional.relu, torch.relu_}
    graph = graph_module.graph
    k = 0
    for node in list(graph.nodes):
        is_fn = node.op == "call_function" and node.target in targets
        is_method = node.op == "call_method" and node.target in ("relu", "relu_")
        if not (is_fn or is_method):
            continue
        name = f"_peeklens_relu_{k}"
        k += 1
        graph_module.add_submodule(name, nn.ReLU())
        with graph.inserting_after(node):
            new = graph.call_module(name, (node.args[0],))
        node.replace_all_uses_with(new)
        graph.erase_node(node)
    if k:
        graph.lint()
        graph_module.recompile()
    return graph_module
