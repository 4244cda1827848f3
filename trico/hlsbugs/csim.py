"""Differential C-simulation: build a kernel variant with its test bench under sanitizers, run, compare.

One build serves every functional oracle: AddressSanitizer + UndefinedBehaviorSanitizer catch
out-of-bounds accesses and out-of-range shifts, `-ftrivial-auto-var-init=pattern` turns a read of an
uninitialized local into a loud garbage value (g++ has no MemorySanitizer), `-Wuninitialized` adds the
compiler's own line-level evidence, and a wall-clock limit catches infinite loops.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from trico.errors import TricoError

CXX = os.environ.get("TRICO_CXX", "g++")
CXXFLAGS = [
    "-std=c++17",
    "-O1",
    "-g",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-ftrivial-auto-var-init=pattern",
    # A loop without observable side effects must stay infinite rather than be deleted (C++ forward progress).
    "-fno-finite-loops",
    "-Wuninitialized",
    "-Wmaybe-uninitialized",
    "-Wno-unknown-pragmas",
]
RUN_ENV = {
    # handle_abort: a SIGABRT sent to a run that hangs makes ASan print where it was stuck.
    "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:symbolize=1:handle_abort=1",
    "UBSAN_OPTIONS": "print_stacktrace=0:halt_on_error=1",
}
TIMEOUT_S = 0.25  # CPU seconds; every bug-free bench in the suite needs under 0.01
WALL_LIMIT_S = 60.0
CPU_BACKSTOP_S = 5
RTOL, ATOL = 1e-5, 1e-6

_UBSAN_RE = re.compile(r"kernel\.cpp:(\d+):\d+: runtime error: (.*)")
_ASAN_RE = re.compile(r"ERROR: AddressSanitizer: ([\w-]+)")
_FRAME_RE = re.compile(r"#\d+ 0x[0-9a-f]+ in .*kernel\.cpp:(\d+)")
_WARN_RE = re.compile(
    r"v(\d+)/kernel\.cpp:(\d+):\d+: warning: .* \[-W(?:maybe-uninitialized|uninitialized)\]"
)


@dataclass
class CSimResult:
    """What one build + run of a variant showed."""

    status: str  # pass | mismatch | sanitizer | crash | timeout | compile_error
    detail: str = ""
    kind: str | None = None  # sanitizer category: asan:<what>, ubsan:shift, ubsan:bounds, ...
    lines: list[int] = field(default_factory=list)  # kernel.cpp lines the evidence points at
    uninit_warnings: list[int] = field(default_factory=list)

    @property
    def deviates(self) -> bool:
        """The variant behaves differently from the golden run."""
        return self.status not in ("pass", "compile_error")

    def to_json(self) -> dict:
        """Evidence as stored in the manifest."""
        return {
            "status": self.status,
            "detail": self.detail[:300],
            "kind": self.kind,
            "lines": self.lines,
            "uninit_warnings": self.uninit_warnings,
        }


def compare_outputs(got: str, golden: str, rtol: float = RTOL, atol: float = ATOL) -> str | None:
    """First difference between two test-bench dumps, or None when they agree within tolerance."""
    g_lines, r_lines = got.strip().splitlines(), golden.strip().splitlines()
    if len(g_lines) != len(r_lines):
        return f"{len(g_lines)} output lines, golden has {len(r_lines)}"
    section = ""
    for i, (a, b) in enumerate(zip(g_lines, r_lines)):
        if b.startswith("#"):
            section = b[2:]
            if a != b:
                return f"line {i + 1}: section {a!r}, golden {b!r}"
            continue
        try:
            x, y = float(a), float(b)
        except ValueError:
            if a != b:
                return f"line {i + 1} ({section}): {a!r} vs golden {b!r}"
            continue
        same = (math.isnan(x) and math.isnan(y)) or abs(x - y) <= atol + rtol * abs(y)
        if not same:
            return f"{section}: got {a}, golden {b} (line {i + 1})"
    return None


def _classify_ubsan(msg: str) -> str:
    if "shift" in msg:
        return "ubsan:shift"
    if "out of bounds" in msg:
        return "ubsan:bounds"
    return "ubsan:" + re.sub(r"[^a-z]+", "-", msg.split(" of ")[0].lower()).strip("-")[:30]


def _cache_key(source: str, testbench: str, golden: str) -> str:
    # g++ ignores HLS pragmas, so variants that differ only in pragma lines run identically.
    stripped = "\n".join("" if ln.lstrip().startswith("#pragma HLS") else ln for ln in source.splitlines())
    return hashlib.sha256("\0".join((stripped, testbench, golden)).encode()).hexdigest()


_CACHE: dict[str, CSimResult] = {}


_INCLUDE_RE = re.compile(r"^\s*#\s*include\s*<[^>]+>\s*$", re.M)


def _batch_driver(n: int, testbench: str, sources: list[str]) -> str:
    """One program holding n variants, each in its own namespace with its own copy of the bench.

    System headers are hoisted above the namespaces (their include guards then make the copies inside
    empty); `./driver i` runs variant i, so every variant still gets a process of its own.
    """
    headers = sorted({m.group(0).strip() for src in sources for m in _INCLUDE_RE.finditer(src)})
    bench = testbench.replace('#include "tb_util.h"', "").replace('#include "kernel.cpp"', "")
    bench = bench.replace("int main() {", "int tb_main() {")
    parts = ['#include "tb_util.h"', *headers, "#include <cstdlib>"]
    for i in range(n):
        parts += [f"namespace v{i} {{", f'#include "v{i}/kernel.cpp"', bench, "}"]
    cases = " ".join(f"case {i}: return v{i}::tb_main();" for i in range(n))
    parts.append(
        f"int main(int argc, char** argv) {{\n  switch (std::atoi(argv[1])) {{ {cases} }}\n  return 3;\n}}"
    )
    return "\n".join(parts) + "\n"


def run_batch(
    sources: list[str], testbench: str, golden: str, include_dir: Path, timeout: float = TIMEOUT_S
) -> list[CSimResult]:
    """Build and run several variants of one kernel with a single compile; results in input order.

    A batch that does not compile (one bad variant spoils it) is retried one variant at a time.
    """
    keys = [_cache_key(src, testbench, golden) for src in sources]
    todo = list(dict.fromkeys(k for k in keys if k not in _CACHE))
    if todo:
        if shutil.which(CXX) is None:
            raise TricoError(f"C++ compiler {CXX!r} not found (set TRICO_CXX)")
        by_key = dict(zip(keys, sources))
        _build_and_run([by_key[k] for k in todo], todo, testbench, golden, include_dir, timeout)
    return [_CACHE[k] for k in keys]


def _build_and_run(sources, keys, testbench, golden, include_dir, timeout) -> None:
    with tempfile.TemporaryDirectory(prefix="trico-csim-") as tmp:
        work = Path(tmp)
        for i, src in enumerate(sources):
            (work / f"v{i}").mkdir()
            (work / f"v{i}" / "kernel.cpp").write_text(src)
        (work / "driver.cpp").write_text(_batch_driver(len(sources), testbench, sources))
        build = subprocess.run(
            [CXX, *CXXFLAGS, f"-I{include_dir}", "driver.cpp", "-o", "driver", "-lm"],
            cwd=work,
            capture_output=True,
            text=True,
        )
        if build.returncode != 0:
            if len(sources) > 1:
                for src, key in zip(sources, keys):
                    _build_and_run([src], [key], testbench, golden, include_dir, timeout)
                return
            err = next((ln for ln in build.stderr.splitlines() if "error" in ln), build.stderr[:200])
            _CACHE[keys[0]] = CSimResult("compile_error", err.strip())
            return
        warnings: dict[int, set[int]] = {}
        for m in _WARN_RE.finditer(build.stderr):
            warnings.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        for i, key in enumerate(keys):
            result = _run([str(work / "driver"), str(i)], work, golden, timeout)
            result.uninit_warnings = sorted(warnings.get(i, ()))
            _CACHE[key] = result


def run_variant(
    source: str, testbench: str, golden: str, include_dir: Path, timeout: float = TIMEOUT_S
) -> CSimResult:
    """Build `source` as kernel.cpp with the test bench, run it, and compare against the golden dump."""
    return run_batch([source], testbench, golden, include_dir, timeout)[0]


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process (Linux /proc), None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(cmd: list[str], work: Path, golden: str, timeout: float) -> CSimResult:
    # ulimit -t is the backstop that ends a hung run even if this process dies before it can.
    proc = subprocess.Popen(
        ["/bin/sh", "-c", f'ulimit -t {CPU_BACKSTOP_S} && exec "$0" "$@"', *cmd],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **RUN_ENV},
    )
    hung = False
    started = time.monotonic()
    while True:
        try:
            # Retrying communicate() after a timeout loses no output.
            stdout, stderr = proc.communicate(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            cpu = _cpu_seconds(proc.pid)
            wall = time.monotonic() - started
            # CPU time, not wall time, decides a hang: a loaded machine must not turn slow runs into INF.
            over = (
                cpu > timeout if cpu is not None else wall > 10 * timeout
            )  # no /proc: wall time, with margin
            if over or wall > WALL_LIMIT_S:
                hung = True
                break
    if hung:
        proc.send_signal(signal.SIGABRT)
        try:
            _, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        frames = [int(m.group(1)) for m in _FRAME_RE.finditer(stderr)]
        return CSimResult("timeout", f"still running after {timeout:g} s of CPU time", None, frames[:1])
    proc = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    ub = _UBSAN_RE.search(proc.stderr)
    if ub:
        return CSimResult("sanitizer", ub.group(2), _classify_ubsan(ub.group(2)), [int(ub.group(1))])
    asan = _ASAN_RE.search(proc.stderr)
    if asan:
        frames = [int(m.group(1)) for m in _FRAME_RE.finditer(proc.stderr)]
        return CSimResult("sanitizer", asan.group(0), f"asan:{asan.group(1)}", frames[:1])
    if proc.returncode != 0:
        return CSimResult("crash", f"exit status {proc.returncode}")
    diff = compare_outputs(proc.stdout, golden)
    if diff is not None:
        return CSimResult("mismatch", diff)
    return CSimResult("pass")


def golden_run(source: str, testbench: str, include_dir: Path, timeout: float = WALL_LIMIT_S) -> str:
    """Build and run a bug-free kernel; its stdout becomes the golden dump (any sanitizer report is an error)."""
    with tempfile.TemporaryDirectory(prefix="trico-golden-") as tmp:
        work = Path(tmp)
        (work / "kernel.cpp").write_text(source)
        (work / "tb.cpp").write_text(testbench)
        build = subprocess.run(
            [CXX, *CXXFLAGS, "-Werror=uninitialized", f"-I{include_dir}", "tb.cpp", "-o", "tb", "-lm"],
            cwd=work,
            capture_output=True,
            text=True,
        )
        if build.returncode != 0:
            raise TricoError(f"bug-free kernel does not build: {build.stderr.strip().splitlines()[0]}")
        proc = subprocess.run(
            ["./tb"], cwd=work, capture_output=True, text=True, timeout=timeout, env={**os.environ, **RUN_ENV}
        )
        if proc.returncode != 0 or "runtime error" in proc.stderr:
            raise TricoError(f"bug-free kernel fails its test bench: {proc.stderr.strip()[:200]}")
        return proc.stdout
