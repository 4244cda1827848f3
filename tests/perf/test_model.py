"""The performance model against published behaviour and its own invariants."""

import pytest

from trico.config import get_config, tiny_config
from trico.errors import TricoError
from trico.perf.efficiency import Efficiency
from trico.perf.hardware import get_hardware
from trico.perf.model import decode_crossover_batch, decode_phase, estimate
from trico.perf.operators import kv_cache_bytes, step_ops, weight_bytes
from trico.perf.scheme import resolve_scheme
from trico.perf.workload import SpecDecode, Workload

H100 = get_hardware("h100-sxm")
L2 = get_config("llama-2-7b")
L3 = get_config("llama-3-8b")


def test_batch1_decode_is_memory_bound_and_prefill_compute_bound():
    est = estimate(L2, "bf16", Workload(batch=1, prompt=2048, new_tokens=128), H100)
    assert est.decode.bound == "memory"
    assert est.prefill.bound == "compute"
    # Batch-1 decode moves the bf16 weights (not the embedding table) and the KV cache once per step.
    weights = 2 * L2.n_params() - 2 * L2.vocab_size * L2.dim
    kv = kv_cache_bytes(L2, resolve_scheme("bf16"), 1, 2048 + 64)
    assert est.decode.bytes == pytest.approx(weights + kv, rel=0.01)
    assert est.tpot_s == pytest.approx(est.decode.bytes / (H100.memory_bandwidth_GBps * 1e9), rel=0.05)


def test_int4_helps_decode_far_more_than_prefill():
    w = Workload(batch=1, prompt=2048, new_tokens=128)
    bf16 = estimate(L2, "bf16", w, H100)
    int4 = estimate(L2, "int4-g128", w, H100)
    decode_speedup = bf16.tpot_s / int4.tpot_s
    prefill_speedup = bf16.ttft_s / int4.ttft_s
    assert decode_speedup > 3.0
    assert prefill_speedup < 1.2
    # ...and dequantization cost (a calibrated effect) can only slow it down.
    slow = Efficiency(prefill_dequant_ps={"uint4": 5.0})
    assert estimate(L2, "int4-g128", w, H100, slow).ttft_s > int4.ttft_s


def test_roofline_crossover_is_near_the_ridge_point():
    b = decode_crossover_batch(L2, "bf16", H100)
    # Linear layers do 2 FLOP per 2-byte weight per sequence: intensity ~ batch, ridge ~ 295 FLOP/B.
    assert 0.8 * H100.ridge_flop_per_byte < b < 1.2 * H100.ridge_flop_per_byte
    # Fewer bytes per weight -> compute-bound at a smaller batch.
    assert decode_crossover_batch(L2, "int8", H100) < b / 1.5


def test_gqa_and_kv_quantization_shrink_the_cache():
    mha = L3.with_(name="llama-3-8b-mha", n_kv_heads=L3.n_heads)
    bf16 = resolve_scheme("bf16")
    assert kv_cache_bytes(L3, bf16, 1, 8192) * 4 == pytest.approx(kv_cache_bytes(mha, bf16, 1, 8192))
    kv8 = resolve_scheme("int8-kv8")
    assert kv_cache_bytes(L3, kv8, 1, 8192) < 0.6 * kv_cache_bytes(L3, bf16, 1, 8192)
    long = Workload(batch=16, prompt=8000, new_tokens=64)
    assert estimate(L3, "int8-kv8", long, H100).tpot_s < estimate(L3, "int8", long, H100).tpot_s


def test_snapkv_keep_ratio_cuts_long_context_decode():
    full = estimate(L3, "bf16", Workload(batch=32, prompt=8000, new_tokens=64), H100)
    kept = estimate(L3, "bf16", Workload(batch=32, prompt=8000, new_tokens=64, kv_keep=0.25), H100)
    assert kept.tpot_s < 0.8 * full.tpot_s
    # The full prompt cache exists during prefill, before SnapKV evicts.
    assert kept.memory.kv_cache_GB == pytest.approx(full.memory.kv_cache_GB, rel=0.01)
    assert kept.ttft_s == pytest.approx(full.ttft_s)


