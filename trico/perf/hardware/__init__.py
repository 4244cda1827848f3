"""Hardware catalog: one data file per device, every figure with its source, plus user files and what-ifs.

A device is named by its catalog name or an alias (`h100-sxm`, `h100`), by a data file of the same schema
(`--hardware-file my-gpu.json` or a path given as the name), and may carry a what-if variant after a colon:
`h100-sxm:bw=2x,flops=0.5x,mem=160,price=3.1` (a number ending in `x` multiplies the catalog figure, a bare
number replaces it, in the field's own unit).
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from trico.errors import TricoError

CATALOG_DIR = Path(__file__).resolve().parent

PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4")
"""Compute precisions a device may list a dense peak for."""

KINDS = ("gpu", "tpu", "cpu", "fpga", "other")


@dataclass(frozen=True)
class Hardware:
    """One device: capacities, datasheet peaks and prices, each with the source it came from."""

    name: str
    """Catalog name (lower case), e.g. 'h100-sxm'; a what-if carries its variant, 'h100-sxm:bw=2x'."""
    display_name: str
    """Human-readable product name."""
    kind: str
    """One of KINDS."""
    memory_GB: float
    """Device memory capacity in GB (1e9 bytes), > 0."""
    memory_bandwidth_GBps: float
    """Peak device-memory bandwidth in GB/s, > 0."""
    peak_TFLOPs: Mapping[str, float]
    """Dense peak TFLOP/s (TOP/s for integers) per precision in PRECISIONS; at least one, all > 0."""
    interconnect_GBps: float | None = None
    """Per-device bandwidth to its peers (NVLink, ICI, PCIe) in GB/s; None when not modelled."""
    tdp_W: float | None = None
    """Thermal design power in W (energy is estimated at this draw); None when unpublished."""
    price_per_hour_usd: float | None = None
    """Default rental price per device-hour in US$; None when no source was found."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Where each figure came from, keyed like the fields ('peak_TFLOPs.bf16' for peaks)."""
    aliases: tuple[str, ...] = ()
    """Other names this device answers to."""
    device_names: tuple[str, ...] = ()
    """Names the device reports to software (torch.cuda.get_device_name), to match benchmark results."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TricoError(
                f"hardware {self.name!r}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}"
            )
        for attr in ("memory_GB", "memory_bandwidth_GBps"):
            _check_positive(self.name, attr, getattr(self, attr))
        for attr in ("interconnect_GBps", "tdp_W", "price_per_hour_usd"):
            value = getattr(self, attr)
            if value is not None:
                _check_positive(self.name, attr, value)
        if not self.peak_TFLOPs:
            raise TricoError(f"hardware {self.name!r}: peak_TFLOPs needs at least one precision")
        for prec, value in self.peak_TFLOPs.items():
            if prec not in PRECISIONS:
                raise TricoError(
                    f"hardware {self.name!r}: unknown precision {prec!r} in peak_TFLOPs; known: {', '.join(PRECISIONS)}"
                )
            _check_positive(self.name, f"peak_TFLOPs.{prec}", value)
        object.__setattr__(self, "peak_TFLOPs", MappingProxyType(dict(self.peak_TFLOPs)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    def peak_flops(self, precision: str) -> float:
        """Dense peak in FLOP/s for `precision`, falling back to the next wider precision the device has."""
        order = ("int4", "int8", "fp8", "bf16", "fp16", "tf32", "fp32")
        start = order.index(precision) if precision in order else order.index("bf16")
        for prec in order[start:]:
            if prec in self.peak_TFLOPs:
                return self.peak_TFLOPs[prec] * 1e12
        # Devices listing only narrow precisions (rare) run wider math at their best listed rate.
        return max(self.peak_TFLOPs.values()) * 1e12

    def effective_precision(self, precision: str) -> str:
        """The precision whose peak `peak_flops(precision)` actually uses."""
        order = ("int4", "int8", "fp8", "bf16", "fp16", "tf32", "fp32")
        start = order.index(precision) if precision in order else order.index("bf16")
        for prec in order[start:]:
            if prec in self.peak_TFLOPs:
                return prec
        return max(self.peak_TFLOPs, key=self.peak_TFLOPs.__getitem__)

    @property
    def ridge_flop_per_byte(self) -> float:
        """Arithmetic intensity (FLOP/byte) where the bf16 roofline turns from memory- to compute-bound."""
        return self.peak_flops("bf16") / (self.memory_bandwidth_GBps * 1e9)

    def to_dict(self) -> dict:
        """JSON-friendly dict in the catalog-file schema (figures with their sources)."""

        def fig(key: str, value: float | None) -> dict:
            return {"value": value, "source": self.sources.get(key, "")}

        return {
            "name": self.name,
            "display_name": self.display_name,
            "kind": self.kind,
            "aliases": list(self.aliases),
            "device_names": list(self.device_names),
            "memory_GB": fig("memory_GB", self.memory_GB),
            "memory_bandwidth_GBps": fig("memory_bandwidth_GBps", self.memory_bandwidth_GBps),
            "peak_TFLOPs": {p: fig(f"peak_TFLOPs.{p}", v) for p, v in self.peak_TFLOPs.items()},
            "interconnect_GBps": fig("interconnect_GBps", self.interconnect_GBps),
            "tdp_W": fig("tdp_W", self.tdp_W),
            "price_per_hour_usd": fig("price_per_hour_usd", self.price_per_hour_usd),
        }


def _check_positive(name: str, attr: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise TricoError(f"hardware {name!r}: {attr} must be a finite number > 0, got {value!r}")


def _figure(data: Mapping, key: str, where: str, required: bool) -> tuple[float | None, str]:
    """Read one {"value", "source"} figure; a figure without a source is refused."""
    raw = data.get(key)
    if raw is None:
        if required:
            raise TricoError(f"{where}: missing required figure {key!r}")
        return None, ""
    if not isinstance(raw, Mapping) or "value" not in raw:
        raise TricoError(f'{where}: {key!r} must be an object {{"value": ..., "source": "..."}}')
    source = str(raw.get("source") or "").strip()
    if not source:
        raise TricoError(f"{where}: figure {key!r} has no source (every figure must say where it came from)")
    value = raw["value"]
    if value is None:
        if required:
            raise TricoError(f"{where}: figure {key!r} needs a value")
        return None, source
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TricoError(f"{where}: figure {key!r} must be a number, got {value!r}")
    return float(value), source


def hardware_from_dict(data: Mapping, where: str = "hardware file") -> Hardware:
    """Build a Hardware from a catalog-schema dict, checking that every figure carries its source."""
    if not isinstance(data, Mapping):
        raise TricoError(f"{where}: expected an object at the top level")
    name = str(data.get("name") or "").strip().lower()
    if not name or ":" in name:
        raise TricoError(f"{where}: 'name' must be a non-empty string without ':'")
    sources: dict[str, str] = {}
    values: dict[str, float | None] = {}
    for key, required in (
        ("memory_GB", True),
        ("memory_bandwidth_GBps", True),
        ("interconnect_GBps", False),
        ("tdp_W", False),
        ("price_per_hour_usd", False),
    ):
        values[key], src = _figure(data, key, where, required)
        if src:
            sources[key] = src
    peaks_raw = data.get("peak_TFLOPs")
    if not isinstance(peaks_raw, Mapping) or not peaks_raw:
        raise TricoError(f"{where}: 'peak_TFLOPs' must map precisions to figures")
    peaks: dict[str, float] = {}
    for prec in peaks_raw:
        value, src = _figure(peaks_raw, prec, f"{where}: peak_TFLOPs", True)
        peaks[str(prec)] = value  # type: ignore[assignment]
        sources[f"peak_TFLOPs.{prec}"] = src
    return Hardware(
        name=name,
        display_name=str(data.get("display_name") or name),
        kind=str(data.get("kind") or "other"),
        memory_GB=values["memory_GB"],  # type: ignore[arg-type]
        memory_bandwidth_GBps=values["memory_bandwidth_GBps"],  # type: ignore[arg-type]
        peak_TFLOPs=peaks,
        interconnect_GBps=values["interconnect_GBps"],
        tdp_W=values["tdp_W"],
        price_per_hour_usd=values["price_per_hour_usd"],
        sources=sources,
        aliases=tuple(str(a).lower() for a in data.get("aliases", ())),
        device_names=tuple(str(a) for a in data.get("device_names", ())),
    )


def load_hardware_file(path: str | Path) -> Hardware:
    """Read one device file (.json, or .toml on Python >= 3.11) in the catalog schema."""
    path = Path(path)
    if not path.is_file():
        raise TricoError(f"{path}: no such hardware file")
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError as exc:  # Python 3.10 has no TOML reader in the standard library
                raise TricoError(f"{path}: TOML hardware files need Python >= 3.11; use JSON") from exc
            data = tomllib.loads(path.read_text())
        else:
            data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise TricoError(f"{path}: not a valid hardware file ({exc})") from exc
    return hardware_from_dict(data, where=str(path))


@lru_cache(maxsize=1)
def _catalog() -> dict[str, Hardware]:
    devices: dict[str, Hardware] = {}
    for path in sorted(CATALOG_DIR.glob("*.json")):
        hw = load_hardware_file(path)
        if hw.name != path.stem:
            raise TricoError(f"{path}: device name {hw.name!r} must match the file name")
        devices[hw.name] = hw
    return devices


def catalog() -> dict[str, Hardware]:
    """Every device shipped in trico/perf/hardware/, by name."""
    return dict(_catalog())


def _lookup_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for hw in _catalog().values():
        table[hw.name] = hw.name
        for alias in hw.aliases:
            table.setdefault(alias, hw.name)
    return table


# What-if keys: the field each one changes and the unit a bare number is read in.
_VARIANT_KEYS: dict[str, tuple[str, str]] = {
    "bw": ("memory_bandwidth_GBps", "GB/s"),
    "mem": ("memory_GB", "GB"),
    "flops": ("peak_TFLOPs", "TFLOP/s (all precisions)"),
    "ic": ("interconnect_GBps", "GB/s"),
    "tdp": ("tdp_W", "W"),
    "price": ("price_per_hour_usd", "$/hour"),
}


def apply_variant(hw: Hardware, variant: str) -> Hardware:
    """A what-if copy of `hw`: 'bw=2x,mem=160' scales (x suffix) or replaces figures; sources say so."""
    changes: dict[str, object] = {}
    sources = dict(hw.sources)
    for item in filter(None, (part.strip() for part in variant.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in _VARIANT_KEYS:
            raise TricoError(
                f"bad hardware variant {item!r}: use KEY=VALUE with KEY in {', '.join(_VARIANT_KEYS)} "
                "(e.g. 'h100-sxm:bw=2x' or 'h100-sxm:price=3.1')"
            )
        raw = raw.strip().lower()
        scale = raw.endswith("x")
        try:
            number = float(raw[:-1] if scale else raw)
        except ValueError:
            raise TricoError(f"bad hardware variant {item!r}: {raw!r} is not a number") from None
        if not math.isfinite(number) or number <= 0:
            raise TricoError(f"bad hardware variant {item!r}: the value must be a finite number > 0")
        attr, unit = _VARIANT_KEYS[key]
        note = f"what-if: {number:g}x the catalog figure" if scale else f"what-if: set to {number:g} {unit}"
        if attr == "peak_TFLOPs":
            if not scale:
                raise TricoError(
                    f"bad hardware variant {item!r}: flops takes a multiplier such as 'flops=2x'"
                )
            changes[attr] = {p: v * number for p, v in hw.peak_TFLOPs.items()}
            for prec in hw.peak_TFLOPs:
                sources[f"peak_TFLOPs.{prec}"] = f"{note} ({hw.sources.get(f'peak_TFLOPs.{prec}', '')})"
            continue
        base = getattr(hw, attr)
        if scale and base is None:
            raise TricoError(
                f"bad hardware variant {item!r}: {hw.name} has no {attr} figure to scale; give a value"
            )
        changes[attr] = base * number if scale else number
        sources[attr] = f"{note} ({hw.sources.get(attr, '')})" if scale else note
    if not changes:
        raise TricoError(f"empty hardware variant after ':' in {hw.name}:{variant}")
    return replace(hw, name=f"{hw.name}:{variant}", sources=sources, **changes)  # type: ignore[arg-type]


def get_hardware(spec: str | Hardware) -> Hardware:
    """Resolve a device: catalog name/alias, optional ':variant', or a path to a device file."""
    if isinstance(spec, Hardware):
        return spec
    text = str(spec).strip()
    base, _, variant = text.partition(":")
    path = Path(base).expanduser()
    if base.lower().endswith((".json", ".toml")) or path.is_file():
        hw = load_hardware_file(path)
    else:
        table = _lookup_table()
        key = base.lower()
        if key not in table:
            close = difflib.get_close_matches(key, table, n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(dict.fromkeys(table[c] for c in close))}?)" if close else ""
            raise TricoError(f"unknown hardware {base!r}{hint}; known: {', '.join(sorted(_catalog()))}")
        hw = _catalog()[table[key]]
    return apply_variant(hw, variant) if variant else hw


def hardware_for_device_name(device_name: str) -> Hardware | None:
    """The catalog device whose reported name matches `device_name` (as in benchmark results), if any."""
    wanted = device_name.strip().lower()
    for hw in _catalog().values():
        if any(wanted == n.lower() for n in hw.device_names):
            return hw
    return None
