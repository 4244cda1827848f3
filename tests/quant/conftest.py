"""Quantization tests run torch on one thread: their tensors are small, and on a shared CPU the intra-op
thread pool's hand-offs cost far more than they save (measured ~1000x on torch.round of 8K elements)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():  # noqa: ANN202
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
