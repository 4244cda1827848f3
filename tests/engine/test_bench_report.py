"""benchmarks/report.py renders the result JSON into markdown tables."""

import importlib.util
import json
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "report", Path(__file__).parents[2] / "benchmarks" / "report.py"
)
report = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(report)


def test_render_tables(tmp_path):
    base = {"model": "llama-2-7b", "gpu": "H100", "git_sha": "abc", "copy_GBps": 3000.0, "mm_TFLOPs": 790.0}
    rows = [
        dict(
            base,
            bench="decode",
            scheme="bf16",
            batch=1,
            prompt=128,
            context=128,
            decode_mode="graph",
            tok_s=170.0,
            ms_per_token=5.9,
            achieved_GBps=2260.0,
            mbu=0.75,
            baseline={"name": "hf", "tok_s": 120.0},
            speedup_vs_baseline=1.42,
            peak_mem_GiB=13.1,
            allocs_in_decode_loop=0,
        ),
        dict(
            base, bench="prefill", scheme="bf16", batch=1, prompt=2048, ttft_ms=53.6, TFLOPs=515.0, mfu=0.65
        ),
        dict(
            base,
            bench="prefill",
            scheme="int4-g128",
            batch=1,
            prompt=2048,
            ttft_ms=62.0,
            TFLOPs=445.0,
            mfu=0.56,
        ),
    ]
    (tmp_path / "r.json").write_text(json.dumps(rows))
    (tmp_path / "other.json").write_text(json.dumps({"not": "a list"}))
    md = report.render(report.load(tmp_path))
    assert "| bf16 | 1 | 128 | graph | 170.0 |" in md
    assert "1.42" in md and "0.86" in md  # speedup vs HF; int4 prefill relative to bf16
