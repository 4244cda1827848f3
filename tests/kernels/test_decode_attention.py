"""Flash-decoding attention (and its one-kernel RoPE + cache-store form) against the plain-torch
reference (Triton interpreter on CPU)."""

import os

import pytest
import torch

from trico.kernels import decode_attention as da
from trico.kernels.decode_attention import (
    decode_attention,
    decode_attention_reference,
    num_splits,
    rope_decode_attention,
)
from trico.kernels.gemv_a8 import new_quantized_x, quantize_a8
from trico.kernels.rope import rope_qkv_store, rope_qkv_store_reference

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


def _decode_inputs(b, nq, nkv, d, max_len, seed):
    """A fused QKV row, this position's cos/sin rows and a bf16 cache pair [2, B, Hkv, L, D] of random values."""
    g = torch.Generator().manual_seed(seed)
    qkv = torch.randn(b, 1, (nq + 2 * nkv) * d, generator=g).to(torch.bfloat16)
    ang = torch.rand(1, d // 2, generator=g) * 6
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    cache = torch.randn(2, b, nkv, max_len, d, generator=g).to(torch.bfloat16)
    return qkv, cos, sin, cache


def _rope_attend(qkv, cos, sin, cache, pos, nq, nkv, quantized_out=None):
    """rope_decode_attention on DEV over a copy of cache; returns (output, cache after) on the CPU."""
    kv = cache.to(DEV)
    args = (qkv.to(DEV), cos.to(DEV), sin.to(DEV), kv[0], kv[1], torch.tensor([pos], device=DEV), nq, nkv)
    out = rope_decode_attention(*args, quantized_out=quantized_out, block_l=16)
    return out.cpu(), kv.cpu()


def _check_step(qkv, cos, sin, cache, pos, nq, nkv, out, got):
    """out/got (output, cache after one step at pos) against rope_qkv_store_reference + decode_attention_reference.

    The cache row at pos must be exactly what rope_qkv_store writes (the CPU interpreter rounds
    fp32 -> bf16 by truncation, so the torch reference may differ by one ulp: compared loosely).
    """
    want = cache.clone()
    p = torch.tensor([pos])
    q_ref = rope_qkv_store_reference(qkv, cos, sin, want[0], want[1], p, nq, nkv)
    ref = decode_attention_reference(q_ref, want[0], want[1], pos)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert _rel(out, ref) <= 1e-2
    stored = cache.to(DEV)
    rope_qkv_store(qkv.to(DEV), cos.to(DEV), sin.to(DEV), stored[0], stored[1], p.to(DEV), nq, nkv)
    assert torch.equal(got[:, :, :, pos], stored.cpu()[:, :, :, pos])
    assert _rel(got[:, :, :, pos], want[:, :, :, pos]) <= 1e-2
    others = [i for i in range(cache.shape[3]) if i != pos]
    assert torch.equal(got[:, :, :, others], cache[:, :, :, others])


@pytest.mark.parametrize(
    "b,nq,nkv,d,max_len,pos",
    [
        (1, 2, 2, 64, 64, 0),  # rep 1, empty prefix: the new token alone
        (2, 8, 2, 128, 128, 64),  # rep 4, batch 2: the old positions end on a chunk boundary
        (1, 6, 2, 64, 96, 37),  # rep 3 (padded query tile), prefix ends inside a chunk
        (1, 4, 1, 32, 128, 127),  # rep 4, last slot: the last split holds old keys and the new one
    ],
)
def test_rope_decode_attention_matches_rope_store_then_attention(b, nq, nkv, d, max_len, pos):
    """One kernel gives the output of rotate-store then attend, and writes only the cache row at pos."""
    qkv, cos, sin, cache = _decode_inputs(b, nq, nkv, d, max_len, seed=pos + nq)
    out, got = _rope_attend(qkv, cos, sin, cache, pos, nq, nkv)
    _check_step(qkv, cos, sin, cache, pos, nq, nkv, out, got)


def test_rope_decode_attention_consecutive_steps_reuse_a_clean_workspace():
    """pos then pos + 1 on the same cache: the second step sees the first one's key and value, and
    the arrival counters are back to zero after each call (as a CUDA-graph replay needs)."""
    b, nq, nkv, d, max_len, pos = 2, 4, 2, 64, 64, 20
    qkv, cos, sin, cache = _decode_inputs(b, nq, nkv, d, max_len, seed=7)
    qkv2, cos2, sin2, _ = _decode_inputs(b, nq, nkv, d, max_len, seed=8)
    out, after1 = _rope_attend(qkv, cos, sin, cache, pos, nq, nkv)
    _check_step(qkv, cos, sin, cache, pos, nq, nkv, out, after1)
    assert all(int(cnt.abs().sum()) == 0 for _, _, cnt in da._WORKSPACES.values())
    out2, after2 = _rope_attend(qkv2, cos2, sin2, after1, pos + 1, nq, nkv)
    _check_step(qkv2, cos2, sin2, after1, pos + 1, nq, nkv, out2, after2)
    assert all(int(cnt.abs().sum()) == 0 for _, _, cnt in da._WORKSPACES.values())


@pytest.mark.parametrize("bits", [8, 2])
def test_rope_decode_attention_writes_quantized_output(bits):
    """quantized_out gets quantize_a8 of the output (as the two-kernel path's combine writes it)."""
    b, nq, nkv, d, max_len, pos = 1, 4, 2, 64, 64, 40
    qkv, cos, sin, cache = _decode_inputs(b, nq, nkv, d, max_len, seed=bits)
    o0, _ = _rope_attend(qkv, cos, sin, cache, pos, nq, nkv)
    qout = new_quantized_x(b, nq * d, bits, torch.device(DEV))
    o, got = _rope_attend(qkv, cos, sin, cache, pos, nq, nkv, quantized_out=qout)
    # The permuted lanes may sum the splits in another order: equal up to one bf16 rounding.
    torch.testing.assert_close(o.float(), o0.float(), rtol=1e-2, atol=1e-2)
    _check_step(qkv, cos, sin, cache, pos, nq, nkv, o, got)
    q, sc = quantize_a8(o.view(b, nq * d).to(DEV), bits)
    assert torch.equal(qout.s.cpu(), sc.cpu())
    diff = (qout.q.cpu().int() - q.cpu().int()).abs()  # a rounding tie may go the other way (one code)
    assert int(diff.max()) <= 1 and int((diff > 0).sum()) <= 2
