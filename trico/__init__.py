"""trico: co-optimize LLM inference across model compression, GPU software and hardware."""

__version__ = "0.1.0"
