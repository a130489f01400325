"""Distributed factorization (``distributed=True``) with gloo and 2 processes on this CPU.

Each scenario launches this file as a script in 2 processes (``python test_distributed.py
SCENARIO RANK WORLD INIT_FILE OUT_DIR``) joined by a ``file://`` rendezvous in ``tmp_path``; they
write what they computed to ``OUT_DIR`` and always destroy their process group.  The pytest
process compares with the single-process fit of the concatenated data (same seed, same init).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORLD = 2
COUNTS = [53, 67]  # uneven shares: the offsets matter
RANK = 3
MAX_ITER = 30
#: The compressed solver is compared on a fixed schedule (tol=0: 20 start iterations, 2 rounds):
#: its stopping decisions (an exact objective changing by less than tol; a round raising the exact
#: objective by a few ppm near a minimum, which sends it back) are ties that can fall differently
#: for sums added in a different order; see test_default_call_reaches_the_same_objective.
TOL = {"mu": 1e-4, "hals": 1e-4, "compressed": 0.0}
OPTIONS = {"mu": {}, "hals": {}, "compressed": {"refine": 2}}
SWEEP = dict(max_iter=MAX_ITER, tol=0, seed=3, solver_options={"refine": 2}, progress=False)
#: one-pass rounds (the widening products read with the exact one; the exact part outside the basis)
FUSED = dict(max_iter=MAX_ITER, tol=0, seed=3, solver_options={"refine": 3, "fused": True})


def make_blocks(n: int = sum(COUNTS)) -> dict[str, np.ndarray]:
    """Non-negative data with a planted rank-4 structure, features x samples."""
    rng = np.random.default_rng(7)
    F = rng.random((n, 4))
    out = {}
    for name, m in [("input:0", 36), ("relu", 24), ("fc", 10)]:
        W = rng.random((m, 4))
        out[name] = (W @ F.T + 0.1 * rng.random((m, n))).astype(np.float32)
    return out


def local_acts(rank: int):
    import peeklens as pl

    lo = sum(COUNTS[:rank])
    rows = slice(lo, lo + COUNTS[rank])
    labels = np.arange(sum(COUNTS))[rows]
    return pl.Activations.from_arrays({k: v[:, rows] for k, v in make_blocks().items()}, labels=labels)


# ----------------------------------------------------------------------------- worker side


def _fit_arrays(fit, prefix: str) -> dict[str, np.ndarray]:
    out = {f"{prefix}/F": fit.F, f"{prefix}/objective": fit.objective, f"{prefix}/rmse": np.array(fit.rmse)}
    out.update({f"{prefix}/W/{n}": w for n, w in fit.loadings.items()})
    return out


def _scenario_fits(rank: int, out: Path) -> None:
    import peeklens as pl
    from peeklens.nmf import distributed

    acts = local_acts(rank)
    arrays = {}
    for solver in ("mu", "hals", "compressed"):
        opts = dict(max_iter=MAX_ITER, seed=3, tol=TOL[solver], solver_options=OPTIONS[solver])
        fit = pl.factorize(acts, RANK, solver=solver, distributed=True, **opts)
        assert fit.settings["distributed"]["world_size"] == WORLD
        arrays.update(_fit_arrays(fit, solver))
    arrays.update(_fit_arrays(pl.factorize(acts, RANK, seed=3, distributed=True), "default"))
    arrays.update(_fit_arrays(pl.factorize(acts, RANK, distributed=True, **FUSED), "fused"))
    sw = pl.sweep(acts, ranks=[2, 4], distributed=True, **SWEEP)
    for r in sw.ranks:
        arrays.update(_fit_arrays(sw[r], f"sweep{r}"))
    hs = pl.sweep(acts, ranks=[2, 3], solver="hals", max_iter=MAX_ITER, seed=3, progress=False, distributed=True)
    arrays.update(_fit_arrays(hs[3], "hsweep3"))
    sv = pl.spectrum(acts, k=5, distributed=True)
    arrays.update({f"spectrum/{n}": v for n, v in sv.values.items()})
    import torch

    values = distributed.spectrum_values(acts, 5, torch.device("cpu"), 0, 6, exact_limit=10)[0]  # randomized
    arrays.update({f"randomized/{n}": v for n, v in values.items()})
    torch.manual_seed(rank)  # different weights on each process...
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    distributed.broadcast_module(net)  # ...then rank 0's everywhere
    arrays["net/weight"] = net[0].weight.detach().numpy()
    arrays["shard"] = np.array([distributed.shard(sum(COUNTS)).start, distributed.shard(sum(COUNTS)).stop])
    saved = pl.save(sw, out / "sweep.peeklens")  # collective: rank 0 writes
    assert saved == out / "sweep.peeklens"
    np.savez(out / f"rank{rank}.npz", **arrays)


def _scenario_interrupt(rank: int, out: Path) -> None:
    import signal

    import peeklens as pl
    from peeklens import nmf
    from peeklens.errors import InputError

    acts = local_acts(rank)
    if rank == 1:  # Ctrl-C in this process only, after its second rank
        fit_rank = nmf._fit
        done = []

        def interrupting(state, r, cfg):
            res = fit_rank(state, r, cfg)
            done.append(r)
            if len(done) == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return res

        nmf._fit = interrupting
    with pytest.warns(UserWarning, match="interrupted"):
        sw = pl.sweep(acts, ranks=[2, 3, 4, 5], max_iter=10, progress=False, distributed=True)
    lines = [f"interrupted={sw.interrupted} ranks={sw.ranks}"]
    # Ctrl-C in the middle of a fit (at its 3rd iteration) in process 0: both stop at the next iteration
    if rank == 0:
        fit_module = sys.modules["peeklens.nmf._fit"]  # (peeklens.nmf._fit is the function fit_rank)

        progress = fit_module._progress

        def interrupting_progress(cfg, r, comm=None):
            bar, callback = progress(cfg, r, comm)

            def cb(i, obj):
                if i == 3:
                    os.kill(os.getpid(), signal.SIGINT)
                callback(i, obj)

            return bar, cb

        fit_module._progress = interrupting_progress
    try:
        pl.factorize(acts, 2, solver="hals", max_iter=50, tol=0, distributed=True)
        lines.append("factorize: not stopped")
    except KeyboardInterrupt:
        lines.append("factorize: stopped")
    # different features on rank 1: the same clear error on both, naming the block and the ranks
    blocks = {n: acts[n].data for n in acts.names}
    if rank == 1:
        blocks["relu"] = blocks["relu"][:20]
    try:
        pl.factorize(pl.Activations.from_arrays(blocks), 2, distributed=True)
        lines.append("mismatch: no error")
    except InputError as e:
        lines.append(f"mismatch: {e}")
    (out / f"rank{rank}.txt").write_text("\n".join(lines))


def mapped_acts(blocks: dict[str, np.ndarray], where: Path, labels=None):
    """The blocks as read-only samples-major memory maps, as capture(storage=) writes them."""
    import peeklens as pl

    where.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, x in blocks.items():
        path = where / f"{name.replace(':', '_')}.npy"
        buf = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=x.T.shape)
        buf[:] = x.T
        buf.flush()
        del buf
        ro = np.load(path, mmap_mode="r")
        out[name] = pl.Block(name, ro.T, (x.shape[0],), "input" if name.startswith("input") else "layer")
    return pl.Activations(out, labels=labels)


def _scenario_mapped(rank: int, out: Path) -> None:
    """Shards on disk: the sketch's first product comes with the checks and a power iteration is one read,
    on every process; with one process in memory, every process takes the in-memory path."""
    import peeklens as pl

    local = local_acts(rank)
    blocks = {n: local[n].data for n in local.names}
    on_disk = mapped_acts(blocks, out / f"shard{rank}")
    arrays = {}
    opts = dict(max_iter=MAX_ITER, seed=3, tol=0, solver_options=OPTIONS["compressed"])
    fit = pl.factorize(on_disk, RANK, distributed=True, **opts)
    arrays.update(_fit_arrays(fit, "disk"))
    arrays["disk/sketch"] = np.array(fit.settings["passes"]["sketch"])
    mixed = on_disk if rank == 0 else local
    fit = pl.factorize(mixed, RANK, distributed=True, **opts)
    arrays.update(_fit_arrays(fit, "mixed"))
    arrays["mixed/sketch"] = np.array(fit.settings["passes"]["sketch"])
    np.savez(out / f"rank{rank}.npz", **arrays)


def _worker(scenario: str, rank: int, world: int, init_file: str, out: str) -> None:
    import datetime

    import torch
    import torch.distributed as dist

    from peeklens.nmf import distributed

    torch.set_num_threads(1)
    if init_file == "env":  # as under torchrun: WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT
        assert distributed.init_from_env() and dist.get_world_size() == world and dist.get_rank() == rank
    else:
        dist.init_process_group(
            "gloo",
            init_method=f"file://{init_file}",
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(seconds=60),
        )
    try:
        {"fits": _scenario_fits, "interrupt": _scenario_interrupt, "mapped": _scenario_mapped}[scenario](
            rank, Path(out)
        )
    finally:
        dist.destroy_process_group()


# ----------------------------------------------------------------------------- test side


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(scenario: str, tmp_path: Path, timeout: float = 240, torchrun_env: bool = False) -> Path:
    """Run ``scenario`` in WORLD processes: a file:// rendezvous, or torchrun's environment variables."""
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    init = str(tmp_path / "rendezvous")
    if torchrun_env:
        env.update(WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
        init = "env"
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, scenario, str(r), str(WORLD), init, str(out)],
            env={**env, "RANK": str(r)} if torchrun_env else env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for r in range(WORLD)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=timeout)[0].decode(errors="replace"))
    finally:
        for p in procs:  # never leave a process behind (e.g. one hung in a collective)
            if p.poll() is None:
                p.kill()
                p.wait()
    for r, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"rank {r} failed:\n{log[-4000:]}"
    return out


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    out = _launch("fits", tmp)
    parts = [dict(np.load(out / f"rank{r}.npz")) for r in range(WORLD)]
    return out, parts


