import math

import pytest
import torch

from tests.helpers import hf_smollm2, needs_smollm2, smollm2, tiny_model
from trico.errors import TricoError
from trico.eval.data import data_file, load_eval_tokens
from trico.eval.perplexity import evaluate, window_starts


def test_window_layout():
    assert window_starts(2048, 512, 512, None) == [0, 512, 1024, 1536]
    assert window_starts(2048, 512, 256, 3) == [0, 256, 512]
    with pytest.raises(TricoError, match="room for 4 windows"):
        window_starts(2048, 512, 512, 5)
    with pytest.raises(TricoError, match="fewer than one"):
        window_starts(100, 512, 512, None)


@torch.no_grad()
def test_perplexity_matches_a_hand_computation():
    model = tiny_model(seed=4)
    tokens = torch.randint(0, 256, (64,))
    r = evaluate(model, tokens, ctx=32, windows=2, progress=False)
    nll = 0.0
    for w in (tokens[:32], tokens[32:]):
        logp = torch.log_softmax(model(w.view(1, -1))[0, :-1], -1)
        nll -= logp.gather(-1, w[1:].view(-1, 1)).sum().item()
    assert r.n_tokens == 62 and math.isclose(r.ppl, math.exp(nll / 62), rel_tol=1e-6)


def test_a_window_longer_than_the_model_is_refused_in_one_line():
    tokens = torch.randint(0, 256, (96,))
    with pytest.raises(TricoError, match="48-token window is longer than the model's 32 positions"):
        evaluate(tiny_model(max_seq_len=32), tokens, ctx=48, windows=1, progress=False)
    with pytest.raises(TricoError, match="longer than the model's 32 positions"):  # the reference too
        evaluate(
            tiny_model(), tokens, ctx=48, windows=1, reference=tiny_model(max_seq_len=32), progress=False
        )


@torch.no_grad()
def test_overlapping_windows_score_each_token_once():
    r = evaluate(tiny_model(), torch.randint(0, 256, (96,)), ctx=32, stride=16, windows=None, progress=False)
    assert r.n_tokens == 31 + 16 * 4


@torch.no_grad()
def test_kl_against_itself_is_zero_and_against_another_model_is_not():
    tokens = torch.randint(0, 256, (64,))
    same = evaluate(
        tiny_model(seed=1), tokens, ctx=32, windows=2, reference=tiny_model(seed=1), progress=False
    )
    assert same.kl_mean < 1e-6 and same.top1 == 1.0 and abs(same.dppl) < 1e-9
    other = evaluate(
        tiny_model(seed=1), tokens, ctx=32, windows=2, reference=tiny_model(seed=2), progress=False
    )
    assert other.kl_mean > 1e-3 and other.top1 < 1.0


def test_calibration_and_test_files_are_found():
    assert data_file("wikitext2-test.txt").stat().st_size > 1_000_000
    assert data_file("wikitext2-valid.txt").stat().st_size > 1_000_000


@needs_smollm2
@torch.no_grad()
def test_smollm2_perplexity_matches_transformers_on_the_same_tokens():
    """Same protocol as the acceptance (512-token windows, no BOS), on 2 windows to keep CI fast (the 40-window run: docs/hf-comparison.json)."""
    loaded = smollm2()
    tokens = load_eval_tokens(loaded.tokenizer)
    ours = evaluate(loaded.model, tokens, ctx=512, windows=2, progress=False)
    hf = hf_smollm2()
    theirs = evaluate(lambda x: hf(x).logits, tokens, ctx=512, windows=2, progress=False)  # type: ignore[arg-type]
    assert abs(ours.ppl / theirs.ppl - 1) < 0.002


@torch.no_grad()
def test_a_cache_factory_puts_the_cache_in_the_measurement():
    from trico.engine.kv_cache import StaticKVCache
    from trico.engine.kv_cache_int8 import Int8KVCache

    model, tokens = tiny_model(seed=5), torch.randint(0, 256, (64,))
    plain = evaluate(model, tokens, ctx=32, windows=2, progress=False)
    same = evaluate(model, tokens, ctx=32, windows=2, progress=False, cache_factory=StaticKVCache)
    int8 = evaluate(model, tokens, ctx=32, windows=2, progress=False, cache_factory=Int8KVCache)
    assert math.isclose(plain.ppl, same.ppl, rel_tol=1e-5)
    assert int8.ppl != plain.ppl and math.isclose(plain.ppl, int8.ppl, rel_tol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_eval_on_cuda_runs_the_fused_layers_with_the_same_perplexity():
    """`trico eval` on CUDA swaps in the engine's fused layers; perplexity stays that of the plain model."""
    from trico.cli.evaluate import _engine_layers
    from trico.config import tiny_config
    from trico.engine.fused import FusedDecoderLayer
    from trico.eval.perplexity import evaluate
    from trico.models.llama import build_model

    model = build_model(tiny_config(head_dim=32, n_heads=4, dim=128), dtype=torch.bfloat16, device="cuda")
    tokens = torch.randint(0, 256, (600,), generator=torch.Generator().manual_seed(0))
    plain = evaluate(model, tokens, ctx=128, windows=4, progress=False)
    _engine_layers(model)
    assert all(isinstance(layer, FusedDecoderLayer) for layer in model.model.layers)
    fused = evaluate(model, tokens, ctx=128, windows=4, progress=False)
    assert abs(fused.nll - plain.nll) < 1e-2 * plain.nll


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("cache", [None, "static", "int8"])
def test_graphed_windows_give_the_eager_perplexity_on_cuda(cache):
    """Windows replayed from a CUDA graph (one cache made once and rewritten) score as eager windows do."""
    from trico.cli.evaluate import _engine_layers
    from trico.config import tiny_config
    from trico.engine.kv_cache import StaticKVCache
    from trico.engine.kv_cache_int8 import Int8KVCache
    from trico.models.llama import build_model

    factory = {None: None, "static": StaticKVCache, "int8": Int8KVCache}[cache]
    model = build_model(tiny_config(head_dim=32, n_heads=4, dim=128), dtype=torch.bfloat16, device="cuda")
    _engine_layers(model)
    tokens = torch.randint(0, 256, (900,), generator=torch.Generator().manual_seed(1))
    run = dict(ctx=128, windows=6, progress=False, cache_factory=factory, reference=model)
    eager = evaluate(model, tokens, graphs=False, **run)
    graphed = evaluate(model, tokens, graphs=True, **run)
    assert math.isclose(graphed.nll, eager.nll, rel_tol=1e-4) and graphed.top1 == eager.top1


def test_window_runner_is_eager_on_cpu_and_for_plain_callables():
    from trico.eval.perplexity import window_runner

    model, tokens = tiny_model(seed=2), torch.randint(0, 256, (1, 16))
    torch.testing.assert_close(window_runner(model)(tokens), model(tokens))
    calls = []
    runner = window_runner(lambda t: calls.append(t) or model(t))
    torch.testing.assert_close(runner(tokens), model(tokens))
    assert len(calls) == 1


def test_eval_on_cpu_keeps_the_loaded_layers():
    from trico.cli.evaluate import _engine_layers
    from trico.config import tiny_config
    from trico.models.llama import DecoderLayer, build_model

    model = build_model(tiny_config())
    _engine_layers(model)
    assert all(type(layer) is DecoderLayer for layer in model.model.layers)
