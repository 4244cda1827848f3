import pytest
import torch

from tests.kernels.test_qlinear import DEV
from trico.kernels import argmax, fused_on_cpu

pytestmark = pytest.mark.skipif(argmax.triton is None, reason="Triton is not installed")


@pytest.mark.parametrize("vocab", [1, 7, 8192, 32000, 49152 + 5])
def test_matches_torch_argmax_on_random_rows(vocab):
    torch.manual_seed(vocab)
    logits = (torch.randn(3, vocab) * 4).to(DEV)
    assert torch.equal(argmax.argmax_rows(logits), argmax.argmax_reference(logits))


def test_ties_go_to_the_first_index_across_chunks():
    logits = torch.full((2, 3 * argmax.CHUNK), -1.0)
    logits[0, [5, argmax.CHUNK + 1, 2 * argmax.CHUNK]] = 3.0  # the same maximum in three chunks
    logits[1, [2 * argmax.CHUNK + 7, 2 * argmax.CHUNK + 9]] = 2.0
    logits = logits.to(DEV)
    assert argmax.argmax_rows(logits).tolist() == [5, 2 * argmax.CHUNK + 7]
    assert torch.equal(argmax.argmax_rows(logits), argmax.argmax_reference(logits))


def test_infinities_and_nan_as_torch_orders_them():
    v = 3 * argmax.CHUNK
    logits = torch.full((4, v), float("-inf"))  # row 0: all -inf -> index 0
    logits[1, 100] = float("inf")
    logits[1, argmax.CHUNK + 3] = float("nan")  # NaN wins over an earlier +inf
    logits[2, [4, 2 * argmax.CHUNK + 1]] = float("nan")  # the first NaN
    logits[3] = torch.randn(v)
    logits[3, v - 1] = 50.0  # in the last chunk
    logits = logits.to(DEV)
    got = argmax.argmax_rows(logits)
    assert got.tolist() == [0, argmax.CHUNK + 3, 4, v - 1]
    assert torch.equal(got, argmax.argmax_reference(logits))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_16_bit_logits_and_strided_rows(dtype):
    torch.manual_seed(0)
    wide = torch.randn(4, 20000).to(dtype).to(DEV)
    logits = wide[:, :12345]  # rows 20000 apart
    assert torch.equal(argmax.argmax_rows(logits), argmax.argmax_reference(logits))


@pytest.mark.skipif(DEV != "cpu", reason="the CPU's fused path needs the interpreter")
def test_greedy_tokens_takes_the_kernel_only_on_the_fused_path(monkeypatch):
    calls = []
    monkeypatch.setattr(argmax, "argmax_rows", lambda t: calls.append(t) or argmax.argmax_reference(t))
    logits = torch.randn(2, 100)
    assert torch.equal(argmax.greedy_tokens(logits), logits.argmax(-1)) and not calls  # plain CPU: torch
    with fused_on_cpu():
        assert torch.equal(argmax.greedy_tokens(logits), logits.argmax(-1)) and len(calls) == 1
        argmax.greedy_tokens(torch.randn(2, 3, 100))  # not [B, V]: torch
        monkeypatch.setattr(argmax, "KERNEL", False)
        assert torch.equal(argmax.greedy_tokens(logits), logits.argmax(-1))  # switched off: torch
    assert len(calls) == 1