def test_speculative_decoding_expected_tokens_and_speedup():
    assert SpecDecode(draft_len=4, acceptance=0.0).tokens_per_step == pytest.approx(1.0)
    assert SpecDecode(draft_len=3, acceptance=0.5).tokens_per_step == pytest.approx(1 + 0.5 + 0.25 + 0.125)
    w = Workload(batch=1, prompt=512, new_tokens=128)
    plain = estimate(L2, "bf16", w, H100)
    good = estimate(
        L2, "bf16", Workload(batch=1, prompt=512, new_tokens=128, spec=SpecDecode(4, 0.8, 0.05)), H100
    )
    bad = estimate(
        L2, "bf16", Workload(batch=1, prompt=512, new_tokens=128, spec=SpecDecode(4, 0.0, 0.05)), H100
    )
    assert good.tpot_s < 0.5 * plain.tpot_s
    assert bad.tpot_s > plain.tpot_s
    draft = get_config("smollm2-135m").with_(vocab_size=L2.vocab_size)
    with_model = estimate(
        L2,
        "bf16",
        Workload(batch=1, prompt=512, new_tokens=128, spec=SpecDecode(4, 0.8, draft_model=draft)),
        H100,
    )
    assert with_model.memory.draft_GB > 0.2


def test_tensor_parallel_splits_weights_and_pays_the_interconnect():
    one = estimate(L2, "bf16", Workload(batch=8, prompt=512), H100)
    two = estimate(L2, "bf16", Workload(batch=8, prompt=512, tp=2), H100)
    assert two.memory.weights_GB == pytest.approx(one.memory.weights_GB / 2, rel=0.01)
    assert two.tpot_s < one.tpot_s
    ar = [t for t in two.decode.ops if t.op.kind == "allreduce"]
    assert ar and all(t.bound == "interconnect" and t.seconds > 0 for t in ar)
    slow_link = estimate(L2, "bf16", Workload(batch=8, prompt=512, tp=2), get_hardware("h100-sxm:ic=0.001x"))
    assert slow_link.tpot_s > two.tpot_s
    with pytest.raises(TricoError, match="tp=3"):
        estimate(L2, "bf16", Workload(tp=3), H100)
    with pytest.raises(TricoError, match="interconnect"):
        estimate(L2, "bf16", Workload(tp=2), get_hardware("epyc-9654"))


def test_what_does_not_fit_is_marked_with_a_breakdown():
    est = estimate(get_config("llama-2-70b"), "bf16", Workload(batch=1, prompt=512), H100)
    assert not est.fits
    text = est.memory.describe()
    assert "weights 1" in text and "KV cache" in text and "does NOT fit in 80 GB" in text
    assert estimate(
        get_config("llama-2-70b"), "int4-g128", Workload(batch=1, prompt=512), get_hardware("h200")
    ).fits


def test_weight_bytes_follow_the_scheme():
    bf16 = sum(weight_bytes(L2, resolve_scheme("bf16")).values())
    int4 = weight_bytes(L2, resolve_scheme("int4-g128"))
    assert bf16 == pytest.approx(2 * L2.n_params(), rel=1e-6)
    # Packed linears at 4 + 16/128 bits; embedding and lm_head stay 16-bit.
    c = L2
    n_linear = c.n_layers * (c.dim * (c.q_dim + 2 * c.kv_dim) + c.q_dim * c.dim + 3 * c.dim * c.hidden_dim)
    assert int4["linears"] == pytest.approx(n_linear * 4.125 / 8)
    assert int4["lm_head"] == 2 * L2.vocab_size * L2.dim


