"""Check trico's SmolLM2 against Hugging Face transformers loading the same GGUF (fp32, CPU).

Prints the max |logit difference| on a 64-token prompt and the perplexity of both on the
acceptance protocol (wikitext2-test tokenized whole without BOS, N non-overlapping 512-token
windows, loss over the 511 predicted tokens of each), on the same token ids.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    """Run the comparison and print a JSON record."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--windows", type=int, default=40)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM

    from trico.eval.data import load_eval_tokens
    from trico.eval.perplexity import evaluate
    from trico.io.loader import default_gguf_path, load_model

    path = default_gguf_path()
    ours = load_model("smollm2")
    hf = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    ).eval()
    prompt = torch.randint(0, ours.config.vocab_size, (1, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        max_diff = (ours.model(prompt) - hf(prompt).logits).abs().max().item()
    tokens = load_eval_tokens(ours.tokenizer)
    t0 = time.perf_counter()
    r_ours = evaluate(ours.model, tokens, ctx=512, windows=args.windows)
    t1 = time.perf_counter()
    r_hf = evaluate(lambda x: hf(x).logits, tokens, ctx=512, windows=args.windows)  # type: ignore[arg-type]
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "logits_max_abs_diff_64_tokens": max_diff,
                "protocol": f"{args.windows} x 512-token windows, no BOS, {r_ours.n_tokens} scored tokens",
                "ppl_trico": r_ours.ppl,
                "ppl_transformers": r_hf.ppl,
                "relative_difference": r_ours.ppl / r_hf.ppl - 1,
                "seconds_trico": round(t1 - t0, 1),
                "seconds_transformers": round(t2 - t1, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
