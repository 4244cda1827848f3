"""The tensor-core skinny GEMM against the plain-torch reference (Triton interpreter on CPU)."""

import pytest
import torch

from tests.kernels.ptx_emulator import run_ptx
from tests.kernels.test_qlinear import DEV, _dev, _rel, random_packed
from trico.kernels.qgemm_tc import TcConfig, tc_qmm, tc_supported
from trico.kernels.qlinear import dequantize_reference, pack_for_kernel, qlinear_reference

CASES = [  # fmt, n, k, group (0 per tensor), symmetric
    ("int8", 48, 128, 0, True),
    ("int8", 40, 128, 128, True),
    ("int8", 40, 128, 64, True),
    ("uint8", 40, 128, 32, False),
    ("uint4", 40, 256, 64, True),
    ("uint4", 40, 256, 32, False),
    ("uint4", 24, 128, 128, True),
    ("uint3", 40, 256, 64, True),
    ("uint3", 24, 256, 128, False),
    ("uint3", 24, 128, 0, True),
    ("tern1.6", 40, 256, 0, True),
    ("tern1.6", 24, 192, 0, True),
    ("uint2", 24, 256, 64, False),
    ("tern2", 40, 256, 0, True),
    ("tern2", 24, 256, 64, True),
]


@pytest.mark.parametrize("fmt,n,k,group,sym", CASES)
@pytest.mark.parametrize("m_rows", [1, 5, 17])
def test_tc_qmm_matches_reference(fmt, n, k, group, sym, m_rows):
    q, s, m = random_packed(fmt, n, k, group, sym, seed=m_rows)
    x = torch.randn(m_rows, k, generator=torch.Generator().manual_seed(m_rows)).to(torch.bfloat16)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, k)
    assert tc_supported(pw)
    got = tc_qmm(x.to(DEV), pw, TcConfig(block_n=16, block_k=64)).cpu()
    assert got.dtype == x.dtype and got.shape == (m_rows, n)
    assert _rel(got, qlinear_reference(x, q, s, m, fmt, group, k)) < 1e-2


@pytest.mark.parametrize(
    "fmt,group,sym", [("uint4", 64, True), ("uint4", 64, False), ("uint2", 64, False), ("tern2", 0, True)]
)
@pytest.mark.parametrize("cfg", [TcConfig(128, 64), TcConfig(128, 64, groups_per_step=2, split_k=2)])
def test_tc_qmm_word_order_tiles_match_reference(fmt, group, sym, cfg):
    """Tiles of WORD_ORDER_ROWS rows unpack 4- and 2-bit codes in word order and read x reordered to match."""
    from trico.kernels.qgemm_tc import WORD_ORDER_ROWS

    assert cfg.block_n >= WORD_ORDER_ROWS
    q, s, m = random_packed(fmt, 136, 256, group, sym, seed=7)  # 136 rows: a part-full second tile
    x = torch.randn(5, 256, generator=torch.Generator().manual_seed(7)).to(torch.bfloat16)
    got = tc_qmm(x.to(DEV), pack_for_kernel(*_dev(q, s, m), fmt, group, 256), cfg).cpu()
    assert _rel(got, qlinear_reference(x, q, s, m, fmt, group, 256)) < 1e-2


@pytest.mark.parametrize(
    "fmt,group,sym", [("int8", 0, True), ("uint4", 64, True), ("uint4", 64, False), ("tern2", 0, True)]
)
@pytest.mark.parametrize("cfg", [TcConfig(16, 64, block_m=16), TcConfig(128, 64, block_m=32)])
def test_tc_qmm_prompt_rows_tile_x(fmt, group, sym, cfg):
    """Past 64 rows (a prompt) programs take block_m rows of x each; the last row tile and weight tile are part-full."""
    q, s, m = random_packed(fmt, 136, 256, group, sym, seed=13)
    x = torch.randn(70, 256, generator=torch.Generator().manual_seed(13)).to(torch.bfloat16)
    res = torch.randn(70, 136, generator=torch.Generator().manual_seed(14)).to(torch.bfloat16)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, 256)
    want = qlinear_reference(x, q, s, m, fmt, group, 256)
    assert _rel(tc_qmm(x.to(DEV), pw, cfg).cpu(), want) < 1e-2
    got = tc_qmm(x.to(DEV), pw, cfg, residual=res.to(DEV)).cpu()
    assert _rel(got, want.float() + res.float()) < 1e-2


def test_tc_qmm_refuses_prompt_rows_without_a_row_tile():
    q, s, m = random_packed("uint4", 16, 128, 64, True)
    pw = pack_for_kernel(*_dev(q, s, m), "uint4", 64, 128)
    with pytest.raises(AssertionError, match="block_m"):
        tc_qmm(torch.zeros(65, 128, dtype=torch.bfloat16, device=DEV), pw, TcConfig(16, 64))


