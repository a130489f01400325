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
    # the input checks (NaN, Inf, negative values) and the block norms read the data once each
    assert short["checks"] == long["checks"] == 2.0
    assert short["sketch"] == short["init"] == 0.0  # random start: no sketch, no pass
    assert (short["solver"], long["solver"]) == (6.0, 14.0)  # X^T W and X F per iteration
    assert short["errors"] == 0.0  # from the Gram matrices
    assert short["total"] == 8.0


@pytest.mark.parametrize("power_iter", [1, 2])
def test_default_call_counts_sketch_and_rounds(mapped, power_iter):
    fit = pl.factorize(mapped, 4, solver_options={"power_iter": power_iter})
    p = fit.settings["passes"]
    assert p["sketch"] == 2 * power_iter + 2  # range finder: one pass per product with the data
    assert p["init"] == 1.0  # NNDSVDa's fill: the mean of the data
    # every round one exact pass; all but the last also widen the sketch (one more)
    assert p["solver"] == 2 * fit.settings["refinements"] - 1
    assert p["total"] == pytest.approx(sum(v for k, v in p.items() if k != "total"))


def test_sweep_reads_the_checks_and_the_sketch_once(mapped):
    sw = pl.sweep(mapped, ranks=[2, 4], progress=False)
    first, second = (sw[r].settings["passes"] for r in sw.ranks)
    assert first["checks"] == 2.0 and first["sketch"] > 0
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
