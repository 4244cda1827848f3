"""`trico optimize` end to end on a tiny random model: checkpoint + report + plots, budget handling."""

import dataclasses
import json

import pytest
import torch
from tokenizers import Tokenizer as HFTokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from trico.config import tiny_config
from trico.errors import TricoError
from trico.io.loader import Checkpoint, load_model
from trico.io.tokenizer import Tokenizer
from trico.models.llama import build_model, init_random_
from trico.optimize import OptimizeOptions, run_optimize


@pytest.fixture
def tiny_job(monkeypatch):
    """Replace the default model and the evaluation text with a tiny random model and random tokens."""
    config = tiny_config(vocab_size=64, dim=64, hidden_dim=128, max_seq_len=256)
    model = build_model(config)
    init_random_(model, seed=0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    vocab = {f"w{i}": i for i in range(config.vocab_size)}
    backend = HFTokenizer(WordLevel(vocab, unk_token="w0"))
    backend.pre_tokenizer = Whitespace()
    tok = Tokenizer(backend, bos_token_id=1, eos_token_id=2, chat_template=None)
    ckpt = Checkpoint(config, state, tok, source=__import__("pathlib").Path("tiny"), kind="hf")
    monkeypatch.setattr("trico.io.loader.read_checkpoint", lambda spec, progress=False: ckpt)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, config.vocab_size, (2048,), generator=gen)
    monkeypatch.setattr("trico.eval.data.load_eval_tokens", lambda tokenizer, path=None: tokens)
    return config


def test_optimize_writes_checkpoint_report_and_plots(tiny_job, tmp_path):
    out = tmp_path / "opt"
    opts = OptimizeOptions(
        model="tiny",
        target="h100-sxm",
        max_kl=1.0,
        schemes=("int8", "int4-rtn-g32"),
        out=out,
        windows=2,
        ctx=64,
        prompt=64,
        new_tokens=16,
        progress=False,
        tie_tolerance=10.0,  # everything ties on speed: the lowest KL must win
    )
    report = run_optimize(opts)
    assert report["chosen"] == min(report["candidates"], key=lambda r: r["kl_mean"])["scheme"]
    saved = json.loads((out / "report.json").read_text())
    assert saved["chosen"] == report["chosen"] and len(saved["candidates"]) == 2
    by = {r["scheme"]: r for r in saved["candidates"]}
    assert by["int8"]["kl_mean"] < by["int4-rtn-g32"]["kl_mean"]
    assert by["int4-rtn-g32"]["bits_per_weight"] < by["int8"]["bits_per_weight"]
    md = (out / "report.md").read_text()
    assert "pareto.png" in md and "roofline.png" in md and report["chosen"] in md
    for png in ("pareto.png", "roofline.png", "roofline-operators.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    # A second run replaces the result only with --overwrite.
    with pytest.raises(TricoError, match="--overwrite"):
        run_optimize(opts)
    again = run_optimize(dataclasses.replace(opts, schemes=("int8",), overwrite=True))
    assert again["chosen"] == "int8" and json.loads((out / "report.json").read_text())["chosen"] == "int8"
    # The folder is a loadable trico checkpoint of the chosen scheme.
    loaded = load_model(str(out))
    assert loaded.extra["scheme"] == "int8"
    logits = loaded.model(torch.tensor([[3, 4, 5]]))
    assert logits.shape == (1, 3, tiny_job.vocab_size) and torch.isfinite(logits).all()


def test_optimize_refuses_when_nothing_meets_the_budget(tiny_job, tmp_path):
    opts = OptimizeOptions(
        model="tiny",
        max_kl=1e-9,
        schemes=("int4-rtn-g32",),
        out=tmp_path / "o",
        windows=1,
        ctx=64,
        progress=False,
    )
    with pytest.raises(TricoError, match="no candidate meets --max-kl"):
        run_optimize(opts)
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_optimize_checks_inputs(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(TricoError, match="not empty"):
        run_optimize(OptimizeOptions(out=tmp_path / "full"))
    with pytest.raises(TricoError, match="max-kl"):
        OptimizeOptions(max_kl=0)
    with pytest.raises(TricoError, match="window"):
        OptimizeOptions(windows=0)
