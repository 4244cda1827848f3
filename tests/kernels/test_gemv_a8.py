"""The int8-activation GEMV against the float64 form of its own math (Triton interpreter on CPU)."""

import pytest
import torch

from tests.kernels.test_qlinear import DEV, _dev, _rel, random_packed
from trico.kernels.gemv_a8 import (
    A8Config,
    a8_supported,
    a8_unpermute,
    gemv_a8,
    gemv_a8_reference,
    quantize_a8,
    quantize_a8_reference,
)
from trico.kernels.qlinear import pack_for_kernel, qlinear_reference

CASES = [  # fmt, n, k, group (0 per tensor), symmetric
    ("int8", 32, 256, 0, True),
    ("int8", 16, 128, 32, True),
    ("uint8", 16, 128, 32, False),
    ("uint4", 32, 256, 64, True),
    ("uint4", 16, 256, 32, False),
    ("uint4", 16, 384, 128, True),
    ("uint2", 16, 256, 64, False),
    ("tern2", 32, 256, 0, True),
    ("tern2", 16, 256, 64, True),
]


@pytest.mark.parametrize("fmt,n,k,group,sym", CASES)
@pytest.mark.parametrize(
    "cfg",
    [
        A8Config(8, 4, 1),
        A8Config(16, 2, 2, split_k=2),
        A8Config(8, 4, 1, split_k=3),
        A8Config(8, 4, 1, prefetch=True),
        A8Config(8, 2, 1, split_k=3, prefetch=True),
    ],
)
def test_gemv_a8_matches_its_reference(fmt, n, k, group, sym, cfg):
    q, s, m = random_packed(fmt, n, k, group, sym, seed=n + k)
    x = torch.randn(1, k, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, k)
    assert a8_supported(pw)
    res = torch.randn(1, n, generator=torch.Generator().manual_seed(6)).to(torch.bfloat16)
    got = gemv_a8(x.to(DEV), pw, cfg).cpu()
    want = gemv_a8_reference(x, q, s, m, fmt, group, k)
    assert got.dtype == x.dtype and got.shape == (1, n)
    assert _rel(got, want) < 1e-2
    # int8 activations stay close to the bf16-activation product on random data
    assert _rel(got, qlinear_reference(x, q, s, m, fmt, group, k)) < 3e-2
    with_res = gemv_a8(x.to(DEV), pw, cfg, residual=res.to(DEV)).cpu()
    assert _rel(with_res, res.float() + got.float()) < 1e-2


def test_gemv_a8_is_exact_up_to_fp32_scaling():
    """fp32 in and out: only the fp32 scaling and summation order separate kernel and float64 reference."""
    q, s, m = random_packed("uint4", 32, 512, 64, True, seed=2)
    x = torch.randn(1, 512, generator=torch.Generator().manual_seed(2))
    pw = pack_for_kernel(*_dev(q, s, m), "uint4", 64, 512)
    xq, sx = quantize_a8(x.to(DEV), 4)
    xq = (a8_unpermute(xq, 4).cpu(), sx.cpu().double())
    want = gemv_a8_reference(x.double(), q, s, m, "uint4", 64, 512, quantized_x=xq)
    got = gemv_a8(x.to(DEV), pw, A8Config(16, 4, 1)).cpu().double()
    assert float((got - want).norm() / want.norm()) < 1e-6


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_quantize_a8_writes_the_reference_codes_in_plane_order(bits):
    x = torch.randn(2, 256, generator=torch.Generator().manual_seed(bits)).to(torch.bfloat16)
    x[0, :64] = 0.0  # an all-zero block keeps scale 1/127 and codes 0
    q, s = quantize_a8(x.to(DEV), bits)
    q_ref, s_ref = quantize_a8_reference(x, max(32, 32 // bits * 4))
    assert torch.equal(s.cpu(), s_ref)
    cpw, pl = 32 // bits, 32 // bits // 4
    # slot p * 4 + j of each group of cpw codes holds code p + j * pl
    perm = torch.tensor([p + j * pl for p in range(pl) for j in range(4)])
    want = q_ref.view(2, -1, cpw)[:, :, perm].reshape(2, 256)
    diff = (q.cpu().int() - want.int()).abs()
    # x * (127 / amax) + 1/2 may land on a tie that fp32 rounding (or FMA) breaks either way: one code
    assert int(diff.max()) <= 1 and int((diff > 0).sum()) <= 2
    assert torch.equal(a8_unpermute(q.cpu(), bits).view(2, -1, cpw)[:, :, perm].reshape(2, 256), q.cpu())
    assert int(q_ref.abs().max()) == 127 and not q[0, :64].any()


def test_a8_needs_whole_words_and_blocks():
    q, s, m = random_packed("uint3", 16, 256, 64, True)
    assert not a8_supported(pack_for_kernel(q, s, m, "uint3", 64, 256))
