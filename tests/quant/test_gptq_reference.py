"""GPTQ against a column-by-column textbook version of the algorithm, and its layer-wise error against RTN.

The textbook loop has no lazy blocks: every column's scaled error is subtracted from all later columns
at once, and each group's scale is fitted, when the loop reaches the group's first column, from the
weights as the earlier columns' errors have left them (Frantar et al., Algorithm 1).
"""

import pytest
import torch

from trico.quant.gptq import gptq_quantize
from trico.quant.grid import Grid, dequantize_codes, fake_quantize, fit_scales


def _textbook_gptq(w: torch.Tensor, h: torch.Tensor, grid: Grid, group: int, damp: float = 0.01):  # noqa: ANN202
    w = w.double().clone()
    h = h.double()
    h = h + damp * torch.diag(h).mean() * torch.eye(h.shape[0], dtype=h.dtype)
    u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    n, k = w.shape
    q = torch.zeros_like(w)
    scales = []
    for i in range(k):
        if i % group == 0:
            s, _ = fit_scales(w[:, i : i + group].float(), grid, group)
            scales.append(s)
            sd = s[:, 0].double()
        c = torch.clamp(torch.round(w[:, i] / sd) + grid.offset, 0, grid.qmax)
        q[:, i] = (c - grid.offset) * sd
        e = (w[:, i] - q[:, i]) / u[i, i]
        w[:, i:] -= e[:, None] * u[i, i:][None, :]
    return q.float(), torch.cat(scales, 1)


def _correlated(t: int, k: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    mix = torch.eye(k) + 0.6 * torch.randn(k, k, generator=gen) / k**0.5
    return torch.randn(t, k, generator=gen) @ mix


@pytest.mark.parametrize(("group", "block"), [(16, 32), (32, 32), (16, 128)])
def test_lazy_block_updates_match_the_textbook_loop(group: int, block: int) -> None:
    x = _correlated(1024, 96, 0)
    w = torch.randn(24, 96, generator=torch.Generator().manual_seed(1))
    grid = Grid(4)
    codes, scale, _ = gptq_quantize(w, x.T @ x, grid, group, block=block)
    q_ref, scale_ref = _textbook_gptq(w, x.T @ x, grid, group)
    q = dequantize_codes(codes, scale, None, grid, group)
    # fp32 vs fp64 arithmetic may flip a rounding tie now and then; the rest must agree exactly
    assert (q - q_ref).abs().gt(1e-3 * q_ref.abs().amax()).float().mean() < 0.01
    assert torch.allclose(scale.float(), scale_ref.float(), rtol=1e-2)


def test_group_scales_are_fitted_after_the_earlier_columns_errors() -> None:
    x = _correlated(1024, 64, 2)
    w = torch.randn(16, 64, generator=torch.Generator().manual_seed(3))
    grid = Grid(4)
    _, scale, _ = gptq_quantize(w, x.T @ x, grid, 16)
    from_original, _ = fit_scales(w, grid, 16)
    assert torch.equal(scale[:, 0], from_original[:, 0])  # nothing has been updated before group 0
    assert not torch.allclose(scale[:, 1:].float(), from_original[:, 1:].float())


@pytest.mark.parametrize("bits", [3, 4])
def test_gptq_beats_rtn_on_held_out_inputs(bits: int) -> None:
    """Lower layer-wise output error than RTN on inputs from the same distribution it did not see."""
    x = _correlated(8192, 128, 4)  # the same mixing matrix for both halves
    calib, held_out = x[:4096], x[4096:]
    w = torch.randn(64, 128, generator=torch.Generator().manual_seed(5))
    grid = Grid(bits)
    codes, s, m = gptq_quantize(w, calib.T @ calib, grid, 32)
    err = lambda q: float((held_out @ (q - w).T).pow(2).sum())  # noqa: E731
    assert err(dequantize_codes(codes, s, m, grid, 32)) < 0.85 * err(fake_quantize(w, grid, 32))


@pytest.mark.xfail(
    strict=True,
    reason="known limitation, not a defect: when a few tokens (attention sinks) carry a massive input "
    "channel they dominate H = X^T X, and GPTQ's exact minimisation of ||(W - Q) X|| fits those tokens "
    "at the cost of all the others (SmolLM2's down_proj of blocks 11 and 28: 99.8% and 81% of trace(H) "
    "from the 32 first-of-window tokens). It is a per-layer effect: SmolLM2's GPTQ dPPL comes mostly "
    "from the opposite case in q/k/v, where the sink token is 1/512 of H but takes a third to a half "
    "of all attention; the '-am' option (tests/quant/test_attention_mass.py) weights H for that",
)
def test_gptq_beats_rtn_on_ordinary_tokens_next_to_massive_sink_tokens() -> None:
    x = _correlated(4096, 256, 6)
    x[:16, 7] *= 3000.0  # 16 sink tokens with one massive channel
    w = 0.05 * torch.randn(64, 256, generator=torch.Generator().manual_seed(7))
    grid = Grid(4)
    codes, s, m = gptq_quantize(w, x.T @ x, grid, 128)
    ordinary = x[16:]
    err = lambda q: float((ordinary @ (q - w).T).pow(2).sum())  # noqa: E731
    assert err(dequantize_codes(codes, s, m, grid, 128)) < err(fake_quantize(w, grid, 128))