def single(**kw):
    import peeklens as pl

    acts = pl.Activations.from_arrays(make_blocks(), labels=np.arange(sum(COUNTS)))
    return acts, kw


def assert_same_objective(obj, ref):
    """Objectives come from Gram matrices (||X||^2 - 2 <W, X F> + <W^T W, F^T F>): float32 sums in another
    order move them by ~1e-7 of ||X||^2 (relative to the objective: more, when it is small)."""
    total = sum(float(np.sum(x.astype(np.float64) ** 2)) for x in make_blocks().values())
    assert obj.shape == ref.shape
    np.testing.assert_allclose(obj, ref, rtol=1e-4, atol=2e-6 * total)


def _assert_same(parts, prefix, ref, rtol=2e-3):
    F = np.concatenate([p[f"{prefix}/F"] for p in parts], axis=0)
    assert F.shape == ref.F.shape
    scale = float(np.abs(ref.F).max())
    np.testing.assert_allclose(F, ref.F, rtol=rtol, atol=rtol * scale)
    for name, W in ref.loadings.items():
        for p in parts:  # replicated: the same loadings on every process
            np.testing.assert_allclose(p[f"{prefix}/W/{name}"], W, rtol=rtol, atol=rtol * float(np.abs(W).max()))
    for p in parts:
        assert_same_objective(p[f"{prefix}/objective"], ref.objective)
        assert float(p[f"{prefix}/rmse"]) == pytest.approx(ref.rmse, rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["mu", "hals", "compressed"])
