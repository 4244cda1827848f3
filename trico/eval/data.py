"""Locate the shared evaluation/calibration text files and tokenize them."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from trico.errors import TricoError

TEST_FILE = "wikitext2-test.txt"
VALID_FILE = "wikitext2-valid.txt"


def shared_data_dir() -> Path:
    """The shared data folder: $TRICO_DATA_DIR, else `../shared/data` beside the repository."""
    env = os.environ.get("TRICO_DATA_DIR")
    candidates = [Path(env)] if env else []
    repo_root = Path(__file__).resolve().parents[2]
    candidates += [repo_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    raise TricoError("shared data folder not found: set TRICO_DATA_DIR or place shared/data beside the repo")


def data_file(name: str) -> Path:
    """Path of one shared data file (e.g. 'wikitext2-valid.txt'); a clear error if it is missing."""
    path = shared_data_dir() / name
    if not path.is_file():
        raise TricoError(f"data file {path} not found")
    return path


def read_text(path: str | Path | None = None) -> str:
    """Text of an evaluation file (default: the WikiText-2 test split)."""
    path = Path(path) if path is not None else data_file(TEST_FILE)
    if not path.is_file():
        raise TricoError(f"{path}: no such text file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TricoError(f"{path}: not a UTF-8 text file") from None


def load_eval_tokens(tokenizer, path: str | Path | None = None) -> torch.Tensor:  # noqa: ANN001
    """Tokenize a whole text file without BOS (the evaluation protocol); 1-D LongTensor."""
    ids = tokenizer.encode(read_text(path), add_bos=False)
    return torch.tensor(ids, dtype=torch.long)
