"""Recording: forward hooks, and copying each record into its block's buffer as soon as it is produced."""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import CaptureError, DeviceError, NonNegativityError
from .fx import active
from .outputs import batch_first, dense, element_matches, flatten_output, pretty_name
from .samples import Sampler
from .storage import new_buffer

__all__ = ["Recorder", "Slot", "input_blocks", "make_global_hook", "make_hook"]


@dataclass
class Slot:
    """One block being recorded: its per-sample shape, its buffer (samples x features) and its minimum."""

    name: str
    shape: tuple[int, ...]
    kind: str
    buf: np.ndarray | None = None  # (samples x features)
    pending: list[np.ndarray] = field(default_factory=list)
    lo: float = math.inf

    @property
    def n_features(self) -> int:
        """Features per sample."""
        return int(np.prod(self.shape)) if self.shape else 1

    def drop_partial(self, total: int) -> None:
        """Keep only the pending records of complete batches (the first ``total`` samples)."""
        kept, n = [], 0
        for part in self.pending:
            if n >= total:
                break
            kept.append(part[: total - n])
            n += len(kept[-1])
        self.pending = kept


class Recorder:
    """Collects per-batch records into per-block buffers.

    Examples
    --------
    >>> rec = Recorder("error", None, None)
    >>> rec.start_batch(2)
    >>> rec.record("a", torch.ones(2, 3))
    >>> rec.allocate(2)
    >>> rec.slots["a"].buf.shape
    (2, 3)
    """

    def __init__(self, nonneg: str, pool, storage: Path | None, sampler: Sampler | None = None,
                 select: dict[str, list[str]] | None = None):
        self.nonneg = nonneg
        self.pool = pool
        self.storage = storage
        self.sampler = sampler if sampler is not None else Sampler("inputs")
        self.select = dict(select or {})
        #: tuple-output elements left out because their first axis is not the batch (warned about)
        self.dropped: dict[str, tuple[int, ...]] = {}
        self.slots: OrderedDict[str, Slot] = OrderedDict()
        self.offset = 0
        self.batch_n = 0
        self.capacity: int | None = None
        self.calls: dict[str, int] = {}
        #: While True, record() only learns the names and per-sample shapes (no data is kept):
        #: capture runs one sample through the model this way to check memory before allocating.
        self.probing = False
        self.seen: set[str] = set()  # blocks recorded in the current batch
        self.width: int | None = None  # positions of the current batch's padding mask, if any
        #: modules behind FX node names that are module calls (for their output layout)
        self.modules: dict[str, nn.Module] = {}

    def start_batch(self, n: int, mask: torch.Tensor | None = None) -> None:
        """Prepare for a batch of ``n`` inputs (and its padding mask, for token samples)."""
        self.batch_n = n
        self.width = int(mask.shape[1]) if mask is not None and mask.ndim == 2 else None
        self.calls.clear()
        self.seen.clear()
        self.sampler.begin(n, mask)

    def record_output(self, name: str, output, module: nn.Module | None = None) -> None:
        """Record a layer's output: every tensor in it, or the elements ``layers=["name[k]"]`` asked for.

        Without a selection, elements of a tuple/dict output whose first axis is not the batch are
        left out (and listed in a warning); recurrent and attention modules' outputs are made
        batch-first first (see :func:`.outputs.batch_first`).
        """
        k = self.calls.get(name, 0)
        self.calls[name] = k + 1
        module = module if module is not None else self.modules.get(name)
        if module is not None:
            output = batch_first(module, output)
        parts = flatten_output(name, output)
        if not parts:
            raise CaptureError(
                f"layer {name!r} returned {type(output).__name__}, not a tensor; capture one of its submodules "
                "or a layer whose output is a tensor"
            )
        wanted = self.select.get(name)
        if wanted is not None:
            chosen = [(nm, t) for nm, t in parts if any(element_matches(nm, name, w) for w in wanted)]
            missing = [w for w in wanted if not any(element_matches(nm, name, w) for nm, _ in parts)]
            if missing:
                raise CaptureError(
                    f"layer {name!r} has no output element {[name + w for w in missing]}; its output holds "
                    f"{[nm for nm, _ in parts]}: pick one of those"
                )
            parts = chosen
        optional = wanted is None and len(parts) > 1
        for nm, t in parts:
            self.record(f"{nm}@{k}", t, optional=optional)
        if optional and all(f"{nm}@{k}" in self.dropped for nm, _ in parts):
            raise CaptureError(
                f"no element of layer {name!r}'s output has the batch as its first axis ("
                + ", ".join(f"{nm}: {tuple(t.shape)}" for nm, t in parts)
                + "); capture another layer, or pick an element with layers=['name[0]'] after checking its layout"
            )

    @property
    def features(self) -> dict[str, int]:
        """Features per sample of every block."""
        return {s.name: s.n_features for s in self.slots.values()}

    @property
    def held_bytes(self) -> int:
        """Bytes of records waiting in RAM for their buffers."""
        return sum(sum(p.nbytes for p in s.pending) for s in self.slots.values())

    # called from hooks / by the FX graph
    def record(self, name: str, t: torch.Tensor, kind: str = "layer", optional: bool = False) -> None:
        """Check one record (shape, device, finiteness, sign) and copy its sample rows into its block.

        ``optional`` records (elements of a tuple output nobody asked for) are left out, with a
        warning at the end, when their first axis is not the batch.
        """
        n = self.batch_n
        if name in self.dropped:
            return
        t = dense(t, self.width)  # nested (fast-path) outputs padded back to the mask's width
        if t.ndim == 0 or t.shape[0] != n:
            if optional and (name not in self.slots or self.offset == 0):
                self.dropped[name] = tuple(t.shape)
                self.slots.pop(name, None)
                return
            base = pretty_name(name).split("[")[0]
            raise CaptureError(
                f"layer {pretty_name(name)!r} produced a tensor of shape {tuple(t.shape)} whose first axis is not "
                f"the batch ({n} samples); capture a layer with one row per sample"
                + (f", e.g. one element of its output: layers=['{base}[0]']" if "[" in name else "")
                + ("; it looks sequence-first (sequence, batch, ...): capture the module that returns batch-first "
                   "outputs (e.g. the whole nn.TransformerEncoderLayer) or build the model with batch_first=True"
                   if t.ndim >= 2 and t.shape[1] == n else "")
            )
        t = t.detach()
        given = t.untyped_storage().data_ptr() if t.device.type != "meta" else 0  # the model's own memory
        if t.device.type == "meta":
            raise DeviceError(
                f"{kind} {pretty_name(name)!r} is on the 'meta' device (a tensor without data); materialize "
                "the model (model.to_empty(device='cpu') then load_state_dict) and give real inputs"
            )
        if kind == "layer" and self.pool is not None and t.ndim == 4:
            t = nn.functional.adaptive_avg_pool2d(t.float(), self.pool)
        if t.is_complex():
            raise CaptureError(
                f"{kind} {pretty_name(name)!r} is complex ({t.dtype}); capture a real-valued layer "
                "(e.g. after .abs())"
            )
        if t.dtype != torch.float32:  # ints, bools, half, bfloat16, float64: stored as float32
            t = t.float()
        t = self.sampler.rows_of(pretty_name(name), t, kind)
        shape = tuple(t.shape[1:])
        slot = self.slots.get(name)
        if slot is None and not self.probing and (self.capacity is not None or self.offset > 0):
            raise CaptureError(
                f"{kind} {pretty_name(name)!r} ran on the batch starting at sample {self.offset} but not on the "
                "first sample (data-dependent control flow in forward); capture layers that run for every input"
            )
        self.seen.add(name)
        if slot is None:
            slot = self.slots[name] = Slot(name, shape, kind)
        elif slot.shape != shape:
            raise CaptureError(
                f"{kind} {pretty_name(name)!r} changed its per-sample shape from {slot.shape} to {shape} between "
                "batches; each sample is flattened whole and needs one fixed size: resize inputs to one size or "
                "pool the layer (pool=); for sequences, pad every batch to one length, or pass samples='mean', "
                "'first' or 'tokens'"
            )
        if self.probing:
            return
        lo_hi = torch.aminmax(t) if t.numel() else None
        if lo_hi is not None:
            lo, hi = float(lo_hi[0]), float(lo_hi[1])
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise CaptureError(
                    f"{kind} {pretty_name(name)!r} has NaN or Inf values in the batch starting at sample "
                    f"{self.offset}; check the inputs and the model (e.g. torch.isfinite) before capturing"
                )
            if lo < 0 and self.nonneg == "error":
                what = "the inputs" if kind == "input" else f"layer {pretty_name(name)!r}"
                raise NonNegativityError(
                    f"{what} has negative values (min {lo:.4g}); a non-negative factorization needs "
                    ">= 0. Remedies: capture a non-negative layer (after a ReLU), or pass nonneg='shift' "
                    "(subtract the block minimum), nonneg='split' (positive and negative parts as two "
                    "blocks), nonneg='abs', or nonneg='semi' (keep the signs: semi-NMF, F stays >= 0)"
                    + ("; for inputs, input_transform= can undo the normalization" if kind == "input" else "")
                )
            slot.lo = min(slot.lo, lo)
        rows = int(t.shape[0])
        flat = t.reshape(rows, -1)
        if slot.buf is not None:
            dst = slot.buf[self.offset : self.offset + rows]
            # torch's copy_ runs on every thread and takes device tensors directly (non-blocking
            # for pinned buffers is not worth it: the batch is needed before the next one runs).
            torch.from_numpy(dst).copy_(flat)
        else:  # a copy, unless the rows are already a new tensor (a masked selection, a mean)
            fresh = t.untyped_storage().data_ptr() != given and flat.device.type == "cpu"
            part = flat.contiguous() if fresh else flat.to("cpu", torch.float32, copy=True)
            slot.pending.append(part.numpy())

    def allocate(self, n_total: int) -> None:
        """Create the buffers once the sample count is known and move pending records in."""
        self.capacity = n_total
        for slot in self.slots.values():
            slot.buf = new_buffer(slot.name, n_total, slot.n_features, self.storage)
            start = 0
            for part in slot.pending:
                slot.buf[start : start + len(part)] = part
                start += len(part)
            slot.pending.clear()

    def finish(self, total: int) -> None:
        """Size every buffer to the ``total`` samples captured (fewer than announced, or interrupted)."""
        if self.capacity is None:
            for slot in self.slots.values():  # a record of a batch cut short by an interruption
                slot.drop_partial(total)
            self.allocate(total)
        elif total < self.capacity:  # fewer samples than announced (e.g. an IterableDataset)
            for slot in self.slots.values():
                slot.buf = slot.buf[:total]

    def check_all_ran(self, start: int) -> None:
        """Every block recorded on the first batch was recorded on this one too."""
        skipped = [pretty_name(k) for k in self.slots if k not in self.seen]
        if skipped:
            raise CaptureError(
                f"layers {skipped} did not run on the batch starting at sample {start} (data-dependent control "
                "flow in forward, or a module called fewer times); capture layers that run for every input"
            )

    def check_hooks_fired(self, names: list[str]) -> None:
        """Every hooked module ran on the probe sample."""
        fired = {n.split("@")[0].split("[")[0] for n in self.slots if not n.startswith("input:")}
        silent = [n for n in names if n not in fired]
        if silent:
            raise CaptureError(
                f"layers {silent} never ran during the forward pass on the first sample (modules defined but not "
                "called in forward, or called only under data-dependent control flow); pick layers that forward() "
                "uses for every input"
            )