def test_distributed_fit_equals_single_process(fits, solver):
    import peeklens as pl

    _, parts = fits
    acts, _ = single()
    ref = pl.factorize(
        acts, RANK, solver=solver, max_iter=MAX_ITER, seed=3, tol=TOL[solver], solver_options=OPTIONS[solver]
    )
    _assert_same(parts, solver, ref)


@pytest.mark.slow
def test_distributed_fits_over_memory_maps_equal_single_process(tmp_path):
    """Shards on disk take the disk's reads on every process (no hang when one process is in memory:
    all then take the in-memory path) and end where one process ends on the same data."""
    import peeklens as pl

    out = _launch("mapped", tmp_path)
    parts = [dict(np.load(out / f"rank{r}.npz")) for r in range(WORLD)]
    opts = dict(max_iter=MAX_ITER, seed=3, tol=0, solver_options=OPTIONS["compressed"])
    whole = make_blocks()
    disk = pl.factorize(mapped_acts(whole, tmp_path / "single"), RANK, **opts)
    memory = pl.factorize(pl.Activations.from_arrays(whole), RANK, **opts)
    # on disk: X_w Omega with the checks, two one-read power iterations, B; in memory 2 x 2 + 2 reads
    assert disk.settings["passes"]["sketch"] == 3.0 and memory.settings["passes"]["sketch"] == 6.0
    for p in parts:
        assert float(p["disk/sketch"]) == 3.0 and float(p["mixed/sketch"]) == 6.0
    _assert_same(parts, "disk", disk)
    _assert_same(parts, "mixed", memory)


