"""Every solver on a CUDA GPU agrees with the CPU (skipped cleanly where there is no GPU)."""

import numpy as np
import pytest
import torch

import peeklens as pl

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(scope="module")
def acts():
    rng = np.random.default_rng(7)
    F = rng.random((600, 5)) ** 2
    return pl.Activations.from_arrays(
        {
            "input:0": rng.random((150, 5)) @ F.T + 0.05 * rng.random((150, 600)),
            "relu": np.maximum(rng.random((100, 5)) @ F.T - 0.3, 0) + 0.05 * rng.random((100, 600)),
        }
    )


@pytest.mark.parametrize("solver", ["mu", "hals", "compressed"])
@pytest.mark.parametrize("init", ["random", "nndsvda"])
def test_solver_on_cuda_matches_the_cpu(acts, solver, init):
    kw = dict(solver=solver, init=init, max_iter=80, tol=0, seed=1, weights={"relu": 2.0})
    cpu = pl.factorize(acts, 5, **kw)
    gpu = pl.factorize(acts, 5, device="cuda", **kw)
    assert gpu.settings["device"].startswith("cuda")
    assert isinstance(gpu.F, np.ndarray) and gpu.F.dtype == np.float32
    assert (gpu.F >= 0).all() and all((w >= 0).all() for w in gpu.loadings.values())
    assert gpu.objective[-1] == pytest.approx(cpu.objective[-1], rel=0.02)
    for n in acts.names:
        assert gpu.errors[n] == pytest.approx(cpu.errors[n], rel=0.02)
    # the reported objective is the real data's, computed on the GPU
    exact = sum(
        w * np.sum((acts[n].data.astype(np.float64) - gpu.reconstruct(n)) ** 2)
        for n, w in [("input:0", 1.0), ("relu", 2.0)]
    )
    assert gpu.objective[-1] == pytest.approx(exact, rel=1e-3)


def test_paper_mu_from_the_same_start_is_the_same_on_cuda(acts):
    cpu = pl.factorize(acts, 4, solver="mu", max_iter=30, tol=0)
    gpu = pl.factorize(acts, 4, solver="mu", max_iter=30, tol=0, device="cuda")
    np.testing.assert_allclose(gpu.F, cpu.F, rtol=1e-3, atol=1e-5)


def test_warm_started_sweep_on_cuda(acts):
    s = pl.sweep(acts, [2, 4, 6], device="cuda", progress=False, max_iter=100)
    assert s.ranks == [2, 4, 6] and s[6].settings["init"] == "warm start from rank 4"
    assert s.rmse[0] > s.rmse[2]
    assert torch.cuda.memory_allocated() < 64 * 2**20  # the sweep released the device copy of the data


def test_batched_ranks_on_cuda_match_one_rank_at_a_time(acts):
    kw = dict(max_iter=60, tol=0, init="random", seed=2)
    together = pl.sweep(acts, [2, 5, 9], batched=True, device="cuda", progress=False, **kw)
    alone = pl.sweep(acts, [2, 5, 9], solver="hals", warm_start=False, device="cuda", progress=False, **kw)
    for r in [2, 5, 9]:
        assert together[r].settings["device"].startswith("cuda") and together[r].n_iter == 60
        assert together[r].objective[-1] == pytest.approx(alone[r].objective[-1], rel=1e-4)
    assert together[2].settings["passes"]["solver"] == 2 * 60  # one pass per half-iteration for all three
