"""GGUF export: exact block layouts read back by the gguf package, trico reloads the file to the same model."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from trico.config import tiny_config
from trico.errors import TricoError
from trico.io.gguf_reader import load_gguf, unpermute_rope
from trico.io.gguf_writer import q4_blocks, q8_0_blocks, write_gguf
from trico.io.loader import load_model
from trico.models.llama import build_model
from trico.quant import QLinear, quantize
from trico.quant.calibration import Calibration


@pytest.fixture(autouse=True)
def _one_thread():  # noqa: ANN202
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cfg():  # noqa: ANN202
    return tiny_config(dim=256, hidden_dim=512, n_heads=4, n_kv_heads=2, tie_embeddings=True)


def _quantized(scheme: str):  # noqa: ANN202
    torch.manual_seed(0)
    m = build_model(_cfg())
    with torch.no_grad():  # fp16-representable floats, as in a trico checkpoint, so reload is exact
        for p in m.parameters():
            p.copy_(p.half().float())
    return quantize(m, scheme, Calibration(torch.randint(0, 256, (2, 32)), {}), progress=False)


@pytest.mark.parametrize(
    "scheme,qtype",
    [
        ("int8-rtn-g32", "Q8_0"),
        ("int4-rtn-g32", "Q4_0"),
        ("int4-gptq-g32-asym", "Q4_1"),
        ("ternary-g256", "TQ2_0"),
        ("ternary-g256-b3", "TQ1_0"),
    ],
)
def test_gguf_package_dequantizes_to_trico_weights(tmp_path: Path, scheme: str, qtype: str) -> None:
    import gguf

    m = _quantized(scheme)
    res = write_gguf(m, m.config, None, tmp_path / "m.gguf")
    assert res.type_counts[qtype] == 14 and len(res.exact) == 14
    reader = gguf.GGUFReader(str(tmp_path / "m.gguf"))
    tensors = {t.name: t for t in reader.tensors}
    for layer, q in [(0, m.model.layers[0].self_attn.k_proj), (1, m.model.layers[1].mlp.down_proj)]:
        name = f"blk.{layer}." + ("attn_k" if layer == 0 else "ffn_down") + ".weight"
        t = tensors[name]
        assert t.tensor_type.name == qtype
        w = torch.from_numpy(gguf.quants.dequantize(t.data, t.tensor_type).copy())
        if layer == 0:
            w = unpermute_rope(w, 2)
        assert torch.equal(w, q.dequantize())  # bit-exact: codes and fp16 scales are copied, not re-derived
    x = torch.randint(0, 256, (1, 16))
    back = load_model(str(tmp_path / "m.gguf")).model
    assert torch.equal(back(x), m(x))


def test_block_layouts_by_hand() -> None:
    codes = torch.arange(32, dtype=torch.uint8).remainder(16).view(1, 32)
    scales = torch.tensor([[0.5]], dtype=torch.float16)
    b = q4_blocks(codes, scales, None)
    assert b.shape == (1, 18) and b[0, :2].view(np.float16)[0] == 0.5
    assert b[0, 2] == (0 | 0 << 4) and b[0, 3] == (1 | 1 << 4) and b[0, 17] == (15 | 15 << 4)
    b1 = q4_blocks(codes, scales, torch.tensor([[-1.0]], dtype=torch.float16))
    assert b1.shape == (1, 20) and b1[0, 2:4].view(np.float16)[0] == -1.0
    q8 = q8_0_blocks(torch.arange(-16, 16, dtype=torch.int8).view(1, 32), scales)
    assert q8.shape == (1, 34) and q8[0, 2:].view(np.int8).tolist() == list(range(-16, 16))


def test_unmatched_layouts_fall_back_to_f16_and_w8a8_is_refused(tmp_path: Path) -> None:
    m = _quantized("int4-rtn-g64")
    res = write_gguf(m, m.config, None, tmp_path / "a.gguf")
    assert res.exact == [] and res.type_counts["F16"] == 15  # 14 linears + the embedding table
    g = load_gguf(tmp_path / "a.gguf")
    q = m.model.layers[0].mlp.up_proj
    torch.testing.assert_close(
        g.state_dict["model.layers.0.mlp.up_proj.weight"], q.dequantize(), rtol=1e-3, atol=0
    )
    w8 = _quantized("w8a8-smooth")
    with pytest.raises(TricoError, match="no GGUF counterpart"):
        write_gguf(w8, w8.config, None, tmp_path / "b.gguf")
    assert not (tmp_path / "b.gguf").exists()
    with pytest.raises(TricoError, match="exists"):
        write_gguf(m, m.config, None, tmp_path / "a.gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gguf"]


def test_cli_quantize_then_export(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from trico.cli import main

    src = build_model(_cfg())
    write_gguf(src, src.config, None, tmp_path / "float.gguf")

    def run(*args: str) -> SimpleNamespace:
        code = main(list(args))
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    r = run(
        "quantize",
        "--model",
        str(tmp_path / "float.gguf"),
        "--scheme",
        "int4-rtn-g32",
        "--out",
        str(tmp_path / "q"),
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    r = run(
        "export",
        "--model",
        str(tmp_path / "q"),
        "--format",
        "gguf",
        "--out",
        str(tmp_path / "q.gguf"),
        "--quiet",
    )
    assert r.returncode == 0 and "Q4_0" in r.stdout, r.stderr
    assert isinstance(load_model(str(tmp_path / "q")).model.lm_head, torch.nn.Linear)
    bad = run(
        "quantize",
        "--model",
        str(tmp_path / "float.gguf"),
        "--scheme",
        "int4-rtn-g48",
        "--out",
        str(tmp_path / "z"),
    )
    assert bad.returncode == 2 and "does not divide" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "z").exists()
    bad = run(
        "quantize", "--model", str(tmp_path / "float.gguf"), "--scheme", "int9", "--out", str(tmp_path / "z")
    )
    assert bad.returncode == 2 and "valid: int8" in bad.stderr
    bad = run(
        "quantize", "--model", str(tmp_path / "float.gguf"), "--scheme", "int8", "--out", str(tmp_path / "q")
    )
    assert bad.returncode == 2 and "not empty" in bad.stderr
    assert isinstance(load_model(str(tmp_path / "q")).model.model.layers[0].mlp.up_proj, QLinear)
