"""RMSNorm and SiLU-gate prologues inside the one-row word GEMV, against the separate kernels and torch."""

import os

import pytest
import torch

from tests.kernels.test_qlinear import DEV, _dev, _rel, random_packed
from trico.kernels import fused_on_cpu
from trico.kernels.gemv import GemvWordConfig, gemv_words
from trico.kernels.prologue import NORM, SILU, SILU_GATE, Prologue, prologue_reference
from trico.kernels.qlinear import pack_for_kernel, qlinear_reference

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
REF_TOL = 2e-2 if INTERPRET else 1e-2
"""Triton's CPU interpreter truncates fp32 -> bf16 casts (it does not round), twice per normalized value."""

K = 256
FORMATS = [
    ("uint4", 64, True),
    ("uint4", 32, False),
    ("int8", 0, True),
    ("tern2", 64, True),
]


def _norm(seed: int = 0) -> Prologue:
    w = 1 + 0.3 * torch.randn(K, generator=torch.Generator().manual_seed(seed))
    return Prologue(NORM, w.to(torch.bfloat16).to(DEV), 1e-5)


def _weight(fmt: str, group: int, sym: bool):
    """(packed weight, reference function of x) for a random 40 x K layer."""
    q, s, m = random_packed(fmt, 40, K, group, sym, seed=4)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, K)
    return pw, lambda x: qlinear_reference(x, q, s, m, fmt, group, K)


def _separate(x: torch.Tensor, prologue: Prologue) -> torch.Tensor:
    """The two-kernel path's x: the standalone RMSNorm / SiLU-gate kernel."""
    with fused_on_cpu():
        return prologue.apply(x)


def _raw(prologue: Prologue, rows: int, seed: int) -> torch.Tensor:
    width = 2 * K if prologue.kind == SILU else K
    return (
        (3 * torch.randn(rows, width, generator=torch.Generator().manual_seed(seed)))
        .to(torch.bfloat16)
        .to(DEV)
    )


@pytest.mark.parametrize("fmt,group,sym", FORMATS)
@pytest.mark.parametrize("kind", [NORM, SILU])
@pytest.mark.parametrize("cfg", [GemvWordConfig(16, 8), GemvWordConfig(8, 4, split_k=2)])
def test_word_gemv_prologue_matches_the_separate_kernel_and_torch(fmt, group, sym, kind, cfg):
    prologue = _norm(1) if kind == NORM else SILU_GATE
    pw, reference = _weight(fmt, group, sym)
    x = _raw(prologue, 1, seed=7 + kind)
    got = gemv_words(x, pw, cfg, prologue=prologue).cpu()
    two_kernels = gemv_words(_separate(x, prologue), pw, cfg).cpu()
    if kind == SILU:
        assert torch.equal(got, two_kernels)
    else:
        assert _rel(got, two_kernels) < 2e-3
    assert _rel(got, reference(prologue_reference(x.cpu(), _cpu(prologue)))) < REF_TOL


def _cpu(prologue: Prologue) -> Prologue:
    w = prologue.weight
    return Prologue(prologue.kind, None if w is None else w.cpu(), prologue.eps)


def test_prologue_with_residual_output_is_the_residual_plus_projection():
    """The down projection takes the gate/up output and the residual stream in one launch."""
    pw, _ = _weight("uint4", 64, True)
    x = _raw(SILU_GATE, 1, seed=11)
    res = torch.randn(1, 40, generator=torch.Generator().manual_seed(12)).to(torch.bfloat16).to(DEV)
    got = gemv_words(x, pw, GemvWordConfig(16, 8), residual=res, prologue=SILU_GATE)
    want = gemv_words(_separate(x, SILU_GATE), pw, GemvWordConfig(16, 8), residual=res)
    assert torch.equal(got.cpu(), want.cpu())
    assert not torch.equal(got.cpu(), gemv_words(x, pw, GemvWordConfig(16, 8), prologue=SILU_GATE).cpu())


@pytest.mark.skipif(DEV != "cpu", reason="the dispatcher's CPU fused path")
@pytest.mark.parametrize(
    "scheme,rows,half2,inside",
    [
        ("ternary-pc", 1, False, True),
        ("ternary-pc", 1, True, False),
        ("ternary-pc", 4, False, False),
        ("int8", 1, True, False),
    ],
)
def test_dispatch_runs_the_norm_inside_the_gemv_only_where_it_pays(scheme, rows, half2, inside, monkeypatch):
    """One row of a 2-bit weight in the word GEMV: it normalizes x; else (the f16x2 GEMV has no prologue,
    more rows, int8) the separate kernel runs first; same result."""
    from trico.kernels import dispatch
    from trico.kernels import rmsnorm as rmsnorm_module
    from trico.quant.api import quantize

    monkeypatch.setattr(dispatch, "HALF2_GEMV", half2)
    layer = torch.nn.Sequential(torch.nn.Linear(K, 40, bias=False)).to(torch.bfloat16)
    quantize(layer, scheme, progress=False)
    ql = layer[0]
    prologue = _norm(2)
    x = _raw(prologue, rows, seed=rows)
    calls = []
    original = rmsnorm_module.rmsnorm
    monkeypatch.setattr(rmsnorm_module, "rmsnorm", lambda *a, **k: calls.append(1) or original(*a, **k))
    with fused_on_cpu():
        got = dispatch.qlinear_forward(ql, x, prologue=prologue)
        want = dispatch.qlinear_forward(ql, prologue.apply(x))
    assert len(calls) == (1 if inside else 2)
    assert _rel(got, want) < 2e-3


@pytest.mark.skipif(DEV != "cpu", reason="the dispatcher's CPU fused path")
def test_prologue_kinds_switch_sends_the_op_to_its_own_kernel(monkeypatch):
    from trico.kernels import prologue as prologue_module

    x = _raw(SILU_GATE, 1, seed=3)
    assert SILU_GATE.fits(1, x) and not SILU_GATE.fits(2, x)
    monkeypatch.setattr(prologue_module, "KINDS", {NORM})
    assert not SILU_GATE.fits(1, x) and _norm().fits(1, _raw(_norm(), 1, seed=4))
    assert not _norm().fits(1, _raw(_norm(), 1, seed=4).float())
