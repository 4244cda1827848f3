"""Quantization schemes: frozen dataclasses registered by name family, parsed from strings like 'int4-awq-g128'.

Grammar (canonical names round-trip through `parse`):
- weight-only integers: `int8` (per output channel, RTN) or `int{2,3,4,8}-{rtn,awq,gptq}-g{32,64,128,...|pc}`
  with optional suffixes `-asym` (scale + min), `-act` (GPTQ act-order), `-am` (GPTQ weights each token in
  the q/k/v Hessian by the attention it receives), `-awq` (GPTQ on weights first
  scaled by AWQ's activation-aware search, folded into the op before), `-fit` (layers whose in_features
  the group size does not divide use the largest divisor below it), `-head` (quantize lm_head too);
- SmoothQuant W8A8: `w8a8` (naive, alpha = 0) and `w8a8-smooth` (alpha 0.5) or `w8a8-smooth-a0.8`;
- ternary b1.58: `ternary-g128`, `ternary-pc` (per channel), `ternary-pt` (per tensor); `-b3` stores
  5 trits per byte (1.6 bits) instead of 4 per byte;
- `kv-int8`: only the KV cache is quantized. Every weight scheme also takes `-kv8`.

Every scheme exposes name, weight_bits, group_size (> 0 a group, 0 per channel, -1 per tensor), act_bits,
kv_bits and bits_per_weight(in_features), which the performance model reads by duck typing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from trico.errors import TricoError

METHODS_INT = ("rtn", "awq", "gptq")
SCALE_BITS = 16  # scales, mins and smoothing vectors are fp16

_FAMILIES: list[Callable[[str], Scheme | None]] = []


def register_family(parser: Callable[[str], Scheme | None]) -> Callable[[str], Scheme | None]:
    """Register a name parser (returns a Scheme or None when the name is not of its family)."""
    _FAMILIES.append(parser)
    return parser


def largest_divisor_at_most(k: int, limit: int, multiple: int = 1) -> int:
    """The largest g <= limit dividing k with g % multiple == 0 (0 if there is none)."""
    for g in range(min(limit, k), 0, -1):
        if k % g == 0 and g % multiple == 0:
            return g
    return 0


@dataclass(frozen=True)
class Scheme:
    """Base of every scheme: what is quantized and how many bits it costs."""

    kv_bits: int = 16
    """Bits per KV-cache element (16 = not quantized, 8 = INT8 per token and head)."""
    quantize_head: bool = False
    """Quantize lm_head too (the embedding table always stays in high precision)."""
    method: str = field(default="none", init=False)
    """Key of the quantization method in trico.quant.api.METHODS."""

    @property
    def weight_bits(self) -> float:
        """Bits of one weight code (16 when weights are not quantized)."""
        return 16.0

    @property
    def group_size(self) -> int:
        """Scale group along K: > 0 a group, 0 per output channel, -1 per tensor."""
        return 0

    @property
    def act_bits(self) -> int:
        """Bits of the activations fed to the matmuls (16 or 8)."""
        return 16

    @property
    def name(self) -> str:
        """Canonical name; parse(name) gives this scheme back."""
        raise NotImplementedError

    def layer_group(self, in_features: int) -> int:
        """Group size used on a layer with this many input features (in_features for per channel)."""
        return in_features

    def bits_per_weight(self, in_features: int) -> float:
        """Stored bits per weight of one quantized linear layer, scales and mins included."""
        return 16.0

    def _suffix(self) -> str:
        return ("-head" if self.quantize_head else "") + ("-kv8" if self.kv_bits == 8 else "")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class IntScheme(Scheme):
    """Weight-only integer quantization (W{bits}A16), group-wise, by RTN, AWQ or GPTQ."""

    bits: int = 4
    """Bits per weight code: 2, 3, 4 or 8."""
    algo: str = "rtn"
    """'rtn', 'awq' or 'gptq'."""
    group: int = 128
    """Group size along K (0 = per output channel)."""
    symmetric: bool = True
    """Symmetric codes (W = s (u - 2^(b-1))) or scale + min (W = s u + m)."""
    act_order: bool = False
    """GPTQ: process columns by decreasing Hessian diagonal (groups stay contiguous in K)."""
    fit_groups: bool = False
    """Layers whose in_features the group does not divide use the largest divisor below it."""
    damp: float = 0.01
    """GPTQ: damping added to the Hessian diagonal, as a fraction of its mean (> 0)."""
    awq_scale: bool = False
    """GPTQ: first apply AWQ's per-input-channel scale search (folded into the op before), then GPTQ."""
    attn_mass: bool = False
    """GPTQ: weight each calibration token's term in the q/k/v Hessian by the attention mass it receives."""

    def __post_init__(self) -> None:
        if self.bits not in (2, 3, 4, 8):
            raise TricoError(f"integer schemes take 2, 3, 4 or 8 bits, not {self.bits}")
        if self.algo not in METHODS_INT:
            raise TricoError(f"unknown method {self.algo!r}; known: {', '.join(METHODS_INT)}")
        if self.group < 0 or (self.group and self.group % 8):
            raise TricoError(
                f"group size must be a positive multiple of 8 (or per channel), got {self.group}"
            )
        if not 0 < self.damp < 1:
            raise TricoError(f"GPTQ damping must be in (0, 1), got {self.damp}")
        if (self.act_order or self.awq_scale or self.attn_mass) and self.algo != "gptq":
            raise TricoError("the -act, -am and -awq options belong to GPTQ schemes (int<b>-gptq-...)")
        object.__setattr__(self, "method", self.algo)

    @property
    def weight_bits(self) -> float:
        """Bits of one weight code."""
        return float(self.bits)

    @property
    def group_size(self) -> int:
        """Scale group along K (0 = per output channel)."""
        return self.group

    @property
    def fmt(self) -> str:
        """QLinear format: int8 for symmetric 8-bit, uint{bits} otherwise."""
        return "int8" if self.bits == 8 and self.symmetric else f"uint{self.bits}"

    @property
    def name(self) -> str:
        """Canonical name, e.g. int4-gptq-g128-act."""
        if (
            self.bits == 8
            and self.algo == "rtn"
            and self.group == 0
            and self.symmetric
            and not self.act_order
        ):
            base = "int8"
        else:
            base = f"int{self.bits}-{self.algo}-" + (f"g{self.group}" if self.group else "pc")
            base += ("" if self.symmetric else "-asym") + ("-act" if self.act_order else "")
            base += ("-am" if self.attn_mass else "") + ("-awq" if self.awq_scale else "")
        base += "-fit" if self.fit_groups else ""
        return base + self._suffix()

    def layer_group(self, in_features: int) -> int:
        """Group size on a layer: the scheme's group, its largest divisor with -fit, or in_features."""
        if self.group == 0:
            return in_features
        if in_features % self.group == 0 or not self.fit_groups:
            return self.group
        return largest_divisor_at_most(in_features, self.group, 8)

    def bits_per_weight(self, in_features: int) -> float:
        """Code bits plus one fp16 scale (and min when asymmetric) per group."""
        g = self.layer_group(in_features) or in_features
        return self.bits + SCALE_BITS * (1 if self.symmetric else 2) / g