@pytest.mark.slow
def test_distributed_fused_rounds_equal_single_process(fits):
    import peeklens as pl

    _, parts = fits
    acts, _ = single()
    ref = pl.factorize(acts, RANK, **FUSED)
    assert ref.settings["passes"]["solver"] == 3.0
    # the compressed estimates after a fused widening are sensitive to float32 rounding (a 1e-7
    # relative change of the data moves them by ~1e-3 here, in one process too), so, as for the
    # default call, the final exact objectives and the fits' errors are compared
    for p in parts:
        assert float(p["fused/objective"][-1]) == pytest.approx(float(ref.objective[-1]), rel=2e-4)
        assert float(p["fused/rmse"]) == pytest.approx(ref.rmse, rel=2e-4)
    F = np.concatenate([p["fused/F"] for p in parts], axis=0)
    assert F.shape == ref.F.shape and (F >= 0).all()


@pytest.mark.slow
def test_default_call_reaches_the_same_objective(fits):
    """The whole default call (tol=1e-4): the sketch is sensitive to float32 rounding (a 1e-7 relative
    change of the data moves its basis by ~6e-5 here), so the number of refinement rounds may differ;
    the final exact objective agrees to 2e-4."""
    import peeklens as pl

    _, parts = fits
    acts, _ = single()
    ref = pl.factorize(acts, RANK, seed=3)
    for p in parts:
        assert float(p["default/objective"][-1]) == pytest.approx(float(ref.objective[-1]), rel=2e-4)


@pytest.mark.slow
def test_distributed_sweeps_equal_single_process(fits):
    import peeklens as pl

    _, parts = fits
    acts, _ = single()
    sw = pl.sweep(acts, ranks=[2, 4], **SWEEP)
    for r in (2, 4):  # the compressed solver's shared sketch and warm start (on the sketch)
        _assert_same(parts, f"sweep{r}", sw[r])
    hs = pl.sweep(acts, ranks=[2, 3], solver="hals", max_iter=MAX_ITER, seed=3, progress=False)
    _assert_same(parts, "hsweep3", hs[3])  # warm start by a randomized SVD of the residual


@pytest.mark.slow
def test_distributed_save_writes_one_file_equal_to_single_process(fits):
    import peeklens as pl

    out, _ = fits
    assert sorted(p.name for p in out.glob("*.peeklens")) == ["sweep.peeklens"]
    acts, _ = single()
    ref = pl.sweep(acts, ranks=[2, 4], **SWEEP)
    got = pl.load(out / "sweep.peeklens")
    assert got.ranks == ref.ranks
    for r in ref.ranks:
        a, b = got[r], ref[r]
        assert a.F.shape == b.F.shape == (sum(COUNTS), r)
        np.testing.assert_allclose(a.F, b.F, rtol=2e-3, atol=2e-3 * float(np.abs(b.F).max()))
        np.testing.assert_array_equal(a.labels, b.labels)  # gathered in rank order
        for n in b.loadings:
            np.testing.assert_allclose(a.loadings[n], b.loadings[n], rtol=2e-3, atol=2e-3 * float(b.loadings[n].max()))
        assert b.inputs  # "input:0" is an input block: its matrix is saved too
        for n in b.inputs:
            np.testing.assert_array_equal(a.inputs[n], b.inputs[n])
        assert_same_objective(a.objective, b.objective)
        assert a.settings["distributed"] == {"world_size": WORLD, "gathered": True}
        # the same settings; passes differ by the checks: every process checks its share in
        # connect() (a refusal is raised on all of them), then reads it once more for the norms
        skip = ("distributed", "passes")
        assert {k: v for k, v in a.settings.items() if k not in skip} == {
            k: v for k, v in b.settings.items() if k not in skip
        }
        pa, pb = a.settings["passes"], b.settings["passes"]
        assert pa["checks"] == 2 * pb["checks"]  # 2 and 1 at the first rank of the sweep, then 0
        assert {k: v for k, v in pa.items() if k not in ("checks", "total")} == {
            k: v for k, v in pb.items() if k not in ("checks", "total")
        }


