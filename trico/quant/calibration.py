"""Calibration data: N sequences of L tokens cut from a text file (default WikiText-2 validation, never test)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from trico.errors import TricoError

DEFAULT_FILE = "wikitext2-valid.txt"
FORBIDDEN = "wikitext2-test.txt"
DEFAULT_N_SEQS = 32
"""Default calibration sequences: 32 x 512 = 16k tokens. GPTQ's Hessian for down_proj (K = 1536) is poorly
estimated from the 4k tokens of 8 sequences; more than 32 costs more calibration-forward time than the
5-minute budget for quantizing SmolLM2 on a 2-core CPU allows."""
DEFAULT_SEQ_LEN = 512


@dataclass
class Calibration:
    """Calibration token sequences [N, L] and the settings that produced them (stored in the manifest)."""

    tokens: torch.Tensor
    settings: dict


def load_calibration(
    tokenizer,  # noqa: ANN001 - trico.io.tokenizer.Tokenizer
    path: str | Path | None = None,
    n_seqs: int = DEFAULT_N_SEQS,
    seq_len: int = DEFAULT_SEQ_LEN,
    seed: int = 0,
) -> Calibration:
    """Tokenize the text and draw n_seqs non-overlapping windows of seq_len tokens at seeded random offsets."""
    if n_seqs < 1 or seq_len < 2:
        raise TricoError(f"calibration needs >= 1 sequence of >= 2 tokens, got {n_seqs} x {seq_len}")
    if path is None:
        from trico.eval.data import data_file

        path = data_file(DEFAULT_FILE)
    path = Path(path)
    if path.name == FORBIDDEN:
        raise TricoError(f"{path}: refusing to calibrate on the evaluation (test) split")
    if not path.is_file():
        raise TricoError(f"{path}: calibration text file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TricoError(f"{path}: not a UTF-8 text file") from None
    ids = torch.tensor(tokenizer.encode(text, add_bos=False), dtype=torch.long)
    n_windows = ids.numel() // seq_len
    if n_windows < n_seqs:
        raise TricoError(
            f"calibration text too short: {path.name} has {ids.numel()} tokens, {n_seqs} x {seq_len} "
            f"= {n_seqs * seq_len} needed"
        )
    gen = torch.Generator().manual_seed(seed)
    picks = torch.randperm(n_windows, generator=gen)[:n_seqs].sort().values
    tokens = ids[: n_windows * seq_len].view(n_windows, seq_len)[picks].clone()
    settings = {
        "file": path.name,
        "n_seqs": n_seqs,
        "seq_len": seq_len,
        "seed": seed,
        "tokens": int(tokens.numel()),
    }
    return Calibration(tokens, settings)
