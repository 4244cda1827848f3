"""trico.eval."""
