"""RMSNorm(+residual), RoPE and SiLU-gate kernels against their references (Triton interpreter)."""

import os

import pytest
import torch

from trico.kernels.activation import silu_mul, silu_mul_packed, silu_mul_reference
from trico.kernels.rmsnorm import rmsnorm, rmsnorm_reference
from trico.kernels.rope import rope, rope_qkv_store, rope_qkv_store_reference, rope_reference

DEV = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.mark.parametrize("with_residual", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rmsnorm(with_residual, dtype):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 96, generator=g).to(dtype)
    r = torch.randn(3, 5, 96, generator=g).to(dtype) if with_residual else None
    w = (1 + 0.1 * torch.randn(96, generator=g)).to(dtype)
    y, h = rmsnorm(x.to(DEV), w.to(DEV), 1e-5, None if r is None else r.to(DEV))
    y, h = y.cpu(), h.cpu()
    y_ref, h_ref = rmsnorm_reference(x, w, 1e-5, r)
    # The CPU interpreter's fp32 -> bf16 cast truncates, so bf16 is compared with a tolerance.
    if dtype == torch.float32:
        assert torch.equal(h, h_ref)
    assert _rel(h, h_ref) <= 1e-2
    assert _rel(y, y_ref) <= (1e-6 if dtype == torch.float32 else 1e-2)


def test_rope():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 3, 32, generator=g).to(torch.bfloat16)  # [B, T, H, D]
    ang = torch.rand(4, 16, generator=g) * 6
    cos = torch.cat([ang.cos(), ang.cos()], -1)
    sin = torch.cat([ang.sin(), ang.sin()], -1)
    ref = rope_reference(x.transpose(1, 2), cos, sin).transpose(1, 2)
    assert _rel(rope(x.to(DEV), cos.to(DEV), sin.to(DEV)).cpu(), ref) <= 1e-2


def test_silu_mul():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(3, 1500, generator=g).to(torch.bfloat16)
    b = torch.randn(3, 1500, generator=g).to(torch.bfloat16)
    assert _rel(silu_mul(a.to(DEV), b.to(DEV)).cpu(), silu_mul_reference(a, b)) <= 1e-2


def test_silu_mul_packed():
    gu = torch.randn(2, 3, 2 * 1100, generator=torch.Generator().manual_seed(4)).to(torch.bfloat16)
    ref = silu_mul_reference(gu[..., :1100], gu[..., 1100:])
    assert _rel(silu_mul_packed(gu.to(DEV)).cpu(), ref) <= 1e-2


def test_rope_strided_tokens():
    g = torch.Generator().manual_seed(5)
    qkv = torch.randn(2, 3, 5 * 32, generator=g).to(torch.bfloat16)  # q: 3 heads, k/v: 1 head each
    q = qkv[..., : 3 * 32].view(2, 3, 3, 32)
    ang = torch.rand(3, 16, generator=g)
    cos = torch.cat([ang.cos(), ang.cos()], -1)
    sin = torch.cat([ang.sin(), ang.sin()], -1)
    ref = rope_reference(q.transpose(1, 2), cos, sin).transpose(1, 2)
    assert _rel(rope(q.to(DEV), cos.to(DEV), sin.to(DEV)).cpu(), ref) <= 1e-2


def test_rope_more_heads_than_a_program_takes():
    # 40 heads of 128: two programs a token, the second one partly masked
    g = torch.Generator().manual_seed(6)
    x = torch.randn(1, 3, 40, 128, generator=g).to(torch.bfloat16)
    ang = torch.rand(3, 64, generator=g) * 6
    cos = torch.cat([ang.cos(), ang.cos()], -1)
    sin = torch.cat([ang.sin(), ang.sin()], -1)
    ref = rope_reference(x.transpose(1, 2), cos, sin).transpose(1, 2)
    assert _rel(rope(x.to(DEV), cos.to(DEV), sin.to(DEV)).cpu(), ref) <= 1e-2


@pytest.mark.parametrize("nq,nkv", [(4, 4), (8, 2)])
def test_rope_qkv_store_matches_rotations_and_cache_scatter(nq, nkv):
    """One kernel gives the rotated queries and writes rotated k and plain v at pos, like the torch path."""
    b, d, length, pos = 2, 16, 12, 5
    gen = torch.Generator().manual_seed(nq)
    qkv = torch.randn(b, 1, (nq + 2 * nkv) * d, generator=gen).to(torch.bfloat16)
    ang = torch.rand(1, d // 2, generator=gen) * 6
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    cache = torch.randn(2, b, nkv, length, d, generator=gen).to(torch.bfloat16)
    want = cache.clone()
    p = torch.tensor([pos])
    q_ref = rope_qkv_store_reference(qkv, cos, sin, want[0], want[1], p, nq, nkv)
    got = cache.to(DEV)
    q = rope_qkv_store(qkv.to(DEV), cos.to(DEV), sin.to(DEV), got[0], got[1], p.to(DEV), nq, nkv)
    # Same fp32 formula; the CPU interpreter may round the bf16 result differently (1 ulp).
    assert _rel(q.cpu(), q_ref) <= 1e-2
    got = got.cpu()
    assert _rel(got[0, :, :, pos], want[0, :, :, pos]) <= 1e-2  # rotated keys
    assert torch.equal(got[1, :, :, pos], want[1, :, :, pos])  # values: copied as they are
    others = [i for i in range(length) if i != pos]
    assert torch.equal(got[:, :, :, others], cache[:, :, :, others])  # nothing else written
    assert not torch.equal(want[:, :, :, pos], cache[:, :, :, pos])
