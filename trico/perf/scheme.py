"""How the performance model sees a compression scheme: the duck-typed interface of trico.quant schemes.

The perf model never parses scheme names itself: names go to the quantization registry. The one thing this
module adds is the *unquantized* baseline (`bf16`, `fp16`), which is a storage dtype rather than a scheme,
plus the short format names GPU benchmarks report (`int4-g128`, `tern1.6`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from trico.errors import TricoError


@runtime_checkable
class SchemeLike(Protocol):
    """What the model reads from a scheme (trico.quant schemes satisfy it)."""

    @property
    def name(self) -> str: ...  # noqa: D102

    @property
    def weight_bits(self) -> float: ...  # noqa: D102

    @property
    def group_size(self) -> int: ...  # noqa: D102

    @property
    def act_bits(self) -> int: ...  # noqa: D102

    @property
    def kv_bits(self) -> int: ...  # noqa: D102

    def bits_per_weight(self, in_features: int) -> float: ...  # noqa: D102


@dataclass(frozen=True)
class Unquantized:
    """Weights, activations and KV cache kept in a 16-bit float dtype (the baseline every scheme beats)."""

    dtype: str = "bf16"
    """'bf16' or 'fp16'."""

    def __post_init__(self) -> None:
        if self.dtype not in ("bf16", "fp16"):
            raise TricoError(f"unquantized dtype must be bf16 or fp16, got {self.dtype!r}")

    @property
    def name(self) -> str:
        """The dtype name."""
        return self.dtype

    weight_bits: float = 16.0
    group_size: int = 0
    act_bits: int = 16
    kv_bits: int = 16
    quantize_head: bool = False

    def bits_per_weight(self, in_features: int) -> float:
        """16 bits, no scales."""
        return 16.0


# Format names used by benchmarks/decode.py (--formats) and the registry names they stand for.
BENCH_FORMATS: dict[str, str] = {
    "int8": "int8",
    "int4-g128": "int4-rtn-g128",
    "int3-g128": "int3-rtn-g128",
    # benchmarks/decode.py builds ternary layers with one scale per tensor.
    "tern2": "ternary-pt",
    "tern1.6": "ternary-pt-b3",
    "w8a8": "w8a8",
}


def _registry_parse(name: str) -> SchemeLike:
    try:
        import trico.quant as quant
    except ImportError as exc:  # pragma: no cover - the package ships with trico
        raise TricoError("trico.quant is not importable; cannot resolve scheme names") from exc
    parse = getattr(quant, "parse_scheme", None)
    if parse is None:
        from trico.quant import schemes

        parse = schemes.parse
    return parse(name)


def resolve_scheme(spec: str | SchemeLike) -> SchemeLike:
    """A scheme object from a registry name, a benchmark format name, 'bf16'/'fp16', or a scheme itself."""
    if not isinstance(spec, str):
        if not isinstance(spec, SchemeLike):
            raise TricoError(f"not a scheme: {spec!r}")
        return spec
    key = spec.strip().lower()
    if key in ("bf16", "fp16", "none", "dense"):
        return Unquantized("fp16" if key == "fp16" else "bf16")
    return _registry_parse(BENCH_FORMATS.get(key, key))


def kernel_format(scheme: SchemeLike) -> str | None:
    """The packed-weight kernel format a scheme runs through (None for 16-bit weights)."""
    if scheme.weight_bits >= 16:
        return None
    fmt = getattr(scheme, "fmt", None)
    if fmt:
        return str(fmt)
    return "w8a8" if scheme.act_bits == 8 else f"w{scheme.weight_bits:g}"


def compute_precision(scheme: SchemeLike) -> str:
    """The tensor-core precision the scheme's matmuls run in (weights are dequantized to bf16 unless A8)."""
    if scheme.act_bits <= 4:
        return "int4"
    if scheme.act_bits <= 8:
        return str(getattr(scheme, "act_format", "int8"))
    return "fp16" if scheme.name == "fp16" else "bf16"
