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
    # another benchmark's rows in the same folder (benchmarks/eval_windows.py) are not this report's
    (tmp_path / "eval-windows.json").write_text(
        json.dumps([{"bench": "eval_windows", "model": "m", "ctx": 512}])
    )
    md = report.render(report.load(tmp_path))
    assert "| bf16 | 1 | 128 | graph | 170.0 |" in md
    assert "1.42" in md and "0.86" in md  # speedup vs HF; int4 prefill relative to bf16


def test_acceptance_lines_pass_and_fail_from_one_run():
    run = {"model": "llama-2-7b", "_file": "decode-llama-2-7b-h200.json", "prompt": 2048}
    run.update(date="2026-11-29", gpu="H200", git_sha="abc")
    hf = {"name": "hf", "tok_s": 116.0}
    rows = [
        dict(
            run,
            bench="decode",
            scheme="bf16",
            batch=1,
            tok_s=210.0,
            mbu=0.8,
            speedup_vs_baseline=1.8,
            baseline=hf,
        ),
        dict(run, bench="decode", scheme="bf16", batch=16, tok_s=1000.0, bytes_per_step=16e9, mbu=0.8),
        dict(run, bench="decode", scheme="int4-g128", batch=16, tok_s=3000.0, bytes_per_step=4e9, mbu=0.6),
        dict(run, bench="prefill", scheme="bf16", batch=1, ttft_ms=50.0, mfu=0.65),
        dict(run, bench="prefill", scheme="int4-g128", batch=1, ttft_ms=100.0),
        dict(run, bench="decode", scheme="int8", batch=1, tok_s=999.0, _file="other.json", git_sha="old"),
        dict(run, bench="decode", scheme="int4-g128", batch=1, tok_s=300.0),
        dict(run, bench="decode", scheme="int4-g128-a8", batch=1, tok_s=650.0),
        dict(run, bench="decode", scheme="tern2-a8", batch=1, tok_s=999.0, _file="a8.json"),  # no baseline
        # an older full run is not the one checked
        dict(
            run,
            bench="decode",
            scheme="bf16",
            batch=1,
            tok_s=100.0,
            baseline=hf,
            date="2026-11-01",
            _file="old.json",
        ),
    ]
    text = "\n".join(report.acceptance(rows))
    main = "`decode-llama-2-7b-h200.json`"
    assert f"**PASS** bf16 batch-1 tok/s: 210.0 (target >= 205.0; {main})" in text
    assert "**FAIL** bf16 MBU" in text
    assert "**PASS** batch 16: int4-g128 total tok/s over bf16's: 3.00" in text
    # 16 GB against 4 GB a step: 4x at equal MBU, so 2.5x asks for 0.62 of bf16's MBU
    assert (
        "allow 4.00 at equal MBU: the target asks int4-g128 for 0.62 of bf16's MBU (measured 0.60 against 0.80)"
        in text
    )
    assert "**FAIL** prefill int4-g128 speed over bf16's: 0.50" in text
    assert "**MISSING** int8 batch-1 tok/s" in text  # rows of runs without a baseline are not used
    assert "**FAIL** int4-g128 batch-1 tok/s: 300.0" in text
    assert f"**PASS** int4-g128 batch-1 tok/s with int8 activations: 650.0 (target >= 600.0; {main})" in text
    assert "tern2 batch-1 tok/s with int8 activations" not in text
    # a newer batch-1-only run with its own baseline takes over the batch-1 lines, not the others
    newer = dict(run, _file="b1.json", date="2026-11-30")
    rows += [
        dict(newer, bench="decode", scheme="bf16", batch=1, tok_s=220.0, mbu=0.8, baseline=hf),
        dict(newer, bench="decode", scheme="int4-g128", batch=1, tok_s=320.0),
    ]
    text = "\n".join(report.acceptance(rows))
    assert "**PASS** bf16 batch-1 tok/s: 220.0 (target >= 205.0; `b1.json`)" in text
    assert "**FAIL** int4-g128 batch-1 tok/s: 320.0 (target >= 600.0; `b1.json`)" in text
    assert f"int8 activations: 650.0 (target >= 600.0; {main})" in text
    assert f"**PASS** batch 16: int4-g128 total tok/s over bf16's: 3.00 (target >= 2.50; {main})" in text
    # a still newer batch-1 run without a baseline is named under the line, without a verdict
    rows.append(
        dict(
            run, _file="nb.json", date="2026-12-01", bench="decode", scheme="int4-g128", batch=1, tok_s=340.0
        )
    )
    text = "\n".join(report.acceptance(rows))
    assert "**FAIL** int4-g128 batch-1 tok/s: 320.0 (target >= 600.0; `b1.json`)" in text
    assert (
        "  - newer run without a same-run baseline (no verdict): 340.0 tok/s (`nb.json`, commit abc)" in text
    )
    assert "**PASS** int4-g128 batch-1 tok/s: 340.0" not in text


def test_an_empty_or_corrupt_results_folder_is_refused_and_nothing_written(tmp_path, capsys):
    out = tmp_path / "benchmarks.md"
    assert report.main(["--results", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "no benchmark results" in capsys.readouterr().err and not out.exists()
    (tmp_path / "bad.json").write_text("{oops")
    assert report.main(["--results", str(tmp_path), "--out", str(out)]) == 2
    assert "bad.json: not a JSON file" in capsys.readouterr().err and not out.exists()
