"""The half2 GEMV against the float64 product (Triton interpreter on CPU) and its PTX against an emulator."""

import pytest
import torch

from tests.kernels.ptx_emulator import f32_of, run_ptx
from tests.kernels.test_qlinear import DEV, _dev, _rel, random_packed
from trico.kernels.activation import silu_mul_packed
from trico.kernels.gemv_half2 import (
    UNIT_CODES,
    Half2Config,
    gemv_half2,
    half2_supported,
    unit_dot_asm,
    x_pairs_asm,
)
from trico.kernels.qlinear import pack_for_kernel, qlinear_reference

CASES = [  # fmt, n, k, group (0 per tensor), symmetric
    ("uint4", 32, 256, 64, True),
    ("uint4", 16, 512, 128, True),
    ("uint4", 16, 256, 0, True),
    ("uint2", 16, 256, 64, True),
    ("tern2", 32, 512, 0, True),
    ("tern2", 16, 256, 64, True),
]


@pytest.mark.parametrize("fmt,n,k,group,sym", CASES)
@pytest.mark.parametrize(
    "cfg", [Half2Config(8, 4, 1), Half2Config(16, 8, 2, split_k=2), Half2Config(8, 4, 1, split_k=3)]
)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gemv_half2_matches_the_product(fmt, n, k, group, sym, cfg, dtype):
    _check_rows(fmt, n, k, group, sym, cfg, dtype, 1)


@pytest.mark.parametrize("rows", [2, 3, 4])
@pytest.mark.parametrize("fmt,n,k,group,sym", [CASES[0], CASES[2], CASES[5]])
@pytest.mark.parametrize("cfg", [Half2Config(8, 4, 1), Half2Config(8, 4, 1, split_k=3)])
def test_gemv_half2_rows_match_the_product(fmt, n, k, group, sym, cfg, rows):
    """Up to four rows of x share each unpacked code; three run as four with the last row repeated, unstored."""
    _check_rows(fmt, n, k, group, sym, cfg, torch.bfloat16, rows)


def _check_rows(fmt, n, k, group, sym, cfg, dtype, rows):
    q, s, m = random_packed(fmt, n, k, group, sym, seed=n + k)
    x = torch.randn(rows, k, generator=torch.Generator().manual_seed(5)).to(dtype)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, k)
    assert half2_supported(pw, dtype)
    res = torch.randn(rows, n, generator=torch.Generator().manual_seed(6)).to(dtype)
    got = gemv_half2(x.to(DEV), pw, cfg).cpu()
    want = qlinear_reference(x.double(), q, s, m, fmt, group, k)
    assert got.dtype == dtype and got.shape == (rows, n)
    for r in range(rows):  # each row on its own scale
        assert _rel(got[r], want[r]) < 1e-2, r
    assert _rel(got, want) < 1e-2
    with_res = gemv_half2(x.to(DEV), pw, cfg, residual=res.to(DEV)).cpu()
    assert _rel(with_res, res.float() + got.float()) < 1e-2


