"""Which kernel runs a QLinear on CUDA: the packed skinny GEMM for decode and short prompts, dequantize +
cuBLAS for long prompts."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from trico.kernels import a8_enabled, fused_path, kernels_enabled, programmatic_launch
from trico.kernels import qlinear as qk
from trico.kernels.epilogue import gate_rows_ok
from trico.kernels.gemv import GEMV_BITS, GemvWordConfig, gemv_supported, gemv_words
from trico.kernels.gemv_a8 import (
    A8_BITS,
    A8Config,
    QuantizedX,
    a8_fits,
    a8_supported,
    gemv_a8,
    new_quantized_x,
)
from trico.kernels.gemv_half2 import (
    HALF2_BITS,
    MAX_ROWS,
    Half2Config,
    gemv_half2,
    half2_aligned,
    half2_fits,
    half2_supported,
)
from trico.kernels.prologue import NORM, SILU, Prologue
from trico.kernels.qgemm_tc import TC_BITS, TcConfig, tc_qmm, tc_supported
from trico.kernels.w8a8 import w8a8_linear, w8a8_supported

DECODE_MAX_ROWS = 64
"""Up to this many rows of x one program of the decode kernels takes them all; above, a prompt's
rows are tiled (`prompt_tc_choice`) or the weight is dequantized for cuBLAS."""

PROMPT_TENSOR_CORES = True
"""Whether prompts above DECODE_MAX_ROWS rows may take the tensor-core kernel (False: always dequantize
+ cuBLAS, for same-run A/B timing)."""

PROMPT_PDL = False
"""Whether a prompt's tensor-core launches use programmatic dependent launch (True for A/B timing).

Off: a 100-token prompt replayed from a CUDA graph (H200, `profile_prefill.py --prompt-kernel
rule-pdl,rule-nopdl,dequant`, benchmarks/results/profile-prefill-prompt-tc-llama{2,3}-h200.json) took, in ms,
Llama-2-7B int8 10.36 with PDL / 8.60 without / 11.06 dequantize + cuBLAS, int4-g128 9.96 / 9.86 / 11.26,
tern2 8.04 / 8.15 / 10.29; Llama-3-8B int8 13.05 / 10.63 / 11.93, int4-g128 12.36 / 10.66 / 12.08, tern2
8.91 / 9.20 / 11.03. Our reading (not profiled): a prompt's grids hold hundreds of programs, and those
scheduled early sit on SM slots waiting while the kernel before them still has programs to place."""


def packed_view(module: torch.nn.Module) -> qk.PackedWeight:
    """The kernel's view of a QLinear's buffers, cached on the module until the buffers change."""
    key = (module.qweight.data_ptr(), module.scales.data_ptr(), module.qweight.device)
    cached = getattr(module, "_kernel_view", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    pw = qk.pack_for_kernel(
        module.qweight, module.scales, module.mins, module.fmt, module.group_size, module.in_features
    )
    module._kernel_view = (key, pw)
    return pw


def supported(module: torch.nn.Module) -> bool:
    """Whether a kernel exists for this QLinear's format and shape."""
    if qk.triton is None or module.fmt not in qk.SPECS:
        return False
    per_unit = qk.SPECS[module.fmt].codes_per_unit
    return module.fmt == "tern1.6" or module.in_features % per_unit == 0


ONE_WAVE_ROWS = 384 * 64
"""Layers wider than this take other tensor-core shapes at 2-16 rows. Measured on one such layer (Llama-3's
28672-row gate/up projection, tc-split sweep): its 448 programs of 64 rows took 1.28x the time of 224 of 128
rows, while Llama-2's 344 programs of 64 rows were the fastest shape; our reading is a part-full second
wave of programs past ~384 (about 3 an SM), not profiled."""


WORD_ORDER_PROGRAMS = {4: 132, 2: 264}
"""Programs a word-order tensor-core launch aims for (2-16 rows, Llama-sized layers): K is split in powers of two
(up to 8) until the 128-row tiles reach this many. From the H200 tc-steps sweep
(benchmarks/results/tc-steps-*-h200.json): 4-bit g128 codes were fastest at about one program an SM (132),
2-bit codes, which bring half the bytes a step, at about two."""


