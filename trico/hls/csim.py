"""C-simulation with g++: locate the ap_int/ap_fixed headers, compile generated C++, run it."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

from trico.errors import TricoError

LIB_DIR = Path(__file__).parent / "lib"
"""The hand-written C++ header library the generated code calls into."""

CXX_FLAGS = ["-std=c++14", "-Wno-unknown-pragmas", "-Wno-unused-variable", "-Wno-unused-but-set-variable"]


def ap_include_dir() -> Path:
    """Directory holding ap_int.h/ap_fixed.h inside the installed hls4ml package (not imported: it needs h5py)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise TricoError("the ap_int/ap_fixed headers come from hls4ml: run `pip install --no-deps hls4ml`")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "templates" / "vivado" / "ap_types"
    if not (path / "ap_fixed.h").is_file():
        raise TricoError(f"hls4ml is installed but {path / 'ap_fixed.h'} is missing")
    return path


def compiler() -> str:
    """Path of g++ (the only compiler csim needs)."""
    cxx = shutil.which("g++")
    if cxx is None:
        raise TricoError("g++ not found: C-simulation needs a C++ compiler")
    return cxx


def compile_cpp(sources: list[Path], binary: Path, opt: str = "-O2", timeout: float = 600.0) -> Path:
    """Compile sources against the trico library and the ap headers; a failure raises with g++'s message."""
    cmd = [
        compiler(),
        opt,
        *CXX_FLAGS,
        f"-I{LIB_DIR}",
        f"-I{ap_include_dir()}",
        *[str(s) for s in sources],
        "-o",
        str(binary),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if ": error" in ln or ": fatal error" in ln]
        shown = "\n".join((errors or proc.stderr.splitlines())[:8])
        raise TricoError(f"g++ failed to compile {', '.join(s.name for s in sources)}:\n{shown}")
    return binary


def run_binary(binary: Path, args: list[str], cwd: Path, timeout: float = 1800.0) -> str:
    """Run a compiled csim binary in cwd; a non-zero exit raises with its output."""
    proc = subprocess.run([str(binary), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise TricoError(
            f"C-simulation {binary.name} exited with status {proc.returncode}: "
            f"{(proc.stderr or proc.stdout).strip()[-2000:]}"
        )
    return proc.stdout
