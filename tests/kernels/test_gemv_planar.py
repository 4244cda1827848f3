"""The chunk-planar one-row GEMV against the plain-torch reference (Triton interpreter on CPU)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.kernels.test_qlinear import DEV, _dev, _rel, random_packed
from trico.kernels.activation import silu_mul_reference
from trico.kernels.gemv_planar import (
    PlanarConfig,
    gemv_planar,
    planar_chunk,
    planar_codes,
    planar_supported,
    planar_words,
    to_planar,
)
from trico.kernels.qlinear import pack_for_kernel, qlinear_reference

CASES = [  # fmt, n, k, group (0 per tensor), symmetric
    ("int8", 40, 128, 0, True),
    ("int8", 24, 128, 32, True),
    ("uint8", 24, 128, 32, False),
    ("uint4", 40, 256, 64, True),
    ("uint4", 40, 256, 32, False),
    ("uint4", 24, 384, 128, True),
    ("uint4", 24, 256, 256, True),
    ("uint2", 24, 256, 64, False),
    ("tern2", 40, 256, 0, True),
    ("tern2", 24, 256, 64, True),
]


@pytest.mark.parametrize("fmt,n,k,group,sym", CASES)
@pytest.mark.parametrize("tile", [(8, 1, 1), (16, 2, 2)])
def test_gemv_planar_matches_reference(fmt, n, k, group, sym, tile):
    q, s, m = random_packed(fmt, n, k, group, sym, seed=n + k)
    x = torch.randn(1, k, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, k)
    assert planar_supported(pw)
    pl = to_planar(pw)
    block_n, chunks, split = tile
    got = gemv_planar(x.to(DEV), pl, PlanarConfig(block_n, chunks * pl.wpc, 4, split)).cpu()
    assert got.dtype == x.dtype and got.shape == (1, n)
    assert _rel(got, qlinear_reference(x, q, s, m, fmt, group, k)) < 1e-2


def test_gemv_planar_is_exact_up_to_fp32_accumulation():
    """With fp32 x and output the kernel agrees with a float64 product to fp32 accuracy."""
    q, s, m = random_packed("uint4", 32, 512, 64, True, seed=2)
    x = torch.randn(1, 512, generator=torch.Generator().manual_seed(2))
    pl = to_planar(pack_for_kernel(*_dev(q, s, m), "uint4", 64, 512))
    exact = qlinear_reference(x.double(), q, s, m, "uint4", 64, 512).double()
    got = gemv_planar(x.to(DEV), pl, PlanarConfig(16, 2 * pl.wpc)).cpu().double()
    assert float((got - exact).norm() / exact.norm()) < 1e-5


def test_gemv_planar_glu_reads_the_gated_activation():
    """glu=True multiplies W with silu(gate) * up of a fused gate/up output, as the MLP does."""
    k = 256
    q, s, m = random_packed("uint4", 24, k, 64, True, seed=3)
    gu = torch.randn(1, 2 * k, generator=torch.Generator().manual_seed(4)).to(torch.bfloat16)
    pl = to_planar(pack_for_kernel(*_dev(q, s, m), "uint4", 64, k))
    got = gemv_planar(gu.to(DEV), pl, PlanarConfig(8, pl.wpc), glu=True).cpu()
    act = silu_mul_reference(gu[:, :k], gu[:, k:])
    assert _rel(got, qlinear_reference(act, q, s, m, "uint4", 64, k)) < 1e-2


@settings(max_examples=40, deadline=None)
@given(
    bits=st.sampled_from([2, 4, 8]),
    rows=st.integers(1, 5),
    chunks=st.integers(1, 4),
    wpc=st.sampled_from([4, 8, 16]),
    seed=st.integers(0, 2**31 - 1),
)
def test_planar_words_round_trip_bit_exact(bits, rows, chunks, wpc, seed):
    """Repacking codes planar and reading them back gives the same codes, bit for bit."""
    k = chunks * wpc * 32 // bits
    codes = torch.randint(0, 1 << bits, (rows, k), generator=torch.Generator().manual_seed(seed))
    words = planar_words(codes, bits, wpc)
    assert words.dtype == torch.int32 and words.shape == (rows, k * bits // 32)
    assert torch.equal(planar_codes(words, bits, wpc, k), codes.to(torch.int32))


def test_planar_layout_puts_code_position_p_at_stride_wpc():
    """Code position p of word w in chunk c holds k = c * CK + p * WPC + w (the documented layout)."""
    k, wpc = 64, 4  # 4-bit: CK = 32
    codes = (torch.arange(k) % 16).view(1, k)
    words = planar_words(codes, 4, wpc)
    for c in range(2):
        for w in range(wpc):
            word = int(words[0, c * wpc + w]) & 0xFFFFFFFF
            for p in range(8):
                assert (word >> (4 * p)) & 15 == int(codes[0, c * 32 + p * wpc + w])


def test_planar_chunk_needs_whole_chunks_in_k_and_group():
    assert planar_chunk(4096, 128, 4) == 128
    assert planar_chunk(11008, 128, 4) == 128
    assert planar_chunk(576, 96, 4) == 32
    assert planar_chunk(576, 96, 2) is None  # 16 codes a word: 64-code chunks do not fit 96
    q, s, m = random_packed("uint3", 24, 256, 64, True)
    assert not planar_supported(pack_for_kernel(q, s, m, "uint3", 64, 256))
