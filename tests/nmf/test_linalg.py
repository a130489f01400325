"""The fast solvers' shared linear algebra: blocked HALS row sweeps and the sketch."""

import numpy as np
import pytest
import torch

from peeklens.nmf import _linalg
from peeklens.nmf._linalg import hals_rows


def _naive_hals_rows(Ht, At, G, sweeps):
    """Row-by-row HALS in float64, straight from the formula: the reference."""
    H = Ht.double().clone()
    A, G = At.double(), G.double()
    for _ in range(sweeps):
        for k in range(H.shape[0]):
            if G[k, k] <= 0:
                continue
            rest = A[k] - G[k] @ H + G[k, k] * H[k]
            H[k] = torch.clamp(rest / G[k, k], min=0)
    return H


def _problem(r, n, seed, dead_row=None):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand((3 * r, r), generator=g)
    if dead_row is not None:
        X[:, dead_row] = 0  # G[k, k] == 0: that row has no information and must stay as it is
    G = X.T @ X
    At = torch.rand((r, n), generator=g) * r - 0.3 * r  # some rows end clamped at 0
    Ht = torch.rand((r, n), generator=g)
    return Ht, At, G


@pytest.mark.parametrize("r", [1, 3, 8, 13, 50])
def test_blocked_sweep_makes_the_same_sequential_updates_as_row_by_row_hals(r):
    Ht, At, G = _problem(r, 257, seed=r)
    want = _naive_hals_rows(Ht, At, G, sweeps=1)
    got = Ht.clone()
    assert hals_rows(got, At, G, max_inner=1) == 1
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    assert bool((got >= 0).all())


def test_a_row_without_information_keeps_its_values():
    Ht, At, G = _problem(10, 100, seed=1, dead_row=4)
    before = Ht[4].clone()
    got = Ht.clone()
    hals_rows(got, At, G, max_inner=3, delta=0.0)
    assert torch.equal(got[4], before)
    want = _naive_hals_rows(Ht, At, G, sweeps=3)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def test_inner_sweeps_stop_when_the_rows_barely_move():
    Ht, At, G = _problem(12, 300, seed=2)
    # delta=0: every allowed sweep runs, and the result is that many sequential sweeps
    all_sweeps = Ht.clone()
    assert hals_rows(all_sweeps, At, G, max_inner=4, delta=0.0) == 4
    np.testing.assert_allclose(all_sweeps.numpy(), _naive_hals_rows(Ht, At, G, sweeps=4).numpy(), rtol=1e-4, atol=1e-4)
    # a huge delta: the second sweep already moves less than delta times the first, so it stops there
    early = Ht.clone()
    assert hals_rows(early, At, G, max_inner=4, delta=10.0) == 2


def test_row_sweeps_keep_the_row_block_size_out_of_the_result(monkeypatch):
    Ht, At, G = _problem(21, 64, seed=3)
    assert _linalg.row_block(21, 64) == 21  # small: one block
    monkeypatch.setattr(_linalg, "ONE_BLOCK_RANK", 0)
    monkeypatch.setattr(_linalg, "ONE_BLOCK_ELEMENTS", 0)
    results = []
    for block in (1, 4, 8, 21):
        monkeypatch.setattr(_linalg, "ROW_BLOCK", block)
        assert _linalg.row_block(21, 64) == block and _linalg.row_block(3, 64) == min(3, block)
        H = Ht.clone()
        hals_rows(H, At, G, max_inner=2, delta=0.0)
        results.append(H)
    for H in results[1:]:
        np.testing.assert_allclose(H.numpy(), results[0].numpy(), rtol=1e-4, atol=1e-5)


def test_row_blocks_follow_the_rank_and_the_cache():
    assert _linalg.row_block(10, 5_669_888) == 10  # small ranks: one block whatever the length
    assert _linalg.row_block(50, 2_544) == 50  # fits a core's cache
    assert _linalg.row_block(50, 10_000) == _linalg.ROW_BLOCK  # does not


def test_big_matrices_keep_every_thread_and_small_ones_take_one():
    if torch.get_num_threads() < 2:
        pytest.skip("one thread in all")
    n = torch.get_num_threads()
    with _linalg.one_thread(torch.device("cpu"), elements=16):
        assert torch.get_num_threads() == 1
    with _linalg.one_thread(torch.device("cpu"), elements=_linalg.SMALL_WORK + 1):
        assert torch.get_num_threads() == n
    assert torch.get_num_threads() == n


