"""Hardware catalog: sourced figures, user files, what-if variants, clear errors."""

import json

import pytest

from trico.errors import TricoError
from trico.perf.hardware import (
    PRECISIONS,
    apply_variant,
    catalog,
    get_hardware,
    hardware_for_device_name,
    load_hardware_file,
)

REQUIRED = [
    "h100-sxm",
    "h100-pcie",
    "h200",
    "a100-40gb",
    "a100-80gb",
    "l4",
    "l40s",
    "mi300x",
    "tpu-v5e",
    "epyc-9654",
]


def test_catalog_has_the_required_devices_and_every_figure_has_a_source():
    devices = catalog()
    assert set(REQUIRED) <= set(devices)
    assert {d.kind for d in devices.values()} >= {"gpu", "tpu", "cpu"}
    for hw in devices.values():
        for key in ("memory_GB", "memory_bandwidth_GBps"):
            assert hw.sources.get(key), (hw.name, key)
        for prec in hw.peak_TFLOPs:
            assert prec in PRECISIONS
            assert hw.sources.get(f"peak_TFLOPs.{prec}"), (hw.name, prec)
        for key in ("interconnect_GBps", "tdp_W", "price_per_hour_usd"):
            # A missing figure still says why it is missing.
            assert hw.sources.get(key), (hw.name, key)


def test_datasheet_figures_are_dense_and_consistent():
    h100 = get_hardware("h100-sxm")
    assert h100.memory_bandwidth_GBps == 3350
    assert h100.peak_TFLOPs["bf16"] == pytest.approx(989.5)
    assert h100.peak_TFLOPs["fp8"] == pytest.approx(2 * h100.peak_TFLOPs["bf16"])
    # H200 = H100 compute with more, faster memory.
    h200 = get_hardware("h200")
    assert h200.peak_TFLOPs["bf16"] == h100.peak_TFLOPs["bf16"]
    assert h200.memory_bandwidth_GBps > h100.memory_bandwidth_GBps and h200.memory_GB > h100.memory_GB


def test_aliases_and_case_resolve():
    assert get_hardware("H100").name == "h100-sxm"
    assert get_hardware("v5e").name == "tpu-v5e"


def test_unknown_device_suggests_close_names():
    with pytest.raises(TricoError, match=r"did you mean h100-sxm"):
        get_hardware("h100-sxn")
    with pytest.raises(TricoError, match="known: a100-40gb"):
        get_hardware("quantum-9000")


def test_what_if_variant_scales_or_sets_and_records_it():
    base = get_hardware("h100-sxm")
    v = get_hardware("h100-sxm:bw=2x,price=3.5")
    assert v.memory_bandwidth_GBps == 2 * base.memory_bandwidth_GBps
    assert v.price_per_hour_usd == 3.5
    assert v.peak_TFLOPs == base.peak_TFLOPs
    assert "what-if" in v.sources["memory_bandwidth_GBps"]
    f = apply_variant(base, "flops=0.5x")
    assert f.peak_TFLOPs["bf16"] == pytest.approx(base.peak_TFLOPs["bf16"] / 2)


@pytest.mark.parametrize("variant", ["bw=-2x", "bw=abc", "speed=2x", "flops=100", "bw"])
def test_bad_variants_are_refused(variant):
    with pytest.raises(TricoError, match="variant"):
        get_hardware(f"h100-sxm:{variant}")


def _device(**over):
    d = {
        "name": "my-npu",
        "kind": "other",
        "memory_GB": {"value": 32, "source": "my datasheet p.1"},
        "memory_bandwidth_GBps": {"value": 1000, "source": "my datasheet p.1"},
        "peak_TFLOPs": {"bf16": {"value": 200, "source": "my datasheet p.2"}},
    }
    d.update(over)
    return d


def test_user_device_file_json_and_toml(tmp_path):
    p = tmp_path / "npu.json"
    p.write_text(json.dumps(_device()))
    hw = get_hardware(str(p))
    assert hw.name == "my-npu" and hw.peak_flops("bf16") == 200e12
    # Narrower precisions it does not list fall back to the next wider one it has.
    assert hw.peak_flops("int4") == 200e12
    assert get_hardware(f"{p}:bw=2x").memory_bandwidth_GBps == 2000
    t = tmp_path / "npu.toml"
    t.write_text(
        'name = "toml-npu"\nkind = "other"\n'
        'memory_GB = { value = 16, source = "x" }\nmemory_bandwidth_GBps = { value = 500, source = "x" }\n'
        '[peak_TFLOPs]\nint8 = { value = 100, source = "x" }\n'
    )
    assert load_hardware_file(t).memory_GB == 16


@pytest.mark.parametrize(
    "change, match",
    [
        ({"memory_GB": {"value": 32}}, "no source"),
        ({"memory_GB": {"value": -1, "source": "s"}}, "> 0"),
        ({"memory_bandwidth_GBps": {"value": "fast", "source": "s"}}, "must be a number"),
        ({"peak_TFLOPs": {"bf17": {"value": 1, "source": "s"}}}, "unknown precision"),
        ({"kind": "toaster"}, "kind must be"),
    ],
)
def test_bad_device_files_give_clear_errors(tmp_path, change, match):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(_device(**change)))
    with pytest.raises(TricoError, match=match):
        load_hardware_file(p)


def test_corrupt_and_missing_files(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(TricoError, match="not a valid hardware file"):
        load_hardware_file(p)
    with pytest.raises(TricoError, match="no such hardware file"):
        load_hardware_file(tmp_path / "missing.json")


def test_benchmark_device_names_map_to_catalog():
    assert hardware_for_device_name("NVIDIA H100 80GB HBM3").name == "h100-sxm"
    assert hardware_for_device_name("NVIDIA H200").name == "h200"
    assert hardware_for_device_name("cpu") is None
