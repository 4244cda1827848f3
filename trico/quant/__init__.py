"""trico.quant."""
