"""GGUF loading: SmolLM2 against transformers, every quant type dequantizes, bad files fail cleanly."""

import numpy as np
import pytest
import torch

from tests.helpers import hf_smollm2, needs_smollm2, smollm2
from trico.errors import TricoError
from trico.io.gguf_reader import dequantize_tensor, load_gguf, permute_rope, unpermute_rope
from trico.io.loader import default_gguf_path, load_model

gguf = pytest.importorskip("gguf")


@needs_smollm2
@torch.no_grad()
def test_smollm2_logits_match_transformers_loading_the_same_gguf():
    hf = hf_smollm2()
    ours = smollm2().model
    tokens = torch.randint(0, 49152, (1, 64), generator=torch.Generator().manual_seed(0))
    diff = (ours(tokens) - hf(tokens).logits).abs().max().item()
    assert diff <= 1e-3, diff


@needs_smollm2
def test_smollm2_config_from_metadata():
    c = smollm2().config
    assert (c.n_layers, c.dim, c.n_heads, c.n_kv_heads, c.hidden_dim) == (30, 576, 9, 3, 1536)
    assert c.tie_embeddings and c.rope_theta == 100000.0 and c.vocab_size == 49152


def test_rope_permutation_round_trips():
    w = torch.randn(8 * 6, 5)
    assert torch.equal(unpermute_rope(permute_rope(w, 6), 6), w)


def _write_gguf(path, arch="llama", tensor_type=None, data=None):
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(1)
    w.add_embedding_length(64)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_context_length(128)
    arr = data if data is not None else np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    if tensor_type is None:
        w.add_tensor("token_embd.weight", arr)
    else:
        packed = gguf.quants.quantize(arr, tensor_type)
        w.add_tensor("token_embd.weight", packed, raw_dtype=tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.mark.parametrize(
    "qtype", ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]
)
def test_every_common_tensor_type_dequantizes(tmp_path, qtype):
    t = gguf.GGMLQuantizationType[qtype]
    rng = np.random.default_rng(1)
    data = rng.standard_normal((4, 256)).astype(np.float32)
    path = tmp_path / "m.gguf"
    try:
        _write_gguf(path, tensor_type=t, data=data)
        quantizable = True
    except NotImplementedError:
        # The gguf package dequantizes K-quants but cannot write them: store random blocks instead.
        block, size = gguf.GGML_QUANT_SIZES[t]
        raw = rng.integers(0, 256, (4, 256 // block * size), dtype=np.uint8)
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_tensor("token_embd.weight", raw, raw_dtype=t)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        quantizable = False
    reader = gguf.GGUFReader(str(path))
    out = dequantize_tensor(reader.tensors[0])
    assert out.shape == (4, 256) and out.dtype == np.float32
    if quantizable:
        # The coarsest writable type keeps the values strongly correlated with the originals.
        assert np.corrcoef(out.ravel(), data.ravel())[0, 1] > 0.8


def test_unsupported_architecture_is_refused(tmp_path):
    path = tmp_path / "gpt2.gguf"
    _write_gguf(path, arch="gpt2")
    with pytest.raises(TricoError, match="unsupported architecture 'gpt2'"):
        load_gguf(path)


@needs_smollm2
def test_truncated_gguf_is_a_clear_error(tmp_path):
    src = default_gguf_path().read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(src[: len(src) // 2])
    with pytest.raises(TricoError, match="cut.gguf"):
        load_model(str(path))


def test_not_a_model_and_missing_paths(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    with pytest.raises(TricoError, match="not a model file"):
        load_model(str(junk))
    with pytest.raises(TricoError, match="no such file"):
        load_model(str(tmp_path / "missing.gguf"))
    pkl = tmp_path / "model.bin"
    pkl.write_bytes(b"\x80\x04junk")
    with pytest.raises(TricoError, match="pickle"):
        load_model(str(pkl))
