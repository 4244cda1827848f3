"""The packed-weight linear kernels against the plain-torch reference (Triton interpreter on CPU)."""

import os

import pytest
import torch

from trico.kernels.qlinear import (
    SPECS,
    GemvConfig,
    dequantize,
    dequantize_reference,
    pack_for_kernel,
    qlinear_reference,
    qmm,
)
from trico.quant.packing import layout

DEV = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
"""Kernels run on the GPU when one is present (TRITON_INTERPRET=0), on the CPU interpreter otherwise."""


def _dev(*ts):
    return tuple(None if t is None else t.to(DEV) for t in ts)


_BITS = {"uint2": 2, "uint3": 3, "uint4": 4, "uint8": 8, "tern2": 2, "tern1.6": 2}


def random_packed(fmt: str, n: int, k: int, group: int, symmetric: bool, seed: int = 0):
    """Random codes packed per the contract, with fp16 scales (and mins when asymmetric)."""
    g = torch.Generator().manual_seed(seed)
    ng = 1 if group in (0, k) else k // group
    rows = 1 if group == 0 else n
    scales = (torch.rand(rows, ng, generator=g) * 0.02 + 0.005).half()
    mins = None if symmetric else (torch.randn(rows, ng, generator=g) * 0.05).half()
    if fmt == "int8":
        return torch.randint(-127, 128, (n, k), generator=g, dtype=torch.int8), scales, mins
    hi = 3 if fmt.startswith("tern") else 1 << _BITS[fmt]
    codes = torch.randint(0, hi, (n, k), generator=g, dtype=torch.uint8)
    return layout(fmt).pack(codes), scales, mins


CASES = [
    ("int8", 48, 64, 64, True),
    ("int8", 40, 96, 32, True),
    ("uint8", 40, 64, 32, False),
    ("uint4", 40, 256, 64, True),
    ("uint4", 40, 256, 32, False),
    ("uint4", 24, 128, 128, True),
    ("uint3", 40, 256, 64, True),
    ("uint3", 24, 128, 32, False),
    ("uint2", 24, 256, 64, False),
    ("tern2", 40, 256, 0, True),
    ("tern2", 24, 256, 64, True),
    ("tern1.6", 40, 96, 96, True),
    ("tern1.6", 24, 128, 32, True),
]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.mark.parametrize("fmt,n,k,group,sym", CASES)
def test_dequantize_matches_reference_exactly(fmt, n, k, group, sym):
    q, s, m = random_packed(fmt, n, k, group, sym)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, k)
    out = dequantize(pw, torch.float32).cpu()
    assert torch.equal(out, dequantize_reference(q, s, m, fmt, group, k))


@pytest.mark.parametrize("fmt,n,k,group,sym", CASES)
@pytest.mark.parametrize("m_rows", [1, 5])
def test_qmm_matches_reference(fmt, n, k, group, sym, m_rows):
    q, s, m = random_packed(fmt, n, k, group, sym, seed=m_rows)
    x = torch.randn(m_rows, k, generator=torch.Generator().manual_seed(7)).to(torch.bfloat16)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, k)
    ref = qlinear_reference(x, q, s, m, fmt, group, k)
    got = qmm(x.to(DEV), pw, GemvConfig(block_n=16, block_kb=16, split_k=1)).cpu()
    assert got.dtype == x.dtype and got.shape == ref.shape
    assert _rel(got, ref) <= 1e-2


@pytest.mark.parametrize(
    "fmt,k,group,sym,dup",
    [
        ("uint3", 512, 128, True, False),
        ("uint3", 512, 128, False, True),
        ("uint3", 512, 256, False, False),
        ("uint4", 256, 128, False, True),
        ("tern1.6", 320, 80, True, False),
    ],
)
def test_qmm_steps_inside_scale_groups_scale_the_product(fmt, k, group, sym, dup):
    """Steps that stay inside one scale group (GROUP_DOT) multiply bare codes and scale each step's product."""
    q, s, m = random_packed(fmt, 40, k, group, sym, seed=k + group)
    x = torch.randn(5, k, generator=torch.Generator().manual_seed(9)).to(torch.bfloat16)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, k)
    # block_kb 16: 16 units a step, inside one group
    assert pw.scale_mode == 2 and group % (16 * SPECS[fmt].codes_per_unit) == 0
    got = qmm(x.to(DEV), pw, GemvConfig(block_n=16, block_kb=16, split_k=2, dup=dup)).cpu()
    assert _rel(got, qlinear_reference(x, q, s, m, fmt, group, k)) <= 1e-2


@pytest.mark.parametrize("split_k", [2, 3])
def test_qmm_split_k_and_ragged_n(split_k):
    q, s, m = random_packed("uint4", 37, 512, 128, False, seed=3)
    x = torch.randn(2, 512).to(torch.bfloat16)
    pw = pack_for_kernel(*_dev(q, s, m), "uint4", 128, 512)
    got = qmm(x.to(DEV), pw, GemvConfig(block_n=16, block_kb=64, split_k=split_k)).cpu()
    assert _rel(got, qlinear_reference(x, q, s, m, "uint4", 128, 512)) <= 1e-2


def test_qmm_float_weights():
    w = torch.randn(33, 64).to(torch.bfloat16)
    x = torch.randn(1, 64).to(torch.bfloat16)
    pw = pack_for_kernel(w.to(DEV), None, None, "bf16", 64, 64)
    got = qmm(x.to(DEV), pw, GemvConfig(block_n=16, block_kb=32, split_k=1)).cpu()
    assert _rel(got, x.float() @ w.float().t()) <= 1e-2


@pytest.mark.parametrize("fmt,n,k,group,sym", [c for c in CASES if c[0] != "tern1.6"])
def test_qmm_repeated_load_variant(fmt, n, k, group, sym):
    q, s, m = random_packed(fmt, n, k, group, sym, seed=11)
    x = torch.randn(3, k, generator=torch.Generator().manual_seed(8)).to(torch.bfloat16)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, k)
    got = qmm(x.to(DEV), pw, GemvConfig(block_n=16, block_kb=16, split_k=1, dup=True)).cpu()
    assert _rel(got, qlinear_reference(x, q, s, m, fmt, group, k)) <= 1e-2
