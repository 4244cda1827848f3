"""Model configuration: one validated dataclass and the named presets the rest of trico reuses."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, replace

from trico.errors import TricoError


@dataclass(frozen=True)
class RopeScaling:
    """Llama-3.1-style RoPE frequency scaling (long wavelengths slowed down by `factor`)."""

    factor: float = 8.0
    """How much the lowest frequencies are divided by (> 1)."""
    low_freq_factor: float = 1.0
    """Wavelengths longer than original_max_position / low_freq_factor are fully scaled."""
    high_freq_factor: float = 4.0
    """Wavelengths shorter than original_max_position / high_freq_factor are left alone."""
    original_max_position: int = 8192
    """Context length the model was pre-trained with before the extension."""

    def __post_init__(self) -> None:
        if (
            self.factor < 1.0
            or self.high_freq_factor <= self.low_freq_factor
            or self.original_max_position < 1
        ):
            raise TricoError(f"invalid RoPE scaling parameters: {self}")


@dataclass(frozen=True)
class ModelConfig:
    """Shape and hyper-parameters of a Llama-family decoder (Llama-2/3, Mistral, SmolLM2)."""

    name: str
    """Human-readable name, e.g. 'llama-2-7b'."""
    vocab_size: int
    """Number of tokens in the vocabulary (>= 1)."""
    dim: int
    """Hidden size (model width, >= 1)."""
    n_layers: int
    """Number of decoder blocks (>= 1)."""
    n_heads: int
    """Number of query heads (divides dim unless head_dim is given)."""
    n_kv_heads: int
    """Number of key/value heads; divides n_heads (GQA when smaller)."""
    hidden_dim: int
    """Intermediate size of the SiLU-gated MLP."""
    head_dim: int = 0
    """Per-head size; 0 means dim // n_heads."""
    norm_eps: float = 1e-5
    """RMSNorm epsilon (> 0)."""
    rope_theta: float = 10000.0
    """RoPE base frequency (> 0)."""
    rope_scaling: RopeScaling | None = None
    """Llama-3.1-style frequency scaling, or None."""
    max_seq_len: int = 4096
    """Longest context the model supports (positions >= this are refused)."""
    tie_embeddings: bool = False
    """lm_head shares the embedding matrix (SmolLM2)."""
    bos_token_id: int | None = 1
    """Beginning-of-sequence token, if the tokenizer has one."""
    eos_token_ids: tuple[int, ...] = field(default_factory=lambda: (2,))
    """Tokens that end generation."""

    def __post_init__(self) -> None:
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads", "hidden_dim", "max_seq_len"):
            if int(getattr(self, name)) < 1:
                raise TricoError(
                    f"model config {self.name!r}: {name} must be >= 1, got {getattr(self, name)}"
                )
        if self.n_heads % self.n_kv_heads:
            raise TricoError(
                f"model config {self.name!r}: n_heads={self.n_heads} is not a multiple of "
                f"n_kv_heads={self.n_kv_heads}"
            )
        if self.head_dim == 0:
            if self.dim % self.n_heads:
                raise TricoError(f"model config {self.name!r}: dim={self.dim} not divisible by n_heads")
            object.__setattr__(self, "head_dim", self.dim // self.n_heads)
        if self.head_dim % 2:
            raise TricoError(
                f"model config {self.name!r}: head_dim must be even for RoPE, got {self.head_dim}"
            )
        if self.norm_eps <= 0 or self.rope_theta <= 0:
            raise TricoError(f"model config {self.name!r}: norm_eps and rope_theta must be > 0")
        object.__setattr__(self, "eos_token_ids", tuple(int(t) for t in self.eos_token_ids))

    @property
    def n_rep(self) -> int:
        """How many query heads share one key/value head."""
        return self.n_heads // self.n_kv_heads

    @property
    def q_dim(self) -> int:
        """Output features of the query projection."""
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Output features of each of the key and value projections."""
        return self.n_kv_heads * self.head_dim

    def n_params(self, include_embeddings: bool = True) -> int:
        """Parameter count implied by the shape (embeddings counted once when tied)."""
        per_layer = (
            self.dim * (self.q_dim + 2 * self.kv_dim)
            + self.q_dim * self.dim
            + 3 * self.dim * self.hidden_dim
            + 2 * self.dim
        )
        total = self.n_layers * per_layer + self.dim
        if include_embeddings:
            total += self.vocab_size * self.dim * (1 if self.tie_embeddings else 2)
        return total

    def to_dict(self) -> dict:
        """JSON-friendly dict (round-trips through from_dict)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """Build from a dict produced by to_dict()."""
        d = dict(d)
        if d.get("rope_scaling"):
            d["rope_scaling"] = RopeScaling(**d["rope_scaling"])
        if "eos_token_ids" in d:
            d["eos_token_ids"] = tuple(d["eos_token_ids"])
        return cls(**d)

    def with_(self, **changes) -> ModelConfig:
        """A copy with some fields changed (re-validated)."""
        return replace(self, **changes)


_LLAMA2 = dict(vocab_size=32000, norm_eps=1e-5, rope_theta=10000.0, max_seq_len=4096)
_LLAMA3 = dict(
    vocab_size=128256,
    norm_eps=1e-5,
    rope_theta=500000.0,
    max_seq_len=8192,
    bos_token_id=128000,
    eos_token_ids=(128001, 128009),
)

PRESETS: dict[str, ModelConfig] = {
    c.name: c
    for c in [
        ModelConfig(
            name="smollm2-135m",
            vocab_size=49152,
            dim=576,
            n_layers=30,
            n_heads=9,
            n_kv_heads=3,
            hidden_dim=1536,
            norm_eps=1e-5,
            rope_theta=100000.0,
            max_seq_len=8192,
            tie_embeddings=True,
            bos_token_id=1,
            eos_token_ids=(2,),
        ),
        ModelConfig(
            name="llama-2-7b", dim=4096, n_layers=32, n_heads=32, n_kv_heads=32, hidden_dim=11008, **_LLAMA2
        ),
        ModelConfig(
            name="llama-2-13b", dim=5120, n_layers=40, n_heads=40, n_kv_heads=40, hidden_dim=13824, **_LLAMA2
        ),
        ModelConfig(
            name="llama-2-70b", dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, hidden_dim=28672, **_LLAMA2
        ),
        ModelConfig(
            name="llama-3-8b", dim=4096, n_layers=32, n_heads=32, n_kv_heads=8, hidden_dim=14336, **_LLAMA3
        ),
        ModelConfig(
            name="llama-3-70b", dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, hidden_dim=28672, **_LLAMA3
        ),
        ModelConfig(
            name="llama-3.1-8b",
            dim=4096,
            n_layers=32,
            n_heads=32,
            n_kv_heads=8,
            hidden_dim=14336,
            rope_scaling=RopeScaling(),
            **{**_LLAMA3, "max_seq_len": 131072},
        ),
        # Mistral-7B v0.1: GQA 32/8. Its 4096-token sliding window is not modelled; contexts up to 4096
        # are exact, longer ones attend to the full prefix.
        ModelConfig(
            name="mistral-7b",
            vocab_size=32000,
            dim=4096,
            n_layers=32,
            n_heads=32,
            n_kv_heads=8,
            hidden_dim=14336,
            norm_eps=1e-5,
            rope_theta=10000.0,
            max_seq_len=32768,
        ),
    ]
}


def get_config(name: str) -> ModelConfig:
    """Look up a preset by name; unknown names get a clear error with the closest suggestions."""
    key = name.lower()
    if key in PRESETS:
        return PRESETS[key]
    close = difflib.get_close_matches(key, PRESETS, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise TricoError(f"unknown model preset {name!r}{hint}; known: {', '.join(PRESETS)}")


def tiny_config(**overrides) -> ModelConfig:
    """A tiny GQA Llama for tests: random weights build in milliseconds."""
    base = dict(
        name="tiny",
        vocab_size=256,
        dim=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        hidden_dim=128,
        max_seq_len=256,
        norm_eps=1e-5,
        rope_theta=10000.0,
    )
    base.update(overrides)
    return ModelConfig(**base)
