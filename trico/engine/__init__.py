"""trico.engine."""
