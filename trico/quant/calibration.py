"""Calibration data: N sequences of L tokens cut from a text file (default WikiText-2 validation, never test)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from trico.errors import TricoError

DEFAULT_FILE = "wikitext2-valid.txt"
FORBIDDEN = "wikitext2-test.txt"


@dataclass
class Calibration:
    """Calibration token sequences [N, L] and the settings that produced them (stored in the manifest)."""

    tokens: torch.Tensor
    settings: dict


def load_calibration(
    tokenizer,  # noqa: ANN001 - trico.io.tokenizer.Tokenizer
    path: str | Path | None = None,
    n_seqs: int = 8,
    seq_len: int = 512,
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