def test_tc_qmm_is_within_one_rounding_of_the_exact_product():
    """Against a float64 product the only error left is the bf16 rounding of the output."""
    q, s, m = random_packed("uint4", 64, 256, 64, True, seed=3)
    x = torch.randn(4, 256, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16)
    exact = x.double() @ dequantize_reference(q, s, m, "uint4", 64, 256).double().t()
    got = tc_qmm(x.to(DEV), pack_for_kernel(*_dev(q, s, m), "uint4", 64, 256), TcConfig(16, 64)).cpu()
    ulp = torch.exp2(torch.floor(torch.log2(exact.abs().clamp_min(1e-30))) - 7)
    # <= 0.5 ulp with round-to-nearest on the GPU; the CPU interpreter truncates (< 1 ulp)
    assert float(((got.double() - exact).abs() / ulp).max()) <= 1.05


@pytest.mark.parametrize("fmt,group,sym", [("int8", 0, True), ("uint4", 64, False), ("tern2", 0, True)])
def test_tc_qmm_outlier_channel_does_not_cancel(fmt, group, sym):
    """An activation outlier (as SmolLM2 has) must not cost precision on the other channels.

    With the code offset taken out after the loop, fp32 lost ~2^-24 * MAGIC * sum|x| to
    cancellation (the tern2 case failed that way under the interpreter, int8 on SmolLM2 on the GPU).
    """
    k = 256
    q, s, m = random_packed(fmt, 32, k, group, sym, seed=5)
    x = torch.randn(3, k, generator=torch.Generator().manual_seed(5)) * 0.05
    x[:, 7] = 30000.0
    x = x.to(torch.bfloat16)
    w = dequantize_reference(q, s, m, fmt, group, k).double()
    exact = x.double() @ w.t()
    got = tc_qmm(x.to(DEV), pack_for_kernel(*_dev(q, s, m), fmt, group, k), TcConfig(16, 64)).cpu()
    ulp = torch.exp2(torch.floor(torch.log2(exact.abs().clamp_min(1e-30))) - 7)
    assert float(((got.double() - exact).abs() / ulp).max()) <= 1.05


def test_tc_qmm_dense_bf16_weight():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(40, 128, generator=g).to(torch.bfloat16)
    x = torch.randn(3, 128, generator=g).to(torch.bfloat16)
    pw = pack_for_kernel(*_dev(w), None, None, "bf16", 128, 128)
    got = tc_qmm(x.to(DEV), pw, TcConfig(16, 64)).cpu()
    assert _rel(got, x.float() @ w.float().t()) < 1e-2


@pytest.mark.parametrize("cfg", [TcConfig(16, 64), TcConfig(16, 64, split_k=2)])
def test_tc_qmm_fp32_output_is_the_unrounded_sum(cfg):
    """out_dtype=float32 keeps the fp32 accumulator: far closer to the exact product than bf16 output."""
    g = torch.Generator().manual_seed(4)
    w = torch.randn(48, 192, generator=g).to(torch.bfloat16)
    x = torch.randn(1, 192, generator=g).to(torch.bfloat16)
    pw = pack_for_kernel(*_dev(w), None, None, "bf16", 192, 192)
    got = tc_qmm(x.to(DEV), pw, cfg, out_dtype=torch.float32).cpu()
    exact = x.double() @ w.double().t()
    assert got.dtype == torch.float32
    assert float((got.double() - exact).abs().max() / exact.abs().max()) < 1e-5


@pytest.mark.parametrize("cfg", [TcConfig(16, 128, groups_per_step=2), TcConfig(32, 64, split_k=2)])
@pytest.mark.parametrize(
    "fmt,group,sym",
    [
        ("uint4", 64, True),
        ("uint4", 64, False),
        ("int8", 0, True),
        ("uint3", 64, False),
        ("tern1.6", 0, True),
    ],
)
def test_tc_qmm_multi_group_steps_and_split_k(cfg, fmt, group, sym):
    q, s, m = random_packed(fmt, 24, 256, group, sym, seed=11)
    x = torch.randn(3, 256, generator=torch.Generator().manual_seed(11)).to(torch.bfloat16)
    got = tc_qmm(x.to(DEV), pack_for_kernel(*_dev(q, s, m), fmt, group, 256), cfg).cpu()
    assert _rel(got, qlinear_reference(x, q, s, m, fmt, group, 256)) < 1e-2


@pytest.mark.parametrize("fmt,group", [("int8", 0), ("uint4", 128), ("tern2", 0)])
def test_tc_qmm_split_k_over_64_row_tiles_is_right_on_every_call(fmt, group):
    """40 rows (a 64-row tile), 32-wide tiles, K split four ways: the shape whose sums went wrong on the H200."""
    n, k = (3072, 576) if DEV == "cuda" and group == 0 else (256, 512) if DEV == "cuda" else (64, 256)
    q, s, m = random_packed(fmt, n, k, group, True, seed=40)
    x = torch.randn(40, k, generator=torch.Generator().manual_seed(40)).to(torch.bfloat16)
    pw = pack_for_kernel(*_dev(q, s, m), fmt, group, k)
    want = qlinear_reference(x, q, s, m, fmt, group, k)
    cfg = TcConfig(32, group or 64, split_k=4)
    for _ in range(3 if DEV == "cuda" else 1):
        assert _rel(tc_qmm(x.to(DEV), pw, cfg).cpu(), want) < 1e-2


