"""``pl.capture`` on a model wrapped in DistributedDataParallel: 2 processes, gloo, on this CPU.

The test launches this file as a script in 2 processes (``python test_ddp.py RANK WORLD INIT_FILE OUT_DIR``)
joined by a ``file://`` rendezvous in ``tmp_path``. Each wraps the same network (same seed) in DDP, captures
its own share of the data with the original layer names and with DDP's ``module.`` names, and records what
independent forward hooks on the inner network see for the same inputs; the pytest process compares them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORLD = 2
LAYERS = ["1", "4"]


def make_net():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 5), nn.ReLU())


def local_inputs(rank: int):
    import torch

    g = torch.Generator().manual_seed(100 + rank)  # each process its own samples
    return torch.rand(9 + rank, 1, 8, 8, generator=g)


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    import datetime

    import torch
    import torch.distributed as dist
    from torch import nn

    import peeklens as pl

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60)
    )
    try:
        net = make_net()
        ddp = nn.parallel.DistributedDataParallel(net)
        assert any(n.startswith("module.") for n, _ in ddp.named_modules())
        x = local_inputs(rank)
        arrays = {}
        for tag, layers in (("plain", LAYERS), ("prefixed", [f"module.{n}" for n in LAYERS])):
            acts = pl.capture(ddp, torch.utils.data.TensorDataset(x), layers=layers, batch_size=4, progress=False)
            assert acts.layer_names == LAYERS, acts.layer_names
            assert acts.meta["unwrapped"] == ["DistributedDataParallel"], acts.meta["unwrapped"]
            for n in LAYERS:
                arrays[f"{tag}/{n}"] = acts[n].data
            arrays[f"{tag}/input"] = acts["input:0"].data
        # what independent hooks on the inner network see for the same inputs (features x samples)
        seen: dict[str, list] = {n: [] for n in LAYERS}
        mods = dict(net.named_modules())
        hooks = [
            mods[n].register_forward_hook(lambda m, i, o, n=n: seen[n].append(o.detach().reshape(o.shape[0], -1)))
            for n in LAYERS
        ]
        with torch.no_grad():
            net(x)
        for h in hooks:
            h.remove()
        for n in LAYERS:
            arrays[f"hook/{n}"] = torch.cat(seen[n]).T.numpy()
        arrays["hook/input"] = x.reshape(x.shape[0], -1).T.numpy()
        arrays["weight"] = ddp.module[3].weight.detach().numpy()
        np.savez(Path(out) / f"rank{rank}.npz", **arrays)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_capture_of_a_ddp_model_equals_independent_hooks(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    init = tmp_path / "rendezvous"
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(r), str(WORLD), str(init), str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for r in range(WORLD)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=240)[0].decode(errors="replace"))
    finally:
        for p in procs:  # never leave a process behind (e.g. one hung in a collective)
            if p.poll() is None:
                p.kill()
                p.wait()
    for r, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"rank {r} failed:\n{log[-4000:]}"
    parts = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(WORLD)]
    np.testing.assert_array_equal(parts[0]["weight"], parts[1]["weight"])  # DDP: one model everywhere
    for r, part in enumerate(parts):
        assert part["hook/1"].shape == (3 * 6 * 6, 9 + r)  # each process its own samples
        for tag in ("plain", "prefixed"):
            for n in [*LAYERS, "input"]:
                np.testing.assert_allclose(part[f"{tag}/{n}"], part[f"hook/{n}"], rtol=1e-6, atol=1e-7)
    assert not np.allclose(parts[0]["hook/4"][:, :9], parts[1]["hook/4"][:, :9])  # different data per rank


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
