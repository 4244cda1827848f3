"""benchmarks/sass_mix.py: finds the word GEMV's loop in SASS and counts its instructions."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import sass_mix

SNIPPET = """
        /*0100*/                   MOV R1, c[0x0][0x28] ;
        /*0110*/                   LOP3.LUT R2, R3, 0xff, RZ, 0xc0, !PT ;
        /*0120*/                   FFMA R4, R2, R5, R4 ;
        /*0130*/                   FFMA R6, R2, R7, R6 ;
        /*0140*/              @!P0 BRA 0x110 ;
        /*0150*/                   FADD R8, R4, R6 ;
        /*0160*/                   BRA 0x160;
"""


def test_loop_mix_counts_the_body_of_the_backward_branch():
    mix = sass_mix.loop_mix(SNIPPET)
    assert mix == {"LOP3.LUT": 1, "FFMA": 2, "BRA": 1}


def _sass_mix(*args: str) -> str:
    """stdout of benchmarks/sass_mix.py with these arguments, compiled for real (skip where it cannot).

    A subprocess, because the test session runs the kernels in the interpreter, which cannot compile."""
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "sass_mix.py"
    run = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=300
    )
    if run.returncode == 2:
        pytest.skip(run.stderr.strip())
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_the_word_gemv_compiles_for_sm90_and_its_loop_is_found():
    """With Triton's bundled ptxas (any machine): the int8 loop holds one FFMA per code of a thread."""
    out = _sass_mix("--bits", "8")
    counts = {line.split()[1]: int(line.split()[0]) for line in out.splitlines()[1:]}
    tiles = counts["FFMA"] // (32 * 64 * 4 // 64)  # one FFMA per code; a pass of the loop takes whole tiles
    assert tiles >= 1 and counts["FFMA"] == tiles * 32 * 64 * 4 // 64
    assert f"for {tiles * 128} codes per thread ({tiles} tiles)" in out


@pytest.mark.parametrize(("rows", "most"), [(1, 2.5), (2, 1.8)])
def test_the_half2_gemv_loop_is_lean_and_has_no_barrier(rows, most):
    """The f16x2 GEMV's int4 loop (the dispatched 128x32 tile): under 2.5 instructions per code (the word
    GEMV: 5.2) and no BAR.SYNC, i.e. x never goes through shared memory; with two rows of x, each code
    unpacked once for both: under 1.8 per code and row."""
    args = ("--kernel", "half2", "--bits", "4", "--block-n", "128", "--block-w", "32", "--warps", "4")
    out = _sass_mix(*args, "--group", "128", "--rows", str(rows))
    per_code = float(out.splitlines()[0].split("= ")[1].split()[0])
    counts = {line.split()[1]: int(line.split()[0]) for line in out.splitlines()[1:]}
    assert per_code < most
    assert not any(op.startswith("BAR") for op in counts)
    # packed ops per two of a thread's 256 codes: one to unpack them, one product per row of x
    assert sum(n for op, n in counts.items() if op.startswith(("HFMA2", "HMUL2"))) >= 128 * (1 + rows)
