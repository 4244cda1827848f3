"""Programmatic dependent launch: off where it cannot work, and switchable for A/B timing."""

import os

import pytest
import torch

from trico.kernels import pdl, pdl_allowed, programmatic_launch
from trico.kernels.pdl import launch_kwargs, pdl_on


def test_pdl_is_off_for_cpu_tensors():
    x = torch.zeros(4)
    assert not pdl_on(x)
    assert launch_kwargs(x) == {"PDL": 0, "launch_pdl": False}


def test_programmatic_launch_switch_nests_and_restores():
    assert pdl_allowed()
    with programmatic_launch(False):
        assert not pdl_allowed()
        with programmatic_launch(True):
            assert pdl_allowed()
        assert not pdl_allowed()
    assert pdl_allowed()


@pytest.mark.skipif(
    not torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1", reason="needs a GPU"
)
def test_pdl_follows_the_switch_on_a_hopper_gpu():
    x = torch.zeros(4, device="cuda")
    assert pdl_on(x) == (torch.cuda.get_device_capability()[0] >= 9)
    with programmatic_launch(False):
        assert not pdl_on(x)


@pytest.mark.skipif(
    not torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1", reason="needs a GPU"
)
@pytest.mark.parametrize("early", [True, False])
def test_trigger_mode_reaches_the_kernel_constexpr(monkeypatch, early):
    if torch.cuda.get_device_capability()[0] < 9 or not pdl_on(torch.zeros(1, device="cuda")):
        pytest.skip("no programmatic dependent launch on this GPU/Triton")
    monkeypatch.setattr(pdl, "EARLY_TRIGGER", early)
    assert launch_kwargs(torch.zeros(1, device="cuda")) == {"PDL": 1 if early else 2, "launch_pdl": True}
