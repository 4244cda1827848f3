"""Flash-decoding attention against the plain-torch reference (Triton interpreter on CPU)."""

import os

import pytest
import torch

from trico.kernels.decode_attention import decode_attention, decode_attention_reference, num_splits

DEV = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.mark.parametrize("b,h,hkv,max_len,pos", [(1, 2, 2, 80, 70), (2, 4, 1, 200, 130), (1, 8, 2, 64, 0)])
@pytest.mark.parametrize("quant", [False, True])
def test_decode_attention_matches_reference(b, h, hkv, max_len, pos, quant):
    g = torch.Generator().manual_seed(pos)
    d = 32
    q = torch.randn(b, h, d, generator=g).to(torch.bfloat16)
    if quant:
        k = torch.randint(-127, 128, (b, hkv, max_len, d), generator=g, dtype=torch.int8)
        v = torch.randint(-127, 128, (b, hkv, max_len, d), generator=g, dtype=torch.int8)
        ks = (torch.rand(b, hkv, max_len, generator=g) * 0.02).half()
        vs = (torch.rand(b, hkv, max_len, generator=g) * 0.02).half()
    else:
        k = torch.randn(b, hkv, max_len, d, generator=g).to(torch.bfloat16)
        v = torch.randn(b, hkv, max_len, d, generator=g).to(torch.bfloat16)
        ks = vs = None
    # Positions past pos hold garbage that must be ignored.
    dev = [None if t is None else t.to(DEV) for t in (q, k, v, torch.tensor([pos]), ks, vs)]
    got = decode_attention(*dev, block_l=16).cpu()
    ref = decode_attention_reference(q, k, v, pos, ks, vs)
    assert got.shape == q.shape and got.dtype == q.dtype
    assert _rel(got, ref) <= 1e-2


def test_num_splits_power_of_two_and_bounded():
    assert num_splits(1, 32, 384) == 4  # 6 chunks of 64 -> largest power of two below
    assert num_splits(64, 32, 8192) == 1
    s = num_splits(1, 8, 8448)
    assert s & (s - 1) == 0 and s <= 64
