"""Numenta Anomaly Benchmark (NAB v1.1) scoring in numpy: see scorer.py."""
