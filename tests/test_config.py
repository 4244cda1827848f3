import pytest

from trico.config import PRESETS, ModelConfig, RopeScaling, get_config, tiny_config
from trico.errors import TricoError


def test_presets_have_published_sizes():
    # Parameter counts of the real checkpoints (embeddings included), to 2%.
    expected = {
        "llama-2-7b": 6.74e9,
        "llama-2-13b": 13.0e9,
        "llama-3-8b": 8.03e9,
        "smollm2-135m": 134.5e6,
        "llama-2-70b": 69.0e9,
        "mistral-7b": 7.24e9,
    }
    for name, n in expected.items():
        assert abs(PRESETS[name].n_params() - n) / n < 0.02, name


def test_gqa_and_head_dim_are_derived():
    c = get_config("llama-3-8b")
    assert c.head_dim == 128 and c.n_rep == 4 and c.kv_dim == 1024


def test_round_trip_through_dict():
    c = get_config("llama-3.1-8b")
    assert ModelConfig.from_dict(c.to_dict()) == c
    assert isinstance(c.rope_scaling, RopeScaling)


def test_unknown_preset_suggests_close_names():
    with pytest.raises(TricoError, match="llama-2-7b"):
        get_config("llama2-7b")


@pytest.mark.parametrize(
    "bad", [dict(n_heads=4, n_kv_heads=3), dict(dim=0), dict(norm_eps=0.0), dict(dim=66)]
)
def test_invalid_configs_are_refused(bad):
    with pytest.raises(TricoError):
        tiny_config(**bad)
