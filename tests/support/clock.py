"""A wall clock that stands still until the test moves it, so no test waits for time to pass."""

from __future__ import annotations

import time


class FakeClock:
    """What ``time.time`` returns for everything in the process (the CXone client, fakeredis TTLs
    and Lua ``TIME``, the sandbox's token expiry and outages) while the ``clock`` fixture is on.

    It starts at the real time and moves only by :meth:`advance`, so however long a busy machine
    pauses the test, no token, outage or lock expires before the test says so. ``time.monotonic``
    (timeouts, lock polling) keeps running for real.
    """

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        """The fake ``time.time()``."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the wall clock ``seconds`` forward, at once."""
        self.now += seconds
