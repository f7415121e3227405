"""Benchmarks behind `rigserve bench`; shared helpers live in `_report`."""
