"""BPE tokenizer (via the `tokenizers` library) built from tokenizer.json or GGUF metadata, plus chat templates."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from trico.errors import TricoError
from trico.io.gguf_reader import GGUFTokenizerSpec

# llama.cpp's name for a pre-tokenizer -> splits applied before byte-level BPE.
# "smollm": digits are split one by one, then the GPT-2 regex (SmolLM2's tokenizer.json does the same).
_DIGITS_FIRST = {"smollm", "starcoder", "refact"}
_CONTROL = 3  # llama.cpp token type for control (special) tokens


class Tokenizer:
    """Text <-> token ids, special tokens, and the model's chat template."""

    def __init__(
        self,
        backend,  # noqa: ANN001 - tokenizers.Tokenizer
        bos_token_id: int | None,
        eos_token_id: int | None,
        chat_template: str | None,
        add_bos: bool = False,
    ) -> None:
        self.backend = backend
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.chat_template = chat_template
        self.add_bos = add_bos

    @property
    def vocab_size(self) -> int:
        """Number of ids the tokenizer can produce (special tokens included)."""
        return self.backend.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_bos: bool | None = None) -> list[int]:
        """Token ids of text; special-token strings in it are recognised as such."""
        ids = self.backend.encode(text, add_special_tokens=False).ids
        if (self.add_bos if add_bos is None else add_bos) and self.bos_token_id is not None:
            ids = [self.bos_token_id, *ids]
        return ids

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """Text of token ids."""
        return self.backend.decode(list(ids), skip_special_tokens=skip_special)

    def token_to_id(self, token: str) -> int | None:
        """Id of a token string, or None."""
        return self.backend.token_to_id(token)

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """Render a conversation with the model's jinja2 chat template."""
        if not self.chat_template:
            # A plain fallback so base models still chat: one line per turn.
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
            return text + ("assistant: " if add_generation_prompt else "")
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

        def raise_exception(message: str) -> None:
            raise TricoError(f"chat template: {message}")

        env.globals["raise_exception"] = raise_exception
        try:
            template = env.from_string(self.chat_template)
            return template.render(
                messages=messages,
                add_generation_prompt=add_generation_prompt,
                bos_token=self._token_str(self.bos_token_id),
                eos_token=self._token_str(self.eos_token_id),
            )
        except jinja2.TemplateError as exc:
            raise TricoError(f"chat template failed to render: {exc}") from None

    def stop_ids(self) -> set[int]:
        """Token ids that should end a chat reply (eos plus common end-of-turn tokens)."""
        ids = {self.eos_token_id} if self.eos_token_id is not None else set()
        for tok in ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "</s>", "<|endoftext|>"):
            tid = self.token_to_id(tok)
            if tid is not None:
                ids.add(tid)
        return ids

    def _token_str(self, tid: int | None) -> str:
        return self.backend.id_to_token(tid) if tid is not None else ""


def tokenizer_from_gguf(spec: GGUFTokenizerSpec) -> Tokenizer:
    """Rebuild a byte-level BPE tokenizer from GGUF vocabulary and merges."""
    from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer

    if spec.model != "gpt2":
        raise TricoError(
            f"GGUF tokenizer type {spec.model!r} is not supported (trico reads byte-level BPE, 'gpt2')"
        )
    if not spec.tokens or not spec.merges:
        raise TricoError("GGUF file has no tokenizer vocabulary or merges")
    vocab = {tok: i for i, tok in enumerate(spec.tokens)}
    merges = [tuple(m.split(" ", 1)) for m in spec.merges]
    backend = HFTokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    steps = []
    if spec.pre in _DIGITS_FIRST:
        steps.append(pre_tokenizers.Split(Regex(r"\p{N}"), behavior="isolated"))
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    backend.pre_tokenizer = pre_tokenizers.Sequence(steps)
    backend.decoder = decoders.ByteLevel()
    specials = [
        AddedToken(tok, special=True, normalized=False)
        for tok, ttype in zip(spec.tokens, spec.token_types)
        if ttype == _CONTROL
    ]
    backend.add_special_tokens(specials)
    return Tokenizer(backend, spec.bos_token_id, spec.eos_token_id, spec.chat_template, add_bos=spec.add_bos)


def tokenizer_from_hf_dir(directory: Path) -> Tokenizer:
    """Load tokenizer.json (+ tokenizer_config.json for specials and the chat template) from an HF directory."""
    from tokenizers import Tokenizer as HFTokenizer

    tj = directory / "tokenizer.json"
    if not tj.is_file():
        raise TricoError(f"{directory}: no tokenizer.json")
    try:
        backend = HFTokenizer.from_file(str(tj))
    except Exception as exc:
        raise TricoError(f"{tj}: not a valid tokenizer.json ({exc})") from None
    cfg: dict = {}
    tc = directory / "tokenizer_config.json"
    if tc.is_file():
        cfg = json.loads(tc.read_text())

    def special_id(key: str) -> int | None:
        tok = cfg.get(key)
        if isinstance(tok, dict):
            tok = tok.get("content")
        return backend.token_to_id(tok) if isinstance(tok, str) else None

    template = cfg.get("chat_template")
    if isinstance(template, list):  # some configs store several named templates
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    return Tokenizer(
        backend,
        special_id("bos_token"),
        special_id("eos_token"),
        template,
        add_bos=bool(cfg.get("add_bos_token")),
    )
