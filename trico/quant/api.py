"""`quantize(model, scheme, calib)`: validate, run the scheme's method, swap nn.Linear for QLinear, report.

Methods register themselves in METHODS under the scheme's `method` key; each returns the QLinear
replacing every target layer (and may swap layers early when later layers need quantized inputs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from trico.errors import TricoError
from trico.quant.qlinear import QLinear
from trico.quant.schemes import IntScheme, Scheme, TernaryScheme, parse

MethodFn = Callable[..., dict[str, QLinear]]
METHODS: dict[str, MethodFn] = {}
NEEDS_CALIBRATION = {"awq", "gptq", "smoothquant"}


def register_method(key: str) -> Callable[[MethodFn], MethodFn]:
    """Register fn(model, targets, scheme, calib, progress) -> {layer name: QLinear} under a method key."""

    def deco(fn: MethodFn) -> MethodFn:
        METHODS[key] = fn
        return fn

    return deco


@dataclass
class QuantInfo:
    """What quantize() did: the scheme, each layer's stored format, what stayed in high precision."""

    scheme: str
    layers: dict[str, dict] = field(default_factory=dict)
    high_precision: list[str] = field(default_factory=list)
    calibration: dict | None = None
    seconds: float = 0.0
    kv_bits: int = 16

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return asdict(self)

    def weight_bits(self) -> float:
        """Average stored bits per weight over the quantized layers (scales and mins included)."""
        n = sum(v["out_features"] * v["in_features"] for v in self.layers.values())
        return 8 * sum(v["bytes"] for v in self.layers.values()) / n if n else 16.0


def target_layers(model: nn.Module, scheme: Scheme) -> dict[str, nn.Linear]:
    """The nn.Linear layers a scheme quantizes: every decoder projection, plus lm_head with -head."""
    out = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != "lm_head"}
    head = getattr(model, "lm_head", None)
    if scheme.quantize_head and isinstance(head, nn.Linear):
        out["lm_head"] = head
    elif scheme.quantize_head and head is not None and not hasattr(head, "qweight"):
        raise TricoError(
            f"scheme {scheme.name!r} quantizes lm_head, but this model's head is a {type(head).__name__} "
            "(the CUDA engine's fused head); quantize before enabling fast decode"
        )
    if scheme.weight_bits >= 16:
        return {}
    return out


def set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at a dotted path."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def validate_targets(targets: dict[str, nn.Linear], scheme: Scheme) -> None:
    """Refuse NaN/Inf weights and group sizes that do not divide a layer's in_features, before any change."""
    for name, lin in targets.items():
        w = lin.weight
        if not torch.isfinite(w).all():
            raise TricoError(f"{name}: weight holds NaN or Inf values; refusing to quantize")
        k = lin.in_features
        if isinstance(scheme, IntScheme | TernaryScheme) and scheme.group_size > 0:
            g = scheme.layer_group(k)
            if g == 0 or k % g:
                divisors = [d for d in (256, 128, 96, 64, 32) if k % d == 0 and d % 8 == 0]
                raise TricoError(
                    f"group size {scheme.group_size} does not divide in_features={k} of {name}; use a group "
                    f"that divides it ({', '.join(f'g{d}' for d in divisors) or 'none of 32..256'}), per channel "
                    f"('pc'), or add '-fit' to use the largest divisor per layer"
                )
        if isinstance(scheme, IntScheme) and scheme.bits == 3 and k % 8:
            raise TricoError(f"3-bit packing needs in_features divisible by 8; {name} has {k}")


def quantize(
    model: nn.Module, scheme: Scheme | str, calib: object | None = None, progress: bool = True
) -> nn.Module:
    """Quantize a built model in place (nn.Linear -> QLinear) and return it; `model.trico_quant` reports."""
    scheme = parse(scheme)
    if getattr(model, "trico_quant", None) is not None:
        raise TricoError("model is already quantized; start from the float checkpoint")
    targets = target_layers(model, scheme)
    validate_targets(targets, scheme)
    if targets and scheme.method not in METHODS:
        raise TricoError(f"no quantization method registered for {scheme.method!r}")
    if scheme.method in NEEDS_CALIBRATION and targets and calib is None:
        raise TricoError(f"scheme {scheme.name} needs calibration data ({scheme.method} is activation-aware)")
    t0 = time.perf_counter()
    replaced: dict[str, QLinear] = {}
    if targets:
        with torch.no_grad():
            replaced = METHODS[scheme.method](model, targets, scheme, calib, progress)
        for name, q in replaced.items():
            set_module(model, name, q)
    info = QuantInfo(scheme=scheme.name, seconds=time.perf_counter() - t0, kv_bits=scheme.kv_bits)
    for name, q in replaced.items():
        info.layers[name] = {
            "fmt": q.fmt,
            "group_size": q.group_size,
            "symmetric": q.symmetric,
            "in_features": q.in_features,
            "out_features": q.out_features,
            "bytes": q.nbytes(),
            "bits_per_weight": 8 * q.nbytes() / (q.in_features * q.out_features),
        }
    info.high_precision = [
        n for n, m in model.named_modules() if isinstance(m, nn.Embedding | nn.Linear) and n not in replaced
    ]
    settings = getattr(calib, "settings", None)
    info.calibration = dict(settings) if settings and scheme.method in NEEDS_CALIBRATION else None
    model.trico_quant = info
    return model


def _register_builtin_methods() -> None:
    # Each method module registers itself; importing them here keeps METHODS complete for any importer.
    from trico.quant import awq, gptq, rtn, smoothquant, ternary  # noqa: F401


_register_builtin_methods()