@pytest.mark.parametrize("rows", [1, 2])
@pytest.mark.parametrize("fmt,n,k,group,sym", [CASES[0], CASES[4], CASES[5]])
@pytest.mark.parametrize("cfg", [Half2Config(8, 4, 1), Half2Config(16, 8, 2, split_k=2)])
def test_gate_epilogue_matches_the_separate_gate_kernel(fmt, n, k, group, sym, cfg, rows):
    """With the gate, tiles pair gate row i with up row N/2 + i and write silu(g) * u: the two-kernel result."""
    q, s, m = random_packed(fmt, n, k, group, sym, seed=n + k + rows)
    x = torch.randn(rows, k, generator=torch.Generator().manual_seed(7)).to(DEV, torch.bfloat16)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, k)
    got = gemv_half2(x, pw, cfg, gate=True).cpu()
    want = silu_mul_packed(gemv_half2(x, pw, cfg)).cpu()
    assert got.shape == (rows, n // 2)
    if DEV == "cpu":  # programs run in order: the same fp32 sums, the same roundings
        assert torch.equal(got, want)
    else:  # split-K partials meet in atomics in any order
        assert _rel(got, want) < 1e-2
    with pytest.raises(AssertionError, match="residual"):
        gemv_half2(x, pw, cfg, residual=torch.zeros(rows, n, dtype=x.dtype, device=x.device), gate=True)


@pytest.mark.parametrize("bits", [4, 2])
@pytest.mark.parametrize("fp16", [False, True])
def test_x_pairs_asm_pairs_and_scales_x_exactly(bits, fp16):
    """The PTX the GPU runs, emulated: word w's values come back as fp16 pairs (x[q], x[q + CPW/2]), exactly."""
    cpw = 32 // bits
    dt = torch.float16 if fp16 else torch.bfloat16
    asm, constraints = x_pairs_asm(bits, fp16)
    assert constraints.count("=") == cpw // 2
    x = (torch.randn(4 * cpw, generator=torch.Generator().manual_seed(bits)) * 30).to(dt)
    x[0], x[1] = 0.0, -0.0
    words = x.view(torch.int16).to(torch.int32).view(-1, 2)
    base = 4096
    memory = {base + 4 * i: int(lo) & 0xFFFF | (int(hi) & 0xFFFF) << 16 for i, (lo, hi) in enumerate(words)}
    for w in range(4):
        regs = run_ptx(asm, [base + w * 2 * cpw], cpw // 2, memory)
        for q, r in enumerate(regs):
            got = torch.tensor([r & 0xFFFF, r >> 16], dtype=torch.int32).to(torch.int16).view(torch.float16)
            want = torch.stack([x[w * cpw + q], x[w * cpw + q + cpw // 2]]).double()
            assert torch.equal(got.double(), want), (w, q)


@pytest.mark.parametrize(
    "bits,offset,rows", [(4, 8, 1), (4, 0, 1), (2, 1, 1), (2, 2, 1), (4, 8, 2), (2, 1, 2)]
)
def test_unit_dot_asm_is_the_fp16_sum_of_exact_products(bits, offset, rows):
    """The PTX the GPU runs, emulated on every code value: (c - offset) * x exact, summed per fp16 lane
    in the PTX's order, the two lanes added in fp32; with two rows, each row's sum as if alone."""
    cpw = 32 // bits
    words_per_unit, planes = UNIT_CODES // cpw, cpw // 2
    asm, constraints = unit_dot_asm(bits, offset, rows)
    assert constraints.count("r") == words_per_unit * (1 + rows * planes) and constraints.count("=f") == rows
    gen = torch.Generator().manual_seed(bits + offset)
    for trial in range(24):
        codes = torch.randint(0, 1 << bits, (words_per_unit, cpw), generator=gen)
        codes[0, : min(cpw, 1 << bits)] = torch.arange(min(cpw, 1 << bits))  # every value somewhere
        words = [sum(int(c) << (bits * i) for i, c in enumerate(row)) for row in codes]
        # x pairs as x_pairs_asm makes them: fp16 values (here: random ones, some products subnormal)
        xs = [
            (torch.randn(words_per_unit, cpw, generator=gen) * (4.0 if trial % 2 else 0.01)).to(torch.float16)
            for _ in range(rows)
        ]
        pairs = []
        for x in xs:
            for w in range(words_per_unit):
                for q in range(planes):
                    lo, hi = x[w, q], x[w, q + planes]
                    pairs.append(
                        int(lo.view(torch.int16)) & 0xFFFF | (int(hi.view(torch.int16)) & 0xFFFF) << 16
                    )
        outs = run_ptx(asm, [w & 0xFFFFFFFF for w in words] + pairs, rows)
        for got, x in zip(outs, xs):
            _check_unit_sum(got, codes, x, offset, planes, words_per_unit, trial)


def _check_unit_sum(got, codes, x, offset, planes, words_per_unit, trial):
    """One row's unit sum: the sequential fp16 lane sums bit for bit, and close to the exact sum."""
    lanes = [torch.tensor(0.0, dtype=torch.float16)] * 2
    for w in range(words_per_unit):
        for q in range(planes):
            for h, j in enumerate((q, q + planes)):
                t = (codes[w, j].double() - offset) * 2**-9
                lanes[h] = (t * x[w, j].double() + lanes[h].double()).to(torch.float16)
    want = float(lanes[0].float() + lanes[1].float())
    assert f32_of(got) == want, (trial, f32_of(got), want)
    exact = float(((codes.double() - offset) * x.double()).sum()) * 2**-9
    assert (
        abs(f32_of(got) - exact)
        <= 2e-3 * float(((codes.double() - offset).abs() * x.double().abs()).sum()) * 2**-9 + 1e-7
    )
