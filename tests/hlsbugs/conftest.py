"""Shared fixtures for the hlsbugs tests: the suite is parsed once per session."""

import shutil

import pytest

from trico.hlsbugs.suite import load_suite

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")


@pytest.fixture(scope="session")
def suite():
    """All kernels of the shipped suite."""
    return {k.name: k for k in load_suite()}
