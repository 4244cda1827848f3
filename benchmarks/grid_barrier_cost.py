"""What a grid-wide barrier costs on the GPU, against a kernel boundary (CUDA graph, PDL on).

A persistent kernel replaces the boundary between two projections by a barrier (every program spins
until all have arrived). This launches an otherwise empty kernel with 0, 1, 4 and 16 barriers at
1-3 programs per SM and two barrier forms (acquire loads while spinning; relaxed loads and one
acquire-release fence after), 200 launches per CUDA graph: the launch with 0 barriers is the cost
of a kernel boundary, the slope the cost of a barrier. It is what the one-launch MLP experiment
(commit ab7c73d, docs/gpu-engine-history.md) was checked against.

Usage (GPU): python benchmarks/grid_barrier_cost.py --out FILE.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from trico.kernels.pdl import wait_for_producer  # noqa: E402

_FENCE = tl.constexpr("fence.acq_rel.gpu; mov.u32 $0, 0;")


@triton.jit
def _barriers(bar_ptr, N_BAR: tl.constexpr, RELAXED: tl.constexpr, PDL: tl.constexpr):
    wait_for_producer(PDL)
    grid = tl.num_programs(0)
    for i in tl.static_range(N_BAR):
        target = (i + 1) * grid  # the counter only grows within a launch: barrier i waits for (i + 1) * grid
        tl.debug_barrier()
        tl.atomic_add(bar_ptr, 1, sem="release", scope="gpu")
        if RELAXED:
            seen = tl.atomic_add(bar_ptr, 0, sem="relaxed", scope="gpu")
            while seen < target:
                seen = tl.atomic_add(bar_ptr, 0, sem="relaxed", scope="gpu")
            seen += tl.inline_asm_elementwise(_FENCE, "=r,r", [seen], dtype=tl.int32, is_pure=False, pack=1)
        else:
            seen = tl.atomic_add(bar_ptr, 0, sem="acquire", scope="gpu")
            while seen < target:
                seen = tl.atomic_add(bar_ptr, 0, sem="acquire", scope="gpu")
        tl.debug_barrier()
    left = tl.atomic_add(bar_ptr + 1, 1, sem="acq_rel", scope="gpu")
    if left == grid - 1:  # the last program out resets the counters for the next launch
        tl.atomic_xchg(bar_ptr, 0)
        tl.atomic_xchg(bar_ptr + 1, 0)


def graph_us(fn, reps: int = 200) -> float:  # noqa: ANN001 - a no-argument callable
    """Best of 5 replays of a CUDA graph of `reps` calls, in us per call."""
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        fn()
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            for _ in range(reps):
                fn()
    graph.replay()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(5):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        graph.replay()
        b.record()
        torch.cuda.synchronize()
        best = min(best, a.elapsed_time(b) * 1e3 / reps)
    return best


def main(argv: list[str] | None = None) -> int:
    """Time every (programs, barrier form, barriers) case; print and write the rows."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="", help="JSON file for the rows")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("grid_barrier_cost: no CUDA GPU here; nothing to time", file=sys.stderr)
        return 2
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    bar = torch.zeros(2, dtype=torch.int32, device="cuda")
    rows = []
    for programs in (sms, 2 * sms, 3 * sms):  # all resident: 4-warp programs, no shared memory
        for relaxed in (False, True):
            for n in (0, 1, 4, 16):
                us = graph_us(
                    lambda g=programs, n=n, r=relaxed: _barriers[(g,)](
                        bar, N_BAR=n, RELAXED=r, PDL=1, num_warps=4, launch_pdl=True
                    )
                )
                mode = "relaxed-poll+fence" if relaxed else "acquire-poll"
                rows.append({"programs": programs, "mode": mode, "barriers": n, "us_per_launch": us})
                print(rows[-1], flush=True)
            assert not bar.any(), "the barrier counters were not reset"
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
