"""Flower's configuration file (scripts/run-flower passes ``--conf`` with this path).

Only what cannot be a command-line flag is here: the task formatter, a Python function. The other
options are on scripts/run-flower's command line, where they are easy to see and to override.
"""

from ops.flower import format_task  # noqa: F401 - Flower reads the option by this name
