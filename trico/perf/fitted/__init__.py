"""Fitted efficiency factors, one JSON file per device (written by `trico calibrate` / scripts/perf_report.py)."""
