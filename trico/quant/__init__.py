"""Quantization: schemes, packed formats, QLinear and the methods (RTN, AWQ, GPTQ, SmoothQuant, ternary, KV INT8)."""

from trico.quant import awq, gptq, rtn, smoothquant, ternary  # noqa: F401  (methods register on import)
from trico.quant.api import QuantInfo, quantize
from trico.quant.qlinear import QLinear
from trico.quant.schemes import Scheme, list_schemes, parse

__all__ = ["QLinear", "QuantInfo", "Scheme", "list_schemes", "parse", "quantize"]