@dataclass(frozen=True)
class SmoothQuantScheme(Scheme):
    """W8A8: int8 weights per output channel and int8 per-token activations after SmoothQuant smoothing."""

    alpha: float = 0.5
    """Migration strength in [0, 1]: s_c = max|x_c|^alpha / max|W_c|^(1-alpha); 0 is naive W8A8."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise TricoError(f"SmoothQuant alpha must be in [0, 1], got {self.alpha}")
        object.__setattr__(self, "method", "smoothquant")

    @property
    def weight_bits(self) -> float:
        """8-bit weights."""
        return 8.0

    @property
    def act_bits(self) -> int:
        """8-bit activations."""
        return 8

    @property
    def name(self) -> str:
        """w8a8, w8a8-smooth or w8a8-smooth-a<alpha>."""
        if self.alpha == 0:
            base = "w8a8"
        elif self.alpha == 0.5:
            base = "w8a8-smooth"
        else:
            base = f"w8a8-smooth-a{self.alpha:g}"
        return base + self._suffix()

    def bits_per_weight(self, in_features: int) -> float:
        """8 bits plus one fp16 scale per output channel (the [K] smoothing vector is not counted per weight)."""
        return 8 + SCALE_BITS / in_features


@dataclass(frozen=True)
class TernaryScheme(Scheme):
    """BitNet b1.58-style ternary weights t in {-1, 0, 1} with absmean scales."""

    group: int = 128
    """Group along K (> 0), 0 per output channel, -1 per tensor."""
    base3: bool = False
    """Store 5 trits per byte (1.6 bits) instead of 4 per byte (2 bits)."""
    fit_groups: bool = False
    """Layers whose in_features the group does not divide use the largest divisor below it."""

    def __post_init__(self) -> None:
        if self.group < -1:
            raise TricoError(
                f"ternary group must be > 0, 0 (per channel) or -1 (per tensor), got {self.group}"
            )
        object.__setattr__(self, "method", "ternary")

    @property
    def fmt(self) -> str:
        """QLinear format."""
        return "tern1.6" if self.base3 else "tern2"

    @property
    def weight_bits(self) -> float:
        """1.6 or 2 stored bits per trit."""
        return 1.6 if self.base3 else 2.0

    @property
    def group_size(self) -> int:
        """Scale group along K (0 per channel, -1 per tensor)."""
        return self.group

    @property
    def name(self) -> str:
        """ternary-g128, ternary-pc or ternary-pt, plus -b3 for base-3 packing."""
        gran = {0: "pc", -1: "pt"}.get(self.group, f"g{self.group}")
        return (
            f"ternary-{gran}"
            + ("-fit" if self.fit_groups else "")
            + ("-b3" if self.base3 else "")
            + self._suffix()
        )

    def layer_group(self, in_features: int) -> int:
        """Group size on a layer (QLinear convention: in_features per channel, 0 per tensor)."""
        if self.group == -1:
            return 0
        if self.group == 0:
            return in_features
        if in_features % self.group == 0 or not self.fit_groups:
            return self.group
        return largest_divisor_at_most(in_features, self.group)

    def bits_per_weight(self, in_features: int) -> float:
        """Packed trit bits plus one fp16 scale per group (per-tensor scales count as zero)."""
        code_bits = 8 * -(-in_features // 5) / in_features if self.base3 else 2.0
        g = self.layer_group(in_features)
        return code_bits + (SCALE_BITS / g if g else 0.0)


@dataclass(frozen=True)
class KVOnlyScheme(Scheme):
    """Weights untouched; the KV cache is stored in INT8 (per token and head scales)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kv_bits", 8)

    @property
    def name(self) -> str:
        """kv-int8."""
        return "kv-int8" + ("-head" if self.quantize_head else "")


