"""What is being run: batch, prompt and output lengths, KV compression, speculative decoding, parallelism."""

from __future__ import annotations

import math
from dataclasses import dataclass

from trico.config import ModelConfig
from trico.errors import TricoError


def _check_int(owner: str, name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise TricoError(f"{owner}: {name} must be an integer >= {low}, got {value!r}")


def _check_fraction(owner: str, name: str, value: float, low: float, high: float, closed_high: bool) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value) and value >= low
    ok = ok and (value <= high if closed_high else value < high)
    if not ok:
        bracket = "]" if closed_high else ")"
        raise TricoError(f"{owner}: {name} must be in [{low}, {high}{bracket}, got {value!r}")


@dataclass(frozen=True)
class SpecDecode:
    """Speculative decoding: a draft proposes `draft_len` tokens, the target verifies them in one pass."""

    draft_len: int = 4
    """Tokens the draft proposes per verification step (>= 1)."""
    acceptance: float = 0.7
    """Probability that each drafted token is accepted, i.i.d. per position, in [0, 1)."""
    draft_cost: float = 0.0
    """Cost of one draft step as a fraction of a target decode step (used when draft_model is None, >= 0)."""
    draft_model: ModelConfig | None = None
    """A separate draft model whose decode step is modelled on the same device (overrides draft_cost)."""

    def __post_init__(self) -> None:
        _check_int("speculative decoding", "draft_len", self.draft_len, 1)
        _check_fraction("speculative decoding", "acceptance", self.acceptance, 0.0, 1.0, closed_high=False)
        if not (math.isfinite(self.draft_cost) and self.draft_cost >= 0):
            raise TricoError(f"speculative decoding: draft_cost must be >= 0, got {self.draft_cost!r}")

    @property
    def tokens_per_step(self) -> float:
        """Expected tokens emitted per verification: (1 - a^(k+1)) / (1 - a) (accepted prefix + one)."""
        a, k = self.acceptance, self.draft_len
        return (1.0 - a ** (k + 1)) / (1.0 - a)


@dataclass(frozen=True)
class Workload:
    """One serving configuration: `batch` sequences of `prompt` tokens, each generating `new_tokens`."""

    batch: int = 1
    """Concurrent sequences (>= 1)."""
    prompt: int = 128
    """Prompt tokens per sequence, all prefilled at once (>= 1)."""
    new_tokens: int = 256
    """Tokens generated per sequence (>= 1)."""
    context: int | None = None
    """KV length at which one decode step is timed; None = the mean over generation (prompt + new/2)."""
    kv_keep: float = 1.0
    """Fraction of the prompt's KV entries kept after prefill (SnapKV), in (0, 1]."""
    spec: SpecDecode | None = None
    """Speculative decoding, or None."""
    tp: int = 1
    """Tensor-parallel degree: devices sharing each layer (>= 1); heads and hidden units must divide."""
    reserve_GB: float = 0.0
    """Device memory held back from the model (runtime, allocator slack), in GB (>= 0)."""

    def __post_init__(self) -> None:
        for name, low in (("batch", 1), ("prompt", 1), ("new_tokens", 1), ("tp", 1)):
            _check_int("workload", name, getattr(self, name), low)
        if self.context is not None:
            _check_int("workload", "context", self.context, 1)
        _check_fraction("workload", "kv_keep", self.kv_keep, 1e-9, 1.0, closed_high=True)
        if not (math.isfinite(self.reserve_GB) and self.reserve_GB >= 0):
            raise TricoError(f"workload: reserve_GB must be >= 0, got {self.reserve_GB!r}")

    @property
    def decode_context(self) -> int:
        """KV positions attended by the timed decode step (before SnapKV compression)."""
        return self.context if self.context is not None else self.prompt + self.new_tokens // 2

    def kv_positions(self, context: int) -> float:
        """KV entries actually read at `context`: kept prompt entries plus everything generated since."""
        prompt_part = min(context, self.prompt)
        return prompt_part * self.kv_keep + max(0, context - self.prompt)

    @property
    def max_positions(self) -> int:
        """Longest sequence held in the cache (prompt + generated)."""
        return max(self.prompt + self.new_tokens, self.decode_context)
