"""Functional ops inside ``forward`` (``F.relu(...)``) recorded through torchvision's FX feature extraction.

Each chosen node's output is recorded the moment it is computed (a call inserted into the
traced graph), so a later in-place op cannot change it, without a defensive clone of every output.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import CaptureError
from .outputs import flatten_output

if TYPE_CHECKING:  # pragma: no cover
    from .recorder import Recorder

__all__ = ["active", "fx_extractor", "fx_names", "structure_key"]


def structure_key(model: nn.Module) -> tuple:
    """Identity of the model's submodules: changes when one is replaced.

    >>> a, b = nn.Sequential(nn.ReLU()), nn.Sequential(nn.ReLU())
    >>> structure_key(a) == structure_key(a), structure_key(a) == structure_key(b)
    (True, False)
    """
    return tuple(id(m) for m in model.modules())


_NODE_NAMES: weakref.WeakKeyDictionary[nn.Module, tuple] = weakref.WeakKeyDictionary()


def fx_names(model: nn.Module) -> list[str] | None:
    """Eval-mode FX node names (cached per model structure), or None when it cannot be traced.

    >>> fx_names(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    ['0', '1']
    """
    key = structure_key(model)
    cached = _NODE_NAMES.get(model)
    if cached is None or cached[0] != key:
        cached = (key, _trace_node_names(model))
        _NODE_NAMES[model] = cached
    return None if cached[1] is None else list(cached[1])


def _trace_node_names(model: nn.Module) -> list[str] | None:
    from torchvision.models.feature_extraction import get_graph_node_names

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, eval_names = get_graph_node_names(model)
    except Exception:  # noqa: BLE001 - any tracing failure means "no FX names"
        return None
    return [n for n in eval_names if n not in ("x", "input")]


_EXTRACTORS: weakref.WeakKeyDictionary[nn.Module, tuple] = weakref.WeakKeyDictionary()


def fx_extractor(model: nn.Module, names: list[str]) -> nn.Module:
    """The FX extractor recording ``names``, reused while the model's submodules are the same objects.

    Tracing costs tens of milliseconds; the cached graph module refers to the model's own
    submodules, so trained weights are seen, and replacing a submodule invalidates the cache.

    >>> ext = fx_extractor(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), ["1"])
    >>> isinstance(ext, torch.fx.GraphModule)
    True
    """
    key = (tuple(names), structure_key(model))
    cached = _EXTRACTORS.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    ext = _build_fx_extractor(model, names)
    _EXTRACTORS[model] = (key, ext)
    return ext


def _build_fx_extractor(model: nn.Module, names: list[str]) -> nn.Module:
    from torchvision.models.feature_extraction import create_feature_extractor

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ext = create_feature_extractor(model, return_nodes={n: n for n in names})
    except Exception as e:
        raise CaptureError(
            f"could not trace {type(model).__name__} with torch.fx to reach {names}: {e}. "
            "Capture module outputs instead (names from list_layers(model)['modules'])"
        ) from e
    ext.eval()
    graph = ext.graph
    out_node = next(n for n in graph.nodes if n.op == "output")
    outputs = dict(out_node.args[0])
    for key, node in outputs.items():
        with graph.inserting_after(node):
            outputs[key] = graph.call_function(record_node, (node, key))
    out_node.args = (outputs,)
    graph.lint()
    ext.recompile()
    return ext


class _Active(threading.local):
    rec: Recorder | None = None


#: The recorder of the batch running in this thread: FX graphs and process-wide hooks write into it.
active = _Active()


def record_node(value, key: str) -> None:
    """Record an FX node's output into the active recorder, before later ops can change it in place."""
    if not flatten_output(key, value):
        raise CaptureError(
            f"node {key!r} returned {type(value).__name__}, not a tensor; pick a node whose output is a tensor"
        )
    active.rec.record_output(key, value)


torch.fx.wrap("record_node")
