"""Calibration windows: deterministic, from the validation split only, clear error when the text is too short."""

from pathlib import Path

import pytest
import torch

from trico.errors import TricoError
from trico.quant.calibration import load_calibration


class _ByteTokenizer:
    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        return list(text.encode())


def test_windows_are_seeded_and_come_from_the_text(tmp_path: Path) -> None:
    f = tmp_path / "valid.txt"
    f.write_text("".join(chr(97 + i % 26) for i in range(1000)))
    a = load_calibration(_ByteTokenizer(), f, n_seqs=4, seq_len=50, seed=3)
    b = load_calibration(_ByteTokenizer(), f, n_seqs=4, seq_len=50, seed=3)
    assert a.tokens.shape == (4, 50) and torch.equal(a.tokens, b.tokens)
    ids = torch.tensor(_ByteTokenizer().encode(f.read_text()))
    for row in a.tokens:
        starts = [s for s in range(0, 1000, 50) if torch.equal(ids[s : s + 50], row)]
        assert starts
    assert a.settings == {"file": "valid.txt", "n_seqs": 4, "seq_len": 50, "seed": 3, "tokens": 200}


def test_too_short_text_and_test_split_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "valid.txt"
    f.write_text("short text")
    with pytest.raises(
        TricoError, match="calibration text too short: valid.txt has 10 tokens, 2 x 8 = 16 needed"
    ):
        load_calibration(_ByteTokenizer(), f, n_seqs=2, seq_len=8)
    t = tmp_path / "wikitext2-test.txt"
    t.write_text("x" * 100)
    with pytest.raises(TricoError, match="test"):
        load_calibration(_ByteTokenizer(), t, n_seqs=1, seq_len=8)
    with pytest.raises(TricoError, match="not found"):
        load_calibration(_ByteTokenizer(), tmp_path / "missing.txt")
