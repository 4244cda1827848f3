"""benchmarks/profile_decode.py: each kernel's share of a decode step's critical path."""

from benchmarks.profile_decode import critical_path

LAYER = ["_rmsnorm_kernel", "_half2_kernel", "_rope_store_kernel", "_split_kernel", "_combine_kernel"]
LAYER += ["_half2_kernel", "_rmsnorm_kernel", "_half2_kernel", "_half2_kernel"]


def _step(layers: int) -> list[str]:
    return ["embedding"] + LAYER * layers + ["_rmsnorm_kernel", "_tc_kernel", "_argmax_kernel"]


def test_shares_are_end_to_end_gaps_and_sum_to_the_wall():
    # Kernels launched early (PDL) overlap their predecessors: a share runs from the previous end.
    names = _step(8) * 2
    timeline, t = [], 0.0
    for i, n in enumerate(names):
        length = 5.0 if n == "_half2_kernel" else 1.0 + (i % 3)
        timeline.append((n, t - 4.0, t + length))  # starts before the previous kernel ends
        t += length
    out = critical_path(timeline, steps=2)
    assert abs(sum(out["critical_us_per_step"].values()) * 2 - (t + 4.0)) < 1e-9
    assert out["critical_us_per_step"]["_half2_kernel"] == 8 * 4 * 5.0
    assert out["layer_period"] == len(LAYER)
    assert [k["name"] for k in out["critical_layer"]] == LAYER


def test_no_period_when_the_sequence_does_not_repeat():
    timeline = [(f"k{i}", float(i), float(i) + 1.0) for i in range(50)]
    out = critical_path(timeline, steps=1)
    assert out["layer_period"] == 0 and out["critical_layer"] == []