def test_calibrated_efficiency_slows_things_down_as_expected():
    w = Workload(batch=1, prompt=128, new_tokens=64)
    eff = Efficiency(bw=0.8, flops=0.7, launch_us=5.0)
    fast, slow = estimate(L2, "bf16", w, H100), estimate(L2, "bf16", w, H100, eff)
    n_kernels = sum(t.op.count * t.op.kernels for t in slow.decode.ops)
    expected = fast.tpot_s / 0.8 + n_kernels * 5e-6
    assert slow.tpot_s == pytest.approx(expected, rel=0.02)
    # Launch overhead dominates a tiny model on a big GPU.
    tiny = estimate(tiny_config(), "bf16", w, H100, eff)
    assert tiny.decode.bound == "overhead"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch": 0}, "batch"),
        ({"prompt": -5}, "prompt"),
        ({"kv_keep": 1.5}, "kv_keep"),
        ({"kv_keep": 0}, "kv_keep"),
        ({"tp": 0}, "tp"),
        ({"batch": 2.5}, "batch"),
        ({"reserve_GB": float("nan")}, "reserve_GB"),
    ],
)
def test_nonsense_workloads_are_refused(kwargs, match):
    with pytest.raises(TricoError, match=match):
        Workload(**kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"acceptance": 1.0}, {"acceptance": -0.1}, {"draft_len": 0}, {"draft_cost": -1}]
)
def test_nonsense_speculation_is_refused(kwargs):
    with pytest.raises(TricoError):
        SpecDecode(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"bw": 0}, {"bw": 3}, {"flops": -1}, {"launch_us": -1}, {"gemv_ps": {"uint4": -1}}, {"mma_rows": 0}],
)
def test_nonsense_efficiency_is_refused(kwargs):
    with pytest.raises(TricoError):
        Efficiency(**kwargs)


def test_unknown_scheme_is_a_clear_error():
    with pytest.raises(TricoError, match="unknown quantization scheme"):
        estimate(L2, "int5-magic", Workload(), H100)


def test_decode_step_attention_grows_with_context():
    s = resolve_scheme("bf16")
    short = decode_phase(L3, s, Workload(batch=8, prompt=128, new_tokens=1, context=128), H100)
    long = decode_phase(L3, s, Workload(batch=8, prompt=8192, new_tokens=1, context=8192), H100)
    att = lambda p: next(t for t in p.ops if t.op.name == "attention").seconds  # noqa: E731
    assert att(long) > 30 * att(short)
    ops = step_ops(L3, s, 2, 16, 0, prefill=True)
    assert next(o for o in ops if o.name == "lm_head").flops == 2 * 2 * L3.dim * L3.vocab_size


def test_per_layer_precision_is_costed_layer_by_layer():
    from trico.perf.scheme import PerLayerScheme

    mixed = PerLayerScheme.parse("int4-g128", {0: "int8", 31: "int8"})
    assert mixed.name == "int4-rtn-g128+L0/31:int8"
    w = Workload(batch=1, prompt=512)
    t4, t8, tm = (estimate(L2, s, w, H100).tpot_s for s in ("int4-g128", "int8", mixed))
    assert t4 < tm < t8
    lin = lambda s: weight_bytes(L2, resolve_scheme(s) if isinstance(s, str) else s)["linears"]  # noqa: E731
    assert lin(mixed) == pytest.approx(lin("int4-g128") * 30 / 32 + lin("int8") * 2 / 32)
    with pytest.raises(TricoError, match="n_layers"):
        estimate(L2, PerLayerScheme.parse("int4-g128", {40: "int8"}), w, H100)
    # The printed name parses back (the CLI accepts it in --scheme).
    again = resolve_scheme("int4-g128+L0/31:int8")
    assert again.name == mixed.name and estimate(L2, again, w, H100).tpot_s == pytest.approx(tm)
    for bad in ("int4-g128+", "int4-g128+L0", "int4-g128+Lx:int8", "int4-g128+L1:int8;L1:int3-rtn-g128"):
        with pytest.raises(TricoError, match="per-layer"):
            resolve_scheme(bad)
