"""Benchmarks (run them as scripts; see bench/README.md)."""
