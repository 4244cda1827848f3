"""trico checkpoints: save -> load gives identical logits; manifest contents; refusals leave nothing behind."""

import json
from pathlib import Path

import pytest
import torch

from trico.config import tiny_config
from trico.errors import TricoError
from trico.io.loader import load_model
from trico.io.trico_checkpoint import load_trico_checkpoint, save_trico_checkpoint
from trico.models.llama import build_model
from trico.quant import QLinear, quantize
from trico.quant.calibration import Calibration


def _model(scheme: str, **cfg):  # noqa: ANN202
    torch.manual_seed(0)
    m = build_model(tiny_config(**cfg))
    calib = Calibration(torch.randint(0, 256, (2, 32)), {"file": "random", "n_seqs": 2, "seq_len": 32})
    return quantize(m, scheme, calib, progress=False)


@pytest.mark.parametrize(
    "scheme",
    ["int8", "int4-gptq-g32-asym", "int3-rtn-g32", "w8a8-smooth", "ternary-pt-b3", "int2-rtn-pc-head"],
)
def test_reload_gives_identical_logits(tmp_path: Path, scheme: str) -> None:
    m = _model(scheme, tie_embeddings=True)
    out = save_trico_checkpoint(m, m.config, None, tmp_path / "ck", float_dtype=torch.float32)
    loaded = load_model(str(out))  # the generic loader dispatches on trico.json
    assert loaded.kind == "trico" and loaded.extra["scheme"] == scheme
    x = torch.randint(0, 256, (2, 20))
    assert torch.equal(loaded.model(x), m(x))
    for name, q in m.named_modules():
        if isinstance(q, QLinear):
            r = loaded.model.get_submodule(name)
            assert isinstance(r, QLinear) and torch.equal(r.qweight, q.qweight) and r.fmt == q.fmt


def test_manifest_records_scheme_layers_versions_and_sizes(tmp_path: Path) -> None:
    m = _model("int4-awq-g32")
    out = save_trico_checkpoint(m, m.config, None, tmp_path / "ck")
    man = json.loads((out / "trico.json").read_text())
    q = man["quantization"]
    assert q["scheme"] == "int4-awq-g32" and len(q["layers"]) == 14
    assert q["layers"]["model.layers.0.mlp.down_proj"] == {
        "fmt": "uint4",
        "group_size": 32,
        "symmetric": True,
        "in_features": 128,
        "out_features": 64,
        "bytes": 64 * 64 + 64 * 4 * 2,
        "bits_per_weight": 4.5,
    }
    assert q["calibration"]["n_seqs"] == 2 and q["high_precision"] == ["model.embed_tokens", "lm_head"]
    assert {"trico", "torch", "safetensors"} <= set(man["versions"])
    assert man["bytes_on_disk"] == sum(p.stat().st_size for p in out.iterdir() if p.name != "trico.json")
    assert man["float_dtype"] == "float16"


def test_fp16_high_precision_tensors_load_in_any_dtype(tmp_path: Path) -> None:
    m = _model("int8")
    out = save_trico_checkpoint(m, m.config, None, tmp_path / "ck")
    loaded = load_trico_checkpoint(out, dtype=torch.bfloat16)
    q = loaded.model.model.layers[0].self_attn.q_proj
    assert q.scales.dtype == torch.float16 and loaded.model.model.norm.weight.dtype == torch.bfloat16
    assert loaded.model.model.embed_tokens.weight.dtype == torch.bfloat16
    assert loaded.model(torch.randint(0, 256, (1, 8))).dtype == torch.float32  # logits are fp32 sums


def test_non_empty_output_dir_is_refused_and_untouched(tmp_path: Path) -> None:
    m = _model("int8")
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "keep.txt").write_text("x")
    with pytest.raises(TricoError, match="not empty"):
        save_trico_checkpoint(m, m.config, None, tmp_path / "ck")
    assert [p.name for p in (tmp_path / "ck").iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no temp directory left behind


def test_failure_while_writing_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _model("int8")

    def boom(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", boom)
    with pytest.raises(OSError):
        save_trico_checkpoint(m, m.config, None, tmp_path / "ck")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_manifest_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "trico.json").write_text("{not json")
    with pytest.raises(TricoError, match="unreadable trico manifest"):
        load_trico_checkpoint(tmp_path)
