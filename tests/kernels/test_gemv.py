"""The word-packed one-row GEMV against the plain-torch reference (Triton interpreter on CPU)."""

import pytest
import torch

from tests.kernels.test_qlinear import DEV, _dev, _rel, random_packed
from trico.kernels.gemv import GemvWordConfig, gemv_supported, gemv_words
from trico.kernels.qlinear import pack_for_kernel, qlinear_reference

CASES = [  # fmt, n, k, group (0 per tensor), symmetric
    ("int8", 40, 128, 0, True),
    ("int8", 40, 128, 128, True),
    ("int8", 24, 128, 32, True),
    ("uint8", 24, 128, 32, False),
    ("uint4", 40, 256, 64, True),
    ("uint4", 40, 256, 32, False),
    ("uint4", 24, 256, 256, True),
    ("uint2", 24, 256, 64, False),
    ("tern2", 40, 256, 0, True),
    ("tern2", 24, 256, 64, True),
]


@pytest.mark.parametrize("fmt,n,k,group,sym", CASES)
@pytest.mark.parametrize("cfg", [GemvWordConfig(16, 8), GemvWordConfig(8, 16, split_k=2)])
def test_gemv_words_matches_reference(fmt, n, k, group, sym, cfg):
    q, s, m = random_packed(fmt, n, k, group, sym, seed=n + k)
    x = torch.randn(1, k, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, k)
    assert gemv_supported(pw)
    got = gemv_words(x.to(DEV), pw, cfg).cpu()
    assert got.dtype == x.dtype and got.shape == (1, n)
    assert _rel(got, qlinear_reference(x, q, s, m, fmt, group, k)) < 1e-2


def test_gemv_words_is_exact_up_to_fp32_accumulation():
    """With fp32 x and output the kernel agrees with a float64 product to fp32 accuracy."""
    q, s, m = random_packed("uint4", 32, 512, 64, True, seed=2)
    x = torch.randn(1, 512, generator=torch.Generator().manual_seed(2))
    pw = pack_for_kernel(*_dev(q, s, m), "uint4", 64, 512)
    exact = qlinear_reference(x.double(), q, s, m, "uint4", 64, 512).double()
    got = gemv_words(x.to(DEV), pw, GemvWordConfig(16, 16)).cpu().double()
    assert float((got - exact).norm() / exact.norm()) < 1e-5


def test_gemv_words_refuses_groups_that_split_a_word():
    q, s, m = random_packed("uint2", 24, 256, 8, True)
    assert not gemv_supported(pack_for_kernel(q, s, m, "uint2", 8, 256))
    q, s, m = random_packed("uint3", 24, 256, 64, True)
    assert not gemv_supported(pack_for_kernel(q, s, m, "uint3", 64, 256))


@pytest.mark.parametrize("fmt,group", [("int8", 0), ("tern2", 0), ("uint4", 32)])
@pytest.mark.parametrize("words,split", [(8, 1), (16, 1), (24, 1), (28, 1), (60, 3)])
def test_lean_loop_matches_the_old_loop_and_the_reference(fmt, group, words, split, monkeypatch):
    """Two tiles per loop pass: one, two or three full tiles, a partial tail, split K; the int8 sign flip in the mask."""
    from trico.kernels import gemv

    per_word = {"int8": 4, "tern2": 16, "uint4": 8}[fmt]
    k, n = words * per_word, 24
    q, s, m = random_packed(fmt, n, k, group, True, seed=words)
    x = torch.randn(1, k, generator=torch.Generator().manual_seed(words)).to(torch.bfloat16)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, k)
    cfg = GemvWordConfig(16, 8, split_k=split)
    want = qlinear_reference(x, q, s, m, fmt, group, k)
    got = {}
    for lean in (True, False):
        monkeypatch.setattr(gemv, "lean_loop", lambda bits, config, lean=lean: lean)
        got[lean] = gemv_words(x.to(DEV), pw, cfg).cpu()
        assert _rel(got[lean], want) < 1e-2
    assert _rel(got[True], got[False]) < 1e-2
