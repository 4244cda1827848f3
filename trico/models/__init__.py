"""trico.models."""
