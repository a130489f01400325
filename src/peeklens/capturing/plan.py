"""Which layers are captured, and how: forward hooks on modules, or FX nodes for functional calls."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from torch import nn

from ..errors import InputError, LayerNotFoundError
from .fx import fx_names

__all__ = ["DEFAULT_LAYER_TYPES", "Plan", "resolve_layers", "list_layers"]

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
    graph recording the named nodes); ``names`` are the module or node names.
    """

    mode: str
    names: list[str]


def resolve_layers(model: nn.Module, layers) -> Plan:
    """The plan for ``capture(model, ..., layers=layers)``.

    >>> resolve_layers(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), None)
    Plan(mode='hooks', names=['1'])
    """
    if layers is None:
        found = [n for n, m in model.named_modules() if n and isinstance(m, DEFAULT_LAYER_TYPES)]
        if found:
            return Plan("hooks", found)
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
    names: list[str] = []
    wanted_strs: list[str] = []
    for item in layers:
        if isinstance(item, type) and issubclass(item, nn.Module):
            matched = [n for n, m in modules.items() if n and isinstance(m, item)]
            if not matched:
                raise LayerNotFoundError(f"{type(model).__name__} has no submodule of type {item.__name__}")
            names.extend(matched)
        elif isinstance(item, str):
            names.append(item)
            wanted_strs.append(item)
        else:
            raise InputError(f"layers entries must be names (str) or nn.Module types, got {item!r}")
    if not names:
        raise InputError("layers is empty; give at least one layer, or layers=None for the default")
    names = list(dict.fromkeys(names))
    if all(n in modules for n in names):
        return Plan("hooks", names)
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
    return Plan("fx", names)