def make_hook(rec: Recorder, name: str):
    """A forward hook recording the module's output, one block per call (``name@k``)."""

    def hook(module, inputs, output):
        rec.record_output(name, output, module)

    return hook


def make_global_hook(rec: Recorder, names: dict):
    """A process-wide forward hook recording the outputs of the modules in ``names`` (module -> name).

    For modules such as ``nn.TransformerEncoderLayer`` whose eval-mode fused fast path is turned
    off by hooks on the module itself: watched from outside, they compute as in a plain forward.
    """

    def hook(module, inputs, output):
        name = names.get(module)
        if name is not None and active.rec is rec:  # this thread's capture, not another's
            rec.record_output(name, output, module)

    return hook


def input_blocks(x: torch.Tensor) -> list[tuple[str, torch.Tensor, tuple[int, ...]]]:
    """One block per input channel: (N, C, H, W) -> C blocks of (N, H*W); (N, H, W) or (N, D) -> one.

    >>> [(n, tuple(t.shape)) for n, t, _ in input_blocks(torch.zeros(2, 3, 4, 4))]
    [('input:0', (2, 4, 4)), ('input:1', (2, 4, 4)), ('input:2', (2, 4, 4))]
    """
    if x.ndim == 4:
        return [(f"input:{c}", x[:, c], tuple(x.shape[2:])) for c in range(x.shape[1])]
    if x.ndim in (2, 3):
        return [("input:0", x, tuple(x.shape[1:]))]
    if x.ndim == 1:
        return [("input:0", x[:, None], (1,))]
    return [("input:0", x.reshape(x.shape[0], -1), (int(np.prod(x.shape[1:])),))]
