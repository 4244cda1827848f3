"""Hugging Face directories: single and sharded safetensors, and the errors on bad directories."""

import json

import pytest
import torch

from tests.helpers import hf_llama_config, tiny_model
from trico.errors import TricoError
from trico.io.loader import load_model

transformers = pytest.importorskip("transformers")


def _save_hf(model, directory, shard_size=None):
    cfg = hf_llama_config(model.config)
    hf = transformers.LlamaForCausalLM(cfg)
    hf.load_state_dict(model.state_dict(), strict=False)
    kwargs = {"max_shard_size": shard_size} if shard_size else {}
    hf.save_pretrained(directory, safe_serialization=True, **kwargs)


@pytest.mark.parametrize("shard_size", [None, "100KB"], ids=["single", "sharded"])
@torch.no_grad()
def test_hf_directory_loads_to_the_same_logits(tmp_path, shard_size):
    model = tiny_model(seed=3)
    _save_hf(model, tmp_path, shard_size)
    if shard_size:
        assert (tmp_path / "model.safetensors.index.json").is_file()
    loaded = load_model(str(tmp_path))
    x = torch.randint(0, 256, (1, 20))
    assert torch.allclose(loaded.model(x), model(x), atol=1e-5)


def test_truncated_safetensors_is_a_clear_error(tmp_path):
    _save_hf(tiny_model(), tmp_path)
    f = tmp_path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(TricoError, match="corrupt or truncated"):
        load_model(str(tmp_path))


def test_unsupported_architecture_and_pickle_only_dirs(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(TricoError, match="unsupported architecture 'GPT2LMHeadModel'"):
        load_model(str(tmp_path))
    d = tmp_path / "pickled"
    _save_hf(tiny_model(), d)
    (d / "model.safetensors").unlink()
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(TricoError, match="pickle"):
        load_model(str(d))


def test_directory_without_config(tmp_path):
    with pytest.raises(TricoError, match="no config.json"):
        load_model(str(tmp_path))
