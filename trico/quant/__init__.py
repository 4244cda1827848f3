"""Quantization: schemes, packed formats, QLinear and the methods (RTN, AWQ, GPTQ, SmoothQuant, ternary, KV INT8).

Scheme names parse without importing torch (the CLI builds its parser from them); `quantize`, `QuantInfo`
and `QLinear` load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from trico.quant.schemes import Scheme, list_schemes, parse

_LAZY = {"quantize": "trico.quant.api", "QuantInfo": "trico.quant.api", "QLinear": "trico.quant.qlinear"}

__all__ = ["QLinear", "QuantInfo", "Scheme", "list_schemes", "parse", "quantize"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trico.quant' has no attribute {name!r}")
