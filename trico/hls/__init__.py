"""trico.hls."""
