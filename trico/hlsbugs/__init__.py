"""trico.hlsbugs."""
