"""The batch loop: the model prepared for recording, a one-sample probe, then every batch into the blocks."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import (
    CaptureError,
    DeviceError,
    InputError,
    MemoryLimitError,
    PeeklensError,
)
from .batches import Batch, Feeder, is_opaque, labels_of
from .device import check_stored_input, model_device, oom_types
from .fx import active, fx_extractor
from .plan import Plan
from .recorder import Recorder, input_blocks, make_global_hook, make_hook
from .storage import check_memory, check_storage_free

__all__ = ["BatchLoop", "describe_batch", "prepared"]

#: Modules whose forward takes a fused fast path in eval mode unless they (or their submodules) carry hooks.
_FUSED = (nn.TransformerEncoderLayer,)


@contextlib.contextmanager
def prepared(model: nn.Module, plan: Plan, rec: Recorder, device, run_device) -> Iterator[Callable]:
    """The model in eval mode on ``run_device`` with its recording in place; all undone on exit."""
    was_training = model.training
    original_device = model_device(model)
    moved = device is not None and original_device != run_device
    if moved:
        model.to(run_device)
    handles = []
    try:
        model.eval()
        if plan.mode == "hooks":
            modules = dict(model.named_modules())
            fused = {modules[n]: n for n in plan.names if isinstance(modules[n], _FUSED)}
            if fused:  # their fused fast path is skipped when they carry hooks: watch them from outside
                handles.append(nn.modules.module.register_module_forward_hook(make_global_hook(rec, fused)))
            for name in plan.names:
                if modules[name] in fused:
                    continue
                try:
                    handles.append(modules[name].register_forward_hook(make_hook(rec, name)))
                except RuntimeError as e:  # e.g. a scripted submodule
                    raise CaptureError(
                        f"cannot put a forward hook on layer {name!r} ({type(modules[name]).__name__}): {e}; "
                        "capture a plain Python nn.Module instead"
                    ) from e
            yield model
        else:
            modules = dict(model.named_modules())
            rec.modules = {n: modules[n] for n in plan.names if n in modules}
            yield fx_extractor(model, plan.names)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        if moved:
            model.to(original_device)


def describe_batch(raw: Any) -> str:
    """Shapes of a batch, for error messages.

    >>> describe_batch({"input_ids": torch.zeros(2, 5, dtype=torch.long), "n": 3})
    "batch {'input_ids': (2, 5), 'n': 'int'}"
    """
    if isinstance(raw, torch.Tensor):
        return f"input shape {tuple(raw.shape)}"
    if isinstance(raw, Mapping):
        return "batch " + str({k: tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                               for k, v in raw.items()})
    if isinstance(raw, (list, tuple)):
        return "batch " + str([tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__ for v in raw])
    return f"batch of type {type(raw).__name__}"


class BatchLoop:
    """The batch loop: a one-sample probe and the memory check, then every batch into the buffers."""

    def __init__(self, rec: Recorder, plan: Plan, model: nn.Module, feeder: Feeder, include_input: bool,
                 input_transform, max_bytes, store_dir, n_hint, max_samples):
        self.rec, self.plan, self.model, self.feeder = rec, plan, model, feeder
        self.include_input, self.input_transform = include_input, input_transform
        self.max_bytes, self.store_dir = max_bytes, store_dir
        self.n_hint, self.max_samples = n_hint, max_samples
        self.runner: Callable = model
        self.dtype = torch.float32
        self.device = torch.device("cpu")
        self.total = 0  # inputs captured
        self.rows_per_input = 1  # samples per input (tokens: as seen on the probe)
        self.interrupted = False
        self._labels: list[np.ndarray] = []
        self._has_labels = True
        self._info: dict[str, list[np.ndarray]] = {"sample": [], "position": [], "token": []}

    def labels(self) -> np.ndarray | None:
        return np.concatenate(self._labels) if self._has_labels and self._labels else None

    def sample_info(self) -> dict[str, np.ndarray] | None:
        if self.rec.sampler.per_input:
            return None
        info = {k: np.concatenate(v) for k, v in self._info.items() if v}
        return info if len(self._info["token"]) == len(self._info["sample"]) else {
            k: v for k, v in info.items() if k != "token"}

    def run(self, batches, progress: bool) -> None:
        bar = tqdm(total=self.n_hint, desc="capture", unit="sample", disable=not progress)
        try:
            with torch.no_grad():
                for batch in batches:
                    if self.max_samples is not None and self.total >= self.max_samples:
                        break
                    bar.update(self.step(self.feeder.split(batch)))
        except KeyboardInterrupt:
            if self.total == 0:
                raise
            self.interrupted = True
            warnings.warn(
                f"capture interrupted: keeping the {self.total} samples captured so far (of "
                f"{self.n_hint if self.n_hint is not None else 'an unknown number'}); acts.meta['interrupted'] is True",
                stacklevel=3,
            )
        finally:
            self.rec.probing = False
            bar.close()

    def step(self, b: Batch) -> int:
        """Capture one batch; returns its number of inputs."""
        rec, total = self.rec, self.total
        if self.max_samples is not None and total + b.n > self.max_samples:
            if is_opaque(b.raw):
                raise InputError(
                    f"max_samples={self.max_samples} falls inside a batch of type {type(b.raw).__name__}, which "
                    "peeklens cannot cut; choose max_samples at a batch boundary or give tensor / dict batches"
                )
            b = self.feeder.head(b, self.max_samples - total)
        n = b.n
        if n == 0:
            return 0
        if total == 0:
            self.probe(b)
        elif rec.capacity is None:  # unknown length: keep checking as the records grow
            check_memory(rec.features, rec.offset + n * self.rows_per_input, self.max_bytes, self.store_dir,
                         growing=True, held=rec.held_bytes)
        self.run_batch(b, total)
        rows = rec.sampler.rows()
        self.keep_labels_and_info(b, total)
        self.total = total + n
        rec.offset += rows
        return n

    def keep_labels_and_info(self, b: Batch, start: int) -> None:
        sampler = self.rec.sampler
        lab = sampler.labels(labels_of(b.labels, b.n))
        if lab is None:
            self._has_labels = False
        else:
            self._labels.append(lab)
        if sampler.per_input:
            return
        i, j = sampler.index()
        self._info["sample"].append(i + start)
        self._info["position"].append(j)
        ids = b.inputs
        if (isinstance(ids, torch.Tensor) and ids.ndim == 2 and not ids.is_floating_point()
                and ids.shape[1] == sampler.positions):
            self._info["token"].append(ids.detach().cpu().numpy().astype(np.int64)[i, j])

    def probe(self, b: Batch) -> None:
        """One input through the model, keeping only names and shapes: the memory check runs before any buffer."""
        rec = self.rec
        rec.probing = True
        first = self.feeder.head(b, 1)  # the whole batch when it cannot be cut
        self.run_batch(first, 0)
        self.rows_per_input = max(1, rec.sampler.rows() // first.n)
        rec.probing = False
        if self.plan.mode == "hooks":
            rec.check_hooks_fired(self.plan.names)
        if self.store_dir is not None:
            check_storage_free(rec.slots, self.store_dir)
        planned = self.n_hint if self.n_hint is not None else (self.max_samples or b.n)
        check_memory(rec.features, planned * self.rows_per_input, self.max_bytes, self.store_dir)
        if self.n_hint is not None and rec.sampler.per_input:
            rec.allocate(self.n_hint)

    def record_inputs(self, b: Batch) -> None:
        x = b.inputs
        if x is None:
            raise InputError(
                "include_input=True but no part of the batch was taken as the input; choose it with inputs= "
                "(a key, an index or a callable of the batch), or pass include_input=False"
            )
        check_stored_input(x)
        shown = self.input_transform(x) if self.input_transform is not None else x
        if not isinstance(shown, torch.Tensor) or shown.ndim == 0 or shown.shape[0] != b.n:
            raise InputError("input_transform must return a tensor with the same batch size")
        shown = shown.float()
        parts = [("input:0", shown)] if not self.rec.sampler.per_input else [
            (name, part) for name, part, _ in input_blocks(shown)]
        for name, part in parts:
            self.rec.record(name, part, kind="input")

    def run_batch(self, b: Batch, start: int) -> None:
        """Record the input blocks of one batch and run the model on it, with clear errors.

        The input is copied into its block before the model runs; the probe runs on copies, so a
        model that edits its input in place changes neither the stored input nor the user's data twice.
        """
        rec, model = self.rec, self.model
        rec.start_batch(b.n, b.mask)
        if self.include_input:
            self.record_inputs(b)
        moved = self.feeder.to_device(b.raw, self.device, self.dtype, clone=rec.probing)
        active.rec = rec  # FX graphs record through it (see fx.record_node)
        try:
            self.feeder.call(self.runner, b, moved)
        except (KeyboardInterrupt, PeeklensError):
            raise
        except oom_types() as e:
            raise DeviceError(
                f"{type(model).__name__} ran out of GPU memory on the batch starting at sample {start} "
                f"({b.n} samples, {describe_batch(b.raw)}): use a smaller batch_size= (or DataLoader batch "
                "size), capture fewer layers=, or run on the CPU with device='cpu'"
            ) from e
        except MemoryError as e:
            raise MemoryLimitError(
                f"{type(model).__name__} ran out of memory on the batch starting at sample {start} ({b.n} samples): "
                "use a smaller batch_size= (or DataLoader batch size) or capture fewer layers="
            ) from e
        except Exception as e:
            how = "forward=" if self.feeder.forward is not None else "the call peeklens made (see forward=)"
            raise CaptureError(
                f"{type(model).__name__} raised {type(e).__name__} on the batch starting at sample "
                f"{start} ({describe_batch(b.raw)}): {str(e).rstrip('.')}. "
                "If the batch does not reach the model as it expects, "
                f"check {how}: tensors are called as model(x), tuples as model(batch[0]), dicts by keyword"
            ) from e
        finally:
            active.rec = None
        if not rec.probing:
            rec.check_all_ran(start)
