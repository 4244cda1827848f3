"""Bit-exact pack/unpack round trips (property-based) and the byte layouts of the weight-format contract."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trico.errors import TricoError
from trico.quant.packing import LAYOUTS, layout, pack_3bit, pack_base3, pack_dense, unpack_base3

MAX_CODE = {"uint2": 3, "uint3": 7, "uint4": 15, "uint8": 255, "tern2": 2, "tern1.6": 2}


@settings(max_examples=40, deadline=None)
@given(
    fmt=st.sampled_from(sorted(LAYOUTS)),
    n=st.integers(1, 9),
    k_units=st.integers(1, 12),
    seed=st.integers(0, 2**31 - 1),
)
def test_round_trip_is_bit_exact(fmt: str, n: int, k_units: int, seed: int) -> None:
    lay = layout(fmt)
    k = k_units * lay.k_multiple if lay.k_multiple > 1 else k_units * 3  # base 3 also tests padding
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, MAX_CODE[fmt] + 1, (n, k), generator=gen, dtype=torch.int32).to(torch.uint8)
    packed = lay.pack(codes)
    assert packed.dtype == torch.uint8
    assert packed.shape == (n, lay.row_bytes(k))
    assert torch.equal(lay.unpack(packed, k), codes)


def test_4bit_nibble_order() -> None:
    codes = torch.tensor([[1, 2, 15, 0]], dtype=torch.uint8)
    assert pack_dense(codes, 4).tolist() == [[0x21, 0x0F]]


def test_2bit_order() -> None:
    codes = torch.tensor([[1, 2, 3, 0]], dtype=torch.uint8)
    assert pack_dense(codes, 2).tolist() == [[1 | 2 << 2 | 3 << 4]]


def test_3bit_is_24bit_little_endian() -> None:
    codes = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 0]], dtype=torch.uint8)
    v = sum(c << (3 * i) for i, c in enumerate([1, 2, 3, 4, 5, 6, 7, 0]))
    assert pack_3bit(codes).tolist() == [[v & 255, (v >> 8) & 255, v >> 16]]


def test_base3_value_and_padding() -> None:
    codes = torch.tensor([[2, 2, 2, 2, 2, 0, 1]], dtype=torch.uint8)  # 7 trits -> 2 bytes
    packed = pack_base3(codes)
    assert packed.tolist() == [[242, 0 + 1 * 3 + 1 * 9 + 1 * 27 + 1 * 81]]
    assert unpack_base3(packed, 7).tolist() == codes.tolist()


def test_bad_codes_and_shapes_are_refused() -> None:
    with pytest.raises(TricoError, match="out of range"):
        pack_dense(torch.tensor([[16, 0]], dtype=torch.int32), 4)
    with pytest.raises(TricoError, match="divisible by 8"):
        pack_3bit(torch.zeros(2, 12, dtype=torch.uint8))
    with pytest.raises(TricoError, match="no packed layout"):
        layout("uint5")
