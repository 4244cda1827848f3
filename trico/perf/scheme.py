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
    if "+" in key:
        return _parse_per_layer(key)
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


@dataclass(frozen=True)
class PerLayerScheme:
    """A base scheme with some decoder layers stored differently (e.g. first and last layers in int8).

    Exposes the base scheme's interface (name, bits, KV and activation bits come from the base); the
    performance model asks `layer_groups(n_layers)` for how many layers run each scheme.
    """

    base: SchemeLike
    """Scheme of every layer not overridden."""
    overrides: tuple[tuple[int, SchemeLike], ...] = ()
    """(layer index, scheme) pairs."""

    def __post_init__(self) -> None:
        seen = set()
        for idx, _ in self.overrides:
            if not isinstance(idx, int) or idx < 0 or idx in seen:
                raise TricoError(
                    f"per-layer scheme: layer indices must be distinct integers >= 0, got {idx!r}"
                )
            seen.add(idx)

    @classmethod
    def parse(cls, base: str | SchemeLike, overrides: dict[int, str | SchemeLike]) -> PerLayerScheme:
        """Build from names: PerLayerScheme.parse('int4-g128', {0: 'int8', 31: 'int8'})."""
        return cls(
            resolve_scheme(base), tuple(sorted((int(i), resolve_scheme(s)) for i, s in overrides.items()))
        )

    @property
    def name(self) -> str:
        """Base name plus the overridden layers, e.g. 'int4-rtn-g128+L0/31:int8' (no commas: CLI lists use them)."""
        by: dict[str, list[int]] = {}
        for idx, s in self.overrides:
            by.setdefault(s.name, []).append(idx)
        extra = ";".join(f"L{'/'.join(map(str, idxs))}:{n}" for n, idxs in by.items())
        return self.base.name + (f"+{extra}" if extra else "")

    @property
    def weight_bits(self) -> float:
        """The base scheme's code bits."""
        return self.base.weight_bits

    @property
    def group_size(self) -> int:
        """The base scheme's group size."""
        return self.base.group_size

    @property
    def act_bits(self) -> int:
        """The base scheme's activation bits."""
        return self.base.act_bits

    @property
    def kv_bits(self) -> int:
        """The base scheme's KV-cache bits."""
        return self.base.kv_bits

    @property
    def quantize_head(self) -> bool:
        """Whether lm_head follows the base scheme."""
        return bool(getattr(self.base, "quantize_head", False))

    def bits_per_weight(self, in_features: int) -> float:
        """The base scheme's stored bits per weight."""
        return self.base.bits_per_weight(in_features)

    def layer_groups(self, n_layers: int) -> list[tuple[SchemeLike, int]]:
        """(scheme, number of layers) pairs covering all n_layers layers."""
        if any(idx >= n_layers for idx, _ in self.overrides):
            raise TricoError(f"per-layer scheme {self.name}: a layer index is >= n_layers={n_layers}")
        counts: dict[int, tuple[SchemeLike, int]] = {
            id(self.base): (self.base, n_layers - len(self.overrides))
        }
        for _, s in self.overrides:
            prev = counts.get(id(s), (s, 0))
            counts[id(s)] = (s, prev[1] + 1)
        return [(s, n) for s, n in counts.values() if n > 0]


def layer_groups(scheme: SchemeLike, n_layers: int) -> list[tuple[SchemeLike, int]]:
    """How many decoder layers run each scheme (one group unless the scheme is per-layer)."""
    groups = getattr(scheme, "layer_groups", None)
    return groups(n_layers) if callable(groups) else [(scheme, n_layers)]


def _parse_per_layer(text: str) -> PerLayerScheme:
    """'int4-g128+L0/31:int8;L5:int3-g128' (the form PerLayerScheme.name prints) -> PerLayerScheme."""
    base, _, rest = text.partition("+")
    overrides: dict[int, str] = {}
    for part in filter(None, rest.split(";")):
        layers, sep, name = part.partition(":")
        if not sep or not layers.startswith("l") or not name:
            raise TricoError(f"bad per-layer scheme {text!r}: write BASE+L<i>/<j>:SCHEME[;L<k>:SCHEME]")
        try:
            idxs = [int(i) for i in layers[1:].split("/")]
        except ValueError:
            raise TricoError(f"bad per-layer scheme {text!r}: layer indices must be integers") from None
        for i in idxs:
            if i in overrides:
                raise TricoError(f"bad per-layer scheme {text!r}: layer {i} is given twice")
            overrides[i] = name
    if not overrides:
        raise TricoError(f"bad per-layer scheme {text!r}: no layer overrides after '+'")
    return PerLayerScheme.parse(base, overrides)
