"""QLinear: dequantize follows the contract's formulas, forward matches a dense matmul, dtypes survive .to()."""

import pytest
import torch

from trico.errors import TricoError
from trico.quant.qlinear import QLinear


def _rand_codes(n: int, k: int, hi: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, hi, (n, k), generator=torch.Generator().manual_seed(seed)).to(torch.uint8)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
def test_uint_dequantize_formula(bits: int, symmetric: bool) -> None:
    n, k, g = 6, 64, 16
    u = _rand_codes(n, k, 1 << bits)
    s = (torch.rand(n, k // g) + 0.1).half()
    m = None if symmetric else torch.randn(n, k // g).half()
    ql = QLinear.from_codes(u, s, f"uint{bits}", g, mins=m)
    se = s.float().repeat_interleave(g, 1)
    ref = (
        se * (u.float() - 2 ** (bits - 1))
        if symmetric
        else se * u.float() + m.float().repeat_interleave(g, 1)
    )
    assert torch.equal(ql.dequantize(), ref)
    assert torch.equal(ql.codes(), u)


@pytest.mark.parametrize("fmt", ["tern2", "tern1.6"])
@pytest.mark.parametrize("group", [0, 8, 40])
def test_ternary_dequantize(fmt: str, group: int) -> None:
    n, k = 5, 40
    u = _rand_codes(n, k, 3)
    shape = (1, 1) if group == 0 else (n, k // group)
    s = (torch.rand(shape) + 0.1).half()
    ql = QLinear.from_codes(u, s, fmt, group)
    se = s.float() if group == 0 else s.float().repeat_interleave(group, 1)
    assert torch.equal(ql.dequantize(), (u.float() - 1) * se)


def test_forward_matches_dense_and_keeps_fp16_scales() -> None:
    q = torch.randint(-127, 128, (12, 32), dtype=torch.int8)
    s = (torch.rand(12, 1) / 100).half()
    ql = QLinear.from_codes(q, s, "int8", 32)
    x = torch.randn(3, 32)
    torch.testing.assert_close(ql(x), x @ (q.float() * s.float()).T)
    ql.to(torch.bfloat16)
    assert ql.scales.dtype == torch.float16 and ql.qweight.dtype == torch.int8
    assert ql(x.bfloat16()).dtype == torch.bfloat16


def test_bf16_forward_rounds_once_not_the_weight() -> None:
    # The kernels' math: fp32 codes x scales x inputs, one rounding of the output. Rounding the
    # dequantized weight to bf16 first gives different outputs on these shapes (checked below).
    g = torch.Generator().manual_seed(3)
    u = torch.randint(0, 16, (64, 256), generator=g).to(torch.uint8)
    s = (torch.rand(64, 4, generator=g) / 10 + 0.01).half()
    ql = QLinear.from_codes(u, s, "uint4", 64)
    x = torch.randn(2, 256, generator=g).bfloat16()
    exact = (x.float() @ ql.dequantize().T).bfloat16()
    assert torch.equal(ql(x), exact)
    assert not torch.equal(ql(x), x @ ql.dequantize().bfloat16().T)


def test_w8a8_forward_quantizes_activations_per_token() -> None:
    torch.manual_seed(0)
    q = torch.randint(-127, 128, (8, 16), dtype=torch.int8)
    s = (torch.rand(8, 1) / 50).half()
    smooth = (torch.rand(16) + 0.5).half()
    ql = QLinear.from_codes(q, s, "w8a8", 16, smooth=smooth)
    x = torch.randn(4, 16)
    xs = x / smooth.float()
    sx = xs.abs().amax(-1, keepdim=True) / 127
    ref = (torch.round(xs / sx) * sx) @ (q.float() * s.float()).T
    torch.testing.assert_close(ql(x), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ql.effective_weight(), q.float() * s.float() / smooth.float())


def test_bad_group_size_is_refused() -> None:
    with pytest.raises(TricoError, match="does not divide"):
        QLinear(100, 8, "uint4", 64)
    with pytest.raises(TricoError, match="multiple of 8"):
        QLinear(12, 8, "uint3", 12)
