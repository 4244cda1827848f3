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


SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "sass_mix.py"


def _sass_mix(*args: str, cache: Path | None = None) -> str:
    """stdout of benchmarks/sass_mix.py with these arguments, compiled for real (skip where it cannot).

    A subprocess, because the test session runs the kernels in the interpreter, which cannot compile."""
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    if cache is not None:
        env["TRITON_CACHE_DIR"] = str(cache)
    run = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300
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


def _mix(out: str) -> tuple[float, dict[str, int]]:
    """sass_mix's instructions per code and its opcode counts."""
    per_code = float(out.splitlines()[0].split("= ")[1].split()[0])
    return per_code, {line.split()[1]: int(line.split()[0]) for line in out.splitlines()[1:]}


HALF2_TILE = ("--kernel", "half2", "--bits", "4", "--block-n", "128", "--block-w", "32", "--warps", "4")
"""The f16x2 GEMV's dispatched int4 tile: 128 rows x 32 words, 4 warps."""


@pytest.mark.parametrize(("rows", "most"), [(1, 2.5), (2, 1.8)])
def test_the_half2_gemv_loop_is_lean_and_x_stays_in_registers(rows, most):
    """The f16x2 GEMV's int4 loop: under 2.5 instructions per code (the word GEMV: 5.2); with two rows of x,
    each code unpacked once for both: under 1.8 per code and row. With one scale per row the loop has no
    BAR.SYNC, i.e. x never goes through shared memory; with scale groups Triton 3.6 (not 3.9) converts the
    scale tile's layout through it, two barriers per row of x, which measured faster on the H200 than an
    asm load that avoids them (docs/gpu-engine-history.md, session of 47e889d)."""
    per_row, per_row_ops = _mix(_sass_mix(*HALF2_TILE, "--group", "0", "--rows", str(rows)))
    grouped, grouped_ops = _mix(_sass_mix(*HALF2_TILE, "--group", "128", "--rows", str(rows)))
    assert per_row < most and grouped < most
    assert not any(op.startswith(("BAR", "STS", "LDS")) for op in per_row_ops)
    assert sum(n for op, n in grouped_ops.items() if op.startswith("BAR")) <= 2 * rows
    # packed ops per two of a thread's 256 codes: one to unpack them, one product per row of x
    assert sum(n for op, n in grouped_ops.items() if op.startswith(("HFMA2", "HMUL2"))) >= 128 * (1 + rows)


def test_the_tensor_core_loop_is_one_step_and_bf16_x_costs_its_conversion():
    """--kernel tc: the int8 loop is one 64x256 step (2 n8 MMA tiles a warp by 16 k16 steps = 32 HMMAs), and
    with bf16 x (converted to fp16 in the loop) it is longer than with fp16 x (docs/gpu-engine-history.md, session of
    d9898f6: ~1 instruction a weight under Triton 3.6, a GPU measured 1-4% in speed for it)."""
    tile = ("--kernel", "tc", "--bits", "8", "--block-n", "64", "--block-k", "256", "--warps", "4")
    per_weight = {}
    for x in ("bf16", "fp16"):
        out = _sass_mix(*tile, "--x-dtype", x)
        per_weight[x], ops = _mix(out)
        assert "for 128 weights per thread" in out.splitlines()[0]
        assert sum(n for op, n in ops.items() if op.startswith("HMMA")) == 32
    assert per_weight["fp16"] < per_weight["bf16"] - 0.5


def test_the_3_bit_and_1_6_bit_tensor_core_loops_compile_and_read_3_bit_units_as_words():
    """--kernel tc --bits 3: 32 codes (4 units of 3 bytes) are read as 3 int32 words through cp.async (LDGSTS),
    never one load a byte (the first version's 12 LDG.E.U8 a step were ~1.4x slower on the H200); --bits 1
    (tern1.6, bytes of 5 codes as 8 slots) compiles to a loop with its 16 HMMAs a warp for a 32x256 step."""
    tile = ("--kernel", "tc", "--block-n", "32", "--block-k", "256", "--warps", "4", "--stages", "3")
    _, ops3 = _mix(_sass_mix(*tile, "--bits", "3", "--group", "128"))
    assert not any(op.startswith("LDG.E.U8") for op in ops3)
    assert any(op.startswith("LDGSTS") for op in ops3)
    assert (
        sum(n for op, n in ops3.items() if op.startswith("HMMA")) == 8
    )  # 4 n8 tiles x 8 k16 steps / 4 warps
    _, ops1 = _mix(_sass_mix(*tile, "--bits", "1", "--group", "0"))
    assert sum(n for op, n in ops1.items() if op.startswith("HMMA")) == 16


def test_the_bf16_one_row_loop_steps_its_addresses_by_adding():
    """--kernel tc --bits 16 at the one-row bf16 decode shape (dispatch: 32x256 tiles, 2 warps, 5 stages): each
    cp.async address is the previous one plus the step (IADD3 pairs), not a fresh 64-bit multiply (IMAD.WIDE).
    An x offset written as k_lo * XK // BLOCK_K made it 246 instructions a step instead of 203 under Triton 3.6
    and cost 2% of the H200's bf16 decode step (docs/gpu-engine-history.md, session of 2db82e3)."""
    out = _sass_mix("--kernel", "tc", "--bits", "16", "--block-n", "32", "--block-k", "256", "--warps", "2",
                    "--stages", "5")  # fmt: skip
    _, ops = _mix(out)
    # 4 n8 tiles x 16 k16 steps / 2 warps; 16 KB of w and 8 KB of x in 16-byte copies by 64 threads
    assert sum(n for op, n in ops.items() if op.startswith("HMMA")) == 32
    assert sum(n for op, n in ops.items() if op.startswith("LDGSTS")) == 24
    assert not any(op.startswith("IMAD.WIDE") for op in ops)


def test_the_cache_report_lists_what_a_run_compiled(tmp_path):
    """--cache: the kernel compiled into a fresh Triton cache is listed with its warps and loop."""
    _sass_mix(*HALF2_TILE, "--group", "0", cache=tmp_path)
    lines = _sass_mix("--cache", str(tmp_path)).splitlines()
    assert lines[0].split()[:2] == ["kernel", "hash"]
    row = next(line.split() for line in lines[1:] if line.startswith("_half2_kernel"))
    warps, loop, bars = int(row[2]), int(row[4]), int(row[5])
    assert warps == 4 and loop > 256 and bars == 0


def test_the_cache_report_refuses_a_missing_directory(tmp_path):
    """A directory that is not there: a one-line error and exit status 1."""
    run = subprocess.run([sys.executable, str(SCRIPT), "--cache", str(tmp_path / "nope")], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 1 and "no such directory" in run.stderr