def test_tc_qmm_shrinks_a_launch_shape_that_overflows_shared_memory(monkeypatch):
    """Out of shared memory: fewer stages, then shorter K steps, remembered for the next call."""
    from triton.runtime.errors import OutOfResources

    from trico.kernels import qgemm_tc

    tried = []

    def launch(x, pw, config, residual, out_dtype):
        tried.append(config)
        if config.num_stages * config.block_k > 2 * 128:
            raise OutOfResources(393216, 232448, "shared memory")
        return "ran"

    monkeypatch.setattr(qgemm_tc, "_launch", launch)
    monkeypatch.setattr(qgemm_tc, "_FITTED", {})
    pw = pack_for_kernel(*_dev(torch.zeros(32, 512, dtype=torch.bfloat16)), None, None, "bf16", 512, 512)
    x = torch.zeros(40, 512, dtype=torch.bfloat16, device=DEV)
    assert tc_qmm(x, pw, TcConfig(32, 512, 4, 3)) == "ran"
    assert [(c.num_stages, c.block_k) for c in tried] == [(3, 512), (2, 512), (2, 256), (2, 128)]
    tried.clear()
    assert tc_qmm(x, pw, TcConfig(32, 512, 4, 3)) == "ran"
    assert [(c.num_stages, c.block_k) for c in tried] == [(2, 128)]


def test_tc_qmm_gives_up_when_nothing_fits(monkeypatch):
    from triton.runtime.errors import OutOfResources

    from trico.kernels import qgemm_tc

    def launch(x, pw, config, residual, out_dtype):
        raise OutOfResources(393216, 232448, "shared memory")

    monkeypatch.setattr(qgemm_tc, "_launch", launch)
    monkeypatch.setattr(qgemm_tc, "_FITTED", {})
    pw = pack_for_kernel(*_dev(torch.zeros(32, 128, dtype=torch.bfloat16)), None, None, "bf16", 128, 128)
    with pytest.raises(OutOfResources):
        tc_qmm(torch.zeros(4, 128, dtype=torch.bfloat16, device=DEV), pw, TcConfig(32, 128, 4, 3))


def test_tc_refuses_formats_it_does_not_read():
    q, s, m = random_packed("tern1.6", 24, 640, 80, True)
    assert not tc_supported(pack_for_kernel(q, s, m, "tern1.6", 80, 640))  # groups cut bytes of 5 codes
    q, s, m = random_packed("uint4", 24, 96, 32, True)
    assert not tc_supported(pack_for_kernel(q, s, m, "uint4", 32, 96))  # K not a multiple of 64


@pytest.mark.parametrize(
    "bits,fp16,offset,signed8,word",
    [(8, True, 128, True, False), (8, True, 128, False, False), (8, True, 0, False, False),
     (4, False, 8, False, False), (4, True, 0, False, False), (2, False, 1, False, False), (2, True, 2, False, False),
     (4, False, 8, False, True), (4, True, 8, False, True), (2, False, 1, False, True), (2, True, 2, False, True)],
)  # fmt: skip
def test_unpack_asm_turns_bytes_into_offset_codes(bits, fp16, offset, signed8, word):
    """The PTX the GPU runs (not the interpreter), executed by an emulator: every byte value, every code position,
    element i of output p holding code p of byte i (K order) or the code `word_code_order` names (word order)."""
    from trico.kernels.qgemm_tc import unpack_asm, word_code_order

    asm, constraints = unpack_asm(bits, fp16, offset, signed8, word)
    positions = 8 // bits
    n_out = constraints.count("=")
    assert n_out == 2 * positions
    per_byte = 8 // bits
    if word:
        order = word_code_order(bits)
    else:  # code p of byte i
        order = [[per_byte * i + p for i in range(4)] for p in range(positions)]
    assert sorted(c for out in order for c in out) == list(range(32 // bits))  # every code once
    dt = torch.float16 if fp16 else torch.bfloat16
    for start in range(0, 256, 4):
        packed = start | (start + 1) << 8 | (start + 2) << 16 | (start + 3) << 24
        regs = run_ptx(asm, [packed], n_out)
        for p in range(positions):  # output tensor p: elements i = 0..3 in registers 2p (i = 0, 1), 2p + 1
            pair = [regs[2 * p] & 0xFFFF, regs[2 * p] >> 16, regs[2 * p + 1] & 0xFFFF, regs[2 * p + 1] >> 16]
            got = torch.tensor(pair, dtype=torch.int32).to(torch.int16).view(dt).float()
            codes = torch.tensor(order[p])
            byte = start + codes // per_byte
            code = (byte >> (bits * (codes % per_byte))) & ((1 << bits) - 1)
            if signed8:
                code = code.to(torch.uint8).view(torch.int8).int() + 128
            assert torch.equal(got, (code - offset).float()), (bits, p, start)
