"""Producer kernels that also write their output quantized for the int8-activation GEMV (Triton interpreter on CPU).

Each must write the same bf16 output as without quantization, and codes/scales equal to
`quantize_a8` of that output, so the GEMV gives the same result either way.
"""

import pytest
import torch

from tests.kernels.test_qlinear import DEV, _dev, random_packed
from trico.kernels.activation import silu_mul_packed
from trico.kernels.decode_attention import decode_attention
from trico.kernels.gemv_a8 import A8Config, gemv_a8, new_quantized_x, quantize_a8
from trico.kernels.qlinear import pack_for_kernel
from trico.kernels.rmsnorm import rmsnorm


def _same_codes(out, y: torch.Tensor) -> None:
    """Codes and scales equal quantize_a8(y), up to a rounding tie broken the other way (one code)."""
    q, s = quantize_a8(y, out.bits)
    assert torch.equal(out.s.cpu(), s.cpu())
    diff = (out.q.cpu().int() - q.cpu().int()).abs()
    assert int(diff.max()) <= 1 and int((diff > 0).sum()) <= 2


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    """Equal up to one bf16 rounding (the permuted lanes sum in another order)."""
    torch.testing.assert_close(a.cpu().float(), b.cpu().float(), rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize("d,with_residual", [(576, False), (256, True)])
def test_rmsnorm_writes_quantized_output(bits, d, with_residual):
    g = torch.Generator().manual_seed(d + bits)
    x = torch.randn(1, 1, d, generator=g).to(torch.bfloat16).to(DEV)
    w = (1 + 0.1 * torch.randn(d, generator=g)).to(torch.bfloat16).to(DEV)
    r = torch.randn(1, 1, d, generator=g).to(torch.bfloat16).to(DEV) if with_residual else None
    y0, h0 = rmsnorm(x, w, 1e-5, residual=r)
    out = new_quantized_x(1, d, bits, x.device)
    y, h = rmsnorm(x, w, 1e-5, residual=r, quantized_out=out)
    _close(y, y0)
    assert torch.equal(h.cpu(), h0.cpu())
    _same_codes(out, y.view(1, d))


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_silu_mul_packed_writes_quantized_output(bits):
    hid = 1536  # one full and one partial 1024-wide tile
    gu = torch.randn(1, 1, 2 * hid, generator=torch.Generator().manual_seed(bits)).to(torch.bfloat16).to(DEV)
    y0 = silu_mul_packed(gu)
    out = new_quantized_x(1, hid, bits, gu.device)
    y = silu_mul_packed(gu, quantized_out=out)
    assert torch.equal(y.cpu(), y0.cpu())
    _same_codes(out, y.view(1, hid))


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_attention_combine_writes_quantized_output(bits):
    g = torch.Generator().manual_seed(bits)
    b, h, hkv, d, max_len, pos = 1, 4, 2, 64, 96, 70
    q = torch.randn(b, h, d, generator=g).to(torch.bfloat16)
    k = torch.randn(b, hkv, max_len, d, generator=g).to(torch.bfloat16)
    v = torch.randn(b, hkv, max_len, d, generator=g).to(torch.bfloat16)
    args = _dev(q, k, v, torch.tensor([pos]))
    o0 = decode_attention(*args, block_l=16)
    out = new_quantized_x(1, h * d, bits, o0.device)
    o = decode_attention(*args, block_l=16, quantized_out=out)
    assert torch.equal(o.cpu(), o0.cpu())
    _same_codes(out, o.view(1, h * d))


def test_gemv_a8_takes_producer_quantized_x():
    qw, s, m = random_packed("uint4", 32, 256, 64, True, seed=3)
    pw = pack_for_kernel(*_dev(qw, s, m), "uint4", 64, 256)
    x = torch.randn(1, 256, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16).to(DEV)
    out = new_quantized_x(1, 256, 4, x.device)
    out.q.copy_(quantize_a8(x, 4)[0])
    out.s.copy_(quantize_a8(x, 4)[1])
    cfg = A8Config(8, 4, 1)
    assert torch.equal(gemv_a8(x, pw, cfg, quantized=out).cpu(), gemv_a8(x, pw, cfg).cpu())
    with pytest.raises(AssertionError, match="quantized for 2-bit"):
        gemv_a8(x, pw, cfg, quantized=new_quantized_x(1, 256, 2, x.device))