def _split_to_fill(tiles: int, programs: int) -> int:
    """The K split (1, 2, 4 or 8) that first brings `tiles` programs to `programs`."""
    split = 1
    while split < 8 and tiles * split < programs:
        split *= 2
    return split


def tensor_core_choice(pw: qk.PackedWeight, m: int) -> TcConfig | None:
    """The tensor-core kernel's launch shape where it measured fastest, else None (another kernel).

    bf16: benchmarks/results/gemv-variants-h100.json (beats cuBLAS and qmm everywhere). Integer codes
    follow the H200 sweep of the kernel with PTX unpacking (benchmarks/results/tc-ptx-sweep-h200.json,
    Llama-2-7B shapes, rows 1 and 16): int8 and int4 beat qmm at every N above one row, and
    symmetric 4-bit codes beat the word GEMV at one row on wide layers (12288 and 22016 rows:
    1.16x, 1.16x); int8 and 2-bit codes stay on the word GEMV at one row (within 5% of it for
    int8, 0.7x for tern2), and so do narrow 4-bit layers, where the tensor-core kernel only won
    with split-K (and then still below the word GEMV in the decode step: 342 vs 349 tok/s). Above
    one row narrow Llama layers (N <= 4096, K >= 4096) split K four ways, the sweep's fastest shapes
    there (Llama-2-7B batch 16 int4-g128: 3634 -> 4094 tok/s); smaller layers, not swept, take 32-row
    tiles unsplit (split-K changes the summation order, and SmolLM2's greedy check then parts earlier).
    Symmetric g128 4-bit and int8 weights at 2-16 rows follow a later H200 sweep of tile rows, warps
    and split-K 1-8 around these shapes (benchmarks/results/tc-split-sweep-h200.json, 16 rows, Llama-2
    and Llama-3 layers; `gemv_variants.py --families tc-split`): narrow 4-bit layers take 128-row tiles
    split 8 ways (1.05-1.14x the four-way split of 64-row tiles), and the widest layers (Llama-3's
    28672 rows) 128-row 4-bit tiles (1.28-1.32x: 448 programs of 64 rows left a tail wave) or an int8
    split of two (1.06x); every rule shape is within 5% of the best swept one there. In the decode step,
    same run (benchmarks/results/profile-tc-split-rule-h200.json): Llama-3-8B batch 16 int4-g128 3683 ->
    3513 us a step, int8 3646 -> 3577; Llama-2-7B batch 16 int4-g128 3534 -> 3444, batch 4 3004 -> 2875.
    3-bit codes above one row (no PTX unpacking: `qgemm_tc._unpack3`), from two H200 sweeps of the kernel's
    candidates on Llama-2-7B shapes (benchmarks/results/tc-int3-h200.json at 16 rows, and
    results/experiments/tc-int3-first-look-h200.json at 1/4/16 rows, which alone has 4096x4096): without mins
    32-row tiles, K split two ways on narrow layers (the best swept shape on 4096x4096 and 4096x11008, and
    on the wide layers unsplit; the split-4 rule this replaced ran 4096x11008 at 78.5 us against 58.5);
    with mins 128-row tiles split four ways on narrow layers (73.0 us on 4096x11008, faster than any swept
    shape), two groups a step on wide ones, 64 rows from 16384 (110.2 and 173.7 us on 12288 and 22016 rows,
    the best swept). In the decode step it measured no faster than the rule before it (same run, Llama-2-7B
    int3-g128, benchmarks/results/experiments/decode-int3-rule-*-h200.json: batch 4 9.91 against 9.75 ms a
    step, batch 16 11.58 against 11.12). One row stays on qmm (~700 GB/s there).
    Llama-sized layers (K >= 4096) with symmetric g128 4-bit codes at 2-16 rows, and 2-bit codes with one scale
    a row at 5-16 rows, take 128-row word-order tiles (qgemm_tc.WORD_ORDER_ROWS) with K split until the grid
    holds WORD_ORDER_PROGRAMS programs: from the H200 tc-steps sweep at 16 rows
    (benchmarks/results/tc-steps-{int4-g128,tern2,extra}-h200.json), within 5% of the best swept shape for
    4-bit codes on all eight Llama-2/3 layers and 0.86-0.93 of it (or faster: split 8 was not swept on wide
    layers) for 2-bit ones. Decode step, same run (benchmarks/results/experiments/decode-word-order-*-h200.json,
    Llama-2-7B): int4-g128 batch 4 2.97 -> 2.91 ms, batch 16 3.63 -> 3.36; tern2 batch 16 3.42 -> 3.16, but
    batch 4 2.81 -> 2.90, so 2-bit codes keep the older rule up to 4 rows.
    """
    if not tc_supported(pw):
        return None
    per_row = pw.scale_mode in (0, 1)
    block_k = 256 if pw.k % 256 == 0 else 64
    if pw.fmt in ("bf16", "fp16"):
        # Five stages of a 64-row x tile overflow the 227 KiB of shared memory (seen at batch 64).
        return TcConfig(32, block_k, 2 if m == 1 else 4, 5 if m <= 16 else 3)
    bits = TC_BITS[pw.fmt]
    if m == 1 and (bits != 4 or pw.mins is not None or per_row or pw.n <= 4096):
        return None
    stages = 4 if m <= 16 else 3
    split = 4 if pw.n <= 4096 and pw.k >= 4096 else 1
    if bits == 3:
        step = block_k if per_row else pw.group_size
        if pw.mins is None:  # 32-row tiles; narrow layers split K two ways
            return TcConfig(32, step, 4, 3, 1, 2 if split > 1 else 1)
        if split > 1:  # with mins, narrow layers: 128-row tiles split four ways
            return TcConfig(128, step, 4, 3, 1, split)
        gps = 2 if not per_row and pw.k % (2 * step) == 0 else 1
        return TcConfig(64 if pw.n >= 16384 else 128, step, 4, 3, gps)
    if (
        1 < m <= 16
        and pw.k >= 4096
        and pw.mins is None
        and ((bits == 4 and not per_row) or (bits == 2 and per_row and pw.k % 256 == 0 and m > 4))
    ):
        # word-order tiles (qgemm_tc.WORD_ORDER_ROWS), K split until the grid fills the GPU
        fill = _split_to_fill(-(-pw.n // 128), WORD_ORDER_PROGRAMS[bits])
        if bits == 4:
            return TcConfig(128, pw.group_size, 4, stages, 1, fill)
        return TcConfig(128, 256, 4, stages if pw.n > 4096 else 3, 1, fill)
    if not per_row and bits == 4 and pw.mins is None and 1 < m <= 16:
        if split > 1:  # narrow layers: 128-row tiles, K split 8 ways
            return TcConfig(128, pw.group_size, 4, stages, 1, 8)
        block_n = 128 if pw.n > ONE_WAVE_ROWS else 64 if pw.n >= 16384 else 32
        return TcConfig(block_n, pw.group_size, 4, stages)
    if not per_row:
        block_n = 64 if split > 1 or pw.n >= 16384 else 32
        return TcConfig(block_n, pw.group_size, 4, stages, 1, split)
    # 512-wide K steps of a 64-row x tile do not fit shared memory in three stages (H200 image).
    long_k = pw.k % 512 == 0 and m <= 16
    if bits == 8 and 4096 < pw.n < 16384 and long_k:
        return TcConfig(128, 512, 4, 3)
    if bits == 2 and pw.n > 4096 and long_k:
        return TcConfig(32 if pw.n < 16384 else 64, 512, 4, stages)
    if bits == 8 and pw.n > ONE_WAVE_ROWS and 1 < m <= 16:
        split = 2  # Llama-3's 28672 rows (tc-split sweep: 1.06x the unsplit 64-row tiles)
    return TcConfig(
        64 if split > 1 or pw.n > 4096 else 32, block_k, 4, 3 if pw.n <= 4096 else stages, 1, split
    )


PROMPT_TC_MAX_ROWS = 128
"""Prompt rows up to which `prompt_tc_choice` takes the tensor-core kernel."""


def prompt_tc_choice(pw: qk.PackedWeight, m: int) -> TcConfig | None:
    """The tensor-core launch shape for a prompt of m > DECODE_MAX_ROWS rows, or None (dequantize + cuBLAS).

    From the H200 sweep of both paths over Llama-2-7B's four layer shapes at 128-1024 rows
    (benchmarks/results/prompt-gemm-h200.json, `benchmarks/prompt_gemm.py`): at 128 rows 64-row tiles of
    x and of the weight, 4 warps, 3 stages ran int8, g128 4-bit and tern2 layers at 0.66-1.00x the time of
    dequantize + cuBLAS (within 6% of the best of 16 swept shapes); at 256 rows every shape was slower
    than dequantize + cuBLAS (1.05-1.43x at best), since past ~128 rows the kernel is bound by its
    tensor-core issue (~150-250 TFLOP/s against cuBLAS's ~450) rather than by bytes. Llama-3-8B's three
    other shapes (prompt-gemm-llama3-h200.json, 128 and 256 rows): 0.68-1.05x at 128 rows (int8's 6144-row
    QKV the one above 1), every format faster over a layer. Asymmetric 4-bit codes (mins) lost at 128 rows
    on three of the four Llama-2 shapes and stay on cuBLAS; 3-bit and tern1.6 codes, unpacked by Triton
    ops, were not swept. A whole prompt: see PROMPT_PDL.
    """
    bits = TC_BITS.get(pw.fmt)
    if not (PROMPT_TENSOR_CORES and tc_supported(pw)) or pw.mins is not None or bits not in (8, 4, 2):
        return None
    if m > PROMPT_TC_MAX_ROWS:
        return None
    step = 128 if pw.scale_mode in (0, 1) else pw.group_size
    return TcConfig(64, step, 4, 3, block_m=64)


def word_gemv_choice(pw: qk.PackedWeight, m: int) -> GemvWordConfig | None:
    """The word-packed GEMV's launch shape at one row (None: another kernel).

    benchmarks/results/gemv-variants-h100.json, runs 4-5: at M = 1 it beat qmm and the tensor-core
    kernel on every Llama shape for int8 (1.3-2.3 TB/s vs 1.2-1.6), int4 (0.84-1.32 vs 0.83-1.29) and
    int2/ternary (0.59-0.93 vs 0.58-0.84). int8 follows the H200 sweep
    (benchmarks/results/gemv-words-sweep-int8-h200.json, 7 Llama shapes, split-K up to 16): 32-row
    tiles of 64-word steps, K split until the grid holds about SPLIT_K_PROGRAMS programs, two
    warps when split; within 2% of the best swept shape on all seven.
    """
    if m != 1 or not gemv_supported(pw) or tensor_core_choice(pw, m) is not None:
        return None
    bits = GEMV_BITS[pw.fmt]
    if bits == 8:
        split = split_to_fill(-(-pw.n // 32), pw.k * bits // 32, min_words=2 * 64)
        return GemvWordConfig(32, 64, 2 if split > 1 else 4, split)
    if pw.n > 4096:
        return GemvWordConfig(32 if bits == 2 else 16, 64, 2 if bits == 4 else 4, 1)
    if pw.k > 4096:
        return GemvWordConfig(32, 32, 2 if bits == 4 else 4, 4)
    return GemvWordConfig(16, 64, 4, 1)


HALF2_ROWS = 2
"""Rows of x up to which the f16x2 GEMV serves a layer (above: the tensor-core kernel).

H200 sweep (benchmarks/results/half2-rows-sweep-h200.json, `gemv_variants.py --rows 2,4 --families
half2,dispatched`, Llama-2-7B and Llama-3-8B shapes): at two rows its best shape beat the tensor-core
kernel on all 12 cases (int4-g128 1.30-1.68x, tern2 1.25-1.62x); at four rows it lost on the wide
int4 layers (12288 and 22016 rows: 0.90x, 0.83x) and on all 6 tern2 layers (0.68-0.93x). Its own
four-row code (two rows per unpacked code pair, twice) stays for such sweeps.
"""

HALF2_GEMV = True
"""Let 4- and 2-bit layers of one or two rows take the f16x2 GEMV (False: the word GEMV / tensor-core kernel, for A/B runs)."""


def half2_choice(pw: qk.PackedWeight, m: int, dtype: torch.dtype) -> Half2Config | None:
    """The f16x2 GEMV's launch shape at one row (None: another kernel).

    From the H200 sweep (benchmarks/results/half2-sweep-h200.json, Llama-2-7B shapes, int4-g128 and
    tern2): 32-word steps, 256-row tiles on layers wider than 4096 and 128 rows otherwise, K split
    until the grid holds about SPLIT_K_PROGRAMS programs (one step per split at least). Within 1% of
    the best swept shape on 7 of the 8 cases; tern2 4096x11008 0.84 (its best splits K 32 ways, which
    loses on the others). It beat the kernels dispatched before it on all eight (tern2 1.16-1.69x,
    int4 1.37-1.72x). Two rows (benchmarks/results/half2-rows-sweep-h200.json): 256-row tiles, 32-word
    steps for 4-bit codes and 16 for 2-bit, K split to half as many programs; the best swept shape on
    9 of 12 cases, 0.96 on int4 12288x4096, 0.90 on int4 22016x4096, 0.94 on tern2 22016x4096.
    Llama-3-8B's shapes (benchmarks/results/half2-sweep-llama3-h200.json, three-quarter splits added to
    the candidates): within 7% of the best, once its gate/up projection (28672 rows: 448 programs at
    split 4, more than the 396 an H200 holds) splits K three ways to fit one wave (int4 26.3 -> 22.9
    us, the best swept 21.3; tern2 16.5, the best).
    """
    if not HALF2_GEMV or m > min(MAX_ROWS, HALF2_ROWS) or not half2_supported(pw, dtype):
        return None
    bits = HALF2_BITS[pw.fmt]
    kw = pw.k * bits // 32
    block_n = 256 if pw.n > 4096 or m > 1 else 128
    while pw.n % block_n and block_n > 8:
        block_n //= 2
    block_w = 32 if m == 1 or bits == 4 else 16
    while kw % block_w and block_w > 4:
        block_w //= 2
    tiles = pw.n // block_n
    programs = SPLIT_K_PROGRAMS if m == 1 else SPLIT_K_PROGRAMS // 2
    split = split_to_fill(tiles, kw, min_words=block_w, programs=programs)
    if m == 1 and split <= 4:
        # A wide layer's programs are long (a quarter of K or more each): the few that would wait for a
        # second wave make a tail as long as the first. Split only as far as one wave holds.
        resident = HALF2_PROGRAMS_PER_SM * _sm_count(pw.units.device)
        if tiles * split > resident:
            split = max(1, resident // tiles)
    cfg = Half2Config(block_n, block_w, 4, split)
    return cfg if half2_fits(pw, cfg) else None


HALF2_PROGRAMS_PER_SM = 3
"""4-warp f16x2 GEMV programs an SM holds at once: its sm_90 build of 256-row tiles keeps 168 registers a
thread (ncu: `results/ncu/ncu-6-half2-int4-g128-m1-h200.txt`, block limit by registers 3)."""


@functools.cache
def _sm_count(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA device (132, an H100/H200 SXM's, for any other device)."""
    if device.type != "cuda":
        return 132
    return torch.cuda.get_device_properties(device).multi_processor_count


PROLOGUE_BITS = {NORM: {2}, SILU: {2, 8}}
"""Code widths whose word GEMV applies each prologue itself (one row); everything else runs the op first.

From one H200 run (benchmarks/results/experiments/profile-prologues-b1-h200.json, Llama-2-7B batch 1,
wall us per decode step, same run; `profile_decode.py --prologues on,off,norm,silu`): tern2 2193 with
both ops separate, 2158 with the norm inside its consumers, 2177 with the gate, 2147 with both; int8
2751, 2834 with the norm (slower), 2694 with the gate. The 4-bit down projection got slower with the
gate inside (2835 -> 3086: its unpacking is already issue-bound and 128 row tiles repeat the gate).
The tensor-core kernel was worse with either op in it (bf16 3906 -> 4591 with the gate, 3952 with the
norm), so it has no prologue.
"""


def prologue_fits(prologue: Prologue | None, pw: qk.PackedWeight, x: torch.Tensor) -> bool:
    """Whether the word GEMV of this weight should apply `prologue` to x itself (PROLOGUE_BITS)."""
    return (
        prologue is not None
        and prologue.fits(x.shape[0], x)
        and GEMV_BITS.get(pw.fmt) in PROLOGUE_BITS.get(prologue.kind, ())
    )


SPLIT_K_PROGRAMS = 512
"""Programs a one-row GEMV's split-K aims for (4 per SM of an H100/H200; both sweeps agree).

In the graphed Llama-2-7B batch-1 step 256 and 1024 were slower for int4-g128, tern2 and int8
(benchmarks/results/experiments/profile-split-programs-b1-h200.json, `profile_decode.py --split-programs`).
"""


def split_to_fill(tiles: int, words: int, min_words: int, programs: int | None = None) -> int:
    """Split-K factor (power of two, <= 16) filling the grid of `tiles` row tiles up to `programs`
    (SPLIT_K_PROGRAMS), keeping at least `min_words` of a row's `words` per split."""
    programs = programs or SPLIT_K_PROGRAMS
    split = 1
    while tiles * split * 2 <= programs and split * 2 <= 16 and words // (split * 2) >= min_words:
        split *= 2
    return split


A8_PREFETCH = True
"""Whether the int8-activation GEMV keeps two tiles of words in flight (family `a8-chosen` of
benchmarks/gemv_variants.py times the dispatched shape both ways)."""


def a8_choice(pw: qk.PackedWeight) -> A8Config | None:
    """The int8-activation GEMV's launch shape (inside int8_activations(), one row), per the H200 sweep.

    benchmarks/results/gemv-a8-split-sweep-h200.json (7 Llama shapes x int8/int4/ternary, split-K up
    to 16): tall row tiles (128 rows, 64 for int8) of 32-word steps (64 for int8), and K split until
    the grid holds about 512 programs (4 per SM) with at least two steps each. Within 8% of the best
    swept shape on all 21 cases; the old rule (split 4 at most) left narrow layers at 0.6-0.8 of it.
    """
    if not a8_supported(pw):
        return None
    bits = A8_BITS[pw.fmt]
    kw = pw.k * bits // 32
    block_n = 64 if bits == 8 else 128
    while pw.n % block_n and block_n > 8:
        block_n //= 2
    block_w = 64 if bits == 8 else 32
    while kw % block_w and block_w > 4:
        block_w //= 2
    split = split_to_fill(pw.n // block_n, kw, min_words=2 * block_w)
    cfg = A8Config(block_n, block_w, 4, split, A8_PREFETCH)
    return cfg if a8_fits(pw, cfg) else None


def a8_input(module: torch.nn.Module, x: torch.Tensor) -> QuantizedX | None:
    """Empty int8 buffers for x if `qlinear_forward(module, x)` will run the int8-activation GEMV, else None.

    The kernel producing x fills them (RMSNorm, SiLU gate, attention combine), so the GEMV skips its
    own quantization launch.
    """
    from trico.quant.qlinear import QLinear

    rows = x.numel() // x.shape[-1]
    if not (isinstance(module, QLinear) and rows == 1 and a8_enabled() and kernels_enabled()):
        return None
    if not supported(module):
        return None
    pw = packed_view(module)
    if a8_choice(pw) is None:
        return None
    return new_quantized_x(1, pw.k, A8_BITS[pw.fmt], x.device)


def qlinear_forward(
    module: torch.nn.Module,
    x: torch.Tensor,
    residual: torch.Tensor | None = None,
    quantized: QuantizedX | None = None,
    prologue: Prologue | None = None,
) -> torch.Tensor:
    """y = x @ W^T (+ residual, added in the kernel where it can) for a QLinear on CUDA.

    w8a8 runs its own int8 GEMM (`trico.kernels.w8a8`). `quantized` is x as `a8_input`
    prepared it and a producer kernel filled it. With a `prologue` x is that op's raw input; the
    GEMV applies it as it loads x where it can, else it runs first on its own.
    """
    if w8a8_supported(module) and kernels_enabled():
        x2 = _rows(x if prologue is None else prologue.apply(x))
        res2 = None if residual is None else residual.reshape(-1, module.out_features)
        return w8a8_linear(x2, module, residual=res2).view(*x.shape[:-1], module.out_features)
    if not supported(module) or not kernels_enabled():
        x = x if prologue is None else prologue.apply(x)
        return _add(module.reference_forward(x), residual)
    pw = packed_view(module)
    lead = x.shape[:-1]
    x2 = _rows(x)
    res2 = None if residual is None else residual.reshape(-1, module.out_features)
    m = x2.shape[0]
    a8, half2, tc, words = _decode_kernels(pw, x2)
    if prologue is not None and not (words is not None and prologue_fits(prologue, pw, x2)):
        x2, prologue = prologue.apply(x2), None
    if a8 is not None:
        y = gemv_a8(x2, pw, a8, residual=res2, quantized=quantized)
    elif half2 is not None:
        y = gemv_half2(x2, pw, half2, residual=res2)
    elif tc is not None and m > DECODE_MAX_ROWS and not PROMPT_PDL:
        with programmatic_launch(False):
            y = tc_qmm(x2, pw, tc, residual=res2)
    elif tc is not None:
        y = tc_qmm(x2, pw, tc, residual=res2)
    elif words is not None:
        y = gemv_words(x2, pw, words, residual=res2, prologue=prologue)
    elif m <= DECODE_MAX_ROWS:
        y = _add(qk.qmm(x2, pw, qk.tuned_config(x2, pw) or qk.default_config(pw, m)), res2)
    else:
        y = _add(F.linear(x2, qk.dequantize(pw, x2.dtype)), res2)
    return y.view(*lead, module.out_features)


def _rows(x: torch.Tensor) -> torch.Tensor:
    """x as [rows, K] with dense rows."""
    x2 = x.reshape(-1, x.shape[-1])
    return x2 if x2.stride(-1) == 1 else x2.contiguous()


def _decode_kernels(
    pw: qk.PackedWeight, x2: torch.Tensor
) -> tuple[A8Config | None, Half2Config | None, TcConfig | None, GemvWordConfig | None]:
    """The launch shape of the one kernel qlinear_forward runs for x2 [M, K] (others None; all None: qmm / cuBLAS)."""
    m = x2.shape[0]
    a8 = a8_choice(pw) if m == 1 and a8_enabled() else None
    # On the CPU the fused path (tests, under the interpreter) takes the same kernels as CUDA.
    fast = fused_path(x2) and a8 is None
    # the f16x2 GEMV reads x with 16-byte vector loads of its own: an offset view of x cannot take it
    half2 = half2_choice(pw, m, x2.dtype) if fast and half2_aligned(x2) else None
    if m > DECODE_MAX_ROWS:
        tc = prompt_tc_choice(pw, m) if fast else None
    else:
        tc = tensor_core_choice(pw, m) if fast and half2 is None else None
    words = word_gemv_choice(pw, m) if fast and half2 is None and tc is None else None
    return a8, half2, tc, words


GATE_EPILOGUE = True
"""Let a fused [gate; up] projection's f16x2 GEMV write silu(gate) * up itself (False: the projection's
output, then the SiLU gate's own kernel or the down projection's prologue; for A/B runs).

H200, Llama-2-7B batch 1, wall us per graphed step, same run (benchmarks/results/profile-gate-epilogue-b1-h200.json,
`profile_decode.py --gate-epilogue on,off`): int4-g128 1832 vs 1878, tern2 1635 vs 1633. The tensor-core
kernel did the same in commit bf89649 and made bf16 slower (3840 -> 3932), so it went again.
"""


def _dense_view(weight: torch.Tensor) -> qk.PackedWeight:
    """The kernel view of a bf16/fp16 weight (cached: the weight stays alive with it)."""
    key = (weight.data_ptr(), tuple(weight.shape), weight.dtype)
    pw = _DENSE_VIEWS.get(key)
    if pw is None:
        pw = _DENSE_VIEWS[key] = qk.pack_for_kernel(
            weight, None, None, "bf16", weight.shape[1], weight.shape[1]
        )
    return pw


def _gate_kernel(module: torch.nn.Module, x2: torch.Tensor) -> tuple[qk.PackedWeight, Half2Config] | None:
    """The weight view and launch shape with which a fused [gate; up] projection writes the gated product, or None."""
    from trico.quant.qlinear import QLinear

    if not (GATE_EPILOGUE and fused_path(x2) and isinstance(module, QLinear) and supported(module)):
        return None
    pw = packed_view(module)
    a8, half2, _, _ = _decode_kernels(pw, x2)
    cfg = half2 if a8 is None else None
    return (pw, cfg) if cfg is not None and gate_rows_ok(pw.n, cfg.block_n) else None


def gate_fits(module: torch.nn.Module, x: torch.Tensor) -> bool:
    """Whether `gated_forward(module, x)` runs one kernel (a fused gate/up projection on the decode path)."""
    return _gate_kernel(module, _rows(x)) is not None


def gated_forward(module: torch.nn.Module, x: torch.Tensor, prologue: Prologue | None = None) -> torch.Tensor:
    """silu(x @ gate^T) * (x @ up^T) [..., H] for a fused [gate; up] projection [2H, K] whose kernel takes
    the gate (`gate_fits`); with a `prologue` x is that op's raw input (it runs first, on its own)."""
    x2 = _rows(x if prologue is None else prologue.apply(x))
    chosen = _gate_kernel(module, x2)
    assert chosen is not None, (
        "gated_forward needs a projection whose decode kernel takes the gate (gate_fits)"
    )
    pw, cfg = chosen
    return gemv_half2(x2, pw, cfg, gate=True).view(*x.shape[:-1], pw.n // 2)


def _add(y: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
    """residual + y where no kernel fused the add (same rounding: y is already in its dtype)."""
    return y if residual is None else residual + y.view(residual.shape)


_DENSE_VIEWS: dict[tuple, qk.PackedWeight] = {}


def dense_forward(
    weight: torch.Tensor,
    x: torch.Tensor,
    residual: torch.Tensor | None = None,
    out_dtype: torch.dtype | None = None,
    prologue: Prologue | None = None,
) -> torch.Tensor:
    """y = x @ weight^T (+ residual) for a bf16/fp16 weight: the tensor-core skinny GEMM on CUDA (K % 64 == 0), else cuBLAS.

    With `out_dtype=torch.float32` y is the fp32 sum of the 16-bit products, not rounded to x's dtype
    (the torch fallback multiplies upcast copies). With a `prologue` x is that op's raw input.
    The tensor-core kernel has no prologue: it runs first, on its own.
    """
    if prologue is not None:
        x = prologue.apply(x)

    def fallback() -> torch.Tensor:
        if out_dtype is None or out_dtype == x.dtype:
            return _add(F.linear(x, weight), residual)
        return _add(F.linear(x.to(out_dtype), weight.to(out_dtype)), residual)

    if not (fused_path(x) and qk.triton is not None) or weight.dtype != x.dtype:
        return fallback()
    x2 = x.reshape(-1, x.shape[-1])
    if x2.shape[0] > DECODE_MAX_ROWS or x2.stride(-1) != 1 or not weight.is_contiguous():
        return fallback()
    pw = _dense_view(weight)
    tc = tensor_core_choice(pw, x2.shape[0])
    if tc is None:
        return fallback()
    res2 = None if residual is None else residual.reshape(-1, weight.shape[0])
    y = tc_qmm(x2, pw, tc, residual=res2, out_dtype=out_dtype)
    return y.view(*x.shape[:-1], weight.shape[0])


def clear_caches() -> None:
    """Forget cached kernel views of dense weights (they keep the weights alive)."""
    _DENSE_VIEWS.clear()
