"""A tiny emulator for the straight-line PTX the kernels inline (`qgemm_tc.unpack_asm`, `gemv_half2`).

It knows exactly the opcodes those snippets use; anything else fails loudly, so a new instruction
in a snippet needs a line here and a test that exercises it.
"""

from __future__ import annotations

import struct

import torch


def _halves(v: int, dt: torch.dtype) -> torch.Tensor:
    """A 32-bit register's two 16-bit halves as float64 values of type dt (low half first)."""
    return torch.tensor([v & 0xFFFF, v >> 16], dtype=torch.int32).to(torch.int16).view(dt).double()


def _pack(vals: torch.Tensor, dt: torch.dtype) -> int:
    """Two float64 values rounded to dt, packed low half first."""
    bits = vals.to(dt).view(torch.int16).to(torch.int32)
    return int(bits[0]) & 0xFFFF | (int(bits[1]) & 0xFFFF) << 16


def _f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]


def _bits32(v: float) -> int:
    return struct.unpack("<I", struct.pack("<f", v))[0]


def _f16_to_f64(bits: int) -> float:
    return float(torch.tensor([bits & 0xFFFF], dtype=torch.int32).to(torch.int16).view(torch.float16).item())


def _integer_op(op: str, a: list[int]) -> int:
    """The 32-bit integer opcodes."""
    if op == "mov.b32":
        return a[0]
    if op == "xor.b32":
        return a[0] ^ a[1]
    if op == "and.b32":
        return a[0] & a[1]
    if op == "or.b32":
        return a[0] | a[1]
    if op == "shr.u32":
        return a[0] >> a[1]
    if op == "shl.b32":
        return a[0] << a[1]
    if op == "lop3.b32":  # bit i of the result is bit (a_i << 2 | b_i << 1 | c_i) of the lookup table
        return sum(
            ((a[3] >> ((a[0] >> i & 1) << 2 | (a[1] >> i & 1) << 1 | (a[2] >> i & 1))) & 1) << i
            for i in range(32)
        )
    pool = a[0] | (a[1] << 32)  # prmt.b32: byte i of the result is byte selector nibble i of {a1, a0}
    return sum(((pool >> (8 * ((a[2] >> (4 * i)) & 7))) & 0xFF) << (8 * i) for i in range(4))


def run_ptx(asm: str, inputs: list[int], n_out: int, memory: dict[int, int] | None = None) -> list[int]:
    """Execute the PTX on 32-bit integer registers: outputs $0..$(n_out - 1), inputs after them.

    `memory` maps byte addresses (multiples of 4) to 32-bit words for `ld.global`.
    """
    regs: dict[str, int] = {f"${n_out + i}": v for i, v in enumerate(inputs)}

    def val(tok: str) -> int:
        tok = tok.strip()
        if tok.startswith("0x"):
            return int(tok, 16)
        if tok.lstrip("-").isdigit():
            return int(tok)
        return regs[tok]

    for stmt in asm.replace("\n", " ").split(";"):
        stmt = stmt.strip().lstrip("{").strip()
        if stmt == "}" or not stmt or stmt.startswith(".reg"):
            continue
        op, args = stmt.split(None, 1)
        if args.startswith("{"):  # vector destination: {a, b, ...}, source
            close = args.index("}")
            dests = [d.strip() for d in args[1:close].split(",")]
            src = args[close + 1 :].lstrip(",").strip()
            if op == "mov.b32":  # unpack into two 16-bit registers
                v = val(src)
                regs[dests[0]], regs[dests[1]] = v & 0xFFFF, (v >> 16) & 0xFFFF
            elif op == "ld.global.nc.v4.b32":
                inner = src.strip("[]").split("+")
                addr = val(inner[0]) + (int(inner[1]) if len(inner) > 1 else 0)
                for i, d in enumerate(dests):
                    regs[d] = memory[addr + 4 * i]
            else:
                raise AssertionError(f"the emulator does not know {op} with a vector operand")
            continue
        d, *src = [a.strip() for a in args.split(",")]
        if op in ("mov.b32", "xor.b32", "and.b32", "or.b32", "shr.u32", "shl.b32", "prmt.b32", "lop3.b32"):
            r = _integer_op(op, [val(t) for t in src])
        elif op in ("fma.rn.f16x2", "fma.rn.bf16x2", "mul.rn.f16x2"):
            dt = torch.bfloat16 if "bf16" in op else torch.float16
            a = [_halves(val(t), dt) for t in src]
            r = _pack(a[0] * a[1] + (a[2] if op.startswith("fma") else 0), dt)
        elif op == "cvt.rn.f16x2.f32":  # d = {hi: a, lo: b}
            a, b = (_f32(val(t)) for t in src)
            r = _pack(torch.tensor([b, a], dtype=torch.float64).float().double(), torch.float16)
        elif op == "cvt.f32.f16":
            r = _bits32(_f16_to_f64(val(src[0])))
        elif op == "add.f32":
            r = _bits32(float(torch.tensor(_f32(val(src[0])), dtype=torch.float32) + _f32(val(src[1]))))
        else:
            raise AssertionError(f"the emulator does not know {op}")
        regs[d] = r & 0xFFFFFFFF
    return [regs[f"${i}"] for i in range(n_out)]


def f32_of(bits: int) -> float:
    """The fp32 value of a register."""
    return _f32(bits)