def _options(rest: str, allowed: tuple[str, ...]) -> dict[str, bool] | None:
    parts = [p for p in rest.split("-") if p]
    if any(p not in allowed for p in parts) or len(set(parts)) != len(parts):
        return None
    return {p: True for p in parts}


@register_family
def _parse_int(name: str) -> Scheme | None:
    if name == "int8" or name.startswith("int8-kv8") or name.startswith("int8-head"):
        opts = _options(name[4:], ("head", "kv8"))
        if opts is None:
            return None
        return IntScheme(
            bits=8, algo="rtn", group=0, quantize_head="head" in opts, kv_bits=8 if "kv8" in opts else 16
        )
    m = re.fullmatch(r"int([2348])-(rtn|awq|gptq)-(?:g(\d+)|pc)((?:-[a-z0-9]+)*)", name)
    if not m:
        return None
    opts = _options(m.group(4), ("asym", "act", "am", "awq", "fit", "head", "kv8"))
    if opts is None:
        return None
    return IntScheme(
        bits=int(m.group(1)),
        algo=m.group(2),
        group=int(m.group(3) or 0),
        symmetric="asym" not in opts,
        act_order="act" in opts,
        attn_mass="am" in opts,
        awq_scale="awq" in opts,
        fit_groups="fit" in opts,
        quantize_head="head" in opts,
        kv_bits=8 if "kv8" in opts else 16,
    )


