"""trico.kernels."""
