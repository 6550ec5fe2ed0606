"""A wall clock the test moves forward, so nothing waits on a real sleep for time to pass."""

from __future__ import annotations


class FakeClock:
    """An offset added to ``time.time`` for everything in the process (client, fakeredis TTLs, Lua
    ``TIME``, the sandbox's token expiry and outages). ``time.monotonic`` is left alone."""

    def __init__(self) -> None:
        self.offset = 0.0

    def advance(self, seconds: float) -> None:
        """Move the wall clock ``seconds`` forward, at once."""
        self.offset += seconds
