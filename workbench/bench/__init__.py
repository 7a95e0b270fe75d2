"""Benchmarks: each module prints figures measured in one run; run with python -m workbench.bench.<name>."""
