"""Plots are written as real PNGs for operators, configurations, Pareto fronts and what-ifs."""

from trico.config import get_config
from trico.perf import dse, plots
from trico.perf.hardware import get_hardware
from trico.perf.model import estimate
from trico.perf.workload import Workload

H100 = get_hardware("h100-sxm")
PNG = b"\x89PNG"


def test_charts_are_written(tmp_path):
    cfg = get_config("llama-3-8b")
    est = estimate(cfg, "int4-g128", Workload(batch=4, prompt=512), H100)
    a = plots.roofline_chart(H100, [est], tmp_path / "ops.png", per_operator=True)
    b = plots.roofline_chart(
        H100, [est, estimate(cfg, "bf16", Workload(), H100)], tmp_path / "cfg.png", per_operator=False
    )
    space = dse.Space(models=[cfg], schemes=["bf16", "int4-g128"], hardware=[H100], batches=[1, 64, 512])
    points = dse.sweep(space, calibrated=False)
    c = plots.pareto_chart(points, "tpot", "tokens_per_usd", tmp_path / "sub" / "pareto.png")
    steps = dse.hardware_what_if(cfg, "bf16", Workload(batch=64), H100, "bw", [0.5, 1, 2], calibrated=False)
    d = plots.what_if_chart(steps, "bw", tmp_path / "whatif.png")
    rows = [
        {"phase": "decode", "measured_ms": 7.0, "calibrated_ms": 7.2, "roofline_ms": 4.0},
        {"phase": "prefill", "measured_ms": 55.0, "calibrated_ms": 53.0, "roofline_ms": 34.0},
    ]
    e = plots.prediction_chart(rows, tmp_path / "pred.png")
    for p in (a, b, c, d, e):
        data = p.read_bytes()
        assert data[:4] == PNG and len(data) > 10_000
