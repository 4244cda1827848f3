"""trico.io."""
