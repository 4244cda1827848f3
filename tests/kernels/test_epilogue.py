"""The shared GEMV output step: residual add, and split-K reduced inside the kernel (reusable workspace)."""

import pytest
import torch

from tests.kernels.test_qlinear import DEV, _dev, random_packed
from trico.kernels.epilogue import split_workspace
from trico.kernels.gemv import GemvWordConfig, gemv_words
from trico.kernels.qgemm_tc import TcConfig, tc_qmm
from trico.kernels.qlinear import pack_for_kernel, qlinear_reference


def _case(m_rows: int, seed: int):
    n, k, group = 48, 256, 64
    q, s, m = random_packed("uint4", n, k, group, True, seed=seed)
    pw = pack_for_kernel(*_dev(q, s, m), "uint4", group, k)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(m_rows, k, generator=gen).to(torch.bfloat16)
    res = torch.randn(m_rows, n, generator=gen).to(torch.bfloat16)
    # The torch expression the fused decoder block replaces: residual + (x @ W^T), product rounded first.
    want = (res.float() + qlinear_reference(x, q, s, m, "uint4", group, k).float()).to(torch.bfloat16)
    return pw, x, res, want


@pytest.mark.parametrize("split", [1, 2, 3])
def test_gemv_words_adds_the_residual_like_torch(split):
    pw, x, res, want = _case(1, seed=split)
    got = gemv_words(x.to(DEV), pw, GemvWordConfig(16, 8, split_k=split), residual=res.to(DEV)).cpu()
    assert got.dtype == torch.bfloat16
    assert (got.float() - want.float()).abs().max() <= 2e-2 * want.float().abs().max()


@pytest.mark.parametrize("split", [1, 2])
def test_tc_qmm_adds_the_residual_like_torch(split):
    pw, x, res, want = _case(5, seed=10 + split)
    got = tc_qmm(x.to(DEV), pw, TcConfig(16, 64, split_k=split), residual=res.to(DEV)).cpu()
    assert (got.float() - want.float()).abs().max() <= 2e-2 * want.float().abs().max()


def test_split_k_leaves_its_workspace_zeroed_for_the_next_call():
    """The last split to arrive resets the shared workspace and counters: repeated calls agree."""
    pw, x, _, _ = _case(1, seed=7)
    cfg = GemvWordConfig(16, 8, split_k=4)
    first = gemv_words(x.to(DEV), pw, cfg).cpu()
    ws, cnt = split_workspace(torch.device(DEV), pw.n, 3)
    assert not ws.any() and not cnt.any()
    again = gemv_words(x.to(DEV), pw, cfg).cpu()
    assert torch.equal(first, again)
