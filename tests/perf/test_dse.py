"""Design-space exploration: sweeps, constraints, Pareto fronts, what-ifs, quality tables."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trico.config import get_config
from trico.errors import TricoError
from trico.perf import dse
from trico.perf.hardware import get_hardware
from trico.perf.workload import Workload

H100 = get_hardware("h100-sxm")


def _space(**over):
    base = dict(
        models=[get_config("llama-2-7b")],
        schemes=["bf16", "int8", "int4-g128"],
        hardware=[H100, get_hardware("a100-80gb")],
        batches=[1, 16, 256],
        prompts=[1024],
    )
    base.update(over)
    return dse.Space(**base)


def test_sweep_marks_misfits_and_a_front():
    points = dse.sweep(_space(), objectives=("tpot", "tokens_per_usd"), calibrated=False)
    assert len(points) == 18
    misfit = [p for p in points if not p.estimate.fits]
    assert misfit and all("does not fit" in p.violations[0] for p in misfit)
    front = [p for p in points if p.pareto]
    assert front and all(p.eligible for p in front)
    # Brute force: no eligible point dominates a front point.
    elig = [p for p in points if p.eligible]
    for f in front:
        for q in elig:
            better_or_equal = q.objectives["tpot"] <= f.objectives["tpot"] and (
                q.objectives["tokens_per_usd"] >= f.objectives["tokens_per_usd"]
            )
            strictly = q.objectives["tpot"] < f.objectives["tpot"] or (
                q.objectives["tokens_per_usd"] > f.objectives["tokens_per_usd"]
            )
            assert not (better_or_equal and strictly)


def test_latency_slo_and_memory_limit_exclude_points():
    points = dse.sweep(_space(), dse.Constraints(max_tpot_ms=5.0, max_memory_GB=20), calibrated=False)
    for p in points:
        if p.eligible:
            assert p.estimate.tpot_s * 1e3 <= 5.0 and p.estimate.memory.total_GB <= 20
    assert any("TPOT" in v for p in points for v in p.violations)


def test_devices_without_price_cannot_join_a_cost_front():
    points = dse.sweep(
        _space(hardware=[get_hardware("l4")], batches=[1]),
        objectives=("tpot", "usd_per_mtok"),
        calibrated=False,
    )
    assert all(not p.eligible and any("usd_per_mtok" in v for v in p.violations) for p in points)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=12))
def test_pareto_matches_brute_force(values):
    objs = [dse.OBJECTIVES["tpot"], dse.OBJECTIVES["memory"]]
    est = dse.sweep(_space(hardware=[H100], schemes=["bf16"], batches=[1]), calibrated=False)[0].estimate
    points = [dse.Point(est, (), False, {"tpot": a, "memory": b}) for a, b in values]
    marked = dse.mark_pareto(points, objs)
    for i, (a, b) in enumerate(values):
        dominated = any((c <= a and d <= b) and (c < a or d < b) for c, d in values)
        duplicate_earlier = any(values[j] == (a, b) and marked[j].pareto for j in range(i))
        assert marked[i].pareto == (not dominated and not duplicate_earlier)


def test_quality_table_feeds_the_kl_objective(tmp_path):
    q = tmp_path / "quality.json"
    q.write_text(
        json.dumps(
            [{"scheme": "int8", "kl_mean": 0.002, "top1": 0.98}, {"scheme": "int4-rtn-g128", "kl": 0.04}]
        )
    )
    quality = dse.load_quality(q)
    points = dse.sweep(
        _space(hardware=[H100], batches=[1]),
        dse.Constraints(max_kl=0.01),
        ("tpot", "kl"),
        quality,
        calibrated=False,
    )
    by = {p.estimate.scheme: p for p in points}
    assert by["bf16"].objectives["kl"] == 0.0 and by["bf16"].eligible
    assert by["int8"].eligible and by["int8"].objectives["kl"] == 0.002
    assert not by["int4-rtn-g128"].eligible and "KL 0.0400" in by["int4-rtn-g128"].violations[0]
    assert dse.load_quality(tmp_path / "missing.json") == {}


def test_what_if_bandwidth_moves_the_bottleneck():
    cfg = get_config("llama-2-7b")
    steps = dse.hardware_what_if(
        cfg, "bf16", Workload(batch=128, prompt=512), H100, "bw", [0.25, 1, 8], calibrated=False
    )
    assert steps[0].estimate.decode.bound == "memory"
    assert steps[-1].estimate.decode.bound == "compute"
    assert steps[0].estimate.tpot_s > steps[1].estimate.tpot_s > steps[2].estimate.tpot_s
    with pytest.raises(TricoError, match="knob"):
        dse.hardware_what_if(cfg, "bf16", Workload(), H100, "colour", [1])


def test_bad_sweeps_are_clear_errors():
    with pytest.raises(TricoError, match="empty"):
        _space(batches=[])
    with pytest.raises(TricoError, match="unknown objective"):
        dse.sweep(_space(), objectives=("tpot", "happiness"))
    with pytest.raises(TricoError, match="exceeds the limit"):
        dse.sweep(_space(), max_points=3)
    with pytest.raises(TricoError, match="max_tpot_ms"):
        dse.Constraints(max_tpot_ms=-1)
