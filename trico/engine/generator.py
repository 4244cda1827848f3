"""Autoregressive generation: prefill the prompt into a static KV cache, then decode token by token."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from trico.engine.sampler import Sampler
from trico.errors import TricoError

DecodeStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
PrefillChunk = Callable[[torch.Tensor, int], torch.Tensor]


class Generator:
    """Drives a model over a cache: `prefill(tokens)` once, then `decode()` per new token.

    The generator remembers which tokens its cache holds, so a follow-up prompt that extends the
    previous one (a chat turn) only prefills the new suffix. The decode step works on preallocated
    device buffers (last token, position), so it can be captured in a CUDA graph: `decode_step`
    may be replaced by a graphed callable with the same signature, and `prefill_chunk`
    (tokens [B, T] on the device, start) -> last logits [B, vocab] likewise.
    """

    def __init__(self, model: torch.nn.Module, cache, sampler: Sampler | None = None) -> None:  # noqa: ANN001
        self.model = model
        self.cache = cache
        self.sampler = sampler or Sampler()
        self.device = next(model.parameters()).device
        self.batch_size = cache.batch_size
        self.max_len = cache.max_len
        self.tokens: list[int] = []  # what the cache holds (batch 1 bookkeeping for prefix reuse)
        self.pos = 0
        self.token_buf = torch.zeros(self.batch_size, 1, dtype=torch.long, device=self.device)
        self.pos_buf = torch.zeros(1, dtype=torch.long, device=self.device)
        self.decode_step: DecodeStep = self._decode_step
        self.prefill_chunk: PrefillChunk = self._prefill_chunk

    def reset(self) -> None:
        """Forget the cached conversation."""
        self.tokens, self.pos = [], 0

    @torch.no_grad()
    def _decode_step(self, token: torch.Tensor, input_pos: torch.Tensor) -> torch.Tensor:
        """One step on static buffers: logits -> next token [B] (no host sync)."""
        logits = self.model.decode(token, input_pos, self.cache)
        return self.sampler(logits)

    @torch.no_grad()
    def prefill_at(
        self, tokens: torch.Tensor, input_pos: torch.Tensor, last_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The model's prefill of tokens [B, T] at input_pos [T] into the cache: last logits [B, vocab]
        (those of position `last_index` for a right-padded chunk)."""
        return self.model.prefill(tokens, input_pos, self.cache, last_index)

    def _prefill_chunk(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """`prefill_at` positions start..start+T-1, run eagerly."""
        return self.prefill_at(tokens, torch.arange(start, start + tokens.shape[1], device=tokens.device))

    @torch.no_grad()
    def prefill(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Write tokens [B, T] at positions start..start+T-1 and sample the next token [B]."""
        t = tokens.shape[1]
        if t == 0:
            raise TricoError("empty prompt")
        if start + t > self.max_len:
            raise TricoError(
                f"prompt of {start + t} tokens does not fit the context of {self.max_len} tokens"
            )
        logits = self.prefill_chunk(tokens.to(self.device), start)
        nxt = self.sampler(logits)
        self.pos = start + t
        self.token_buf.copy_(nxt.view(-1, 1))
        return nxt

    @torch.no_grad()
    def decode(self) -> torch.Tensor:
        """Feed the last sampled token at the current position; returns the next token [B]."""
        if self.pos >= self.max_len:
            raise TricoError(f"context of {self.max_len} tokens is full")
        self.pos_buf.fill_(self.pos)
        nxt = self.decode_step(self.token_buf, self.pos_buf)
        self.token_buf.copy_(nxt.view(-1, 1))
        self.pos += 1
        return nxt

    def generate(
        self, prompt: list[int], max_new_tokens: int, stop_ids: set[int] | None = None
    ) -> Iterator[int]:
        """Stream new token ids for a batch-1 prompt, reusing the cached prefix of the last call."""
        if max_new_tokens < 0:
            raise TricoError(f"max new tokens must be >= 0, got {max_new_tokens}")
        if len(prompt) >= self.max_len:
            raise TricoError(
                f"prompt has {len(prompt)} tokens but the context holds {self.max_len}; shorten the prompt"
            )
        reuse = 0
        while reuse < min(len(prompt) - 1, len(self.tokens)) and prompt[reuse] == self.tokens[reuse]:
            reuse += 1
        self.tokens = []  # invalid until the prefill below has written the prompt
        nxt = int(self.prefill(torch.tensor([prompt[reuse:]], dtype=torch.long), start=reuse)[0])
        self.tokens = list(prompt)
        stop_ids = stop_ids or set()
        budget = min(max_new_tokens, self.max_len - len(prompt))
        for i in range(budget):
            yield nxt
            if nxt in stop_ids or i == budget - 1:
                return
            following = int(self.decode()[0])
            self.tokens.append(nxt)  # decode() has just written nxt into the cache
            nxt = following
