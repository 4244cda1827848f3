"""`trico generate` (one prompt) and `trico chat` (an interactive conversation)."""

from __future__ import annotations

import argparse
import sys
import time

from trico.cli.common import add_model_args, load_from_args, print_json
from trico.errors import TricoError

EPILOG = """examples:
  trico generate --prompt "What is the capital of France?"
  trico generate --model model.gguf --raw --prompt "Once upon a time" --temperature 0.8 --top-p 0.9 --seed 1
  trico chat --system "You are terse."
"""


def _add_sampling_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-new-tokens", type=int, default=128, help="stop after this many new tokens")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default); > 0 samples")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass in (0, 1]")
    p.add_argument("--seed", type=int, default=None, help="seed for reproducible sampling")
    p.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="TOKEN",
        help="extra stop token (its text, e.g. '<|im_end|>'); repeatable; eos always stops",
    )
    p.add_argument("--max-context", type=int, default=2048, help="KV-cache length (prompt + reply)")
    p.add_argument(
        "--int8-activations",
        action="store_true",
        help="CUDA, quantized checkpoints: decode GEMVs quantize activations to int8 per 32 values and "
        "multiply with dp4a (about 1.2-1.4x faster int4/ternary decode; costs some accuracy, see "
        "docs/a8-quality.md); ignored on CPU",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the generate and chat sub-commands."""
    g = subparsers.add_parser(
        "generate",
        help="generate a reply to one prompt (streams tokens)",
        description="Generate text from a prompt. Instruct models get their chat template unless --raw.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_args(g)
    g.add_argument("--prompt", required=True, help="the prompt text")
    g.add_argument("--raw", action="store_true", help="feed the prompt as is, without the chat template")
    g.add_argument("--system", default=None, help="system message for the chat template")
    g.add_argument("--no-stream", action="store_true", help="print the reply only when it is complete")
    g.add_argument("--json", action="store_true", help="print a JSON record (reply, token counts, timings)")
    _add_sampling_args(g)
    g.set_defaults(func=run_generate)

    c = subparsers.add_parser(
        "chat",
        help="interactive chat in the terminal (keeps the conversation)",
        description="Chat with a model. Type a message and press Enter; /reset clears the conversation, "
        "/exit (or Ctrl-D) leaves.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_args(c)
    c.add_argument("--system", default=None, help="system message for the chat template")
    _add_sampling_args(c)
    c.set_defaults(func=run_chat)


def _sampling(args: argparse.Namespace):  # noqa: ANN202 - SamplingParams, imported lazily with torch
    from trico.engine.sampler import SamplingParams

    return SamplingParams(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed)


def _stop_ids(tokenizer, extra: list[str]) -> set[int]:  # noqa: ANN001
    ids = set(tokenizer.stop_ids())
    for text in extra:
        tid = tokenizer.token_to_id(text)
        if tid is None:
            raise TricoError(f"--stop {text!r} is not a single token of this tokenizer")
        ids.add(tid)
    return ids


def _messages(system: str | None, turns: list[dict[str, str]]) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + turns


class _TextStream:
    """Turns a stream of token ids into printable text pieces (whole UTF-8 characters only)."""

    def __init__(self, tokenizer, stop_ids: set[int]) -> None:  # noqa: ANN001
        self.tokenizer, self.stop_ids = tokenizer, stop_ids
        self.ids: list[int] = []
        self.printed = ""

    def push(self, tid: int) -> str:
        if tid in self.stop_ids:
            return ""
        self.ids.append(tid)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):  # an incomplete multi-byte character: wait for the rest
            return ""
        piece, self.printed = text[len(self.printed) :], text
        return piece


def _reply(gen, tokenizer, prompt_ids: list[int], args, stream: bool) -> tuple[str, dict]:  # noqa: ANN001
    stops = _stop_ids(tokenizer, args.stop)
    out = _TextStream(tokenizer, stops)
    t0 = time.perf_counter()
    first = None
    n = 0
    for tid in gen.generate(prompt_ids, args.max_new_tokens, stops):
        first = first or time.perf_counter()
        n += 1
        piece = out.push(tid)
        if stream and piece:
            sys.stdout.write(piece)
            sys.stdout.flush()
    t1 = time.perf_counter()
    stats = {
        "prompt_tokens": len(prompt_ids),
        "new_tokens": n,
        "ttft_s": (first or t1) - t0,
        "decode_tok_s": (n - 1) / (t1 - first) if first and n > 1 and t1 > first else None,
    }
    return out.tokenizer.decode(out.ids), stats


def run_generate(args: argparse.Namespace) -> int:
    """Generate one reply."""
    from trico.engine.session import make_generator

    sampling = _sampling(args)  # validate options before the (slow) model load
    loaded = load_from_args(args, quiet=args.json)
    tok = loaded.tokenizer
    if tok is None:
        raise TricoError(f"{loaded.source}: the checkpoint has no tokenizer; cannot encode a text prompt")
    text = (
        args.prompt
        if args.raw
        else tok.apply_chat_template(_messages(args.system, [{"role": "user", "content": args.prompt}]))
    )
    prompt_ids = tok.encode(text)
    if len(prompt_ids) >= min(args.max_context, loaded.config.max_seq_len):
        raise TricoError(
            f"prompt is {len(prompt_ids)} tokens, longer than the context of "
            f"{min(args.max_context, loaded.config.max_seq_len)} tokens"
        )
    gen = make_generator(loaded, args.max_context, sampling, args.int8_activations)
    stream = not (args.no_stream or args.json)
    reply, stats = _reply(gen, tok, prompt_ids, args, stream)
    if args.json:
        print_json({"model": str(loaded.source), "prompt": args.prompt, "reply": reply, **stats})
    elif stream:
        sys.stdout.write("\n")
    else:
        print(reply)
    return 0


def run_chat(args: argparse.Namespace) -> int:
    """Interactive REPL: each turn re-renders the conversation, the cached prefix is reused."""
    from trico.engine.session import make_generator

    sampling = _sampling(args)
    loaded = load_from_args(args)
    tok = loaded.tokenizer
    if tok is None:
        raise TricoError(f"{loaded.source}: the checkpoint has no tokenizer")
    gen = make_generator(loaded, args.max_context, sampling, args.int8_activations)
    turns: list[dict[str, str]] = []
    interactive = sys.stdin.isatty()
    print(f"trico chat with {loaded.config.name} — /reset to start over, /exit to leave", file=sys.stderr)
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            break
        line = line.strip()
        if not line:
            continue
        if line in ("/exit", "/quit"):
            break
        if line == "/reset":
            turns.clear()
            gen.reset()
            print("(conversation cleared)", file=sys.stderr)
            continue
        turns.append({"role": "user", "content": line})
        prompt_ids = tok.encode(tok.apply_chat_template(_messages(args.system, turns)))
        if len(prompt_ids) + 1 >= gen.max_len:
            turns.pop()
            print(
                f"trico: the conversation no longer fits the {gen.max_len}-token context; /reset",
                file=sys.stderr,
            )
            continue
        sys.stdout.write("bot> ")
        reply, _ = _reply(gen, tok, prompt_ids, args, stream=True)
        sys.stdout.write("\n")
        sys.stdout.flush()
        turns.append({"role": "assistant", "content": reply})
    return 0