def test_dot_of_big_matrices_goes_by_bands_with_the_same_value():
    from peeklens.nmf.compressed import _dot

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 5000, generator=g), torch.rand(3, 5000, generator=g)
    whole = float(torch.sum(a * b, dtype=torch.float64))  # float32 products, a float64 sum
    exact = float(torch.sum(a.double() * b.double()))
    assert _dot(a, b, small=1000, band=1000) == pytest.approx(exact, rel=1e-13)  # 15 bands, in float64
    assert _dot(a, b, small=1000, band=999) == pytest.approx(exact, rel=1e-13)  # and a rest
    assert _dot(a, b, small=1000) == pytest.approx(whole, rel=1e-8)
    assert _dot(a, b) == pytest.approx(whole, rel=1e-12)  # small: one product


@pytest.mark.parametrize("one_block", [True, False])
def test_row_sweeps_with_a_work_buffer_give_the_same_rows(one_block, monkeypatch):
    if not one_block:
        monkeypatch.setattr(_linalg, "ONE_BLOCK_RANK", 0)
        monkeypatch.setattr(_linalg, "ONE_BLOCK_ELEMENTS", 0)
    Ht, At, G = _problem(21, 300, seed=4)
    alone, buffered = Ht.clone(), Ht.clone()
    hals_rows(alone, At, G, max_inner=3, delta=0.0)
    work = torch.full_like(At, float("nan"))  # its contents are never read
    At_before = At.clone()
    hals_rows(buffered, At, G, max_inner=3, delta=0.0, work=work)
    assert torch.equal(buffered, alone)
    assert torch.equal(At, At_before)  # At itself is left alone


def test_exact_part_is_the_orthonormal_part_outside_the_basis(monkeypatch):
    """The fused round's extra basis part, computed a band of features at a time (small bands here),
    equals the float64 reference: U orthonormal, orthogonal to the basis, spanning (I - L L^T) X_w F;
    Z = U^T X_w F (F^T F)^-1 F^T."""
    from peeklens.nmf import compressed

    monkeypatch.setattr(compressed, "WIDEN_BAND", 37)  # several bands and a rest
    g = torch.Generator().manual_seed(1)
    M, n, r = 300, 120, 4
    L0 = torch.linalg.qr(torch.randn(M, 9, generator=g, dtype=torch.float64)).Q
    L1 = torch.randn(M, 3, generator=g, dtype=torch.float64)
    L1 = torch.linalg.qr(L1 - L0 @ (L0.T @ L1)).Q
    basis = [(L0.float(), None), (L1.float(), None)]
    Ft = torch.rand(r, n, generator=g)
    Ct = torch.rand(r, M, generator=g)
    G = Ft @ Ft.T
    U, Z = compressed._exact_part(basis, Ft, Ct, G)
    Ld = torch.cat([L0, L1], dim=1)
    E = Ct.T.double() - Ld @ (Ld.T @ Ct.T.double())
    Ud = U.double()
    assert U.shape == (M, r) and U.dtype == torch.float32
    torch.testing.assert_close(Ud.T @ Ud, torch.eye(r, dtype=torch.float64), atol=1e-6, rtol=0)
    assert float((Ld.T @ Ud).abs().max()) < 1e-6
    torch.testing.assert_close(Ud @ (Ud.T @ E), E, atol=1e-5 * float(E.abs().max()), rtol=0)
    Zref = torch.linalg.solve(G.double(), Ct.double() @ Ud).T @ Ft.double()
    torch.testing.assert_close(Z.double(), Zref, atol=1e-4 * float(Zref.abs().max()), rtol=0)


def test_widening_gives_an_orthonormal_part_and_its_products_without_a_pass(monkeypatch):
    from peeklens.nmf import compressed

    monkeypatch.setattr(compressed, "WIDEN_BAND", 41)
    g = torch.Generator().manual_seed(2)
    M, n, k, p = 250, 90, 8, 5
    X = torch.rand(M, n, generator=g)
    L = torch.linalg.qr(torch.randn(M, k, generator=g)).Q.contiguous()
    Y = torch.rand(M, p, generator=g)
    Q, QB = compressed._widen(L, L.T @ X, Y, X.T @ Y)  # B = L^T X_w and P = X_w^T Y from "the pass"
    Qd, Ld, Yd = Q.double(), L.double(), Y.double()
    assert Q.shape == (M, p)
    torch.testing.assert_close(Qd.T @ Qd, torch.eye(p, dtype=torch.float64), atol=1e-5, rtol=0)
    assert float((Ld.T @ Qd).abs().max()) < 1e-5
    outside = Yd - Ld @ (Ld.T @ Yd)
    torch.testing.assert_close(Qd @ (Qd.T @ outside), outside, atol=1e-4 * float(outside.abs().max()), rtol=0)
    torch.testing.assert_close(QB.double(), Qd.T @ X.double(), atol=1e-4 * float(QB.abs().max()), rtol=0)
