"""GPU-only benchmark scripts on a machine without a GPU: a one-line notice and exit status 2, no traceback."""

import pytest
import torch

from tests.helpers import ROOT, run_benchmark_script


@pytest.mark.skipif(torch.cuda.is_available(), reason="the scripts would run on the GPU")
@pytest.mark.parametrize(
    "script",
    [
        "gemv_variants.py",
        "tc_x_dtype.py",
        "profile_decode.py",
        "profile_prefill.py",
        "prompt_gemm.py",
        "grid_barrier_cost.py",
        "qmm_tuned.py",
        "w8a8_prefill.py",
        "eval_windows.py",
        "kernels.py",
        "smollm2_check.py",
        "smollm2_layer_diff.py",
        "ncu_target.py",
    ],
)
def test_gpu_only_scripts_say_so_without_a_gpu(script, tmp_path):
    takes_out = "--out" in (ROOT / "benchmarks" / script).read_text()
    out = ["--out", str(tmp_path / "out.json")] if takes_out else []
    run = run_benchmark_script(script, *out)
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.strip().splitlines()[-1].startswith(f"{script[:-3]}: no CUDA GPU here")
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize(
    "script,bad",
    [
        ("profile_prefill.py", ["--prompt-kernel", "cublas"]),
        ("profile_prefill.py", ["--tokens", "100,lots"]),
        ("prompt_gemm.py", ["--rows", "128,many"]),
        ("prompt_gemm.py", ["--formats", "int9"]),
    ],
)
def test_prompt_scripts_refuse_bad_options(script, bad):
    run = run_benchmark_script(script, *bad)
    assert run.returncode == 2
    assert "error:" in run.stderr.strip().splitlines()[-1]
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("bad", [["--models", "llama-9"], ["--formats", "int9"], ["--windows", "0"]])
def test_eval_windows_refuses_bad_options(bad):
    run = run_benchmark_script("eval_windows.py", *bad)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith("eval_windows: ")
    assert "no CUDA GPU" not in run.stderr and "Traceback" not in run.stderr
