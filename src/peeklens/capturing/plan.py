"""Which layers are captured, and how: forward hooks on modules, or FX nodes for functional calls."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import CaptureError, InputError, LayerNotFoundError
from .fx import fx_names

__all__ = ["DEFAULT_LAYER_TYPES", "Plan", "list_layers", "resolve_layers", "unwrap"]

_ELEMENT = re.compile(r"^(.*?)((?:\[[^\[\]]+\])+)$")
#: Prefixes that wrappers add to every submodule name: torch.compile, DataParallel / DistributedDataParallel.
_WRAPPER_PREFIXES = ("_orig_mod.", "module.")


def unwrap(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """The module that really runs inside ``torch.compile`` / ``DataParallel`` / ``DistributedDataParallel``.

    Capture runs that module itself (same weights; no compilation, no scatter across devices), so layer
    names are the original model's.  TorchScript modules cannot be hooked or traced: a CaptureError says so.

    >>> inner = nn.Linear(2, 2)
    >>> unwrap(nn.DataParallel(inner)) == (inner, ["DataParallel"])
    True
    """
    wrappers: list[str] = []
    while True:
        if isinstance(model, torch.jit.ScriptModule):
            raise CaptureError(
                f"{type(model).__name__} is a TorchScript module: its submodules cannot take forward hooks and it "
                "cannot be traced with torch.fx, so peeklens cannot record its layers. Capture the original Python "
                "model instead: build it again and load the weights, model.load_state_dict(scripted.state_dict())"
            )
        if type(model).__name__ == "OptimizedModule" and isinstance(getattr(model, "_orig_mod", None), nn.Module):
            wrappers.append("torch.compile")
            model = model._orig_mod
        elif isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            wrappers.append(type(model).__name__)
            model = model.module
        else:
            return model, wrappers


def _strip_wrapper(name: str, modules: dict, wrapped: bool) -> str:
    if wrapped and name not in modules:
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix) and name[len(prefix):] in modules:
                return name[len(prefix):]
    return name

#: Module types captured when ``layers=None``: the non-negative activations, as analysed in the paper.
DEFAULT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)
_FX_RELU = re.compile(r"(^|[._])relu(_\d+)?$")


def _module_names(model: nn.Module) -> list[str]:
    return [n for n, _ in model.named_modules() if n]


def list_layers(model: nn.Module) -> dict[str, list[str]]:
    """Names that ``capture(layers=...)`` accepts for ``model``.

    Returns
    -------
    dict
        ``"modules"``: qualified submodule names (recorded with forward hooks);
        ``"nodes"``: FX node names, including functional calls such as
        ``relu`` (empty when the model cannot be traced symbolically).

    Examples
    --------
    >>> from torch import nn
    >>> list_layers(nn.Sequential(nn.Linear(4, 3), nn.ReLU()))["modules"]
    ['0', '1']
    """
    model, _ = unwrap(model)
    return {"modules": _module_names(model), "nodes": fx_names(model) or []}


def _unknown_layer(name: str, model: nn.Module, fx: list[str] | None) -> LayerNotFoundError:
    candidates = list(dict.fromkeys(_module_names(model) + (fx or [])))
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.4)
    hint = f"closest valid names: {close}" if close else f"valid names include {candidates[:12]}"
    return LayerNotFoundError(
        f"layer {name!r} not found in {type(model).__name__}; {hint}. "
        "See peeklens.list_layers(model) for every module and FX node name."
    )


@dataclass
class Plan:
    """How the chosen layers are recorded.

    ``mode`` is ``"hooks"`` (forward hooks on the named modules) or ``"fx"`` (a traced
    graph recording the named nodes); ``names`` are the module or node names;
    ``select`` maps a name to the elements of its tuple/dict output that were
    asked for (``"lstm[0]"`` gives ``{"lstm": ["[0]"]}``).
    """

    mode: str
    names: list[str]
    select: dict[str, list[str]] = field(default_factory=dict)


def resolve_layers(model: nn.Module, layers, wrapped: bool = False) -> Plan:
    """The plan for ``capture(model, ..., layers=layers)`` (``model`` already unwrapped, see :func:`unwrap`).

    >>> resolve_layers(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), None)
    Plan(mode='hooks', names=['1'], select={})
    """
    if layers is None:
        found = [n for n, m in model.named_modules() if n and isinstance(m, DEFAULT_LAYER_TYPES)]
        if found:
            return Plan("hooks", found, {})
        fx = fx_names(model)
        relus = [n for n in (fx or []) if _FX_RELU.search(n)]
        if relus:
            return Plan("fx", relus)
        raise InputError(
            f"{type(model).__name__} has no ReLU (module or functional call) to capture by default; "
            "pass layers=[...] with module or FX node names (see peeklens.list_layers(model))"
        )
    if isinstance(layers, (str, type)):
        layers = [layers]
    modules = dict(model.named_modules())
    fx: list[str] | None = None
    names: list[str] = []
    wanted_strs: list[str] = []
    select: dict[str, list[str]] = {}
    for item in layers:
        if isinstance(item, type) and issubclass(item, nn.Module):
            matched = [n for n, m in modules.items() if n and isinstance(m, item)]
            if not matched:
                raise LayerNotFoundError(f"{type(model).__name__} has no submodule of type {item.__name__}")
            names.extend(matched)
        elif isinstance(item, str):
            item = _strip_wrapper(item, modules, wrapped)
            m = _ELEMENT.match(item)
            if m and item not in modules and m.group(1):
                if fx is None:
                    fx = fx_names(model) or []
                if item not in fx:  # "lstm[0]": element 0 of lstm's output
                    item = _strip_wrapper(m.group(1), modules, wrapped)
                    select.setdefault(item, []).append(m.group(2))
            names.append(item)
            wanted_strs.append(item)
        else:
            raise InputError(f"layers entries must be names (str) or nn.Module types, got {item!r}")
    if not names:
        raise InputError("layers is empty; give at least one layer, or layers=None for the default")
    names = list(dict.fromkeys(names))
    if all(n in modules for n in names):
        _check_hookable(model, names, modules)
        return Plan("hooks", names, select)
    fx = fx_names(model)
    for n in names:
        if n not in modules and (fx is None or n not in fx):
            raise _unknown_layer(n, model, fx)
    missing_in_fx = [n for n in names if n not in fx]  # type: ignore[operator]
    if missing_in_fx:
        raise InputError(
            f"layers {missing_in_fx} are modules hidden inside a traced leaf, while others {wanted_strs} need "
            "FX tracing; capture them in two calls"
        )
    return Plan("fx", names, select)


def _check_hookable(model: nn.Module, names: list[str], modules: dict) -> None:
    scripted = [n for n in names if isinstance(modules[n], torch.jit.ScriptModule)]
    if scripted:
        raise CaptureError(
            f"layers {scripted} of {type(model).__name__} are TorchScript modules, which cannot take forward "
            "hooks; capture a plain nn.Module around them (the layer that calls them) or rebuild them in Python"
        )
