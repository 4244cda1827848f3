"""CUDA fast path of the engine: fused projections, graph-captured decode, benchmark harness.

The CPU tests check what can be checked without a GPU (fused projections compute the same
function, the fast path is a no-op on CPU, the benchmark writes BENCH.md fields); the CUDA tests
run on the device machine.
"""

import contextlib
import os

import pytest
import torch
from torch import nn

from trico.config import tiny_config
from trico.engine.benchmark import parse_scheme, run
from trico.engine.cuda_graphs import enable_fast_decode
from trico.engine.fused import FusedDecoderLayer, _concat_rows, fuse_model_
from trico.engine.generator import Generator
from trico.engine.kv_cache import StaticKVCache
from trico.engine.sampler import Sampler
from trico.errors import TricoError
from trico.models.llama import build_model
from trico.quant.qlinear import QLinear

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_concat_rows_linear_keeps_function_and_names():
    torch.manual_seed(0)
    mods = [nn.Linear(16, n, bias=False) for n in (8, 4, 4)]
    x = torch.randn(3, 16)
    want = torch.cat([m(x) for m in mods], -1)
    fused = _concat_rows(mods)
    assert torch.equal(fused(x), want)
    assert torch.equal(torch.cat([m(x) for m in mods], -1), want)  # originals are views, same values
    assert mods[1].weight.data_ptr() == fused.weight[8:].data_ptr()


