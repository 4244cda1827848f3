"""The W8A8 kernels (per-token int8 quantization, int8 tensor-core GEMM) against QLinear's w8a8 reference."""

import pytest
import torch

from tests.kernels.test_qlinear import DEV, _rel
from trico.kernels import dispatch
from trico.kernels.w8a8 import (
    PREFILL_ROWS,
    W8A8Config,
    quantize_rows,
    w8a8_choice,
    w8a8_linear,
    w8a8_supported,
)
from trico.quant.qlinear import QLinear


def _w8a8(n: int, k: int, seed: int = 0, smooth: bool = True) -> QLinear:
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(-127, 128, (n, k), generator=g, dtype=torch.int8)
    scales = (torch.rand(n, 1, generator=g) * 0.01 + 0.001).half()
    sm = (torch.rand(k, generator=g) * 1.5 + 0.25).half() if smooth else None
    return QLinear.from_codes(codes, scales, "w8a8", k, smooth=sm).to(DEV)


def _same_rounding(got: torch.Tensor, want: torch.Tensor) -> bool:
    """Equal on the GPU; under the CPU interpreter, whose fp32 -> bf16 conversion truncates, within one ulp."""
    got, want = got.cpu().double(), want.cpu().double()
    if DEV == "cuda":
        return torch.equal(got, want)
    ulp = torch.exp2(torch.floor(torch.log2(want.abs().clamp_min(1e-30))) - 7)
    return bool(((got - want).abs() <= ulp).all())


def _x(m: int, k: int, seed: int) -> torch.Tensor:
    x = torch.randn(m, k, generator=torch.Generator().manual_seed(seed))
    x[:, 3] *= 40.0  # an outlier channel, as activations have
    return x.to(torch.bfloat16).to(DEV)


@pytest.mark.parametrize("shape", [None, (64, 4)], ids=["whole-row", "two-pass"])
def test_row_quantization_matches_the_reference_exactly(shape):
    """Codes and scales as QLinear._w8a8_forward makes them: x / smooth, absmax / 127, round half to even."""
    q = _w8a8(8, 256, seed=1)
    x = _x(5, 256, seed=1)
    x[1, 10] = 0.0
    x[2] = 0.0  # an all-zero row: the scale's floor (1e-8), codes 0
    codes, scales = quantize_rows(x, q.smooth, shape)
    xs = x.float() / q.smooth.float()
    want_s = (xs.abs().amax(-1, keepdim=True) / 127.0).clamp_min(1e-8)
    want_q = torch.round(xs / want_s).clamp(-127, 127)
    assert torch.equal(scales.cpu(), want_s.view(-1).cpu())
    assert torch.equal(codes.cpu().float(), want_q.cpu())


def test_round_half_even_ties():
    """Values exactly halfway between codes go to the even one, like torch.round."""
    k = 64
    q = _w8a8(8, k, seed=2, smooth=False)
    x = torch.zeros(1, k)
    x[0, 0] = 127.0  # scale 1: the codes are x itself
    x[0, 1:9] = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.25, -3.75])
    codes, scales = quantize_rows(x.to(torch.bfloat16).to(DEV), q.smooth)
    assert float(scales[0]) == 1.0
    assert codes[0, :9].cpu().tolist() == [127, 0, 2, 2, 0, -2, -2, 3, -4]


@pytest.mark.parametrize("m", [1, 5, 17, 70])
def test_w8a8_linear_matches_reference(m):
    q = _w8a8(96, 256, seed=m)
    x = _x(m, 256, seed=m)
    got = w8a8_linear(x, q)
    assert got.dtype == x.dtype and got.shape == (m, 96)
    # the integer sums are exact (and so are the reference's fp32 sums at this K): the same rounding
    assert _rel(got.cpu(), q.reference_forward(x).cpu()) <= 1e-2
    assert _same_rounding(got, q.reference_forward(x))


def test_w8a8_linear_residual_and_part_tiles():
    """N and K not multiples of the tile: masked loads; the residual is added as `residual + y`."""
    q = _w8a8(40, 96, seed=3)
    x = _x(3, 96, seed=3)
    res = torch.randn(3, 40, generator=torch.Generator().manual_seed(4)).to(torch.bfloat16).to(DEV)
    got = w8a8_linear(x, q, residual=res, config=W8A8Config(16, 32, 64))
    want = res + q.reference_forward(x)
    assert _rel(got.cpu(), want.cpu()) <= 1e-2
    if DEV == "cuda":  # (the interpreter truncates twice, y and then y + residual: no exact bound there)
        assert torch.equal(got, want)


def test_dispatch_takes_the_w8a8_kernel_and_its_prologue():
    q = _w8a8(48, 128, seed=5)
    x = _x(4, 128, seed=5).view(2, 2, 128)
    assert w8a8_supported(q)
    got = dispatch.qlinear_forward(q, x)
    assert got.shape == (2, 2, 48)
    assert _same_rounding(got, q.reference_forward(x))


def test_w8a8_choice_fills_the_gpu_and_fits_k():
    assert w8a8_choice(16, 12288, 4096) == W8A8Config(16, 64, 256, 4, 4)
    assert w8a8_choice(16, 4096, 4096).block_n == 32  # 64 tiles of 64 rows: half the SMs idle
    assert w8a8_choice(1, 576, 1536).block_k == 256
    assert w8a8_choice(100, 576, 96).block_k == 32  # K = 96: whole 32-code steps
    assert w8a8_choice(100, 576, 96).block_m == 64
    assert w8a8_choice(2048, 4096, 11008) == W8A8Config(128, 128, 128, 8, 3)  # prefill: compute-bound tiles


def test_w8a8_prefill_tiles_match_reference():
    # the large-tile launch a long prompt takes, with partial row and column tiles
    q = _w8a8(200, 128, seed=6)
    x = _x(PREFILL_ROWS + 40, 128, seed=7)
    assert w8a8_choice(x.shape[0], 200, 128).block_m == 128
    got = w8a8_linear(x, q)
    assert _same_rounding(got, q.reference_forward(x))
