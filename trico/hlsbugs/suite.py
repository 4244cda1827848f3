"""The HLS kernel suite: one directory per kernel with kernel.cpp, its test bench tb.cpp and golden.txt.

Test benches are generated from each top function's signature (every array port is filled from a fixed
LCG and dumped after the call) plus two kinds of annotation comments in kernel.cpp:
`// tb: name=value ...` gives scalar arguments and `// tb-fill: name lo hi` narrows an input's range.
Regenerate benches and goldens with `python -m trico.hlsbugs.suite [NAME ...]`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from trico.errors import TricoError
from trico.hlsbugs.cparse import Array, build_design
from trico.hlsbugs.csim import golden_run

KERNELS_DIR = Path(__file__).parent / "kernels"

# Default input ranges by element type: wide enough to set sign bits in every unsigned type.
_RANGES = {
    "float": (-2, 2),
    "double": (-2, 2),
    "int8_t": (-128, 127),
    "char": (-128, 127),
    "signed char": (-128, 127),
    "uint8_t": (0, 255),
    "unsigned char": (0, 255),
    "int16_t": (-1000, 1000),
    "short": (-1000, 1000),
    "uint16_t": (0, 65535),
    "unsigned short": (0, 65535),
    "int": (-1000, 1000),
    "int32_t": (-1000, 1000),
    "int64_t": (-1000, 1000),
    "long": (-1000, 1000),
    "uint32_t": (0, 4294967295),
    "unsigned": (0, 4294967295),
    "unsigned int": (0, 4294967295),
    "uint64_t": (0, 4294967295),
    "bool": (0, 1),
}


@dataclass(frozen=True)
class Kernel:
    """A suite kernel: its bug-free source, test bench and golden output dump."""

    name: str
    dir: Path
    source: str
    testbench: str
    golden: str


def kernel_names(root: Path = KERNELS_DIR) -> list[str]:
    """Names of the kernel directories under `root`, sorted."""
    return sorted(p.name for p in root.iterdir() if (p / "kernel.cpp").is_file())


def load_kernel(path: Path) -> Kernel:
    """Load one kernel directory; a missing test bench or golden dump is a TricoError."""
    path = Path(path)
    src = path / "kernel.cpp"
    if not src.is_file():
        raise TricoError(f"{path}: no kernel.cpp")
    tb, golden = path / "tb.cpp", path / "golden.txt"
    if not tb.is_file():
        raise TricoError(f"kernel {path.name!r} has no test bench ({tb} is missing)")
    if not golden.is_file():
        raise TricoError(f"kernel {path.name!r} has no golden outputs ({golden} is missing)")
    return Kernel(path.name, path, src.read_text(), tb.read_text(), golden.read_text())


def load_suite(root: Path = KERNELS_DIR, names: list[str] | None = None) -> list[Kernel]:
    """Load the kernels under `root` (all, or the named ones)."""
    root = Path(root)
    if not root.is_dir():
        raise TricoError(f"kernel directory {root} does not exist")
    available = kernel_names(root)
    for n in names or []:
        if n not in available:
            raise TricoError(f"unknown kernel {n!r}; known: {', '.join(available)}")
    return [load_kernel(root / n) for n in (names or available)]


def _annotations(source: str) -> tuple[dict[str, str], dict[str, tuple[float, float]]]:
    scalars: dict[str, str] = {}
    fills: dict[str, tuple[float, float]] = {}
    for m in re.finditer(r"^//\s*tb:\s*(.*)$", source, re.M):
        for tok in m.group(1).split():
            k, _, v = tok.partition("=")
            scalars[k] = v
    for m in re.finditer(r"^//\s*tb-fill:\s*(\w+)\s+(\S+)\s+(\S+)\s*$", source, re.M):
        fills[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    return scalars, fills


def _base_type(elem: str) -> str:
    return " ".join(w for w in elem.split() if w not in ("const", "volatile"))


def make_testbench(source: str, name: str) -> str:
    """Generate the test bench for kernel `name` from its signature and annotations."""
    design = build_design(source, name)
    scalars, fills = _annotations(source)
    decls, fill_lines, args, prints = [], [], [], []
    for port, info in design.ports.items():
        if isinstance(info, Array):
            if any(d is None for d in info.dims):
                raise TricoError(f"{name}: array port {port!r} needs constant sizes for its test bench")
            elem = _base_type(info.elem)
            if elem not in _RANGES:
                raise TricoError(f"{name}: no test-bench range for element type {elem!r} of {port!r}")
            lo, hi = fills.get(port, _RANGES[elem])
            dims = "".join(f"[{d}]" for d in info.dims)
            decls.append(f"static {elem} tb_{port}{dims};")
            count = f"(long)(sizeof(tb_{port}) / sizeof({elem}))"
            fill_lines.append(f"  tb_fill(({elem}*)tb_{port}, {count}, {lo:g}, {hi:g});")
            prints.append(f'  tb_print("{port}", (const {elem}*)tb_{port}, {count});')
            args.append(f"tb_{port}")
        else:
            if port not in scalars:
                raise TricoError(f"{name}: scalar port {port!r} needs a `// tb: {port}=VALUE` annotation")
            args.append(scalars[port])
    body = "\n".join(
        [
            f"// Test bench for `{name}`, generated by trico.hlsbugs.suite from the kernel signature.",
            "// Inputs come from a fixed LCG; every array port is printed after the call.",
            '#include "tb_util.h"',
            '#include "kernel.cpp"',
            "",
            *decls,
            "",
            "int main() {",
            *fill_lines,
            f"  {name}({', '.join(args)});",
            *prints,
            "  return 0;",
            "}",
            "",
        ]
    )
    return body


def regenerate(root: Path = KERNELS_DIR, names: list[str] | None = None) -> list[str]:
    """Rewrite tb.cpp and golden.txt of the named (default: all) kernels; returns the names done."""
    done = []
    for n in names or kernel_names(root):
        source = (root / n / "kernel.cpp").read_text()
        tb = make_testbench(source, n)
        golden = golden_run(source, tb, root)
        (root / n / "tb.cpp").write_text(tb)
        (root / n / "golden.txt").write_text(golden)
        done.append(n)
    return done


if __name__ == "__main__":
    for kernel_name in regenerate(KERNELS_DIR, sys.argv[1:] or None):
        print("regenerated", kernel_name)