@register_family
def _parse_w8a8(name: str) -> Scheme | None:
    m = re.fullmatch(r"w8a8(-smooth(?:-a([0-9.]+))?)?((?:-[a-z0-9]+)*)", name)
    if not m:
        return None
    opts = _options(m.group(3), ("head", "kv8"))
    if opts is None:
        return None
    try:
        alpha = float(m.group(2)) if m.group(2) else (0.5 if m.group(1) else 0.0)
    except ValueError:
        return None
    return SmoothQuantScheme(alpha=alpha, quantize_head="head" in opts, kv_bits=8 if "kv8" in opts else 16)


@register_family
def _parse_ternary(name: str) -> Scheme | None:
    m = re.fullmatch(r"ternary-(?:g(\d+)|(pc)|(pt))((?:-[a-z0-9]+)*)", name)
    if not m:
        return None
    opts = _options(m.group(4), ("fit", "b3", "head", "kv8"))
    if opts is None:
        return None
    group = int(m.group(1)) if m.group(1) else (0 if m.group(2) else -1)
    if m.group(1) and group == 0:
        return None
    return TernaryScheme(
        group=group,
        base3="b3" in opts,
        fit_groups="fit" in opts,
        quantize_head="head" in opts,
        kv_bits=8 if "kv8" in opts else 16,
    )


@register_family
def _parse_kv(name: str) -> Scheme | None:
    if name == "kv-int8":
        return KVOnlyScheme()
    return None


# Named schemes shown by `list_schemes()` and in the unknown-scheme error (the grammar allows more).
NAMED_SCHEMES: tuple[str, ...] = (
    "int8",
    "w8a8",
    "w8a8-smooth",
    "int4-rtn-g32-asym",
    "int4-rtn-g64",
    "int4-rtn-g128-fit",
    "int4-awq-g128-fit",
    "int4-gptq-g128-fit",
    "int4-gptq-g128-act-am-fit",
    "int4-gptq-g128-act-awq-fit",
    "int8-gptq-pc-act-awq",
    "int3-rtn-g128-fit",
    "int3-awq-g128-fit",
    "int3-gptq-g128-fit",
    "int2-gptq-g64",
    "ternary-g128-fit",
    "ternary-pc",
    "ternary-pt",
    "kv-int8",
)


def list_schemes() -> list[str]:
    """Canonical names of the named schemes (every one parses; the grammar in this module allows more)."""
    return list(NAMED_SCHEMES)


def parse(name: str | Scheme) -> Scheme:
    """Parse a scheme name (or pass a Scheme through); an unknown name lists the valid ones."""
    if isinstance(name, Scheme):
        return name
    key = name.strip().lower()
    for family in _FAMILIES:
        scheme = family(key)
        if scheme is not None:
            return scheme
    close = difflib.get_close_matches(key, NAMED_SCHEMES, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise TricoError(
        f"unknown quantization scheme {name!r}{hint}; valid: {', '.join(NAMED_SCHEMES)} "
        "(grammar: int{2,3,4,8}-{rtn,awq,gptq}-g<N>|pc[-asym][-act][-am][-awq][-fit], w8a8[-smooth[-a<alpha>]], "
        "ternary-g<N>|pc|pt[-b3], kv-int8; any with -head, -kv8)"
    )
