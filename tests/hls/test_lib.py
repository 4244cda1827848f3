"""C-simulation unit tests of every function of the C++ header library (trico/hls/lib) against numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trico.hls.csim import compile_cpp, run_binary

N, K, G = 12, 64, 32
H, HKV, D, MAXLEN, POS, SMN, SMUSED = 4, 2, 16, 32, 9, 32, 20
DRIVER = Path(__file__).parent / "csrc" / "lib_tests.cpp"
# float must match numpy to rounding; the ap_fixed<24,8> run to its 16 fractional bits.
TOL = {"float": 1e-6, "fixed": 2e-3}


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Random inputs written for the driver, the driver compiled and run once, its outputs read back."""
    d = tmp_path_factory.mktemp("libcsim")
    rng = np.random.default_rng(0)
    f = {
        "x": rng.normal(size=K),
        "r": rng.normal(size=N),
        "wf": rng.normal(scale=0.2, size=N * K),
        "scales": rng.uniform(0.01, 0.05, size=N * K // G),
        "mins": rng.uniform(-0.2, 0.0, size=N * K // G),
        "normw": rng.uniform(0.5, 1.5, size=K),
        "rope_x": rng.normal(size=H * D),
        "cos": np.cos(rng.uniform(0, 6, size=D)),
        "sin": np.sin(rng.uniform(0, 6, size=D)),
        "sm": rng.normal(scale=3, size=SMN),
        "q": rng.normal(size=H * D),
        "knew": rng.normal(size=HKV * D),
        "vnew": rng.normal(size=HKV * D),
        "kc": rng.normal(size=HKV * MAXLEN * D),
        "vc": rng.normal(size=HKV * MAXLEN * D),
        "g": rng.normal(scale=2, size=K),
        "u": rng.normal(size=K),
    }
    f = {k: v.astype(np.float32) for k, v in f.items()}
    b = {
        "codes_int8": rng.integers(-127, 128, size=N * K).astype(np.int8).view(np.uint8),
        "codes_u4": rng.integers(0, 256, size=N * K // 2).astype(np.uint8),
        "codes_t2": rng.choice([0b00, 0b01, 0b10], size=(N * K // 4, 4)),
    }
    b["codes_t2"] = (b["codes_t2"] << np.array([0, 2, 4, 6])).sum(1).astype(np.uint8)
    for name, v in f.items():
        v.tofile(d / f"{name}.f32")
    for name, v in b.items():
        v.tofile(d / f"{name}.u8")
    binary = compile_cpp([DRIVER], d / "lib_tests", opt="-O1")
    run_binary(binary, [str(d)], cwd=d)

    def out(name: str, n: int) -> np.ndarray:
        return np.fromfile(d / f"out_{name}.f32", dtype=np.float32, count=n)

    return {"f": f, "b": b, "out": out}


def _weights(case: dict, fmt: str) -> np.ndarray:
    f, b = case["f"], case["b"]
    s = np.repeat(f["scales"].reshape(N, K // G), G, axis=1)
    if fmt == "float":
        return f["wf"].reshape(N, K)
    if fmt == "int8":
        return b["codes_int8"].view(np.int8).reshape(N, K) * s
    if fmt in ("uint4s", "uint4a"):
        by = b["codes_u4"].reshape(N, K // 2)
        u = np.stack([by & 15, by >> 4], axis=-1).reshape(N, K).astype(np.float32)
        if fmt == "uint4s":
            return (u - 8) * s
        return u * s + np.repeat(f["mins"].reshape(N, K // G), G, axis=1)
    by = b["codes_t2"].reshape(N, K // 4)
    t = np.stack([(by >> (2 * i)) & 3 for i in range(4)], axis=-1).reshape(N, K).astype(np.float32) - 1
    return t * s


@pytest.mark.parametrize("mode", ["float", "fixed"])
@pytest.mark.parametrize("fmt", ["float", "int8", "uint4s", "uint4a", "tern2"])
def test_matvec_formats(case: dict, fmt: str, mode: str) -> None:
    ref = _weights(case, fmt).astype(np.float64) @ case["f"]["x"]
    assert _rel(case["out"](f"matvec_{fmt}_{mode}", N), ref) < TOL[mode]


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_matvec_add(case: dict, mode: str) -> None:
    ref = _weights(case, "int8").astype(np.float64) @ case["f"]["x"] + case["f"]["r"]
    assert _rel(case["out"](f"matvec_add_int8_{mode}", N), ref) < TOL[mode]


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_rmsnorm(case: dict, mode: str) -> None:
    x = case["f"]["x"].astype(np.float64)
    ref = case["f"]["normw"] * x / np.sqrt(np.mean(x * x) + 1e-5)
    assert _rel(case["out"](f"rmsnorm_{mode}", K), ref) < TOL[mode]


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_rope_rotate_half(case: dict, mode: str) -> None:
    f = case["f"]
    x = f["rope_x"].reshape(H, D).astype(np.float64)
    rot = np.concatenate([-x[:, D // 2 :], x[:, : D // 2]], axis=1)
    ref = (x * f["cos"] + rot * f["sin"]).reshape(-1)
    assert _rel(case["out"](f"rope_{mode}", H * D), ref) < TOL[mode]


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_softmax_prefix(case: dict, mode: str) -> None:
    s = case["f"]["sm"][:SMUSED].astype(np.float64)
    ref = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    out = case["out"](f"softmax_{mode}", SMUSED)
    assert _rel(out, ref) < TOL[mode]
    assert abs(out.sum() - 1.0) < 1e-3


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_attention_gqa_writes_cache(case: dict, mode: str) -> None:
    f = case["f"]
    kc = f["kc"].reshape(HKV, MAXLEN, D).astype(np.float64).copy()
    vc = f["vc"].reshape(HKV, MAXLEN, D).astype(np.float64).copy()
    kc[:, POS] = f["knew"].reshape(HKV, D)
    vc[:, POS] = f["vnew"].reshape(HKV, D)
    q = f["q"].reshape(H, D)
    ref = np.zeros((H, D))
    for h in range(H):
        kv = h // (H // HKV)
        s = kc[kv, : POS + 1] @ q[h] / np.sqrt(D)
        p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        ref[h] = p @ vc[kv, : POS + 1]
    assert _rel(case["out"](f"attention_{mode}", H * D), ref.reshape(-1)) < TOL[mode]
    # Four lanes along head_dim compute the same attention.
    assert _rel(case["out"](f"attention_ua4_{mode}", H * D), ref.reshape(-1)) < TOL[mode]
    # Positions after pos are untouched, the new key sits at pos.
    kc_out = case["out"](f"attention_kc_{mode}", HKV * MAXLEN * D).reshape(HKV, MAXLEN, D)
    assert _rel(kc_out[:, POS], kc[:, POS]) < TOL[mode]
    assert _rel(kc_out[:, POS + 1 :], kc[:, POS + 1 :]) < TOL[mode]


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_silu_gate(case: dict, mode: str) -> None:
    g, u = case["f"]["g"].astype(np.float64), case["f"]["u"]
    ref = g / (1 + np.exp(-g)) * u
    assert _rel(case["out"](f"silu_gate_{mode}", K), ref) < TOL[mode]


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_unfused_silu_and_mul(case: dict, mode: str) -> None:
    g, u = case["f"]["g"].astype(np.float64), case["f"]["u"]
    assert _rel(case["out"](f"silu_{mode}", K), g / (1 + np.exp(-g))) < TOL[mode]
    assert _rel(case["out"](f"mul_{mode}", K), g * u) < TOL[mode]


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_fork_then_add(case: dict, mode: str) -> None:
    assert _rel(case["out"](f"fork_add_{mode}", K), 2 * case["f"]["x"]) < TOL[mode]


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_argmax(case: dict, mode: str) -> None:
    assert int(case["out"](f"argmax_{mode}", 1)[0]) == int(np.argmax(case["f"]["g"]))
