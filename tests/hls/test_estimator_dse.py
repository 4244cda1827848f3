"""Estimator, FPGA parts and design-space exploration."""

from __future__ import annotations

import time

import pytest

from trico.errors import TricoError
from trico.hls.design import trace_layer
from trico.hls.dse import WEIGHT_CHOICES, explore, variant
from trico.hls.estimator import estimate_graph, mult_cost
from trico.hls.parts import get_part, load_parts
from trico.hls.passes import HlsOptions
from trico.hls.report import write_dse_report
from trico.hls.workload import capture_decode_steps


def test_parts_have_published_counts_and_sources() -> None:
    parts = load_parts()
    assert {"u280", "u55c", "zcu102", "zynq7020"} <= set(parts)
    for p in parts.values():
        assert p.dsp > 0 and p.lut > 0 and p.bram36 > 0 and p.mem_bw_gbs > 0 and p.source
    assert get_part("Alveo-U280").key == "u280"
    with pytest.raises(TricoError, match=r"unknown FPGA part 'u250'.*u280"):
        get_part("u250")


@pytest.fixture(scope="module")
def tiny_base(tiny_model):  # noqa: ANN001, ANN201
    samples, _ = capture_decode_steps(tiny_model, list(range(5, 25)), 0, n_steps=2)
    return trace_layer(tiny_model.model.layers[0], tiny_model.config, samples, 64)


def _est(base, weights: str, precision: str, unroll: int, part: str = "u280"):  # noqa: ANN001, ANN202
    g = variant(base, WEIGHT_CHOICES[weights], HlsOptions(precision=precision, unroll=unroll, max_ctx=64))
    return estimate_graph(g, part, n_layers=2)


def test_unroll_trades_cycles_for_dsp(tiny_base) -> None:  # noqa: ANN001
    lo, hi = _est(tiny_base, "int8", "fixed", 2), _est(tiny_base, "int8", "fixed", 16)
    assert hi.layer_cycles < lo.layer_cycles and hi.resources["dsp"] > lo.resources["dsp"]
    mv = [s for s in hi.stages if s.op.startswith("linear")]
    assert all(s.ii == 1 for s in mv)  # fixed-point accumulation pipelines at II=1
    q = next(s for s in mv if "q_proj" in s.name)
    assert q.trip == 64 * 64 // 16  # N * K / unroll


def test_ternary_matvec_uses_no_multiplier_dsp(tiny_base) -> None:  # noqa: ANN001
    t, i8 = _est(tiny_base, "ternary", "fixed", 16), _est(tiny_base, "int8", "fixed", 16)
    t_mv = [s.dsp for s in t.stages if s.op.startswith("linear")]
    i8_mv = [s.dsp for s in i8.stages if s.op.startswith("linear")]
    # Only the per-group fp32 scale epilogue (fmul + fadd) is left on DSPs for ternary weights.
    assert set(t_mv) == {5} and all(d > 16 for d in i8_mv)
    assert t.resources["dsp"] < i8.resources["dsp"]


def test_float_accumulation_limits_ii_and_slow_memory_bounds(tiny_base) -> None:  # noqa: ANN001
    f = _est(tiny_base, "fp32", "float", 8)
    assert all(s.ii == 4 for s in f.stages if s.op.startswith("linear"))
    big = _est(tiny_base, "fp32", "fixed", 64, part="zynq7020")
    assert big.tokens_per_s > 0
    assert mult_cost(18, 8) == (1, 0) and mult_cost(18, 4)[0] == 0 and mult_cost(32, 32) == (4, 0)


def test_budget_no_design_meets(tiny_base, tiny_model) -> None:  # noqa: ANN001
    with pytest.raises(TricoError, match="no design fits the budget on zynq7020"):
        explore(tiny_base, tiny_model.config, "zynq7020", budget=0.01)
    with pytest.raises(TricoError, match="budget must be a fraction"):
        explore(tiny_base, tiny_model.config, "u280", budget=2.0)


def test_dse_smollm2_on_u280(smollm2, smollm2_layer0, tmp_path) -> None:  # noqa: ANN001
    t0 = time.perf_counter()
    samples, _ = smollm2_layer0
    base = trace_layer(smollm2.model.model.layers[0], smollm2.model.config, samples, 128)
    res = explore(base, smollm2.model.config, "u280", max_ctx=128)
    elapsed = time.perf_counter() - t0
    assert elapsed < 60
    assert res.feasible and all(p.fits for p in res.pareto)
    budget = get_part("u280").budget()
    for p in res.pareto:
        assert p.dsp <= budget["dsp"] and p.bram18 <= budget["bram18"]
        assert not any(
            q.fits and q.latency_ms < p.latency_ms and q.dsp < p.dsp and q.bram18 < p.bram18
            for q in res.points
        )
    md = write_dse_report(tmp_path, res).read_text()
    assert "## Pareto front" in md and "ternary DSP" in md
    from trico.hls.report import TERNARY_HEADER, ternary_vs_int8

    assert all(len(r) == len(TERNARY_HEADER) for r in ternary_vs_int8(res))
    assert (tmp_path / "dse_pareto.png").stat().st_size > 10_000 and (tmp_path / "dse.json").is_file()
    by = {(p.weights, p.precision, p.unroll): p for p in res.points}
    assert by[("ternary", "fixed", 64)].dsp < by[("int8", "fixed", 64)].dsp