@pytest.mark.parametrize("group,sym", [(8, False), (0, True)])
def test_concat_rows_qlinear(group, sym):
    g = torch.Generator().manual_seed(1)
    fmt = "uint4" if group else "tern2"
    mods = []
    for n in (8, 4):
        hi = 16 if fmt == "uint4" else 3
        codes = torch.randint(0, hi, (n, 16), generator=g, dtype=torch.uint8)
        rows, ng = (n, 16 // group) if group else (1, 1)
        scales = (torch.rand(rows, ng, generator=g) * 0.1).half()
        mins = None if sym else (torch.randn(rows, ng, generator=g) * 0.1).half()
        mods.append(QLinear.from_codes(codes, scales, fmt, group, mins=mins))
    x = torch.randn(2, 16, generator=g)
    want = torch.cat([m.reference_forward(x) for m in mods], -1)
    fused = _concat_rows(mods)
    torch.testing.assert_close(fused.reference_forward(x), want)


def test_concat_rows_w8a8_needs_one_smoothing_vector():
    """w8a8 projections fuse when their smoothing vectors agree (one per-token quantization of x / smooth)."""
    g = torch.Generator().manual_seed(2)
    smooth = (torch.rand(32, generator=g) + 0.5).half()

    def w8a8(n: int, sm: torch.Tensor) -> QLinear:
        codes = torch.randint(-127, 128, (n, 32), generator=g, dtype=torch.int8)
        return QLinear.from_codes(codes, (torch.rand(n, 1, generator=g) * 0.01).half(), "w8a8", 32, smooth=sm)

    mods = [w8a8(8, smooth), w8a8(4, smooth.clone())]
    x = torch.randn(3, 32, generator=g)
    fused = _concat_rows(mods)
    assert fused.fmt == "w8a8" and torch.equal(fused.smooth, smooth)
    # per-token scales come from the same x / smooth: the fused rows are the separate ones side by side
    assert torch.equal(fused.reference_forward(x), torch.cat([m.reference_forward(x) for m in mods], -1))
    assert _concat_rows([w8a8(8, smooth), w8a8(4, smooth * 2)]) is None


def test_fast_decode_is_a_no_op_on_cpu():
    model = build_model(tiny_config(), dtype=torch.float32)
    gen = Generator(model, StaticKVCache(model.config, 1, 32), Sampler())
    enable_fast_decode(gen)
    assert gen.decode_step == gen._decode_step
    assert not any(isinstance(m, FusedDecoderLayer) for m in model.modules())


def test_fused_layers_equal_reference_on_cpu():
    model = build_model(tiny_config(), dtype=torch.float32)
    tokens = torch.randint(0, 256, (2, 7))
    want = model(tokens)
    keys = set(model.state_dict())
    fuse_model_(model)
    assert set(model.state_dict()) == keys
    assert torch.equal(model(tokens), want)


def test_parse_scheme_a8_suffix():
    s = parse_scheme("int4-g128-a8")
    assert (s.fmt, s.group_size, s.int8_activations) == ("uint4", 128, True)
    assert not parse_scheme("int4-g128").int8_activations
    with pytest.raises(TricoError, match="quantized"):
        parse_scheme("bf16-a8")


def test_parse_scheme():
    assert parse_scheme("int4-g128").fmt == "uint4" and parse_scheme("int4-g128").group_size == 128
    assert not parse_scheme("int3-g64-asym").symmetric
    assert parse_scheme("tern1.6").group_size == 0 and parse_scheme("bf16").fmt is None


def test_benchmark_cpu_smoke_has_bench_fields():
    res = run(
        ["tiny"], ["bf16", "int4-g32"], [1], 8, 2, None, 16, False, torch.device("cpu"), log=lambda s: None
    )
    dec = [r for r in res if r["bench"] == "decode"]
    assert len(dec) == 2 and len(res) == 4
    for key in (
        "model",
        "scheme",
        "batch",
        "tok_s",
        "ms_per_token",
        "bytes_per_step",
        "peak_mem_GiB",
        "git_sha",
        "source_sha1",
    ):
        assert key in dec[0]
    assert dec[1]["bytes_per_step"] < dec[0]["bytes_per_step"]  # packed weights move fewer bytes
    pre = [r for r in res if r["bench"] == "prefill"]
    assert [r["prefill_mode"] for r in pre] == ["eager (cpu)"] * 2
    assert all(r["eager_ttft_ms"] > 0 and r["ttft_ms"] > 0 for r in pre)


def test_source_fingerprint_follows_the_files(tmp_path):
    from trico.engine.benchmark import source_fingerprint

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("not code")
    first = source_fingerprint(tmp_path)
    assert len(first) == 12 and source_fingerprint(tmp_path) == first
    (tmp_path / "notes.txt").write_text("still not code")
    assert source_fingerprint(tmp_path) == first
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    assert source_fingerprint(tmp_path) != first


def _replay_matches_eager(
    model, cfg, batch: int, max_len: int, steps: int, eager_context=contextlib.nullcontext
):
    """Prefill two caches alike, then teacher-force `steps` tokens: the graph replay's logits match the
    eager step's (run inside `eager_context`)."""
    from trico.engine.cuda_graphs import GraphedDecodeStep

    caches = [StaticKVCache(cfg, batch, max_len, torch.bfloat16, "cuda") for _ in range(2)]
    prompt = torch.randint(0, 256, (batch, 9), generator=torch.Generator().manual_seed(0)).cuda()
    for c in caches:
        model.prefill(prompt, torch.arange(9, device="cuda"), c)
    tok = torch.zeros(batch, 1, dtype=torch.long, device="cuda")
    pos = torch.zeros(1, dtype=torch.long, device="cuda")
    graphed = GraphedDecodeStep(lambda t, p: model.decode(t, p, caches[1]))
    for i in range(steps):  # both paths see the same tokens
        tok.fill_(i + 3)
        pos.fill_(9 + i)
        with eager_context():
            want = model.decode(tok, pos, caches[0]).float()
        got = graphed(tok, pos).float()
        assert float((got - want).norm() / want.norm()) < 1e-2, f"step {i}"


@cuda
def test_graph_replay_matches_eager_step_on_gpu():
    cfg = tiny_config(head_dim=32, n_heads=4, dim=128)
    model = fuse_model_(build_model(cfg, dtype=torch.bfloat16, device="cuda"))
    _replay_matches_eager(model, cfg, batch=2, max_len=48, steps=6)


@cuda
@pytest.mark.parametrize("mode", ["on", "late"])
@pytest.mark.parametrize("scheme", [None, "int4-rtn-g32", "ternary-pc"])
@torch.no_grad()
def test_graph_replay_under_each_pdl_trigger_matches_the_unlaunched_step(mode, scheme, monkeypatch):
    """Batch 1 (the one-row kernels): a graph captured with each trigger mode of programmatic dependent
    launch gives, step after step, the logits of the same model run eagerly without PDL."""
    from trico.kernels import pdl, programmatic_launch
    from trico.quant.api import quantize

    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("needs compiled kernels")
    monkeypatch.setattr(pdl, "EARLY_TRIGGER", mode == "on")
    cfg = tiny_config(head_dim=64, n_heads=8, n_kv_heads=2, dim=512, hidden_dim=1536, n_layers=4)
    model = build_model(cfg, dtype=torch.bfloat16, device="cuda")
    if scheme:
        quantize(model, scheme, progress=False)
    fuse_model_(model)
    _replay_matches_eager(
        model, cfg, batch=1, max_len=64, steps=8, eager_context=lambda: programmatic_launch(False)
    )


@pytest.mark.parametrize(
    "scheme,a8,one_launch,batch,half2",
    [
        (None, False, False, 2, True),
        ("int4-rtn-g32", False, False, 2, True),
        ("int8", False, False, 2, True),
        ("int8", False, False, 1, True),
        ("ternary-pc", False, False, 1, True),
        ("ternary-pc", False, False, 1, False),
        ("int4-rtn-g32", False, False, 1, True),
        ("int4-rtn-g32", True, False, 1, True),
        ("int8", True, False, 1, True),
        (None, False, True, 2, True),
        ("int8", True, True, 1, True),
        ("int3-rtn-g32-asym", False, False, 2, True),
        ("ternary-pc-b3", False, False, 2, True),
        ("w8a8", False, False, 2, True),
    ],
)
@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="runs Triton kernels on CPU tensors")
@torch.no_grad()
def test_fused_decode_step_matches_reference_in_the_interpreter(
    scheme, a8, one_launch, batch, half2, monkeypatch
):
    """The CUDA decode path (rope + cache store in one kernel, flash-decoding, RMSNorm and the SiLU gate
    inside the projections or the gate in the gate/up projection's epilogue, residual adds inside the o and
    down projections; with a8, int8-activation GEMVs fed by their producers) run by the Triton interpreter
    on CPU gives the reference step's logits and cache."""
    from trico.engine import fused
    from trico.kernels import activation, fused_on_cpu, int8_activations, rmsnorm
    from trico.kernels.gemv_a8 import gemv_a8
    from trico.quant.api import quantize

    monkeypatch.setattr(fused, "ONE_LAUNCH_ATTENTION", one_launch)
    from trico.kernels import dispatch

    monkeypatch.setattr(dispatch, "HALF2_GEMV", half2)

    cfg = tiny_config(dim=128, n_heads=4, n_kv_heads=2)  # head_dim 32: the one-kernel decode path
    model = build_model(cfg, dtype=torch.bfloat16)
    if scheme:
        from trico.quant.calibration import Calibration

        tokens = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(1))
        calib = Calibration(tokens, {"file": "random", "n_seqs": 2}) if scheme.startswith("w8a8") else None
        if calib is not None:  # SmoothQuant's calibration runs the float model (the checkpoint's dtype)
            model = build_model(cfg, dtype=torch.float32)
        quantize(model, scheme, calib, progress=False)
        model = model.to(torch.bfloat16)

    calls = []
    # Every int8-activation GEMV must get its x already quantized by the kernel that produced it.
    monkeypatch.setattr(
        dispatch, "gemv_a8", lambda *a, **k: calls.append(k.get("quantized") is not None) or gemv_a8(*a, **k)
    )
    gated = []
    original_gated = dispatch.gated_forward
    monkeypatch.setattr(dispatch, "gated_forward", lambda *a, **k: gated.append(1) or original_gated(*a, **k))
    separate = []  # launches of the standalone norm and gate kernels
    for mod, name in ((rmsnorm, "rmsnorm"), (activation, "silu_mul_packed")):
        original = getattr(mod, name)
        monkeypatch.setattr(mod, name, lambda *a, _f=original, **k: separate.append(1) or _f(*a, **k))
    caches = [StaticKVCache(cfg, batch, 16, dtype=torch.bfloat16) for _ in range(2)]
    prompt = torch.randint(0, 256, (batch, 5), generator=torch.Generator().manual_seed(0))
    for c in caches:
        model.prefill(prompt, torch.arange(5), c)
    token, pos = torch.tensor([[7], [9]])[:batch], torch.tensor([5])
    want = model.decode(token, pos, caches[0])
    fuse_model_(model)
    with fused_on_cpu(), int8_activations(a8):
        got = model.decode(token, pos, caches[1])
    assert float((got.float() - want.float()).norm() / want.float().norm()) < (4e-2 if a8 else 2e-2)
    assert calls == ([True] * 4 * cfg.n_layers if a8 else [])
    # One row of 2-bit weights in the word GEMV (the f16x2 GEMV off): RMSNorm and the SiLU gate run
    # inside the projections; one row of int8, the gate only (dispatch.PROLOGUE_BITS). The f16x2 GEMV
    # takes no prologue. With int8 activations their kernels quantize x for the GEMVs, and above one
    # row or with 16-bit weights they run on their own: two norms, one gate. The final norm
    # (FusedNorm) is one more RMSNorm launch.
    inside = {"ternary-pc": 0 if half2 else 3, "int8": 1} if batch == 1 and not a8 else {}
    # The gate/up projection writes silu(gate) * up itself where the f16x2 GEMV serves it (4- and 2-bit
    # codes, up to two rows, not with int8 activations).
    f16x2 = half2 and not a8 and scheme in ("int4-rtn-g32", "ternary-pc")
    expect_gated = cfg.n_layers if f16x2 else 0
    assert len(gated) == expect_gated
    assert len(separate) == (3 - inside.get(scheme, 0)) * cfg.n_layers - len(gated) + 1
    # Position 5 is new (one fused QKV matmul vs three: bf16 rounding may differ); the rest untouched.
    for new, old in ((caches[1].k, caches[0].k), (caches[1].v, caches[0].v)):
        assert float((new[:, :, :, 5] - old[:, :, :, 5]).float().abs().max()) <= 0.05
        assert float(old[:, :, :, 5].float().abs().max()) > 0.05
        assert torch.equal(new[:, :, :, :5], old[:, :, :, :5])


