"""Benchmarks of the platform at the size of a real month: ``make bench`` (``python -m benchmarks.run``).

See benchmarks/README.md for what is measured and benchmarks/RESULTS.md for the last full run.
"""
