"""Fuzzing the webhook edge: outcome counts collected by the tests, printed after the run.

``FUZZ_EXAMPLES`` sets how many requests the main fuzz test makes (default: a CI-sized run of
well under 30 s); e.g. ``FUZZ_EXAMPLES=200000 pytest tests/fuzz`` for a long run.
"""

from __future__ import annotations

import os
from collections import Counter

#: Examples for the main fuzz test; the schemathesis run uses a tenth of it.
DEFAULT_EXAMPLES = 3000
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or DEFAULT_EXAMPLES)
#: A default run is derandomized (the same inputs every CI run); a long run explores freely.
LONG_RUN = "FUZZ_EXAMPLES" in os.environ

#: name of the run -> Counter of "status" and "status reason" keys
OUTCOMES: dict[str, Counter] = {}


def outcome(run: str, status: int, reason: str | None) -> None:
    """Count one answer of ``run``."""
    counts = OUTCOMES.setdefault(run, Counter())
    counts[str(status)] += 1
    counts[f"{status} {reason or '-'}"] += 1


def pytest_terminal_summary(terminalreporter):
    if not OUTCOMES:
        return
    terminalreporter.section("webhook fuzz: answers by status (and by rejection reason)")
    for run, counts in OUTCOMES.items():
        statuses = {k: v for k, v in counts.items() if " " not in k}
        total = sum(statuses.values())
        terminalreporter.write_line(
            f"{run}: {total} requests: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
        )
        for key, value in sorted((k, v) for k, v in counts.items() if " " in k):
            terminalreporter.write_line(f"    {key:<40} {value}")