def test_int8_activation_step_wrapper_sets_the_mode_only_inside_the_step():
    from trico.engine.cuda_graphs import _with_int8_activations
    from trico.kernels import a8_enabled

    seen = []
    step = _with_int8_activations(lambda t, p: seen.append(a8_enabled()) or t)
    assert step(torch.zeros(1), torch.zeros(1)) is not None and seen == [True]
    assert not a8_enabled()


def test_int8_activations_leave_cpu_decoding_unchanged():
    model = build_model(tiny_config(), dtype=torch.float32)
    gen = Generator(model, StaticKVCache(model.config, 1, 32), Sampler())
    enable_fast_decode(gen, int8_activations=True)
    assert gen.decode_step == gen._decode_step


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="runs Triton kernels on CPU tensors")
@torch.no_grad()
def test_fused_head_keeps_names_and_tie_and_returns_fp32_logits():
    """The engine's head reads the tied bf16 table once and returns the unrounded fp32 logits."""
    from trico.engine.fused import FusedHead
    from trico.kernels import fused_on_cpu

    cfg = tiny_config(dim=128, n_heads=4, n_kv_heads=2)
    model = build_model(cfg, dtype=torch.bfloat16)
    keys = list(model.state_dict())
    h = torch.randn(1, 1, cfg.dim).to(torch.bfloat16)
    want = model.lm_head(h).float()  # nn.Linear: bf16-rounded
    exact = h.double() @ model.lm_head.weight.double().t()
    fuse_model_(model)
    assert isinstance(model.lm_head, FusedHead) and list(model.state_dict()) == keys
    assert model.lm_head.weight is model.model.embed_tokens.weight or not cfg.tie_embeddings
    with fused_on_cpu():
        got = model.lm_head(h)
    assert got.dtype == torch.float32
    assert float((got.double() - exact).abs().max()) < 1e-4 * float(exact.abs().max())
    assert float((want.double() - exact).abs().max()) > float((got.double() - exact).abs().max())
    with pytest.raises(TricoError, match="quantize before enabling fast decode"):
        from trico.quant.api import quantize

        quantize(model, "int8-head", progress=False)


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="runs Triton kernels on CPU tensors")
@torch.no_grad()
def test_fused_norm_keeps_the_parameter_and_matches_the_module():
    """The final RMSNorm becomes one kernel on the fused path; names, the Parameter and the CPU result stay."""
    from trico.engine.fused import FusedNorm
    from trico.kernels import fused_on_cpu

    cfg = tiny_config(dim=128, n_heads=4, n_kv_heads=2)
    model = build_model(cfg, dtype=torch.bfloat16)
    keys, weight = list(model.state_dict()), model.model.norm.weight
    with torch.no_grad():
        weight.copy_(1 + 0.1 * torch.randn(cfg.dim, generator=torch.Generator().manual_seed(0)))
    h = torch.randn(2, 3, cfg.dim, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    want = model.model.norm(h)
    fuse_model_(model)
    assert isinstance(model.model.norm, FusedNorm) and model.model.norm.weight is weight
    assert list(model.state_dict()) == keys
    assert torch.equal(model.model.norm(h), want)  # off the fused path: the module's own ops
    with fused_on_cpu():
        got = model.model.norm(h)
    assert got.dtype == want.dtype and got.shape == want.shape
    torch.testing.assert_close(got.float(), want.float(), rtol=1e-2, atol=1e-2)


def test_graphed_prefill_on_cpu_runs_eagerly():
    """Without a GPU every chunk runs the model's prefill; nothing is captured."""
    from trico.engine.cuda_graphs import GraphedPrefill

    cfg = tiny_config()
    model = build_model(cfg)
    cache = StaticKVCache(cfg, 1, 16)
    graphed = GraphedPrefill(lambda t, p, last: model.prefill(t, p, cache, last), cache)
    tokens = torch.randint(0, cfg.vocab_size, (1, 6), generator=torch.Generator().manual_seed(0))
    want = model.prefill(tokens, torch.arange(6), StaticKVCache(cfg, 1, 16))
    for _ in range(3):
        torch.testing.assert_close(graphed(tokens, 0), want)
    assert not graphed.graphs and graphed.seen == {(1, 6, True): 3}  # no room to pad: the exact length


@cuda
@pytest.mark.parametrize("scheme", [None, "int4-rtn-g32", "kv-int8"])
def test_graphed_prefill_matches_eager_on_gpu(scheme):
    """Eager, captured and replayed prompt chunks (a first chunk and a later one) give the eager logits and cache."""
    from trico.engine.cuda_graphs import GraphedPrefill

    cfg = tiny_config(head_dim=32, n_heads=4, dim=128)
    model = build_model(cfg, dtype=torch.bfloat16, device="cuda")
    if scheme == "int4-rtn-g32":
        from trico.quant.api import quantize

        quantize(model, scheme, progress=False)
    fuse_model_(model)
    from trico.engine.kv_cache_int8 import Int8KVCache

    cache_cls = Int8KVCache if scheme == "kv-int8" else StaticKVCache
    caches = [cache_cls(cfg, 2, 96, torch.bfloat16, "cuda") for _ in range(2)]
    graphed = GraphedPrefill(lambda t, p, last: model.prefill(t, p, caches[1], last), caches[1])
    g = torch.Generator().manual_seed(3)
    for call in range(4):
        # 72 rows take the prefill path (dequantize + cuBLAS), 8 the skinny decode kernels
        first = torch.randint(0, cfg.vocab_size, (2, 72), generator=g).cuda()
        later = torch.randint(0, cfg.vocab_size, (2, 8), generator=g).cuda()
        want = [model.prefill(first, torch.arange(72, device="cuda"), caches[0])]
        want.append(model.prefill(later, torch.arange(72, 80, device="cuda"), caches[0]))
        got = [graphed(first, 0).clone(), graphed(later, 72).clone()]
        for w, o in zip(want, got, strict=True):
            torch.testing.assert_close(o, w, rtol=1e-2, atol=1e-2)
        torch.testing.assert_close(caches[1].k[:, :, :, :80], caches[0].k[:, :, :, :80], rtol=1e-2, atol=1e-2)
        assert len(graphed.graphs) == (0 if call == 0 else 2), call


@cuda
@pytest.mark.parametrize("scheme", [None, "int4-rtn-g32"])
@torch.no_grad()
def test_prompts_of_one_bucket_share_a_padded_graph_on_gpu(scheme):
    """Chunks of 33-64 tokens replay one graph padded to 64 (first chunks and follow-ups apart): their logits,
    cache entries and the decode steps after them are the eager run's."""
    from trico.engine.cuda_graphs import GraphedPrefill

    cfg = tiny_config(head_dim=32, n_heads=4, dim=128)
    model = build_model(cfg, dtype=torch.bfloat16, device="cuda")
    if scheme:
        from trico.quant.api import quantize

        quantize(model, scheme, progress=False)
    fuse_model_(model)
    caches = [StaticKVCache(cfg, 1, 256, torch.bfloat16, "cuda") for _ in range(2)]
    graphed = GraphedPrefill(lambda t, p, last: model.prefill(t, p, caches[1], last), caches[1])
    g = torch.Generator().manual_seed(5)
    close = dict(rtol=1e-2, atol=1e-2)
    for t in (40, 50, 64, 33, 47):
        first = torch.randint(0, cfg.vocab_size, (1, t), generator=g).cuda()
        later = torch.randint(0, cfg.vocab_size, (1, 5), generator=g).cuda()
        want = [model.prefill(first, torch.arange(t, device="cuda"), caches[0])]
        want.append(model.prefill(later, torch.arange(t, t + 5, device="cuda"), caches[0]))
        got = [graphed(first, 0).clone(), graphed(later, t).clone()]
        for w, o in zip(want, got, strict=True):
            torch.testing.assert_close(o, w, **close)
        torch.testing.assert_close(caches[1].k[:, :, :, : t + 5], caches[0].k[:, :, :, : t + 5], **close)
        tok = torch.full((1, 1), 7, device="cuda")
        for pos in range(t + 5, t + 8):
            p = torch.tensor([pos], device="cuda")
            torch.testing.assert_close(
                model.decode(tok, p, caches[1]), model.decode(tok, p, caches[0]), **close
            )
    assert set(graphed.graphs) == {(1, 64, True), (1, 64, False)}


@cuda
def test_graphed_prefill_falls_back_to_eager_when_capture_fails():
    """A chunk whose capture fails still returns the right logits, warns once and stays eager."""
    from trico.engine.cuda_graphs import GraphedPrefill

    cfg = tiny_config(head_dim=32, n_heads=4, dim=128)
    model = build_model(cfg, dtype=torch.bfloat16, device="cuda")
    cache = StaticKVCache(cfg, 1, 32, torch.bfloat16, "cuda")

    def host_syncing_prefill(tokens, positions, last):
        int(positions[0])  # a host read: not allowed while a stream is captured
        return model.prefill(tokens, positions, cache, last)

    graphed = GraphedPrefill(host_syncing_prefill, cache)
    tokens = torch.randint(0, cfg.vocab_size, (1, 12), device="cuda")
    want = model.prefill(
        tokens, torch.arange(12, device="cuda"), StaticKVCache(cfg, 1, 32, torch.bfloat16, "cuda")
    )
    graphed(tokens, 0)
    with pytest.warns(UserWarning, match="run eagerly"):
        got = graphed(tokens, 0)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(graphed(tokens, 0), want)
    assert not graphed.graphs


def test_graphed_forward_on_cpu_runs_eagerly():
    """Without a GPU every window runs the model; nothing is captured."""
    from trico.engine.cuda_graphs import GraphedForward

    model = build_model(tiny_config())
    graphed = GraphedForward(model)
    tokens = torch.randint(0, 256, (1, 12), generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        torch.testing.assert_close(graphed(tokens), model(tokens))
    assert not graphed.graphs and graphed.seen == {(1, 12): 3}


@cuda
@pytest.mark.parametrize("scheme", [None, "int4-rtn-g32"])
@torch.no_grad()
def test_graphed_forward_matches_eager_windows_on_gpu(scheme):
    """Eager, captured and replayed windows give the eager logits; a new shape gets its own graph."""
    from trico.engine.cuda_graphs import GraphedForward

    cfg = tiny_config(head_dim=32, n_heads=4, dim=128)
    model = build_model(cfg, dtype=torch.bfloat16, device="cuda")
    if scheme:
        from trico.quant.api import quantize

        quantize(model, scheme, progress=False)
    fuse_model_(model)
    graphed = GraphedForward(model)
    g = torch.Generator().manual_seed(4)
    for call, t in enumerate((96, 96, 96, 96, 40, 40)):
        tokens = torch.randint(0, cfg.vocab_size, (1, t), generator=g).cuda()
        torch.testing.assert_close(graphed(tokens).clone(), model(tokens), rtol=1e-2, atol=1e-2)
        assert len(graphed.graphs) == [0, 1, 1, 1, 1, 2][call], call


@cuda
def test_graphed_forward_falls_back_to_eager_when_capture_fails():
    """A window whose capture fails still returns the right logits, warns once and stays eager."""
    from trico.engine.cuda_graphs import GraphedForward

    model = build_model(tiny_config(head_dim=32, n_heads=4, dim=128), dtype=torch.bfloat16, device="cuda")

    def host_syncing(tokens):
        int(tokens[0, 0])  # a host read: not allowed while a stream is captured
        return model(tokens)

    graphed = GraphedForward(host_syncing)
    tokens = torch.randint(0, 256, (1, 16), device="cuda")
    graphed(tokens)
    with pytest.warns(UserWarning, match="run eagerly"):
        torch.testing.assert_close(graphed(tokens), model(tokens))
    torch.testing.assert_close(graphed(tokens), model(tokens))
    assert not graphed.graphs
