"""Quantization methods on tiny models: errors shrink as they should, layers are swapped, bad input is refused."""

import pytest
import torch
from torch import nn

from trico.config import tiny_config
from trico.errors import TricoError
from trico.models.llama import build_model
from trico.quant import QLinear, parse, quantize
from trico.quant.awq import output_error, search_scale
from trico.quant.calibration import Calibration
from trico.quant.gptq import gptq_quantize
from trico.quant.grid import Grid, dequantize_codes, fake_quantize, fit_scales, quantize_codes


def _tiny(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(tiny_config())


def _calib() -> Calibration:
    gen = torch.Generator().manual_seed(1)
    return Calibration(torch.randint(0, 256, (4, 32), generator=gen), {"file": "random", "n_seqs": 4})


def _sqnr_db(ref: torch.Tensor, out: torch.Tensor) -> float:
    ref, out = ref.detach(), out.detach()
    return float(10 * torch.log10(ref.pow(2).mean() / (ref - out).pow(2).mean()))


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
def test_grid_codes_reproduce_weights_on_their_own_grid(bits: int, symmetric: bool) -> None:
    w = torch.randn(16, 64)
    grid = Grid(bits, symmetric)
    once = fake_quantize(w, grid, 32)
    s, m = fit_scales(once, grid, 32)
    twice = dequantize_codes(quantize_codes(once, s, m, grid, 32), s, m, grid, 32)
    torch.testing.assert_close(twice, once, rtol=2e-3, atol=1e-4)  # idempotent up to fp16 scale rounding
    err = (once - w).abs().max(-1).values
    assert err.max() < 2.0 * w.abs().max() / (2**bits - 2)


def test_symmetric_grid_uses_the_extreme_code() -> None:
    w = torch.tensor([[-3.0, 1.0, 2.0, 0.5]])
    s, _ = fit_scales(w, Grid(4), 4)
    u = quantize_codes(w, s, None, Grid(4), 4)
    assert u[0, 0] == 0 and float(s) == pytest.approx(3 / 8, rel=1e-3)


@pytest.mark.parametrize(
    "scheme,min_sqnr",
    [("int8", 35), ("int4-rtn-g32", 15), ("int4-rtn-g32-asym", 15), ("int3-rtn-pc", 8), ("ternary-g32", 3)],
)
def test_rtn_style_schemes_on_tiny_model(scheme: str, min_sqnr: float) -> None:
    x = torch.randint(0, 256, (2, 24))
    ref = _tiny()(x)
    m = quantize(_tiny(), scheme, progress=False)
    assert sum(isinstance(mod, QLinear) for mod in m.modules()) == 14
    assert m.trico_quant.high_precision == ["model.embed_tokens", "lm_head"]
    assert _sqnr_db(ref, m(x)) > min_sqnr


def test_gptq_beats_rtn_on_its_calibration_inputs() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 64, generator=gen) @ torch.randn(64, 64, generator=gen)  # correlated inputs
    w = torch.randn(32, 64, generator=gen)
    grid = Grid(3)
    codes, s, m = gptq_quantize(w, x.T @ x, grid, 16)
    q_gptq = dequantize_codes(codes, s, m, grid, 16)
    q_rtn = fake_quantize(w, grid, 16)
    err = lambda q: (x @ (q - w).T).pow(2).sum()  # noqa: E731
    assert err(q_gptq) < 0.7 * err(q_rtn)
    codes_ao, s_ao, _ = gptq_quantize(w, x.T @ x, grid, 16, act_order=True)
    assert err(dequantize_codes(codes_ao, s_ao, None, grid, 16)) < err(q_rtn)


def test_awq_scale_search_never_loses_to_rtn() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 64, generator=gen) * torch.linspace(0.1, 10, 64)  # outlier channels
    w = torch.randn(32, 64, generator=gen)
    grid = Grid(4)
    s = search_scale(w, x.abs().mean(0), x.T @ x, grid, 32)
    awq = output_error(fake_quantize(w * s, grid, 32) / s - w, x.T @ x)
    rtn = output_error(fake_quantize(w, grid, 32) - w, x.T @ x)
    assert awq < rtn


@pytest.mark.parametrize(
    "scheme",
    ["int4-gptq-g32", "int4-gptq-g32-act-awq", "int3-awq-g32", "int4-awq-pc-asym", "w8a8-smooth", "w8a8"],
)
def test_calibrated_methods_run_and_keep_the_model_close(scheme: str) -> None:
    x = torch.randint(0, 256, (2, 24))
    ref = _tiny()(x)
    m = quantize(_tiny(), scheme, _calib(), progress=False)
    assert all(isinstance(m.get_submodule(n), QLinear) for n in m.trico_quant.layers)
    assert _sqnr_db(ref, m(x)) > 8
    assert m.trico_quant.calibration["n_seqs"] == 4


