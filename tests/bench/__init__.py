"""The benchmark behind ``make bench``: real processes on loopback, figures printed as one table.

Not part of the test run: ``conftest.py`` here keeps pytest from collecting anything in this folder.
Entry point: ``python -m tests.bench.run_bench [--quick] [--sections ...]`` (see its ``--help``).
"""
