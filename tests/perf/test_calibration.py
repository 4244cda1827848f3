"""Calibration: reading benchmark result files and recovering known efficiency factors."""

import json

import pytest

from trico.config import get_config
from trico.errors import TricoError
from trico.perf.calibration import Measurement, fit, for_hardware, load_measurements, mape, predict
from trico.perf.efficiency import Efficiency, load_efficiency
from trico.perf.hardware import get_hardware
from trico.perf.scheme import resolve_scheme

H100 = get_hardware("h100-sxm")
GPU = "NVIDIA H100 80GB HBM3"


def _synthetic(true: Efficiency) -> list[Measurement]:
    out = []
    cfg = get_config("llama-2-7b")
    for fmt in ("bf16", "int4-g128"):
        for batch in (1, 64):
            for ctx in (128, 2048):
                m = Measurement(cfg, resolve_scheme(fmt), batch, ctx, 2048, 1.0, None, GPU, "synthetic")
                tpot, _ = predict(m, H100, true)
                out.append(Measurement(cfg, m.scheme, batch, ctx, 2048, tpot, None, GPU, "synthetic"))
        m = Measurement(cfg, resolve_scheme(fmt), 1, 2048, 2048, None, 1.0, GPU, "synthetic")
        out.append(
            Measurement(cfg, m.scheme, 1, 2048, 2048, None, predict(m, H100, true)[1], GPU, "synthetic")
        )
    return out


def test_fit_recovers_known_factors():
    true = Efficiency(
        bw=0.82, bw_half_MB=1.5, flops=0.6, launch_us=3.0, gemv_ps={"uint4": 2.0}, mma_ps={"uint4": 3.0}
    )
    result = fit(_synthetic(true), H100)
    eff = result.efficiency
    assert eff.bw == pytest.approx(true.bw, rel=0.02)
    assert eff.flops == pytest.approx(true.flops, rel=0.05)
    # Launch overhead trades off against the bf16 kernel costs on this little data; predictions must match.
    assert eff.launch_us > 0
    assert result.tpot_mape < 0.5 and result.ttft_mape < 0.5
    assert "synthetic" in eff.source and eff.calibrated


def test_fit_needs_enough_data():
    with pytest.raises(TricoError, match="at least 4"):
        fit(_synthetic(Efficiency())[:2], H100)


def test_mape():
    assert mape([(110, 100), (90, 100), (None, 5)]) == pytest.approx(10.0)
    assert mape([]) is None


def _records():
    env = {"gpu": GPU, "copy_GBps": 3000.0}
    return [
        {
            "bench": "decode",
            "model": "llama-2-7b",
            "scheme": "int4-g128",
            "batch": 4,
            "prompt": 128,
            "context": 2048,
            "new_tokens": 256,
            "ms_per_token": 3.5,
            "tok_s": 1142.0,
            **env,
        },
        {
            "bench": "prefill",
            "model": "llama-2-7b",
            "scheme": "bf16",
            "batch": 1,
            "prompt": 2048,
            "context": 2048,
            "new_tokens": 0,
            "ttft_ms": 40.0,
            **env,
        },
        {
            "bench": "decode",
            "model": "tiny",
            "scheme": "bf16",
            "batch": 1,
            "prompt": 16,
            "ms_per_token": 1.0,
            **env,
        },
        {
            "bench": "decode",
            "model": "llama-2-7b",
            "scheme": "bf16",
            "batch": 1,
            "prompt": 128,
            "ms_per_token": 7.0,
            "gpu": "NVIDIA A100-SXM4-80GB",
        },
        {"bench": "decode", "model": "llama-2-7b", "scheme": "bf16", "batch": 1, "error": "OOM"},
    ]


def test_load_measurements_reads_bench_records(tmp_path):
    p = tmp_path / "decode-h100.json"
    p.write_text(json.dumps(_records()))
    ms = load_measurements([p])
    assert len(ms) == 3  # the 'tiny' shape and the failed run are skipped
    dec = ms[0]
    assert dec.scheme.name == "int4-rtn-g128" and dec.batch == 4
    assert dec.context == 2048 + 128  # mean position of the 256 timed steps
    assert dec.tpot_s == pytest.approx(3.5e-3) and dec.ttft_s is None
    pre = ms[1]
    assert pre.ttft_s == pytest.approx(0.04) and pre.tpot_s is None and pre.prefill_tokens == 2048
    assert len(for_hardware(ms, H100)) == 2
    assert len(for_hardware(ms, get_hardware("a100-80gb"))) == 1


def test_unreadable_results_are_clear_errors(tmp_path):
    p = tmp_path / "r.json"
    p.write_text("[{]")
    with pytest.raises(TricoError, match="cannot read benchmark results"):
        load_measurements([p])
    p.write_text('"just a string"')
    with pytest.raises(TricoError, match="expected a list"):
        load_measurements([p])


def test_stored_calibration_round_trips(tmp_path):
    eff = Efficiency(bw=0.9, flops=0.7, launch_us=2.0, gemv_ps={"uint4": 1.0}, source="test fit")
    (tmp_path / "h100-sxm.json").write_text(json.dumps({"efficiency": eff.to_dict()}))
    got = load_efficiency("h100-sxm:bw=2x", tmp_path)
    assert got == eff
    assert load_efficiency("l4", tmp_path) is None


def test_shipped_h100_fit_is_loaded_with_its_provenance():
    eff = load_efficiency("h100-sxm")
    assert eff is not None and eff.calibrated
    assert "perf-fit-h100.json" in eff.source
    # Every benchmarked weight format has its kernel costs.
    for fmt in ("int8", "uint4", "uint3", "tern2", "tern1.6"):
        assert fmt in eff.gemv_ps and fmt in eff.mma_ps and fmt in eff.prefill_dequant_ps
    assert 0.5 < eff.bw <= 1.0 and 0.3 < eff.flops <= 1.0


def test_fused_kernel_row_limit_matches_the_engine():
    dispatch = pytest.importorskip("trico.kernels.dispatch")
    assert Efficiency().fused_max_rows == dispatch.DECODE_MAX_ROWS
