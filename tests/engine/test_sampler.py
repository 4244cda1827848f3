import pytest
import torch

from trico.engine.sampler import Sampler, SamplingParams
from trico.errors import TricoError


def test_greedy_is_argmax():
    logits = torch.randn(3, 50)
    assert torch.equal(Sampler()(logits), logits.argmax(-1))


def test_seed_makes_sampling_reproducible():
    logits = torch.randn(4, 100)
    p = SamplingParams(temperature=1.0, seed=7)
    assert torch.equal(Sampler(p)(logits), Sampler(p)(logits))


def test_top_k_only_draws_from_the_k_best():
    logits = torch.randn(1, 100)
    top = set(torch.topk(logits, 3).indices[0].tolist())
    s = Sampler(SamplingParams(temperature=5.0, top_k=3, seed=0))
    assert {int(s(logits)[0]) for _ in range(200)} <= top


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    s = Sampler(SamplingParams(temperature=1.0, top_p=0.75, seed=0))
    drawn = {int(s(logits)[0]) for _ in range(300)}
    assert drawn == {0, 1}


def test_sampling_follows_the_distribution():
    probs = torch.tensor([0.7, 0.2, 0.1])
    s = Sampler(SamplingParams(temperature=1.0, seed=1))
    draws = torch.stack([s(probs.log().view(1, -1))[0] for _ in range(3000)])
    freq = torch.bincount(draws, minlength=3).float() / 3000
    assert torch.allclose(freq, probs, atol=0.03)


@pytest.mark.parametrize("bad", [dict(temperature=-1), dict(top_k=0), dict(top_p=0.0), dict(top_p=1.5)])
def test_bad_parameters(bad):
    with pytest.raises(TricoError):
        SamplingParams(**bad)
