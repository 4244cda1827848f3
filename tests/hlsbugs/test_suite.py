import re
import zlib

import numpy as np
import pytest

from tests.hlsbugs.conftest import needs_gxx
from trico.errors import TricoError
from trico.hlsbugs.csim import compare_outputs, run_variant
from trico.hlsbugs.suite import KERNELS_DIR, load_kernel, load_suite, make_testbench


def dump(golden: str) -> dict[str, list[float]]:
    out, cur = {}, None
    for line in golden.splitlines():
        if line.startswith("# "):
            cur = out.setdefault(line[2:], [])
        else:
            cur.append(float(line))
    return out


def test_suite_has_30_kernels_with_bench_and_golden(suite):
    assert len(suite) >= 30
    for k in suite.values():
        assert "#pragma HLS" in k.source and k.golden.strip()
        # The committed bench is exactly what the generator makes from the signature.
        assert make_testbench(k.source, k.name) == k.testbench


@needs_gxx
@pytest.mark.parametrize("name", ["gemm", "crc32", "sha_round", "fft_radix2", "aes_round"])
def test_bug_free_kernels_reproduce_their_golden_dump(suite, name):
    k = suite[name]
    r = run_variant(k.source, k.testbench, k.golden, KERNELS_DIR)
    assert r.status == "pass", r.detail
    assert r.uninit_warnings == []


def test_goldens_agree_with_independent_references(suite):
    g = dump(suite["crc32"].golden)
    data = np.array(g["data"], dtype=np.uint8).reshape(4, 32)
    assert g["crc_out"] == [float(zlib.crc32(row.tobytes())) for row in data]
    g = dump(suite["adler32"].golden)
    data = np.array(g["data"], dtype=np.uint8).reshape(4, 64)
    assert g["sum"] == [float(zlib.adler32(row.tobytes())) for row in data]
    g = dump(suite["oddeven_sort"].golden)
    assert g["out"] == sorted(g["in"])
    g = dump(suite["prefix_sum"].golden)
    assert g["out"] == list(np.cumsum(g["in"]).astype(float))
    g = dump(suite["transpose"].golden)
    assert np.array_equal(np.array(g["out"]).reshape(24, 16), np.array(g["in"]).reshape(16, 24).T)
    g = dump(suite["softmax"].golden)
    x = np.array(g["x"])
    assert np.allclose(g["y"], np.exp(x - x.max()) / np.exp(x - x.max()).sum(), rtol=1e-5)


def bench_inputs(k) -> dict[str, np.ndarray]:
    """Replay the bench's LCG (tb_util.h) to recover the inputs it passed to the kernel."""
    sizes = {name: len(v) for name, v in dump(k.golden).items()}
    state, out = 12345, {}
    for m in re.finditer(
        r"tb_fill\(\(([\w ]+)\*\)tb_(\w+), [^,]+\), ([-\d.e+]+), ([-\d.e+]+)\);", k.testbench
    ):
        elem, name, lo, hi = m.group(1), m.group(2), float(m.group(3)), float(m.group(4))
        vals = []
        for _ in range(sizes[name]):
            state = (state * 1664525 + 1013904223) % 2**32
            if elem in ("float", "double"):
                vals.append(np.float32(lo + (hi - lo) * (state >> 8) / 16777216.0))
            else:
                span = int(hi) - int(lo) + 1
                vals.append(int(lo) + (state if span >= 2**32 else state % span))
        out[name] = np.array(vals)
    return out


def test_gemm_and_fft_goldens_match_numpy(suite):
    k = suite["gemm"]
    x, g = bench_inputs(k), dump(k.golden)
    a, b, c = x["A"].reshape(16, 16), x["B"].reshape(16, 16), x["C"].reshape(16, 16)
    assert np.allclose(np.array(g["C"]).reshape(16, 16), 1.5 * a @ b + 0.5 * c, rtol=1e-4, atol=1e-4)
    k = suite["fft_radix2"]
    x, g = bench_inputs(k), dump(k.golden)
    ref = np.fft.fft(x["re"].astype(np.float64) + 1j * x["im"])
    assert np.allclose(g["re"], ref.real, atol=1e-4) and np.allclose(g["im"], ref.imag, atol=1e-4)


def test_missing_testbench_or_golden_is_a_clear_error(tmp_path):
    kdir = tmp_path / "k"
    kdir.mkdir()
    (kdir / "kernel.cpp").write_text((KERNELS_DIR / "axpy" / "kernel.cpp").read_text())
    with pytest.raises(TricoError, match="no test bench"):
        load_kernel(kdir)
    (kdir / "tb.cpp").write_text("int main() {}\n")
    with pytest.raises(TricoError, match="no golden outputs"):
        load_kernel(kdir)
    with pytest.raises(TricoError, match="unknown kernel"):
        load_suite(names=["nope"])


def test_scalar_port_without_annotation_is_rejected():
    src = "void k(const float a[4], float b[4], int n) {\n  for (int i = 0; i < 4; i++) b[i] = a[i] * n;\n}\n"
    with pytest.raises(TricoError, match="scalar port 'n'"):
        make_testbench(src, "k")


def test_compare_outputs_tolerates_rounding_only():
    assert compare_outputs("# y\n1.0000001\n", "# y\n1\n") is None
    assert "golden 1" in compare_outputs("# y\n1.01\n", "# y\n1\n")
    assert compare_outputs("# y\n1\n2\n", "# y\n1\n") is not None
