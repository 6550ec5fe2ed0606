"""The benchmark behind ``make bench``: real processes on loopback, figures printed as one table.

Not part of the test run: pytest collects only ``tests/`` (``testpaths`` in pyproject.toml).
Entry point: ``python -m bench.run_bench [--quick] [--sections ...]`` (see its ``--help``).
"""
