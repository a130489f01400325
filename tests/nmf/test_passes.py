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
    # range finder on disk: X_w Omega came with the checks' read; one read per power iteration
    # (X_w X_w^T Q), then B
    assert p["sketch"] == power_iter + 1
    assert p["init"] == 0.0  # NNDSVDa's fill, the mean of the data, came with the checks
    # blocks on disk fuse the rounds: one read each (exact product and widening together)
    assert fit.settings["fused"] is True
    assert p["solver"] == fit.settings["refinements"]
    assert p["total"] == pytest.approx(sum(v for k, v in p.items() if k != "total"))
    # fused=False: every round one exact pass, and all but the last one more to widen the sketch
    two = pl.factorize(mapped, 4, solver_options={"power_iter": power_iter, "fused": False})
    assert two.settings["fused"] is False
    assert two.settings["passes"]["solver"] == 2 * two.settings["refinements"] - 1


@pytest.mark.parametrize("power_iter", [1, 2])
def test_in_memory_power_iterations_keep_two_products(mapped, power_iter):
    """In memory a read is cheap: the power iterations keep X_w orth(X_w^T Q), float32-accurate."""
    dense = pl.Activations.from_arrays({n: np.ascontiguousarray(mapped[n].data) for n in mapped.names})
    fit = pl.factorize(dense, 4, solver_options={"power_iter": power_iter})
    assert fit.settings["passes"]["sketch"] == 2 * power_iter + 2
    assert fit.settings["fused"] is False  # and two passes per round


def test_one_read_power_iteration_equals_two_products(mapped):
    import torch

    from peeklens.nmf._fit import SweepState
    from peeklens.nmf._linalg import range_sketch, xw_mm, xw_xwt_mm, xwt_mm
    from peeklens.nmf._problem import is_memory_mapped

    dense = pl.Activations.from_arrays({n: np.ascontiguousarray(mapped[n].data) for n in mapped.names})
    assert is_memory_mapped(mapped["relu"].data) and not is_memory_mapped(dense["relu"].data)
    sketches = []
    for acts in (mapped, dense):  # samples-major memory maps, features-major arrays
        problem = SweepState(acts, weights={"relu": 4.0, "input:0": 0.5}).get_problem()
        assert problem.on_disk == (acts is mapped)
        Q = torch.linalg.qr(torch.from_numpy(np.random.default_rng(3).random((150, 6), dtype=np.float32))).Q
        before = problem.passes
        Y = xw_xwt_mm(problem, Q, elements=1000)  # bands of 6 samples: many of them
        assert problem.passes == before + 1.0
        torch.testing.assert_close(Y, xw_mm(problem, xwt_mm(problem, Q)), rtol=1e-4, atol=1e-3)
        sketches.append(range_sketch(problem, 8, power_iter=2, seed=1))
    # the checks' read takes the first product too (blocks on disk only): the sketch then reads 3 times
    fused = SweepState(mapped, weights={"relu": 4.0, "input:0": 0.5}).get_problem(first_range=(8, 1))
    assert fused.passes == 1.0 and fused.first_range[:2] == (8, 1)
    sketches.append(range_sketch(fused, 8, power_iter=2, seed=1))
    assert fused.passes == 4.0 and fused.first_range is None  # used once, then dropped
    ignored = SweepState(dense).get_problem(first_range=(8, 1))
    assert ignored.first_range is None  # in memory a read is cheap: nothing changes
    # the same subspace every way (one read per power iteration on disk, two in memory)
    on_disk, in_memory, from_checks = sketches
    for other in (in_memory, from_checks):
        overlap = torch.linalg.svdvals(on_disk.L.T @ other.L)
        assert float(overlap.min()) > 0.999
        assert on_disk.tail2 == pytest.approx(other.tail2, rel=1e-4)


def test_fused_rounds_read_the_data_once_each(mapped):
    opts = {"power_iter": 0, "refine": 3, "fused": True}
    fit = pl.factorize(mapped, 4, tol=0, solver_options=opts)
    p = fit.settings["passes"]
    assert fit.settings["refinements"] == 3
    # checks 1 (with the range finder's X_w Omega), sketch 1 (B = L^T X_w), one per round
    assert p["sketch"] == 1.0 and p["solver"] == 3.0 and p["total"] == 5.0
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
