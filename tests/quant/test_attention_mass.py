"""GPTQ's -am option: the q/k/v Hessian weighted by the attention each calibration token receives.

Attention mass from layerwise.attention_mass against the attention weights the model itself uses, the
weighted x^T x statistics, and the bound behind the option: an attention sink that receives most of
the attention but hardly counts in an unweighted Hessian gets its value's error compensated away.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trico.config import tiny_config
from trico.errors import TricoError
from trico.models.llama import build_model
from trico.quant import QLinear, parse, quantize
from trico.quant.calibration import Calibration
from trico.quant.gptq import gptq_quantize
from trico.quant.grid import Grid, dequantize_codes, fake_quantize
from trico.quant.layerwise import attention_mass, collect_block_stats, embed_calibration


def _model(kv_heads: int = 2) -> nn.Module:
    torch.manual_seed(0)
    return build_model(tiny_config(dim=48, hidden_dim=96, n_heads=4, n_kv_heads=kv_heads))


def _tokens() -> torch.Tensor:
    return torch.randint(0, 256, (5, 20), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_attention_mass_is_what_the_attention_output_is_made_of(kv_heads: int) -> None:
    """With v_proj = identity on one channel pattern, the attention output reveals the softmax weights."""
    model = _model(kv_heads)
    x = embed_calibration(model, _tokens())
    block = model.model.layers[0]
    mass = attention_mass(block, x, chunk=2)
    assert mass.shape == (5, 20)
    torch.testing.assert_close(mass.sum(-1), torch.full((5,), 20.0))  # each query's weights sum to 1
    assert (mass[:, 0] >= 1).all()  # the first token has all of the first query's attention

    # Independent check: the attention output of one-hot values is the attention matrix itself.
    attn = block.self_attn
    h = block.input_layernorm(x.h)
    b, t, _ = h.shape
    q = attn.q_proj(h).view(b, t, attn.n_heads, attn.head_dim).transpose(1, 2)
    k = attn.k_proj(h).view(b, t, attn.n_kv_heads, attn.head_dim).transpose(1, 2)
    from trico.models.llama import apply_rope

    q, k = apply_rope(q, x.cos, x.sin), apply_rope(k, x.cos, x.sin)
    eye = torch.eye(t).expand(b, attn.n_kv_heads, t, t)
    a = F.scaled_dot_product_attention(q, k, eye, is_causal=True, enable_gqa=kv_heads != 4)
    torch.testing.assert_close(mass, a.sum(-2).mean(1), rtol=1e-4, atol=1e-4)


def test_token_weights_scale_the_shared_xtx_only() -> None:
    model = _model()
    x = embed_calibration(model, _tokens())
    block = model.model.layers[0]
    lins = {n: m for n, m in block.named_modules() if isinstance(m, nn.Linear)}
    w = torch.rand(5, 20, generator=torch.Generator().manual_seed(2)) * 3
    plain = collect_block_stats(block, x, lins, True, chunk=2)
    weighted = collect_block_stats(block, x, lins, True, chunk=2, token_weights={"self_attn.q_proj": w})
    assert weighted["self_attn.v_proj"] is weighted["self_attn.q_proj"]  # q/k/v share one Hessian
    inp = block.input_layernorm(x.h).reshape(-1, 48).detach()
    expected = (inp * w.reshape(-1, 1)).T @ inp
    torch.testing.assert_close(weighted["self_attn.q_proj"].xtx, expected, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(weighted["self_attn.q_proj"].abs_mean, plain["self_attn.q_proj"].abs_mean)
    torch.testing.assert_close(weighted["mlp.up_proj"].xtx, plain["mlp.up_proj"].xtx)


def test_mass_weighted_hessian_protects_an_attention_sink() -> None:
    """Attention output sum_j a_ij dW x_j with a sink token that receives most of the attention and points
    where the other tokens hardly vary: on the plain x^T x GPTQ compensates the other tokens' error onto
    the sink's value (worse than RTN here, as on SmolLM2's q/k/v); weighted by attention mass it does not."""
    gen = torch.Generator().manual_seed(0)
    seqs, t, k = 16, 64, 96
    basis, _ = torch.linalg.qr(torch.randn(k, k, generator=gen))
    x = (torch.randn(seqs, t, k, generator=gen) * torch.logspace(0, -2, k)) @ basis.T  # anisotropic tokens
    x[:, 0] = 0.3 * torch.randn(seqs, k, generator=gen)  # the sink: an isotropic direction
    scores = torch.randn(t, t, generator=gen)
    scores[:, 0] += 4.0
    a = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
    w = torch.randn(32, k, generator=gen)
    grid = Grid(4)

    def attn_err(wq: torch.Tensor) -> float:
        return float((a @ (x @ (wq - w).T)).pow(2).sum())

    def gptq(h: torch.Tensor) -> torch.Tensor:
        codes, s, m = gptq_quantize(w, h, grid, 32)
        return dequantize_codes(codes, s, m, grid, 32)

    flat = x.reshape(-1, k)
    mass = a.sum(0).repeat(seqs)
    plain = attn_err(gptq(flat.T @ flat))
    weighted = attn_err(gptq((flat * mass[:, None]).T @ flat))
    assert weighted < 0.3 * min(plain, attn_err(fake_quantize(w, grid, 32)))


def test_am_option_runs_on_a_tiny_model_and_belongs_to_gptq() -> None:
    assert parse("int4-gptq-g32-am").attn_mass and parse("int4-gptq-g32-am").name == "int4-gptq-g32-am"
    with pytest.raises(TricoError, match="belong to GPTQ"):
        parse("int4-rtn-g32-am")
    calib = Calibration(torch.randint(0, 256, (4, 32)), {"file": "random", "n_seqs": 4})
    x = torch.randint(0, 256, (2, 24))
    m = quantize(_model(), "int4-gptq-g16-am", calib, progress=False)
    assert isinstance(m.model.layers[0].self_attn.k_proj, QLinear)
    with torch.no_grad():
        ref = _model()(x)
        assert float((m(x) - ref).pow(2).mean()) < 0.1 * float(ref.pow(2).mean())
