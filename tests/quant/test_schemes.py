"""Scheme names parse to frozen dataclasses and round-trip; bits per weight are computed; bad names list valid ones."""

import dataclasses

import pytest

from trico.errors import TricoError
from trico.quant import list_schemes, parse
from trico.quant.schemes import IntScheme, SmoothQuantScheme, TernaryScheme


@pytest.mark.parametrize(
    "name",
    [
        *list_schemes(),
        "int8-kv8",
        "int4-gptq-g128-asym-act",
        "int4-gptq-g128-act-awq-fit",
        "int2-rtn-pc",
        "int3-awq-g64-head",
        "w8a8-smooth-a0.8",
        "ternary-g64-b3",
        "ternary-pt-b3-kv8",
    ],
)
def test_names_round_trip(name: str) -> None:
    scheme = parse(name)
    assert scheme.name == name
    assert parse(scheme.name) == scheme
    for attr in ("weight_bits", "group_size", "act_bits", "kv_bits"):
        assert getattr(scheme, attr) is not None
    assert 1.5 < scheme.bits_per_weight(576) <= 16


def test_schemes_are_frozen_and_fields_right() -> None:
    s = parse("int4-awq-g128")
    assert isinstance(s, IntScheme) and (s.bits, s.algo, s.group, s.symmetric) == (4, "awq", 128, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.bits = 3  # type: ignore[misc]
    assert parse("w8a8") == SmoothQuantScheme(alpha=0.0)
    assert parse("w8a8-smooth").alpha == 0.5 and parse("w8a8-smooth").act_bits == 8
    assert parse("ternary-pt") == TernaryScheme(group=-1)
    assert parse("kv-int8").kv_bits == 8 and parse("kv-int8").weight_bits == 16


def test_bits_per_weight_counts_scales_and_mins() -> None:
    assert parse("int4-rtn-g128").bits_per_weight(4096) == 4 + 16 / 128
    assert parse("int4-rtn-g32-asym").bits_per_weight(4096) == 4 + 32 / 32
    assert parse("int8").bits_per_weight(576) == 8 + 16 / 576
    assert parse("int3-gptq-g128-fit").bits_per_weight(576) == 3 + 16 / 96  # 128 does not divide 576
    assert parse("ternary-g128-b3").bits_per_weight(1280) == 8 * 256 / 1280 + 16 / 128
    assert parse("ternary-pt").bits_per_weight(1024) == 2.0


@pytest.mark.parametrize(
    "bad", ["int5", "int4-rtn", "int4-foo-g128", "int4-rtn-g128-asym-asym", "ternary-g0", ""]
)
def test_unknown_scheme_lists_valid_ones(bad: str) -> None:
    with pytest.raises(TricoError, match="valid: int8, w8a8"):
        parse(bad)


def test_invalid_fields_are_refused() -> None:
    with pytest.raises(TricoError, match="multiple of 8"):
        parse("int4-rtn-g12")
    with pytest.raises(TricoError, match="alpha"):
        parse("w8a8-smooth-a1.5")


def test_gptq_options_are_refused_on_other_methods() -> None:
    assert parse("int4-gptq-g64-awq").awq_scale and not parse("int4-gptq-g64").awq_scale
    for name in ("int4-rtn-g64-awq", "int4-awq-g64-act"):
        with pytest.raises(TricoError, match="belong to GPTQ"):
            parse(name)
