"""The one-launch MLP against the two-kernel f16x2 path and the float64 product (Triton interpreter on CPU)."""

import pytest
import torch

from tests.kernels.test_qlinear import DEV, _dev, _rel, random_packed
from trico.kernels.gemv_half2 import Half2Config, gemv_half2
from trico.kernels.mlp_half2 import mlp_half2, mlp_half2_fits
from trico.kernels.qlinear import pack_for_kernel, qlinear_reference

CASES = [  # fmt, hidden H, dim D, group (0: one scale per row), gate/up config, down config
    ("uint4", 64, 128, 32, Half2Config(16, 4, 1, 2), Half2Config(8, 8, 1, 2)),
    ("uint4", 64, 256, 0, Half2Config(8, 8, 2), Half2Config(16, 8, 2, 3)),
    ("tern2", 128, 256, 64, Half2Config(16, 4, 2, 3), Half2Config(32, 4, 2)),
    ("tern2", 128, 256, 0, Half2Config(32, 4, 1, 2), Half2Config(16, 4, 1, 2)),
]


def _weights(fmt, hidden, dim, group, seed):
    """A fused [gate; up] projection [2H, D] and a down projection [D, H], packed, with their references."""
    qa, sa, ma = random_packed(fmt, 2 * hidden, dim, group, True, seed=seed)
    qb, sb, mb = random_packed(fmt, dim, hidden, group, True, seed=seed + 1)
    gate_up = pack_for_kernel(*_dev(qa, sa, ma), fmt, group, dim)
    down = pack_for_kernel(*_dev(qb, sb, mb), fmt, group, hidden)
    return gate_up, down, (qa, sa, ma), (qb, sb, mb)


@pytest.mark.parametrize("fmt,hidden,dim,group,cfg_a,cfg_b", CASES)
def test_one_launch_mlp_is_the_two_kernel_path(fmt, hidden, dim, group, cfg_a, cfg_b):
    gate_up, down, ref_a, ref_b = _weights(fmt, hidden, dim, group, seed=hidden + dim)
    assert mlp_half2_fits(gate_up, down, cfg_a, cfg_b)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, dim, generator=gen).to(DEV, torch.bfloat16)
    res = torch.randn(1, dim, generator=gen).to(DEV, torch.bfloat16)
    got = mlp_half2(x, res, gate_up, cfg_a, down, cfg_b).cpu()
    act = gemv_half2(x, gate_up, cfg_a, gate=True)
    two = gemv_half2(act, down, cfg_b, residual=res).cpu()
    assert got.shape == (1, dim) and got.dtype == torch.bfloat16
    if DEV == "cpu":  # one program takes the items in the two grids' order: the same sums and roundings
        assert torch.equal(got, two)
    else:  # split-K partials meet in atomics in any order
        assert _rel(got, two) < 1e-2
    # and both are the float64 MLP (bf16 roundings of the gated product and the output apart)
    gu = qlinear_reference(x.cpu().double(), *ref_a, fmt, group, dim)
    a = torch.nn.functional.silu(gu[:, :hidden]) * gu[:, hidden:]
    want = res.cpu().double() + qlinear_reference(a, *ref_b, fmt, group, hidden)
    assert _rel(got, want) < 2e-2


def test_one_launch_mlp_refuses_what_it_does_not_take():
    gate_up, down, _, _ = _weights("uint4", 64, 128, 32, seed=1)
    cfg = Half2Config(16, 4, 1)
    assert not mlp_half2_fits(gate_up, down, cfg, Half2Config(8, 4, 2))  # different warps
    assert not mlp_half2_fits(down, gate_up, cfg, cfg)  # shapes that do not chain
    x = torch.zeros(2, 128, dtype=torch.bfloat16, device=DEV)
    with pytest.raises(AssertionError, match="one dense"):
        mlp_half2(x, x[:1], gate_up, cfg, down, cfg)
    with pytest.raises(AssertionError, match="residual"):
        mlp_half2(x[:1], torch.zeros(1, 64, dtype=torch.bfloat16, device=DEV), gate_up, cfg, down, cfg)


def test_one_launch_mlp_leaves_its_workspaces_zeroed_for_the_next_call():
    """Split-K sums, tile counters and the grid barrier are reused by the next layer's launch."""
    from trico.kernels.epilogue import split_workspace
    from trico.kernels.grid_sync import barrier_buffer

    fmt, hidden, dim, group, cfg_a, cfg_b = CASES[0]
    gate_up, down, _, _ = _weights(fmt, hidden, dim, group, seed=5)
    x = torch.randn(1, dim, generator=torch.Generator().manual_seed(4)).to(DEV, torch.bfloat16)
    first = mlp_half2(x, x, gate_up, cfg_a, down, cfg_b)
    again = mlp_half2(x, x, gate_up, cfg_a, down, cfg_b)
    assert _rel(first.cpu(), again.cpu()) < 1e-2
    assert not barrier_buffer(x.device).any()
    for n, tiles in ((2 * hidden, 2 * hidden // cfg_a.block_n), (dim, dim // cfg_b.block_n)):
        ws, cnt = split_workspace(x.device, n, tiles)
        assert not ws.any() and not cnt.any()
