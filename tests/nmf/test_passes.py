"""settings["passes"]: how many times a fit read its data (issue 19, section 2), on memory-mapped blocks."""

from __future__ import annotations

import numpy as np
import pytest

import peeklens as pl


@pytest.fixture
def mapped(tmp_path):
    """Two blocks on disk, samples-major as capture(storage=) writes them (read-only memory maps)."""
    rng = np.random.default_rng(0)
    blocks = {}
    for name, m in [("input:0", 90), ("relu", 60)]:
        buf = np.lib.format.open_memmap(tmp_path / f"{name}.npy", mode="w+", dtype=np.float32, shape=(400, m))
        buf[:] = rng.random((400, m), dtype=np.float32)
        buf.flush()
        ro = np.load(tmp_path / f"{name}.npy", mmap_mode="r")
        blocks[name] = pl.Block(name, ro.T, (m,), "input" if name.startswith("input") else "layer")
    return pl.Activations(blocks)


@pytest.mark.parametrize("solver", ["hals", "mu"])
def test_two_passes_per_iteration_plus_checks(mapped, solver):
    short = pl.factorize(mapped, 4, solver=solver, init="random", max_iter=3, tol=0).settings["passes"]
    long = pl.factorize(mapped, 4, solver=solver, init="random", max_iter=7, tol=0).settings["passes"]
    # the input checks (NaN, Inf, negative values), the block norms and sums: one read
    assert short["checks"] == long["checks"] == 1.0
    assert short["sketch"] == short["init"] == 0.0  # random start: no sketch, no pass
    assert (short["solver"], long["solver"]) == (6.0, 14.0)  # X^T W and X F per iteration
    assert short["errors"] == 0.0  # from the Gram matrices
    assert short["total"] == 7.0


@pytest.mark.parametrize("power_iter", [1, 2])
def test_default_call_counts_sketch_and_rounds(mapped, power_iter):
    fit = pl.factorize(mapped, 4, solver_options={"power_iter": power_iter})
    p = fit.settings["passes"]
    assert p["checks"] == 1.0
    assert p["sketch"] == 2 * power_iter + 2  # range finder: one pass per product with the data
    assert p["init"] == 0.0  # NNDSVDa's fill, the mean of the data, came with the checks
    # every round one exact pass; all but the last also widen the sketch (one more)
    assert p["solver"] == 2 * fit.settings["refinements"] - 1
    assert p["total"] == pytest.approx(sum(v for k, v in p.items() if k != "total"))


def test_fused_rounds_read_the_data_once_each(mapped):
    opts = {"power_iter": 0, "refine": 3, "fused": True}
    fit = pl.factorize(mapped, 4, tol=0, solver_options=opts)
    p = fit.settings["passes"]
    assert fit.settings["refinements"] == 3
    assert p["solver"] == 3.0 and p["total"] == 6.0  # checks 1, sketch 2, one per round
    two = pl.factorize(mapped, 4, tol=0, solver_options={**opts, "fused": False})
    assert two.settings["passes"]["solver"] == 5.0
    # fewer passes, a fit as good within a few per cent on this small random problem
    assert fit.objective[-1] <= 1.05 * two.objective[-1]


def test_one_read_gives_both_products_in_either_layout(mapped):
    import torch

    from peeklens.nmf._fit import SweepState
    from peeklens.nmf._linalg import xw_both, xw_mm, xwt_mm

    dense = pl.Activations.from_arrays({n: np.ascontiguousarray(mapped[n].data) for n in mapped.names})
    for acts in (mapped, dense):  # samples-major memory maps, features-major arrays
        problem = SweepState(acts, weights={"relu": 4.0}).get_problem()
        rng = np.random.default_rng(2)
        Ft = torch.from_numpy(rng.random((3, 400), dtype=np.float32))
        Y = torch.from_numpy(rng.random((150, 5), dtype=np.float32))
        before = problem.passes
        Ct, P = xw_both(problem, Ft, Y, elements=1000)  # small bands: many of them
        assert problem.passes == before + 1.0
        torch.testing.assert_close(Ct, xw_mm(problem, Ft.T.contiguous()).T, rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(P, xwt_mm(problem, Y), rtol=1e-5, atol=1e-4)


def test_sweep_reads_the_checks_and_the_sketch_once(mapped):
    sw = pl.sweep(mapped, ranks=[2, 4], progress=False)
    first, second = (sw[r].settings["passes"] for r in sw.ranks)
    assert first["checks"] == 1.0 and first["sketch"] > 0
    assert second["checks"] == second["sketch"] == 0.0  # shared by the sweep


def test_exact_errors_cost_one_pass_when_the_fit_is_nearly_exact():
    """Errors below 1 % of a block's norm are not trusted to the Gram formula: one exact pass."""
    rng = np.random.default_rng(1)
    F = rng.random((200, 2))
    acts = pl.Activations.from_arrays({"a": rng.random((30, 2)) @ F.T, "b": rng.random((20, 2)) @ F.T})
    p = pl.factorize(acts, 2, solver="hals", max_iter=200).settings["passes"]
    assert p["errors"] == 1.0
    half = pl.factorize(acts.select(["a"]), 2, solver="hals", max_iter=200).settings["passes"]
    assert half["errors"] == 1.0  # a pass is the share of the data read: here all of it
