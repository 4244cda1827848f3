"""trico.perf."""