@pytest.mark.slow
def test_broadcast_module_and_shards(fits):
    _, parts = fits
    np.testing.assert_array_equal(parts[0]["net/weight"], parts[1]["net/weight"])
    assert [p["shard"].tolist() for p in parts] == [[0, 60], [60, 120]]


@pytest.mark.slow
def test_distributed_spectrum_equals_single_process(fits):
    import peeklens as pl

    _, parts = fits
    acts, _ = single()
    ref = pl.spectrum(acts, k=5)
    for name, v in ref.values.items():
        for p in parts:
            np.testing.assert_allclose(p[f"spectrum/{name}"], v, rtol=1e-4, atol=1e-4 * v[0])  # exact: same
            # randomized (blocks wider than the exact limit): the top values of the union's SVD
            np.testing.assert_allclose(p[f"randomized/{name}"][:4], v[:4], rtol=1e-3)


@pytest.mark.slow
def test_interrupt_in_one_process_stops_both(tmp_path):
    out = _launch("interrupt", tmp_path, timeout=240, torchrun_env=True)  # also: init_from_env
    texts = [(out / f"rank{r}.txt").read_text().splitlines() for r in range(WORLD)]
    for lines in texts:
        assert lines[0] == "interrupted=True ranks=[2, 3]"  # the same finished ranks on both
        assert lines[1] == "factorize: stopped"
        assert lines[2].startswith("mismatch: distributed fit: block 'relu' differs between processes")
        assert "24 features on ranks [0]" in lines[2] and "20 features on ranks [1]" in lines[2]


def test_distributed_without_process_group_says_what_is_missing():
    import torch.distributed as dist

    import peeklens as pl
    from peeklens.errors import PeeklensError

    assert not dist.is_initialized()
    acts = local_acts(0)
    with pytest.raises(PeeklensError, match=r"init_process_group.*torchrun"):
        pl.factorize(acts, 2, distributed=True)
    with pytest.raises(PeeklensError, match="no initialized|none is"):
        pl.sweep(acts, ranks=[2], progress=False, distributed=True)


def test_init_from_env_outside_torchrun(monkeypatch):
    from peeklens.nmf import distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.init_from_env() is False
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.init_from_env() is False


def test_random_start_rows_equal_the_full_draw():
    """Each process's rows of the random start are the rows of the single-process draw."""
    import torch

    from peeklens.nmf._problem import Problem, draw_rows
    from peeklens.nmf.distributed import Comm

    X = [torch.zeros((2, sum(COUNTS)))]
    full = draw_rows(np.random.default_rng(5), Problem(["a"], X, [1.0], [0.0], torch.device("cpu")), 3)
    for r in range(WORLD):
        comm = Comm(WORLD, r, COUNTS)
        Xr = [torch.zeros((2, COUNTS[r]))]
        rng = np.random.default_rng(5)
        part = draw_rows(rng, Problem(["a"], Xr, [1.0], [0.0], torch.device("cpu"), comm=comm), 3, chunk=20)
        np.testing.assert_array_equal(part, full[comm.rows])
        # the generator ends where the single-process draw leaves it (the loadings come next)
        after = np.random.default_rng(5)
        after.random((sum(COUNTS), 3), dtype=np.float32)
        np.testing.assert_array_equal(rng.random(4), after.random(4))


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
