"""Which kernel runs a QLinear on CUDA: the packed skinny GEMM for decode, dequantize + cuBLAS for prefill."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trico.kernels import kernels_enabled
from trico.kernels import qlinear as qk

DECODE_MAX_ROWS = 64
"""Up to this many rows of x the fused kernel streams the packed weight; above, dequantize + cuBLAS."""


def packed_view(module: torch.nn.Module) -> qk.PackedWeight:
    """The kernel's view of a QLinear's buffers, cached on the module until the buffers change."""
    key = (module.qweight.data_ptr(), module.scales.data_ptr(), module.qweight.device)
    cached = getattr(module, "_kernel_view", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    pw = qk.pack_for_kernel(
        module.qweight, module.scales, module.mins, module.fmt, module.group_size, module.in_features
    )
    module._kernel_view = (key, pw)
    return pw


def supported(module: torch.nn.Module) -> bool:
    """Whether a kernel exists for this QLinear's format and shape."""
    if qk.triton is None or module.fmt not in qk.SPECS:
        return False
    per_unit = qk.SPECS[module.fmt].codes_per_unit
    return module.fmt == "tern1.6" or module.in_features % per_unit == 0


def qlinear_forward(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """y = x @ W^T for a QLinear on CUDA; formats without a kernel (w8a8) use the module's reference."""
    if not supported(module) or not kernels_enabled():
        return module.reference_forward(x)
    pw = packed_view(module)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    if x2.shape[0] <= DECODE_MAX_ROWS:
        y = qk.qmm(x2, pw, qk.tuned_config(x2, pw) or qk.default_config(pw, x2.shape[0]))
    else:
        y = F.linear(x2, qk.dequantize(pw, x2.dtype))
    return y.view(*lead, module.out_features)


_DENSE_VIEWS: dict[tuple, qk.PackedWeight] = {}


def dense_forward(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """y = x @ weight^T for a bf16/fp16 weight: the Triton GEMV where it measured faster, else cuBLAS."""
    if not (x.is_cuda and kernels_enabled() and qk.triton is not None) or weight.dtype != x.dtype:
        return F.linear(x, weight)
    x2 = x.reshape(-1, x.shape[-1])
    if x2.shape[0] > DECODE_MAX_ROWS or x2.stride(-1) != 1 or not weight.is_contiguous():
        return F.linear(x, weight)
    key = (weight.data_ptr(), tuple(weight.shape), weight.dtype)
    pw = _DENSE_VIEWS.get(key)
    if pw is None:
        pw = _DENSE_VIEWS[key] = qk.pack_for_kernel(
            weight, None, None, "bf16", weight.shape[1], weight.shape[1]
        )
    cfg = qk.tuned_config(x2, pw)
    if cfg is None:
        return F.linear(x, weight)
    return qk.qmm(x2, pw, cfg).view(*x.shape[:-1], weight.shape[0])


def clear_caches() -> None:
    """Forget cached kernel views of dense weights (they keep the weights alive)."""
    _DENSE_VIEWS.clear()