@pytest.mark.parametrize("scheme", ["int4-gptq-g32", "int4-awq-g32", "w8a8-smooth"])
def test_calibrated_methods_take_a_bf16_model(scheme: str) -> None:
    # the calibration inputs once were fp32 whatever the model: a bf16 model's linears refused them
    x = torch.randint(0, 256, (2, 24))
    ref = _tiny().to(torch.bfloat16)(x).float()
    m = quantize(_tiny().to(torch.bfloat16), scheme, _calib(), progress=False)
    assert _sqnr_db(ref, m(x).float()) > 8


def test_ternary_per_group_beats_per_tensor() -> None:
    x = torch.randint(0, 256, (2, 24))
    ref = _tiny()(x)
    err = {
        s: (quantize(_tiny(), s, progress=False)(x) - ref).pow(2).mean()
        for s in ("ternary-g32", "ternary-pt")
    }
    assert err["ternary-g32"] < err["ternary-pt"]


def test_bad_input_is_refused_before_any_change() -> None:
    m = _tiny()
    with pytest.raises(TricoError, match="does not divide in_features=64"):
        quantize(m, "int4-rtn-g48", progress=False)
    assert not any(isinstance(mod, QLinear) for mod in m.modules())
    with torch.no_grad():
        m.model.layers[1].mlp.up_proj.weight[3, 5] = float("nan")
    with pytest.raises(TricoError, match="NaN or Inf"):
        quantize(m, "int8", progress=False)
    assert not any(isinstance(mod, QLinear) for mod in m.modules())
    with pytest.raises(TricoError, match="needs calibration"):
        quantize(_tiny(), "int4-gptq-g32", progress=False)
    q = quantize(_tiny(), "int8", progress=False)
    with pytest.raises(TricoError, match="already quantized"):
        quantize(q, "int8", progress=False)


def test_fit_uses_largest_divisor() -> None:
    m = quantize(
        build_model(tiny_config(dim=48, hidden_dim=96, n_heads=4, n_kv_heads=2)),
        "int4-rtn-g32-fit",
        progress=False,
    )
    assert m.model.layers[0].self_attn.q_proj.group_size == 24
    assert m.model.layers[0].mlp.down_proj.group_size == 32


def test_head_option_quantizes_lm_head() -> None:
    m = quantize(_tiny(), "int8-head", progress=False)
    assert isinstance(m.lm_head, QLinear) and m.trico_quant.high_precision == ["model.embed_tokens"]


def test_awq_scaling_before_gptq_keeps_the_float_model_and_helps_on_outlier_inputs() -> None:
    x = torch.randint(0, 256, (2, 24))
    model = _tiny()
    with torch.no_grad():  # a few salient input channels, as in real models' RMSNorm weights
        for layer in model.model.layers:
            layer.post_attention_layernorm.weight[:4] *= 20
    ref = model(x)
    err = {}
    for scheme in ("int3-gptq-g32", "int3-gptq-g32-awq"):
        m = _tiny()
        m.load_state_dict(model.state_dict())
        err[scheme] = (quantize(m, scheme, _calib(), progress=False)(x) - ref).pow(2).mean()
    assert err["int3-gptq-g32-awq"] < err["int3-gptq-g32"]


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_awq_scaling_leaves_the_float_block_unchanged(kv_heads: int) -> None:
    from trico.quant.awq import awq_scale_block
    from trico.quant.layerwise import block_forward, collect_block_stats, embed_calibration

    torch.manual_seed(0)
    model = build_model(tiny_config(dim=48, hidden_dim=96, n_heads=4, n_kv_heads=kv_heads))
    x = embed_calibration(model, _calib().tokens)
    block = model.model.layers[0]
    lins = {n: m for n, m in block.named_modules() if isinstance(m, nn.Linear)}
    before = block_forward(block, x)
    o_weight = block.self_attn.o_proj.weight.clone()
    with torch.no_grad():
        awq_scale_block(
            block, lins, collect_block_stats(block, x, lins, True), parse("int3-awq-g16"), model.config
        )
    torch.testing.assert_close(block_forward(block, x), before, rtol=1e-4, atol=1e-4)
    assert not torch.equal(block.self_attn.o_proj.weight, o_weight)  # o_proj is scaled with GQA too
