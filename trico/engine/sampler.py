"""Token sampling on the device: greedy, temperature, top-k, top-p, seeded; no host synchronisation.

The final argmax runs as one Triton kernel on the fused (CUDA) path (trico/kernels/argmax.py), torch's elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trico.errors import TricoError


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen."""

    temperature: float = 0.0
    """0 means greedy (argmax); otherwise logits are divided by it (> 0)."""
    top_k: int | None = None
    """Keep only the k most likely tokens (>= 1), or None."""
    top_p: float | None = None
    """Keep the smallest set of tokens whose probability sums to at least p (0 < p <= 1), or None."""
    seed: int | None = None
    """Seed for reproducible sampling, or None for a random one."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise TricoError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise TricoError(f"top-k must be >= 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise TricoError(f"top-p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        """Whether sampling reduces to argmax."""
        return self.temperature == 0 or self.top_k == 1


class Sampler:
    """Turns logits [B, vocab] into next tokens [B] entirely with tensor ops."""

    def __init__(self, params: SamplingParams | None = None, device: str | torch.device = "cpu") -> None:
        self.params = params or SamplingParams()
        self.generator: torch.Generator | None = None
        if not self.params.greedy:
            self.generator = torch.Generator(device=device)
            if self.params.seed is not None:
                self.generator.manual_seed(self.params.seed)
            else:
                self.generator.seed()

    def filtered_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Temperature-scaled logits with everything outside top-k / top-p set to -inf."""
        p = self.params
        logits = logits.float() / max(p.temperature, 1e-6)
        if p.top_k is not None and p.top_k < logits.shape[-1]:
            kth = torch.topk(logits, p.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if p.top_p is not None and p.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            cum = sorted_logits.softmax(-1).cumsum(-1)
            # Drop a token when the mass before it already reaches top_p (the first token always stays).
            drop_sorted = (cum - sorted_logits.softmax(-1)) >= p.top_p
            drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        return logits

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """Next token ids [B] for logits [B, vocab]."""
        from trico.kernels.argmax import greedy_tokens

        if self.params.greedy:
            return greedy_tokens(logits)
        probs = self.filtered_logits(logits).softmax(-1)
        # Exponential-race sampling: argmax(p / E) with E ~ Exp(1) draws from p without a multinomial sync.
        noise = torch.empty_like(probs).exponential_(1.0, generator=self.generator)
        return greedy_tokens(probs / noise)
